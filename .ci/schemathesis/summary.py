"""Summarises one schemathesis run of .ci/stages/schemathesis.sh.

Usage: summary.py EVENTS.ndjson SERVER.log AUTH.log OPENAPI.json MAX_EXAMPLES

Prints, per operation, the test cases each phase generated; the server's
responses by status class (from its JSON access log); what the auth hook had
to do (logins, refreshes, repaired identities); and the schema-valid requests
that were rejected for one of the documented reasons in hooks.py.

Exits 1 when an operation of the document was not tested, or when the fuzzing
phase generated fewer than MAX_EXAMPLES cases for an operation that has any
input (parameters, a body or credentials): an operation without inputs has
exactly one possible request.
"""

from __future__ import annotations

import collections
import json
import sys

PHASES = ("examples", "coverage", "fuzzing", "stateful")


def cases_per_operation(path: str) -> tuple[dict[str, collections.Counter], int, int]:
    per_operation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures = 0
    filtered = 0
    with open(path, encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            name, body = next(iter(event.items()))
            if name != "ScenarioFinished":
                continue
            recorder = body.get("recorder", {})
            cases = recorder.get("cases", {})
            if body.get("phase") == "stateful":
                # A stateful scenario is a chain of operations; count each step
                # under its own operation.
                for case in cases.values():
                    value = case.get("value", {})
                    label = f"{value.get('method', '?')} {value.get('path', '?')}"
                    per_operation[label]["stateful"] += 1
            else:
                per_operation[recorder.get("label", "?")][body.get("phase", "?")] += len(cases)
            for checks in recorder.get("checks", {}).values():
                failures += sum(1 for check in checks if check.get("status") == "failure")
            filtered += len(recorder.get("filtered_failures", []) or [])
    return per_operation, failures, filtered


def statuses(path: str) -> collections.Counter:
    counter: collections.Counter = collections.Counter()
    with open(path, encoding="utf-8") as log:
        for line in log:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            status = record.get("status")
            if record.get("message") == "request" and isinstance(status, int):
                counter[f"{status // 100}xx"] += 1
    return counter


def auth_events(path: str) -> tuple[collections.Counter, collections.Counter]:
    events: collections.Counter = collections.Counter()
    rejections: collections.Counter = collections.Counter()
    try:
        with open(path, encoding="utf-8") as log:
            for line in log:
                parts = line.split(" ", 3)
                if len(parts) < 3:
                    continue
                events[parts[2]] += 1
                if parts[2] == "expected-rejection" and len(parts) == 4:
                    method, path_, *_ = parts[3].split(" ")
                    rejections[f"{method} {path_}"] += 1
    except FileNotFoundError:
        pass
    return events, rejections


def coverage_problems(per_operation: dict[str, collections.Counter], spec_path: str, wanted: int) -> list[str]:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    problems = []
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                continue
            label = f"{method.upper()} {path}"
            counts = per_operation.get(label)
            if not counts:
                problems.append(f"{label} was not tested")
                continue
            has_inputs = bool(
                operation.get("parameters") or item.get("parameters")
                or operation.get("requestBody") or operation.get("security")
            )
            if has_inputs and counts.get("fuzzing", 0) < wanted:
                problems.append(f"{label}: {counts.get('fuzzing', 0)} fuzzing examples, fewer than {wanted}")
    return problems


def main() -> None:
    events_path, server_log, auth_log, spec_path, wanted = sys.argv[1:6]
    per_operation, failures, _ = cases_per_operation(events_path)
    print(f"    {'operation':34} " + " ".join(f"{phase:>9}" for phase in PHASES))
    for label in sorted(per_operation, key=lambda l: (l.split(" ", 1)[-1], l)):
        counts = per_operation[label]
        print(f"    {label:34} " + " ".join(f"{counts.get(phase, 0):>9}" for phase in PHASES))
    total = sum(sum(counts.values()) for counts in per_operation.values())
    print(f"    {len(per_operation)} operations, {total} test cases, {failures} failed checks")
    by_class = statuses(server_log)
    print(
        "    server responses: "
        + ", ".join(f"{key} {by_class[key]}" for key in ("2xx", "3xx", "4xx", "5xx") if by_class[key])
    )
    events, rejections = auth_events(auth_log)
    print("    auth hook: " + (", ".join(f"{key} {value}" for key, value in sorted(events.items())) or "nothing"))
    for label, count in sorted(rejections.items()):
        print(f"    schema-valid request rejected for a documented reason (hooks.py): {label} x{count}")
    problems = coverage_problems(per_operation, spec_path, int(wanted))
    for problem in problems:
        print(f"    NOT COVERED: {problem}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
