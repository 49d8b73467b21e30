//! Settings: a flag beats the environment, which beats the file, which
//! beats the default.

use super::*;

fn config_with_min_length_20(sandbox: &Sandbox) -> PathBuf {
    let config = sandbox.path("portcullis.toml");
    std::fs::write(&config, "password_min_length = 20\n").expect("write config");
    config
}

#[track_caller]
fn assert_refused_for_length(outcome: &Outcome, minimum: usize) {
    outcome.assert_failure();
    assert!(
        outcome.messages().contains("password")
            && outcome.messages().contains(&minimum.to_string()),
        "refused naming the minimum {minimum}: {}",
        outcome.stderr
    );
}

#[test]
fn a_flag_beats_the_environment_and_the_config_file() {
    let sandbox = Sandbox::migrated();
    let config = config_with_min_length_20(&sandbox);
    let command = || {
        let mut command = sandbox.command();
        command
            .env("PORTCULLIS_PASSWORD_MIN_LENGTH", "16")
            .arg("--config")
            .arg(&config)
            .args(["--password-min-length", "18"]);
        command
    };
    assert_refused_for_length(&create_user(command(), "flagshort", &password(17)), 18);
    create_user(command(), "flagexact", &password(18)).assert_success();
}

#[test]
fn the_environment_beats_the_config_file() {
    let sandbox = Sandbox::migrated();
    let config = config_with_min_length_20(&sandbox);
    let command = || {
        let mut command = sandbox.command();
        command
            .env("PORTCULLIS_PASSWORD_MIN_LENGTH", "16")
            .arg("--config")
            .arg(&config);
        command
    };
    assert_refused_for_length(&create_user(command(), "envshort", &password(15)), 16);
    create_user(command(), "envexact", &password(16)).assert_success();
}

#[test]
fn the_config_file_beats_the_default() {
    let sandbox = Sandbox::migrated();
    let config = config_with_min_length_20(&sandbox);
    let command = || {
        let mut command = sandbox.command();
        command.arg("--config").arg(&config);
        command
    };
    assert_refused_for_length(&create_user(command(), "fileshort", &password(19)), 20);
    create_user(command(), "fileexact", &password(20)).assert_success();
}

#[test]
fn a_flag_after_the_subcommand_also_applies() {
    let sandbox = Sandbox::migrated();
    let mut command = sandbox.command();
    command.args(["user", "create", "--password-min-length", "18"]);
    command.args([
        "--username",
        "late",
        "--email",
        "late@example.com",
        "--password-stdin",
    ]);
    let outcome = run(command, Some(&format!("{}\n", password(17))));
    assert_refused_for_length(&outcome, 18);
}
