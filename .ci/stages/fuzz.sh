#!/usr/bin/env bash
# Fuzzes Portcullis's input parsers with cargo-fuzz (libFuzzer) for a short,
# fixed time per target, and fails if any target finds a crash, a panic, a
# broken property or an input that takes more than 10 s.
#
# Targets live in fuzz/ (a crate of its own, outside the workspace), their
# committed seed inputs in fuzz/corpus/<target>/. Everything this writes goes
# under target/fuzz/: the build, the growing working corpus (seeds are copied
# in, so the committed corpus never grows), artifacts and logs.
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_JOBS     targets fuzzed at the same time (default: number of cores,
#                 at most 2; each libFuzzer process uses one core)
#   FUZZ_TARGETS  space-separated subset of targets (default: all)
#
# Toolchain: stable only. `--sanitizer none` drops the one nightly-only flag
# cargo-fuzz passes (`-Zsanitizer=...`); the coverage instrumentation it adds
# (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`) is made of
# stable `-C` flags, so no RUSTC_BOOTSTRAP is needed (checked with rustc 1.95
# and cargo-fuzz 0.13.2). Without a sanitizer, memory errors in unsafe code
# are not detected; panics, broken assertions (debug assertions and overflow
# checks are on), stack overflows and timeouts are.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION="0.13.2"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
cores="$(nproc 2>/dev/null || echo 1)"
FUZZ_JOBS="${FUZZ_JOBS:-$((cores < 2 ? cores : 2))}"
if ! [[ "$FUZZ_JOBS" =~ ^[1-9][0-9]*$ ]] || ! [[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: FUZZ_JOBS and FUZZ_SECONDS must be positive integers" >&2
  exit 2
fi
ALL_TARGETS="credential_headers jwt_verify token_form domain_parsers"
read -r -a targets <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export LC_ALL=C
export CARGO_INCREMENTAL=0

root="$PWD"
out="$root/target/fuzz"
build_dir="$out/build"
host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$build_dir/$host/release"
build_flags=(-O --debug-assertions --sanitizer none --target "$host" --target-dir "$build_dir")

# Runs one step in a subshell with errexit in force (a function called as
# `if ! f` would run with errexit off), printing its duration.
step() {
  local name="$1"
  shift
  echo "--- fuzz: ${name}"
  local started=$SECONDS status=0
  set +e
  (
    set -e
    "$@"
  )
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    echo "--- fuzz: FAILED: ${name} (after $((SECONDS - started)) s)"
    exit 1
  fi
  echo "--- fuzz: ok: ${name} ($((SECONDS - started)) s)"
}

install_cargo_fuzz() {
  if cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz ${CARGO_FUZZ_VERSION}"; then
    echo "cargo-fuzz ${CARGO_FUZZ_VERSION} is installed"
    return 0
  fi
  cargo install cargo-fuzz --locked --force --version "${CARGO_FUZZ_VERSION}"
}

# fuzz/Cargo.lock pins the fuzz build to the root lock's versions, so that
# the code fuzzed is the code that ships. When a workspace crate gains a
# dependency, or the root lock moves, it is re-derived from the root lock
# (a warning says so; commit the new fuzz/Cargo.lock).
sync_lock() {
  local stale=""
  if ! cargo fetch --locked --manifest-path fuzz/Cargo.toml >/dev/null 2>&1; then
    stale="it does not cover fuzz/Cargo.toml's dependencies"
  else
    local drift
    drift="$(comm -23 <(lock_entries fuzz/Cargo.lock) <(lock_entries Cargo.lock) |
      grep -Ev '^(arbitrary|libfuzzer-sys|portcullis-fuzz) ' || true)"
    if [ -n "$drift" ]; then
      stale="versions differ from the root Cargo.lock: $(echo "$drift" | tr '\n' ',' | sed 's/,$//')"
    fi
  fi
  if [ -z "$stale" ]; then
    echo "fuzz/Cargo.lock matches the root Cargo.lock"
    return 0
  fi
  echo "WARNING: fuzz/Cargo.lock is stale ($stale); re-deriving it from Cargo.lock. Commit the result."
  local libfuzzer
  libfuzzer="$(lock_entries fuzz/Cargo.lock | grep -E '^(arbitrary|libfuzzer-sys) ' || true)"
  cp Cargo.lock fuzz/Cargo.lock
  cargo fetch --manifest-path fuzz/Cargo.toml
  # Keep the fuzzing harness's own versions where they still fit.
  while read -r name version; do
    [ -n "$name" ] || continue
    cargo update --manifest-path fuzz/Cargo.toml -p "$name" --precise "$version" >/dev/null 2>&1 || true
  done <<<"$libfuzzer"
}

# "name version" for every package in a Cargo.lock, sorted.
lock_entries() {
  awk '/^name = /{gsub(/"/,"",$3); n=$3} /^version = /{gsub(/"/,"",$3); print n" "$3}' "$1" | sort -u
}

build_targets() {
  cargo fuzz build "${build_flags[@]}"
  local target
  for target in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$target" ]; then
      echo "no fuzz target binary at $bin_dir/$target (unknown target \`$target\`?)"
      return 1
    fi
  done
}

# Fuzzes one target; libFuzzer's output goes to $out/logs/<target>.log.
fuzz_one() {
  local target="$1"
  local corpus="$out/corpus/$target" artifacts="$out/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  # Seeds in, never new findings out: only the copy grows.
  cp -p "fuzz/corpus/$target/"* "$corpus/"
  "$bin_dir/$target" "$corpus" \
    -max_total_time="$FUZZ_SECONDS" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -max_len=4096 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts" \
    >"$out/logs/$target.log" 2>&1
}

report_one() {
  local target="$1" status="$2" log="$out/logs/$1.log"
  local runs execs cov corp
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  execs="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
  corp="$(grep -Eo 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
  if [ "$status" -eq 0 ]; then
    printf '%-20s ok      %10s runs  %8s exec/s  cov %5s  corpus %5s\n' \
      "$target" "${runs:-?}" "${execs:-?}" "${cov:-?}" "${corp:-?}"
    return 0
  fi
  printf '%-20s FAILED  (libFuzzer exit %s)\n' "$target" "$status"
  echo "----- what failed (full output: $log)"
  # The panic message (a broken property says which), then libFuzzer's verdict.
  grep -m1 -A6 "panicked at" "$log" || true
  grep -E "^==[0-9]+== ERROR|^SUMMARY|^MS: |Test unit written|^Base64" "$log" || tail -n 20 "$log"
  echo "-----"
  local artifact
  artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
  if [ -n "$artifact" ]; then
    echo "crashing input: $artifact"
    echo "reproduce:      $bin_dir/$target $artifact"
    echo "           or:  cargo fuzz run ${build_flags[*]} $target $artifact"
  else
    echo "no crashing input was written; see $log"
  fi
  return 1
}

fuzz_all() {
  mkdir -p "$out/logs"
  local -a pids=() names=()
  local target failed=0
  for target in "${targets[@]}"; do
    # Wait for a free slot.
    while [ "${#pids[@]}" -ge "$FUZZ_JOBS" ]; do
      wait_first pids names || failed=1
    done
    echo "fuzzing $target for ${FUZZ_SECONDS} s (log: target/fuzz/logs/$target.log)"
    fuzz_one "$target" &
    pids+=("$!")
    names+=("$target")
  done
  while [ "${#pids[@]}" -gt 0 ]; do
    wait_first pids names || failed=1
  done
  return "$failed"
}

# Waits for the oldest running fuzzer, reports it and drops it from the lists.
wait_first() {
  local -n _pids="$1" _names="$2"
  local status=0
  wait "${_pids[0]}" || status=$?
  local name="${_names[0]}"
  _pids=("${_pids[@]:1}")
  _names=("${_names[@]:1}")
  report_one "$name" "$status"
}

echo "fuzz: targets ${targets[*]}, ${FUZZ_SECONDS} s each, ${FUZZ_JOBS} at a time"
step "install cargo-fuzz ${CARGO_FUZZ_VERSION}" install_cargo_fuzz
step "check fuzz/Cargo.lock" sync_lock
step "build fuzz targets (release, debug assertions, no sanitizer)" build_targets
step "run fuzz targets" fuzz_all
echo "fuzz: no crashes"
