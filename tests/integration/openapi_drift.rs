//! The contract and the server agree: every route in the endpoint table is in
//! `openapi.yaml` with the same roles, and the document has no route the server lacks.

use std::collections::BTreeSet;

use petal::api::routes::{Access, endpoints};

/// One operation: method, path and the roles admitted (empty for public).
pub type Operation = (String, String, BTreeSet<String>);

/// Operations declared in `openapi.yaml`, read with their `x-roles`.
pub fn documented_operations() -> BTreeSet<Operation> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).expect("openapi.yaml");
    let document: serde_yaml::Value = serde_yaml::from_str(&text).expect("openapi.yaml is YAML");
    let paths = document["paths"].as_mapping().expect("paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path is text");
        for (method, operation) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method is text");
            if !["get", "put", "post", "delete", "patch", "head", "options"].contains(&method) {
                continue;
            }
            let roles = operation["x-roles"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{method} {path} has no x-roles"))
                .iter()
                .map(|r| r.as_str().expect("role is text").to_owned())
                .collect();
            operations.insert((method.to_uppercase(), path.to_owned(), roles));
        }
    }
    operations
}

fn served_operations() -> BTreeSet<Operation> {
    endpoints()
        .into_iter()
        .map(|e| {
            let roles = match e.access {
                Access::Public => BTreeSet::new(),
                Access::Roles(roles) => roles.iter().map(|r| r.as_str().to_owned()).collect(),
            };
            (e.method.to_string(), e.path.to_owned(), roles)
        })
        .collect()
}

#[test]
fn router_and_openapi_document_agree() {
    let documented = documented_operations();
    let served = served_operations();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented (or with other roles): {undocumented:#?}\n\
         documented but not served (or with other roles): {unserved:#?}"
    );
}

#[test]
fn public_operations_declare_no_security() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).expect("openapi.yaml");
    let document: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    for (method, path, roles) in documented_operations() {
        let operation = &document["paths"][path.as_str()][method.to_lowercase().as_str()];
        let declares_none = operation["security"].as_sequence().is_some_and(|s| s.is_empty());
        assert_eq!(roles.is_empty(), declares_none, "{method} {path}: `security: []` iff `x-roles: []`");
    }
}
