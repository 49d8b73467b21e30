"""Crash durability load: acknowledged registrations must survive kill -9.

Standard library only (http.client, threads). Two steps, run by
.ci/stages/crash-durability.sh around a server restart:

  crash_durability.py register BASE_URL SERVER_PID OUT.json [--count N]
      [--concurrency C] [--kill-after K]
    Fires N registrations through a pool of C concurrent connections and
    SIGKILLs SERVER_PID as soon as K of them have been answered, while the
    rest are in flight. Writes every 201 (username, password, id) to OUT.json
    with counts of all outcomes.

  crash_durability.py verify BASE_URL OUT.json
    Logs in (POST /auth/token, password grant) as every user that got 201;
    each must get 200. 503 (the hashing queue's back-pressure) is retried
    after its Retry-After. Exits 1 if any acknowledged user is lost.
"""

import argparse
import collections
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor


def request(base: str, method: str, path: str, body: bytes, content_type: str, timeout: float = 60.0):
    """One request on a fresh connection: (status, headers, body bytes)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": content_type, "Connection": "close"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def register(args) -> None:
    run = uuid.uuid4().hex[:6]
    lock = threading.Lock()
    answered = 0
    in_flight = 0
    killed_at = None  # answers so far when SIGKILL was sent
    cut_off = 0       # requests in flight at that moment
    created = []
    outcomes = collections.Counter()
    started = time.monotonic()

    def one(i: int) -> None:
        nonlocal answered, in_flight, killed_at, cut_off
        username = f"crash-{run}-{i:04d}"
        password = f"durable write {uuid.uuid4().hex} survives"
        body = json.dumps({"username": username, "email": f"{username}@example.com",
                           "password": password}).encode()
        with lock:
            in_flight += 1
        try:
            status, _, payload = request(args.base_url, "POST", "/auth/register", body,
                                         "application/json")
        except (OSError, http.client.HTTPException) as e:
            # Refused after the kill, or cut off while in flight: unacknowledged.
            with lock:
                in_flight -= 1
                outcomes[f"no answer ({type(e).__name__})"] += 1
            return
        with lock:
            in_flight -= 1
            outcomes[str(status)] += 1
            if status == 201:
                created.append({"username": username, "password": password,
                                "id": json.loads(payload)["id"]})
            answered += 1
            if answered == args.kill_after and killed_at is None:
                os.kill(args.server_pid, signal.SIGKILL)
                killed_at = answered
                cut_off = in_flight
                print(f"crash-durability: SIGKILL sent to server pid {args.server_pid} after "
                      f"{answered} answers ({len(created)} of them 201), with {in_flight} requests "
                      f"in flight, {time.monotonic() - started:.1f} s into the load", flush=True)

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(one, range(args.count)))

    if killed_at is None:
        print(f"crash-durability: FAIL: only {answered} of {args.count} registrations were answered, "
              f"the kill point ({args.kill_after}) was never reached", file=sys.stderr)
        sys.exit(1)
    if cut_off == 0 or len(created) < args.min_created:
        print(f"crash-durability: FAIL: the crash proves nothing: {cut_off} requests in flight at the "
              f"kill, {len(created)} registrations acknowledged (want >= 1 and >= {args.min_created}); "
              f"outcomes {dict(outcomes)}", file=sys.stderr)
        sys.exit(1)
    summary = {"sent": args.count, "answered_before_kill": killed_at,
               "in_flight_at_kill": cut_off, "created": created,
               "outcomes": dict(sorted(outcomes.items()))}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(f"crash-durability: sent {args.count}, outcomes {summary['outcomes']}, "
          f"201s recorded {len(created)}", flush=True)


def verify(args) -> None:
    with open(args.out, encoding="utf-8") as f:
        summary = json.load(f)
    created = summary["created"]
    lost = []
    lock = threading.Lock()

    def login(user: dict) -> None:
        body = urllib.parse.urlencode({"grant_type": "password", "username": user["username"],
                                       "password": user["password"]}).encode()
        for _attempt in range(30):
            status, headers, payload = request(args.base_url, "POST", "/auth/token", body,
                                               "application/x-www-form-urlencoded")
            if status != 503:
                break
            time.sleep(float(headers.get("retry-after", headers.get("Retry-After", "1"))))
        if status != 200:
            with lock:
                lost.append((user["username"], status, payload.decode(errors="replace")[:200]))

    # A few at a time: each login is one production-cost argon2id verification.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(login, created))

    print(f"crash-durability: sent {summary['sent']}, 201 {len(created)}, "
          f"logged in {len(created) - len(lost)}, lost {len(lost)}")
    if lost:
        for username, status, payload in lost[:20]:
            print(f"crash-durability: LOST {username}: POST /auth/token -> {status} {payload}",
                  file=sys.stderr)
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="step", required=True)
    r = sub.add_parser("register")
    r.add_argument("base_url")
    r.add_argument("server_pid", type=int)
    r.add_argument("out")
    r.add_argument("--count", type=int, default=600)
    r.add_argument("--concurrency", type=int, default=64)
    r.add_argument("--kill-after", type=int, default=None,
                   help="answers before SIGKILL (default: half of --count)")
    r.add_argument("--min-created", type=int, default=50,
                   help="fewer 201s than this make the run meaningless: fail")
    v = sub.add_parser("verify")
    v.add_argument("base_url")
    v.add_argument("out")
    args = parser.parse_args()
    if args.step == "register":
        if args.kill_after is None:
            args.kill_after = args.count // 2
        register(args)
    else:
        verify(args)


if __name__ == "__main__":
    main()
