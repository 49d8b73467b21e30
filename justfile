# Portcullis developer tasks. Each recipe is a plain cargo command, so the
# README's commands work without just.

# Serve on 127.0.0.1:8000 with the embedded defaults.
serve:
    cargo run --release -p portcullis

# Run every test (the README's test command).
test:
    cargo test --workspace

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Everything CI runs.
ci:
    bash .ci/run
