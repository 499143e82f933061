//! Opening a store by URL or from the configuration: SQLite or PostgreSQL, its TLS, its
//! password, and the URL as logs may show it.

use crate::config::Config;

use super::api::Store;
use super::error::StoreError;
use super::identity::Identity;
use super::pgtls::PgTls;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;

/// Whether a store URL names PostgreSQL (libpq's two schemes).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens a store by URL (`sqlite://PATH` or `postgres://…`), checking its identity and migrating
/// its schema. `password` is PostgreSQL's, kept apart from the URL.
pub fn open(
    url: &str,
    password: Option<&str>,
    id: &Identity,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Box<dyn Store>, StoreError> {
    open_with(url, password, &PgTls::default(), id, defs)
}

/// [`open`], with PostgreSQL's TLS where the URL does not say (the `[state]` keys).
pub(crate) fn open_with(
    url: &str,
    password: Option<&str>,
    tls: &PgTls,
    id: &Identity,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(SqliteStore::open(path, id, defs)?))
    } else if is_postgres(url) {
        Ok(Box::new(PgStore::open_tls(url, password, tls, id, defs)?))
    } else {
        Err(StoreError::Refused(format!(
            "state.url {:?} is neither sqlite://PATH nor postgres://…",
            redacted(url)
        )))
    }
}

/// Opens the store `cfg` names, reading the PostgreSQL password from `state.password_env` or
/// `state.password_file`. Like libpq with `PGPASSWORD`, an unset variable means no password
/// (certificate or trust authentication); a file that cannot be read, or is empty, is an error.
pub(crate) fn open_configured(cfg: &Config, id: &Identity) -> Result<Box<dyn Store>, StoreError> {
    let s = &cfg.settings.state;
    let password = if s.url.starts_with("sqlite://") {
        None
    } else {
        match s.password.read("state.password") {
            Ok(p) => p,
            Err(crate::config::secrets::SecretError::Unset { variable, .. }) => {
                tracing::debug!(%variable, "state.password_env names an unset variable: no password");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let tls = PgTls::of_settings(s);
    let pw = password.as_ref().map(|p| p.expose());
    if is_postgres(&s.url) {
        let store = PgStore::open_tls(&s.url, pw, &tls, id, &cfg.definitions)?;
        return Ok(Box::new(store.riding_through(s.reconnect_timeout.to_std())));
    }
    open_with(&s.url, pw, &tls, id, &cfg.definitions)
}

/// The URL with any password replaced, for logs and errors (whatever its scheme, and a
/// `password=` parameter too).
pub(crate) fn redacted(url: &str) -> String {
    crate::config::secrets::mask_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redacted("postgres://srv:hunter2@db:5432/opr"),
            "postgres://srv:*****@db:5432/opr"
        );
        assert_eq!(redacted("postgres://srv@db/opr"), "postgres://srv@db/opr");
        assert_eq!(redacted("sqlite://a.db"), "sqlite://a.db");
    }
}
