//! The first admin token, so that a fresh installation can be administered at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::token::{TOKEN_PREFIX, hash_secret, new_secret};
use crate::storage::{Database, tokens as token_store};

/// Name given to the token petal creates for itself.
const BOOTSTRAP_NAME: &str = "bootstrap-admin";

/// What [`ensure_admin_token`] did, for the start-up log.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// An active admin token existed already.
    AlreadyPresent,
    /// A new token was created and written to the file.
    Created,
    /// The file held a token (e.g. a mounted secret); it was registered as admin.
    ImportedFromFile,
}

/// Makes sure an active admin token exists.
///
/// Several replicas may start together: the check-and-insert runs under a database lock,
/// so at most one of them creates a token. A new token is written to `file` (mode 0600)
/// before it is registered and moved into place only by the process that registered it, so
/// the file never names a token the database lacks. When `file` already holds a token
/// (e.g. a mounted Kubernetes Secret), that token is registered instead.
pub async fn ensure_admin_token(db: &Database, file: &Path) -> anyhow::Result<AdminBootstrap> {
    if let Some(secret) = read_provided_token(file)? {
        if !is_well_formed(&secret) {
            anyhow::bail!(
                "{} does not hold a petal token (`petal_` and 64 hex digits); put one made with \
                 `petal token create` or `echo petal_$(openssl rand -hex 32)` there, or remove the file",
                file.display()
            );
        }
        let registered = token_store::insert_admin_if_none(db, BOOTSTRAP_NAME, &hash_secret(&secret))
            .await
            .context("registering the admin token from the token file")?;
        return Ok(if registered { AdminBootstrap::ImportedFromFile } else { AdminBootstrap::AlreadyPresent });
    }
    if token_store::count_active_admins(db).await.context("counting admin tokens")? > 0 {
        return Ok(AdminBootstrap::AlreadyPresent);
    }
    let secret = new_secret();
    let staged = staging_path(file);
    write_secret_file(&staged, &secret).with_context(|| format!("writing the admin token to {}", staged.display()))?;
    let registered = token_store::insert_admin_if_none(db, BOOTSTRAP_NAME, &hash_secret(&secret)).await;
    match registered {
        Ok(true) => {
            std::fs::rename(&staged, file).with_context(|| format!("moving the admin token to {}", file.display()))?;
            Ok(AdminBootstrap::Created)
        }
        Ok(false) => {
            let _ = std::fs::remove_file(&staged);
            Ok(AdminBootstrap::AlreadyPresent)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&staged);
            Err(err).context("registering a new admin token")
        }
    }
}

/// A provided admin token must look like one petal makes, so a placeholder such as
/// `CHANGE-ME` in a deployment secret never becomes a working credential.
fn is_well_formed(secret: &str) -> bool {
    secret
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn staging_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    file.with_file_name(name)
}

fn read_provided_token(file: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", file.display())),
    }
}

fn write_secret_file(file: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(file)?;
    writeln!(out, "{secret}")?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_petal_shaped_tokens_are_imported() {
        assert!(is_well_formed(&new_secret()));
        assert!(!is_well_formed("CHANGE-ME-generate-with-petal-token-create"));
        assert!(!is_well_formed("petal_short"));
        assert!(!is_well_formed(&format!("petal_{}", "g".repeat(64))));
    }

    #[test]
    fn staging_file_sits_next_to_the_target() {
        let staged = staging_path(Path::new("/run/petal/admin-token"));
        assert_eq!(staged.parent(), Some(Path::new("/run/petal")));
        assert!(staged.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("admin-token.")));
    }
}
