//! Every command on PostgreSQL (CONTRACT §5): `migrate`, `user ...`,
//! `keys ...`, `serve` and `db copy`, with `PORTCULLIS_DATABASE_URL` naming a
//! fresh database of the test server (`PORTCULLIS_TEST_DATABASE_URL`,
//! default 127.0.0.1:5432); and a bad URL is a configuration error.

use portcullis_postgres::testing::TestDatabase;

use super::*;

/// A fresh database on the test server, made from a runtime of its own
/// (these tests are synchronous: they run the binary).
fn fresh_database() -> TestDatabase {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(TestDatabase::create())
}

/// [`Sandbox::command`] on `database`.
fn on(sandbox: &Sandbox, database: &TestDatabase) -> Command {
    let mut command = sandbox.command();
    command.env("PORTCULLIS_DATABASE_URL", database.url());
    command
}

#[test]
fn user_and_keys_commands_refuse_an_unmigrated_database_then_work_after_migrate() {
    let sandbox = Sandbox::new();
    let database = fresh_database();

    let refused = create_user(on(&sandbox, &database), "early", &password(20));
    refused.assert_failure();
    assert!(
        refused.messages().contains("portcullis migrate"),
        "says how to make the schema: {}",
        refused.stderr
    );

    let mut migrate = on(&sandbox, &database);
    migrate.arg("migrate");
    let migrated = run(migrate, None);
    migrated.assert_success();
    assert!(
        migrated.stdout.contains("up to date") && !migrated.stdout.contains("sqlite"),
        "stdout: {}",
        migrated.stdout
    );

    create_user(on(&sandbox, &database), "pgadmin", &password(20)).assert_success();
    for args in [
        vec!["user", "set-role", "pgadmin", "--role", "admin"],
        vec!["user", "disable", "pgadmin"],
        vec!["user", "enable", "pgadmin"],
    ] {
        let mut command = on(&sandbox, &database);
        command.args(&args);
        let outcome = run(command, None);
        outcome.assert_success();
        assert!(
            outcome.stdout.starts_with("pgadmin "),
            "{args:?}: {}",
            outcome.stdout
        );
    }
    let duplicate = create_user(on(&sandbox, &database), "PGADMIN", &password(21));
    duplicate.assert_failure();
    assert!(
        duplicate.messages().contains("taken"),
        "{}",
        duplicate.stderr
    );
    assert!(
        !sandbox.data_dir().join("portcullis.db").exists(),
        "no SQLite file is made when the store is PostgreSQL"
    );
}

#[test]
fn serve_keys_rotate_and_db_copy_work_on_postgresql() {
    let sandbox = Sandbox::new();
    let database = fresh_database();

    // The server migrates the empty database and installs the keys.
    let server = Server::start(on(&sandbox, &database));
    server.wait_for_health();
    let (status, body) = http_get(server.addr, "/health").expect("health");
    assert_eq!(
        (status, body.contains("\"database\":\"ok\"")),
        (200, true),
        "{body}"
    );
    server.terminate();

    let mut list = on(&sandbox, &database);
    list.args(["keys", "list"]);
    let listed = run(list, None);
    listed.assert_success();
    assert!(
        listed.stdout.contains("\tcurrent\t") && listed.stdout.contains("\tnext\t"),
        "{}",
        listed.stdout
    );
    let mut rotate = on(&sandbox, &database);
    rotate.args(["keys", "rotate"]);
    let rotated = run(rotate, None);
    rotated.assert_success();
    assert!(rotated.stdout.contains("\tretired\t"), "{}", rotated.stdout);

    create_user(on(&sandbox, &database), "copied", &password(20)).assert_success();

    // Into a new SQLite file, and refused the second time.
    let target = format!("sqlite://{}", sandbox.path("copy.db").display());
    let mut copy = on(&sandbox, &database);
    copy.args(["db", "copy", "--to", &target]);
    let copied = run(copy, None);
    copied.assert_success();
    assert!(
        copied.stdout.contains("copied 1 accounts") && copied.stdout.contains("3 signing keys"),
        "{}",
        copied.stdout
    );
    assert!(copied.stdout.contains("master key"), "{}", copied.stdout);
    let mut again = on(&sandbox, &database);
    again.args(["db", "copy", "--to", &target]);
    let refused = run(again, None);
    refused.assert_failure();
    assert!(
        refused.messages().contains("not empty"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_database_url_of_another_scheme_or_unparsable_is_a_configuration_error() {
    let sandbox = Sandbox::new();
    for url in [
        "mysql://root:hunter2-secret@localhost/portcullis",
        "sqlite://",
        "postgres://root:hunter2-secret@localhost:notaport/db",
    ] {
        let mut command = sandbox.command();
        command.env("PORTCULLIS_DATABASE_URL", url).arg("migrate");
        let outcome = run(command, None);
        assert_eq!(outcome.code(), Some(2), "{url}: {outcome:?}");
        assert!(
            outcome.messages().contains("database_url"),
            "{url}: {}",
            outcome.stderr
        );
        assert!(
            !outcome.stderr.contains("hunter2-secret"),
            "{url}: the password is never printed: {}",
            outcome.stderr
        );
    }
}
