//! `petal token create|list|revoke`: token administration without the HTTP API, e.g. to
//! recover when no admin token is at hand.

use anyhow::{Context, bail};
use chrono::Utc;

use crate::app::config::TokenAction;
use crate::auth;
use crate::storage::Database;
use crate::storage::audit::{self, NewAuditEvent, Outcome};
use crate::storage::tokens as token_store;

/// Actor name for changes made from the command line (the shell user is not known to petal).
const CLI_ACTOR: &str = "cli";

pub async fn run(db: &Database, action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { role, name, expires_in } => {
            let expires_at = expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| Utc::now() + d))
                .transpose()
                .context("the expiry is too far in the future")?;
            let issued = auth::issue_token(db, &name, role, expires_at, CLI_ACTOR).await?;
            record(db, "token.create", &issued.record.id).await?;
            eprintln!("created {} token `{}` (id {}); it is shown only now:", role, name, issued.record.id);
            println!("{}", issued.secret);
        }
        TokenAction::List => {
            println!(
                "{:<36}  {:<24}  {:<11}  {:<20}  {:<20}  {:<20}  state",
                "id", "name", "role", "created", "last used", "expires"
            );
            let now = Utc::now();
            for t in token_store::list(db).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "active"
                };
                let when = |at: Option<chrono::DateTime<Utc>>| {
                    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".to_owned())
                };
                println!(
                    "{:<36}  {:<24}  {:<11}  {:<20}  {:<20}  {:<20}  {state}",
                    t.id,
                    t.name,
                    t.role,
                    when(Some(t.created_at)),
                    when(t.last_used_at),
                    when(t.expires_at)
                );
            }
        }
        TokenAction::Revoke { token } => {
            let matches = token_store::find_by_id_or_name(db, &token).await?;
            let target = match matches.as_slice() {
                [] => bail!("no token has the id or name `{token}`"),
                [one] => one,
                many => {
                    bail!("{} tokens are named `{token}`: revoke one by its id (see `petal token list`)", many.len())
                }
            };
            if token_store::revoke(db, &target.id, Utc::now()).await? {
                record(db, "token.revoke", &target.id).await?;
                println!("revoked token `{}` ({})", target.name, target.id);
            } else {
                println!("token `{}` ({}) was already revoked", target.name, target.id);
            }
        }
    }
    Ok(())
}

async fn record(db: &Database, action: &str, token_id: &str) -> anyhow::Result<()> {
    let event = NewAuditEvent {
        actor: CLI_ACTOR,
        action,
        resource: token_id,
        patient_key: None,
        outcome: Outcome::Success,
        request_id: None,
        detail: None,
    };
    audit::append(db, &event).await.context("writing the audit event")
}
