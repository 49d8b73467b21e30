//! `portcullis openapi` and `--help` on every command.

use super::*;

#[test]
fn openapi_prints_only_one_openapi_3_json_document_with_the_token_endpoint() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.bare_command();
    command.arg("openapi");
    let outcome = run(command, None);
    outcome.assert_success();
    // `from_str` refuses anything but whitespace after the document.
    let document: serde_json::Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", outcome.stdout));
    let version = document["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3."), "openapi version {version}");
    let paths = document["paths"].as_object().expect("`paths` is an object");
    assert!(
        paths.contains_key("/auth/token"),
        "paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

#[test]
fn help_works_for_the_top_level_and_every_subcommand() {
    let sandbox = Sandbox::new();
    let cases: [(&[&str], &[&str]); 7] = [
        (&["--help"], &["serve", "user", "openapi", "--config"]),
        (&["serve", "--help"], &["Usage"]),
        (&["openapi", "--help"], &["Usage"]),
        (
            &["user", "--help"],
            &["create", "disable", "enable", "set-role"],
        ),
        (&["user", "disable", "--help"], &["<USERNAME>"]),
        (&["user", "enable", "--help"], &["<USERNAME>"]),
        (
            &["user", "set-role", "--help"],
            &["--role", "admin", "user"],
        ),
    ];
    for (args, expected) in cases {
        let mut command = sandbox.bare_command();
        command.args(args);
        let outcome = run(command, None);
        outcome.assert_success();
        for word in expected {
            assert!(
                outcome.stdout.contains(word),
                "`portcullis {}` help mentions {word}: {}",
                args.join(" "),
                outcome.stdout
            );
        }
    }
}

#[test]
fn user_create_help_mentions_password_stdin_admin_and_the_required_fields() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.bare_command();
    command.args(["user", "create", "--help"]);
    let outcome = run(command, None);
    outcome.assert_success();
    for flag in [
        "--password-stdin",
        "--admin",
        "--username",
        "--email",
        "--full-name",
    ] {
        assert!(
            outcome.stdout.contains(flag),
            "help mentions {flag}: {}",
            outcome.stdout
        );
    }
}
