//! A fresh database per test, on the PostgreSQL server the tests are
//! given. Used by this crate's tests and by the workspace's black-box
//! tests; not part of the supported API.

use tokio_postgres::NoTls;

/// Where the tests find a server when `PORTCULLIS_TEST_DATABASE_URL` is
/// not set: the one this project's machines and CI start (trust auth).
const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The variable that points the tests at another server.
const SERVER_URL_VARIABLE: &str = "PORTCULLIS_TEST_DATABASE_URL";

/// An empty database `portcullis_test_<uuid>` made for one test on the
/// server of `PORTCULLIS_TEST_DATABASE_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped (`WITH (FORCE)`,
/// so open connections do not keep it) when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses: a test that needs a
    /// database fails, saying how to provide one, rather than being skipped.
    pub async fn create() -> Self {
        let server_url =
            std::env::var(SERVER_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned());
        #[allow(
            clippy::disallowed_methods,
            reason = "a test database's name, not a domain id"
        )]
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        let client = server_client(&server_url).await;
        // The name is ours (hex digits after a fixed prefix), so it needs
        // no quoting.
        if let Err(error) = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            panic!(
                "cannot create test database {name} on {}: {}",
                crate::store::redact_url(&server_url),
                crate::store::describe(&error)
            );
        }
        let url = with_database(&server_url, &name);
        Self {
            server_url,
            name,
            url,
        }
    }

    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A thread with a runtime of its own, so that dropping works inside
        // a runtime (where blocking on another would panic) and outside one.
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&server_url, NoTls)
                    .await
                    .map_err(|error| error.to_string())?;
                let connection = tokio::spawn(connection);
                let outcome = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|error| crate::store::describe(&error));
                drop(client);
                let _ = connection.await;
                outcome
            })
        })
        .join();
        #[allow(clippy::print_stderr, reason = "a test helper: there is no logger")]
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}

/// A plain connection to the server's maintenance database.
async fn server_client(server_url: &str) -> tokio_postgres::Client {
    match tokio_postgres::connect(server_url, NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(async move {
                let _ = connection.await;
            });
            client
        }
        Err(error) => panic!(
            "cannot reach the PostgreSQL server for tests at {} ({error}): start PostgreSQL on \
             127.0.0.1:5432 with trust auth or set \
             {SERVER_URL_VARIABLE}=postgres://user@host:port/db",
            crate::store::redact_url(server_url)
        ),
    }
}

/// `server_url` with its database replaced by `name`, and `sslmode=disable`
/// added unless the URL chooses a mode.
///
/// The store verifies the server's certificate whenever TLS is used, and
/// under the default `sslmode=prefer` a local test server with a
/// self-signed certificate (Debian's "snakeoil") would fail every
/// connection; a test server that should be reached over TLS says so in
/// its URL.
fn with_database(server_url: &str, name: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .unwrap_or(("postgres", server_url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.split_once('?').map(|(_, query)| query);
    match query {
        Some(query)
            if query
                .split('&')
                .any(|parameter| parameter.starts_with("sslmode=")) =>
        {
            format!("{scheme}://{authority}/{name}?{query}")
        }
        Some(query) => format!("{scheme}://{authority}/{name}?{query}&sslmode=disable"),
        None => format!("{scheme}://{authority}/{name}?sslmode=disable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_database_replaces_the_servers_database_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h?sslmode=require", "t1"),
            "postgres://u@h/t1?sslmode=require"
        );
        assert_eq!(
            with_database("postgres://u@h/db?application_name=x", "t1"),
            "postgres://u@h/t1?application_name=x&sslmode=disable"
        );
    }
}
