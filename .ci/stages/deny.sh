#!/usr/bin/env bash
# Supply-chain checks with cargo-deny, configured by deny.toml: licences,
# banned crates (the layering wrappers of ARCHITECTURE.md's dependency rule)
# and sources (crates.io only).
#
# Advisories are NOT checked: `cargo deny check advisories` needs the RustSec
# advisory database, a git repository that cannot be fetched here (only the
# crates.io registry is reachable). Hence `--offline`, which also stops
# cargo-deny from trying.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_DENY_VERSION="0.20.2"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Runs one step in a subshell with errexit in force (a function called as
# `if ! f` would run with errexit off), printing its duration.
step() {
  local name="$1"
  shift
  echo "--- deny: ${name}"
  local started=$SECONDS status=0
  set +e
  (
    set -e
    "$@"
  )
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    echo "--- deny: FAILED: ${name} (after $((SECONDS - started)) s)"
    exit 1
  fi
  echo "--- deny: ok: ${name} ($((SECONDS - started)) s)"
}

install_cargo_deny() {
  if cargo deny --version 2>/dev/null | grep -qx "cargo-deny ${CARGO_DENY_VERSION}"; then
    echo "cargo-deny ${CARGO_DENY_VERSION} is installed"
    return 0
  fi
  # About 3 minutes on two cores.
  cargo install cargo-deny --locked --force --version "${CARGO_DENY_VERSION}"
}

# cargo-deny reads `cargo metadata` for every target platform, which needs
# every locked package downloaded (Windows- and macOS-only ones too) before
# it can run offline.
fetch() {
  cargo fetch --locked
}

# Errors in full, each with the inclusion graph that explains it. Warnings
# (duplicate versions, `multiple-versions = "warn"`) do not fail the check
# and would print a graph each, so they are listed one line each by
# `warnings` instead.
check() {
  cargo deny --offline --locked --log-level error check --show-stats bans licenses sources
}

warnings() {
  cargo deny --offline --locked check bans licenses sources 2>&1 | grep -E '^warning' || true
}

step "install cargo-deny ${CARGO_DENY_VERSION}" install_cargo_deny
step "fetch the locked dependency graph" fetch
step "cargo deny check bans licenses sources" check
step "list warnings (not failing)" warnings
