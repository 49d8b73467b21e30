//! `portcullis keys list|rotate`: what they print (never key material),
//! what rotating changes, and the refusal with HS256 keys.

use super::*;

/// `(kid, alg, state)` of every line `keys list` or `keys rotate` printed.
fn listed(stdout: &str) -> Vec<(String, String, String)> {
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("kid\talg\tstate\tcreated_at\tsigns_from\tretires_at"),
        "{stdout}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 6, "{line}");
            (
                cells[0].to_owned(),
                cells[1].to_owned(),
                cells[2].to_owned(),
            )
        })
        .collect()
}

fn keys(sandbox: &Sandbox, action: &str) -> Outcome {
    let mut command = sandbox.command();
    command.args(["keys", action]);
    run(command, None)
}

#[test]
fn keys_list_shows_the_installed_keys_and_rotate_moves_each_one_step() {
    let sandbox = Sandbox::new();
    let server = Server::start(sandbox.command());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status:?}");

    let outcome = keys(&sandbox, "list");
    outcome.assert_success();
    let before = listed(&outcome.stdout);
    let states: Vec<&str> = before.iter().map(|(_, _, state)| state.as_str()).collect();
    assert_eq!(states, ["current", "next"], "{}", outcome.stdout);
    assert!(
        before
            .iter()
            .all(|(kid, alg, _)| kid.len() == 43 && alg == "EdDSA")
    );

    let outcome = keys(&sandbox, "rotate");
    outcome.assert_success();
    let after = listed(&outcome.stdout);
    let state_of = |kid: &str| {
        after
            .iter()
            .find(|(listed, _, _)| listed == kid)
            .map(|(_, _, state)| state.clone())
    };
    assert_eq!(state_of(&before[0].0).as_deref(), Some("retired"));
    assert_eq!(state_of(&before[1].0).as_deref(), Some("current"));
    assert_eq!(after.len(), 3);
    assert_eq!(
        after.iter().filter(|(_, _, state)| state == "next").count(),
        1,
        "a new next key: {}",
        outcome.stdout
    );

    // No key material: the master key and the sealed keys never print.
    let master_key =
        std::fs::read_to_string(sandbox.data_dir().join("master-key")).expect("master key");
    assert!(!outcome.stdout.contains(master_key.trim()));
    assert!(!outcome.stderr.contains(master_key.trim()));
}

#[test]
fn keys_commands_refuse_hs256_and_a_missing_database() {
    let sandbox = Sandbox::new();
    let outcome = keys(&sandbox, "list");
    outcome.assert_failure();
    assert!(outcome.messages().contains("migrate"), "{}", outcome.stderr);

    let sandbox = Sandbox::migrated();
    let mut command = sandbox.command();
    command
        .env("PORTCULLIS_JWT_SECRET", "s".repeat(32))
        .args(["keys", "rotate"]);
    let outcome = run(command, None);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome.messages().contains("changing the secret"),
        "{}",
        outcome.stderr
    );
}
