//! `portcullis user ...` and `portcullis migrate`: what they print, refuse
//! and create.

use super::*;

#[test]
fn user_create_reads_the_password_from_stdin_and_prints_the_lowercased_username() {
    let sandbox = Sandbox::migrated();
    let secret = password(20);
    let mut command = sandbox.command();
    command.args([
        "user",
        "create",
        "--username",
        "Alice",
        "--email",
        "alice@example.com",
        "--password-stdin",
    ]);
    let outcome = run(command, Some(&format!("{secret}\n")));
    outcome.assert_success();
    assert_eq!(
        outcome.stdout.split_whitespace().next(),
        Some("alice"),
        "stdout: {}",
        outcome.stdout
    );
    assert!(
        !outcome.stdout.contains("Alice"),
        "stdout: {}",
        outcome.stdout
    );
    assert!(
        !outcome.stdout.contains(&secret) && !outcome.stderr.contains(&secret),
        "the password is never printed: {outcome:?}"
    );
}

#[test]
fn creating_the_same_username_again_fails_saying_it_is_taken() {
    let sandbox = Sandbox::migrated();
    create_user(sandbox.command(), "alice", &password(20)).assert_success();
    // Different case and different email: still the same username.
    let mut command = sandbox.command();
    command.args([
        "user",
        "create",
        "--username",
        "ALICE",
        "--email",
        "other@example.com",
        "--password-stdin",
    ]);
    let outcome = run(command, Some(&format!("{}\n", password(21))));
    outcome.assert_failure();
    assert!(
        outcome.messages().contains("taken"),
        "stderr says it is taken: {}",
        outcome.stderr
    );
    assert!(
        outcome.messages().contains("username"),
        "stderr names the username: {}",
        outcome.stderr
    );
}

#[test]
fn a_too_short_password_is_refused_naming_the_rule_without_echoing_it() {
    let sandbox = Sandbox::migrated();
    // 14 code points: one below the default minimum of 15.
    let short = password(14);
    let outcome = create_user(sandbox.command(), "bob", &short);
    outcome.assert_failure();
    assert!(
        outcome.messages().contains("password") && outcome.messages().contains("15"),
        "stderr names the password rule: {}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains(&short) && !outcome.stdout.contains(&short),
        "the password is never echoed: {outcome:?}"
    );
    // Nothing was created.
    let mut command = sandbox.command();
    command.args(["user", "disable", "bob"]);
    let lookup = run(command, None);
    lookup.assert_failure();
    assert!(lookup.messages().contains("no such user"), "{lookup:?}");
}

#[test]
fn without_password_stdin_and_no_terminal_user_create_asks_for_password_stdin() {
    let sandbox = Sandbox::migrated();
    let mut command = sandbox.command();
    command.args([
        "user",
        "create",
        "--username",
        "carol",
        "--email",
        "carol@example.com",
    ]);
    // stdin is /dev/null: not a terminal.
    let outcome = run(command, None);
    outcome.assert_failure();
    assert!(
        outcome.messages().contains("--password-stdin"),
        "stderr tells the user to pass --password-stdin: {}",
        outcome.stderr
    );
    let mut command = sandbox.command();
    command.args(["user", "enable", "carol"]);
    let lookup = run(command, None);
    lookup.assert_failure();
    assert!(lookup.messages().contains("no such user"), "{lookup:?}");
}

#[test]
fn disable_enable_and_set_role_print_the_new_state() {
    let sandbox = Sandbox::migrated();
    let mut command = sandbox.command();
    command.args([
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        "--admin",
        "--password-stdin",
    ]);
    let created = run(command, Some(&format!("{}\n", password(20))));
    created.assert_success();
    assert!(
        created.stdout.contains("role=admin") && created.stdout.contains("disabled=false"),
        "stdout: {}",
        created.stdout
    );

    let steps: [(&[&str], &[&str]); 4] = [
        (&["user", "disable", "alice"], &["disabled=true"]),
        (&["user", "enable", "alice"], &["disabled=false"]),
        (
            &["user", "set-role", "alice", "--role", "user"],
            &["role=user"],
        ),
        (
            &["user", "set-role", "ALICE", "--role", "admin"],
            &["role=admin"],
        ),
    ];
    for (args, expected) in steps {
        let mut command = sandbox.command();
        command.args(args);
        let outcome = run(command, None);
        outcome.assert_success();
        assert_eq!(
            outcome.stdout.split_whitespace().next(),
            Some("alice"),
            "`portcullis {}`: {}",
            args.join(" "),
            outcome.stdout
        );
        for state in expected {
            assert!(
                outcome.stdout.contains(state),
                "`portcullis {}` prints {state}: {}",
                args.join(" "),
                outcome.stdout
            );
        }
    }
}

#[test]
fn a_user_command_without_a_data_directory_fails_and_creates_nothing() {
    let sandbox = Sandbox::new();
    let outcome = create_user(sandbox.command(), "erin", &password(20));
    outcome.assert_failure();
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    assert!(
        outcome.messages().contains("--data-dir") && outcome.messages().contains("migrate"),
        "the message says how to point at the data directory: {}",
        outcome.stderr
    );
    assert!(
        !sandbox.data_dir().exists(),
        "no data directory was invented"
    );
    let mut command = sandbox.command();
    command.args(["user", "disable", "erin"]);
    run(command, None).assert_failure();
    assert!(!sandbox.data_dir().exists());
}

#[test]
fn migrate_creates_the_database_but_no_signing_key() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.bare_command();
    command.arg("migrate");
    let outcome = run(command, None);
    outcome.assert_success();
    assert!(outcome.stdout.contains("up to date"), "{outcome:?}");
    assert_eq!(mode_of(&sandbox.data_dir()), 0o700);
    assert_eq!(mode_of(&sandbox.data_dir().join("portcullis.db")), 0o600);
    assert!(!sandbox.data_dir().join("jwt-signing-key").exists());
}

#[test]
fn set_role_refuses_a_role_that_is_neither_admin_nor_user() {
    let sandbox = Sandbox::migrated();
    let mut command = sandbox.command();
    command.args(["user", "set-role", "alice", "--role", "root"]);
    let outcome = run(command, None);
    outcome.assert_failure();
    assert!(
        outcome.stderr.contains("root"),
        "stderr names the bad value: {}",
        outcome.stderr
    );
}

#[test]
fn account_commands_on_an_unknown_user_say_no_such_user() {
    let sandbox = Sandbox::migrated();
    for args in [
        &["user", "disable", "ghost"][..],
        &["user", "enable", "ghost"][..],
        &["user", "set-role", "ghost", "--role", "user"][..],
    ] {
        let mut command = sandbox.command();
        command.args(args);
        let outcome = run(command, None);
        outcome.assert_failure();
        assert!(
            outcome.messages().contains("no such user"),
            "`portcullis {}`: {}",
            args.join(" "),
            outcome.stderr
        );
    }
}
