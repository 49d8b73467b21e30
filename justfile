# Portcullis developer tasks. Each recipe is a plain cargo command, so the
# README's commands work without just.

# Serve on 127.0.0.1:8000 with the embedded defaults.
serve:
    cargo run --release -p portcullis

# Run every test (the README's test command); the PostgreSQL tests need the
# server of PORTCULLIS_TEST_DATABASE_URL (default 127.0.0.1:5432), checked first.
test:
    bash .ci/stages/postgres-up.sh
    cargo test --workspace

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Verification against outside tools on the release build: OpenAPI drift,
# schemathesis, a real OAuth2 client library, a generated client, Swagger UI in Chromium,
# crash durability (installs what each needs: pip, npm, apt).
verify:
    cargo build --release --locked -p portcullis
    set -e; for check in openapi-drift schemathesis oauth-client generated-client browser resource-server crash-durability metrics; do bash .ci/stages/$check.sh || { echo "verify: $check failed"; exit 1; }; done

# The load benchmark: release build, seeded databases (1k and 1M users on
# SQLite, 1k on PostgreSQL: a fresh database on the server of
# PORTCULLIS_TEST_DATABASE_URL), load from oha (installed if missing); table,
# JSON and chart in target/bench/.
bench:
    command -v oha >/dev/null || cargo install oha --locked --version 1.16.0
    cargo build --release --locked -p portcullis -p portcullis-bench
    target/release/portcullis-bench
    cargo bench -p portcullis-crypto -p portcullis-sqlite

# Everything CI runs.
ci:
    bash .ci/run
