//! The web page's sessions: a token signs in once and becomes an HttpOnly, SameSite=Strict
//! cookie; reads work with the cookie alone, changes also need the session's CSRF token;
//! sign-out, revoking the token and a wrong token each end or refuse the session.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::common::{Engine, TestApp};
use crate::on_both_engines;

async fn sign_in(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.post(app.url("/api/v1/session")).json(&json!({"token": token})).send().await.expect("sign in")
}

async fn sessions_are_cookies_with_csrf_protected_changes(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--no-worker"]).await;
    let response = sign_in(&app, &app.admin_token).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = response.headers().get(SET_COOKIE).expect("a cookie").to_str().expect("ascii").to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} in {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let body: Value = response.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    assert_eq!(body["role"], "admin");

    // Reads with the cookie alone.
    let whoami = app.client.get(app.url("/api/v1/whoami")).header(COOKIE, &cookie).send().await.expect("whoami");
    assert_eq!(whoami.status(), StatusCode::OK);
    // A new tab asks for the CSRF token with the cookie; bearer callers get none.
    let current: Value = app
        .client
        .get(app.url("/api/v1/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(current["csrf_token"], csrf.as_str());
    let bearer = app.admin_json("/api/v1/session").await;
    assert!(bearer["csrf_token"].is_null(), "{bearer}");
    // Changes need the CSRF token too.
    let create = |csrf: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/tokens"))
            .header(COOKIE, &cookie)
            .json(&json!({"name": "from-the-page", "role": "radiologist"}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let refused = create(None).await.expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused: Value = refused.json().await.expect("json");
    assert_eq!(refused["error"]["code"], "csrf_token_missing");
    assert_eq!(create(Some("0".repeat(64).as_str())).await.expect("post").status(), StatusCode::FORBIDDEN);
    let created = create(Some(&csrf)).await.expect("post");
    assert_eq!(created.status(), StatusCode::CREATED);
    let radiologist: Value = created.json().await.expect("json");
    let radiologist_secret = radiologist["secret"].as_str().expect("secret").to_owned();

    // Sign-out ends the session and clears the cookie.
    let out = app
        .client
        .delete(app.url("/api/v1/session"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(out.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("Max-Age=0")));
    let after = app.client.get(app.url("/api/v1/whoami")).header(COOKIE, &cookie).send().await.expect("whoami");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // A session dies with its token; a wrong token never gets one.
    let response = sign_in(&app, &radiologist_secret).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()[SET_COOKIE].to_str().expect("ascii").split(';').next().expect("cookie").to_owned();
    let id = radiologist["token"]["id"].as_str().expect("token id").to_owned();
    let (revoked, _) = app.admin(reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert!(revoked.is_success());
    let after = app.client.get(app.url("/api/v1/whoami")).header(COOKIE, &cookie).send().await.expect("whoami");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&app, "petal_not-a-token").await.status(), StatusCode::UNAUTHORIZED);

    let audit = app.admin_json("/api/v1/audit?action=session.create").await;
    let outcomes: Vec<&str> =
        audit["events"].as_array().expect("events").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"success") && outcomes.contains(&"denied"), "{audit}");
    app.stop().await;
}
on_both_engines!(sessions_are_cookies_with_csrf_protected_changes);
