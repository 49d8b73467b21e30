//! Secrets never reach the disk in the clear.

use std::path::{Path, PathBuf};

use portcullis_tests::TestApp;
use serde_json::json;

const PASSWORD: &str = "unmistakable storage sentinel passphrase";

/// The database file and its write-ahead log, where present.
fn database_files(app: &TestApp) -> Vec<PathBuf> {
    let db = app.database_path();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    [db, PathBuf::from(wal)]
        .into_iter()
        .filter(|path| path.exists())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn assert_absent(files: &[PathBuf], secrets: &[(&str, &str)]) {
    for file in files {
        let bytes = std::fs::read(file).expect("database file is readable");
        for (name, secret) in secrets {
            assert!(
                !contains(&bytes, secret),
                "the {name} appears in {}",
                Path::new(file).display()
            );
        }
    }
}

#[tokio::test]
async fn the_database_holds_no_password_refresh_token_or_access_token() {
    let mut app = TestApp::spawn().await;
    let response = app
        .register_json(&json!({
            "username": "canary",
            "email": "canary@example.com",
            "password": PASSWORD,
        }))
        .await;
    assert_eq!(response.status(), 201);
    let grant: serde_json::Value = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "canary"),
            ("password", PASSWORD),
        ])
        .await
        .json()
        .await
        .unwrap();
    let refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let secrets = [
        ("password", PASSWORD),
        ("refresh token", refresh.as_str()),
        ("access token", access.as_str()),
    ];

    let files = database_files(&app);
    assert!(
        files.iter().any(|f| f == &app.database_path()),
        "the database file exists: {files:?}"
    );
    // The canary really is where we look: the username is stored in plain text.
    let all: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(
        contains(&all, "canary@example.com"),
        "the scan sees the data"
    );
    assert_absent(&files, &secrets);

    // And after a clean shutdown, which may checkpoint the log into the file.
    app.shutdown().await;
    assert_absent(&database_files(&app), &secrets);
}
