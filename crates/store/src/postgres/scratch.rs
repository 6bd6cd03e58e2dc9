//! Throw-away databases for tests and benchmarks: each gets its own database on a server
//! named by `WARMSTART_TEST_POSTGRES` (an admin connection URL), dropped when done.

use std::sync::atomic::{AtomicU64, Ordering};

use postgres::{Client, NoTls};

use crate::{Error, Result};

/// The admin URL of the PostgreSQL server for tests, from `WARMSTART_TEST_POSTGRES`. `None`
/// (after saying why on stderr) when unset, unless `WARMSTART_REQUIRE_POSTGRES=1`: then
/// a missing server is a failure, so that CI cannot skip the backend silently.
pub fn test_server(test: &str) -> Option<String> {
    match std::env::var("WARMSTART_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("WARMSTART_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{test}: WARMSTART_REQUIRE_POSTGRES=1 but WARMSTART_TEST_POSTGRES is not set (start one with scripts/pg.sh start)")
        }
        _ => {
            eprintln!(
                "{test}: PostgreSQL part skipped: WARMSTART_TEST_POSTGRES is not set \
                 (`eval $(scripts/pg.sh start)` starts a local server with pgvector)"
            );
            None
        }
    }
}

/// A database created for one test and dropped (with its connections) on drop.
pub struct TempDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TempDatabase {
    /// Creates a fresh, empty database on the server of `admin_url`.
    pub fn create(admin_url: &str) -> Result<TempDatabase> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "warmstart_test_{}_{}_{}",
            std::process::id(),
            crate::now_secs(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let location = super::redact_url(admin_url);
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let mut c = Client::connect(admin_url, NoTls).map_err(err)?;
        c.batch_execute(&format!("CREATE DATABASE {name}")).map_err(err)?;
        let url = replace_database(admin_url, &name);
        Ok(TempDatabase { admin: admin_url.to_string(), name, url })
    }

    /// Connection URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `url` with its database name replaced by `db`.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(super::replace_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
        assert_eq!(super::replace_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            super::replace_database("postgres://u@h/a?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
