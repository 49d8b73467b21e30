"""Schemathesis hooks for the Portcullis CI stage (`.ci/stages/schemathesis.sh`).

Loaded with `SCHEMATHESIS_HOOKS=.ci/schemathesis/hooks.py`. It registers one
auth provider whose credential depends on `PORTCULLIS_ST_AUTH`:

- `oauth2`: the OAuth2 password flow. The provider POSTs
  `grant_type=password` to `/auth/token` and sends `Authorization: Bearer`.
  When a token has to be replaced it first tries `grant_type=refresh_token`
  with the refresh token it holds (rotation), and falls back to the password
  grant when the session is gone.
- `apikey`: an API key (`X-API-Key`), created with `POST /users/me/api-keys`
  after a password-grant login.

Two identities are used, so that the fuzzer cannot take away the one the run
depends on:

- `/admin/*` operations and `POST /auth/introspect` run as an admin account
  made with the CLI (`portcullis user create --admin`), with the
  `profile admin introspect` scopes (introspection needs `introspect`, which
  only admins can hold);
- every other protected operation runs as an ordinary account registered with
  `POST /auth/register`.

Fuzzed operations legitimately end the credential in use: `POST
/auth/logout`, `POST /auth/revoke` (with a token taken from a response),
`DELETE /users/me/sessions/{id}`, `DELETE /users/me/api-keys/{id}`, and the
admin API disabling, demoting or deleting a user whose id it learnt from a
response (the ordinary account, or the admin account once another admin was
made). Schemathesis's reactive re-authentication (`retry_on`) invalidates the
cached credential on 401/403 and replays the request once; `get` below then
repairs the identity: it re-logs-in, registers a new ordinary account when the
old one is disabled or deleted, and re-enables / re-promotes / re-creates the
admin with the CLI, which works on the running server's data directory (SQLite
WAL). Every repair is written to `$PORTCULLIS_ST_LOG`.

Environment: `SERVER_URL`, `PORTCULLIS_ST_AUTH`, `PORTCULLIS_BIN`,
`PORTCULLIS_DATA_DIR` (the server's), `PORTCULLIS_ST_LOG`.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import threading
import time

import requests
import schemathesis

BASE_URL = os.environ["SERVER_URL"].rstrip("/")
MODE = os.environ.get("PORTCULLIS_ST_AUTH", "oauth2")
BINARY = os.environ.get("PORTCULLIS_BIN", "target/release/portcullis")
LOG_PATH = os.environ.get("PORTCULLIS_ST_LOG")
# Each run gets its own account names, so the two runs could share a server.
RUN_TAG = secrets.token_hex(3)
TIMEOUT = 30

if MODE not in ("oauth2", "apikey"):
    raise RuntimeError(f"PORTCULLIS_ST_AUTH must be `oauth2` or `apikey`, not {MODE!r}")

_log_lock = threading.Lock()
_counter = itertools.count(1)
STATS: dict[str, int] = {}


def log(event: str, detail: str = "") -> None:
    with _log_lock:
        STATS[event] = STATS.get(event, 0) + 1
        if LOG_PATH:
            with open(LOG_PATH, "a", encoding="utf-8") as handle:
                flat = " | ".join(detail.splitlines())
                handle.write(f"{time.strftime('%H:%M:%S')} {MODE} {event} {flat}\n")


def new_password() -> str:
    # 32 random base64url characters: long enough, never on the common list,
    # and (being random) never containing the username.
    return secrets.token_urlsafe(24)


class Identity:
    """One account the run authenticates as, and how to (re)make it."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.username = ""
        self.password = ""
        self.refresh_token: str | None = None
        self.lock = threading.Lock()

    # --- account management -------------------------------------------------

    def create(self) -> None:
        n = next(_counter)
        self.username = f"st-{self.role}-{RUN_TAG}-{n}"
        self.password = new_password()
        self.refresh_token = None
        email = f"{self.username}@example.com"
        if self.role == "admin":
            # The only way to make an admin (the API never grants the role on
            # registration); safe while the server runs.
            cli("user", "create", "--username", self.username, "--email", email,
                "--admin", "--password-stdin", stdin=self.password + "\n")
        else:
            response = requests.post(
                f"{BASE_URL}/auth/register",
                json={"username": self.username, "email": email, "password": self.password},
                timeout=TIMEOUT,
            )
            if response.status_code != 201:
                raise RuntimeError(f"registration failed: {response.status_code} {response.text}")
        log("account-created", self.username)

    def repair(self) -> None:
        """The password grant failed or lacked a scope: the account was
        disabled, demoted or deleted by a fuzzed operation."""
        if self.role == "admin":
            ok = cli_ok("user", "enable", self.username) and cli_ok(
                "user", "set-role", self.username, "--role", "admin"
            )
            if ok:
                log("admin-repaired", self.username)
                return
        # Deleted (or an ordinary account that was disabled: a new one is
        # cheaper than an admin round-trip and keeps the old state for the fuzzer).
        self.create()

    # --- tokens -------------------------------------------------------------

    def scopes(self) -> str:
        return "profile admin introspect" if self.role == "admin" else "profile"

    def password_grant(self) -> dict | None:
        response = requests.post(
            f"{BASE_URL}/auth/token",
            data={
                "grant_type": "password",
                "username": self.username,
                "password": self.password,
                "scope": self.scopes(),
            },
            timeout=TIMEOUT,
        )
        if response.status_code == 200:
            return response.json()
        log("login-refused", f"{self.username} {response.status_code} {response.text}")
        return None

    def refresh_grant(self) -> dict | None:
        if not self.refresh_token:
            return None
        response = requests.post(
            f"{BASE_URL}/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
            timeout=TIMEOUT,
        )
        self.refresh_token = None
        if response.status_code == 200:
            log("refreshed", self.username)
            return response.json()
        return None

    def usable(self, grant: dict) -> bool:
        """Whether the grant works for what this identity is for. A refresh
        can succeed for a session whose user was since demoted, so ask."""
        wanted = set(self.scopes().split())
        if not wanted <= set(grant.get("scope", "").split()):
            return False
        path = "/admin/users?limit=1" if self.role == "admin" else "/users/me"
        check = requests.get(
            f"{BASE_URL}{path}",
            headers={"Authorization": f"Bearer {grant['access_token']}"},
            timeout=TIMEOUT,
        )
        return check.status_code == 200

    def fresh_grant(self) -> dict:
        if not self.username:
            self.create()
        grant = self.refresh_grant()
        if grant is not None and self.usable(grant):
            self.refresh_token = grant["refresh_token"]
            return grant
        for _ in range(3):
            grant = self.password_grant()
            if grant is not None and self.usable(grant):
                self.refresh_token = grant["refresh_token"]
                log("logged-in", self.username)
                return grant
            self.repair()
        raise RuntimeError(f"cannot authenticate the {self.role} identity")

    def credential(self) -> str:
        with self.lock:
            grant = self.fresh_grant()
            if MODE == "oauth2":
                return grant["access_token"]
            # A fresh key each time one is needed: the old one may have been
            # revoked by `DELETE /users/me/api-keys/{id}`.
            response = requests.post(
                f"{BASE_URL}/users/me/api-keys",
                headers={"Authorization": f"Bearer {grant['access_token']}"},
                json={"name": f"schemathesis {self.role}", "scopes": self.scopes().split()},
                timeout=TIMEOUT,
            )
            if response.status_code != 201:
                raise RuntimeError(f"API key creation failed: {response.status_code} {response.text}")
            log("api-key-created", self.username)
            return response.json()["key"]


def cli(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(
        [BINARY, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`portcullis {' '.join(args[:2])}` failed: {result.stderr.strip()}")


def cli_ok(*args: str) -> bool:
    try:
        cli(*args)
    except RuntimeError as error:
        log("cli-failed", str(error))
        return False
    return True


IDENTITIES = {"admin": Identity("admin"), "user": Identity("user")}


def identity_for(context) -> str:
    path = context.operation.path
    return "admin" if path.startswith("/admin/") or path == "/auth/introspect" else "user"


@schemathesis.auth(
    # Access tokens live 900 s; renew well before, through the refresh grant.
    refresh_interval=600,
    cache_by_key=lambda case, context: identity_for(context),
    # 401: the credential was ended (logout, revocation, disabled, deleted);
    # 403: the admin identity was demoted. Either way: repair and replay.
    retry_on=[401, 403],
).apply_to(
    # The operations that declare security requirements; the OAuth
    # endpoints, registration and the `/.well-known` documents take none.
    path_regex=r"^/(users|admin)/|^/auth/(logout|introspect)$",
)
class PortcullisAuth:
    def get(self, case, context):
        return IDENTITIES[identity_for(context)].credential()

    def set(self, case, data, context):
        headers = dict(case.headers or {})
        # Exactly one credential (two are a 400): drop whatever the other
        # scheme might have put there.
        for name in list(headers):
            if name.lower() in ("authorization", "x-api-key"):
                del headers[name]
        if MODE == "oauth2":
            headers["Authorization"] = f"Bearer {data}"
        else:
            headers["X-API-Key"] = data
        case.headers = headers


# --- Narrow exceptions to `positive_data_acceptance` (ST202) -------------------
#
# A JSON Schema can say what a well-formed request looks like, not which
# account or password exists, nor rules that relate two fields. These are the
# only schema-valid requests Portcullis may refuse, each recognised by the
# exact status, field and message the contract prescribes for it; every other
# rejection of schema-valid data (and every other check) still fails the run.

PASSWORD_RULES = (
    "uses too few different characters",
    "is too easy to guess: more than half of it is one character repeated "
    "or a run of consecutive characters",
    "is too easy to guess: it is a short pattern repeated",
    "is too common: it appears on a list of frequently used passwords",
    "must not contain the username",
    "must not contain the email address's local part",
)

# operation label -> (status, predicate on the response body)
POSITIVE_DATA_EXCEPTIONS = {
    # A listing cursor is opaque: only a `Link` this server sent carries a
    # real one, and no schema can describe which strings those are.
    "GET /users/me/api-keys": (
        422,
        lambda body: _only_errors(body, {"cursor": ("is not a cursor returned by this endpoint",)}),
    ),
    # Changing the email re-authenticates: the schema cannot say that
    # `current_password` is required exactly when `email` is present, nor
    # know the account's password.
    "PATCH /users/me": (
        422,
        lambda body: _only_errors(
            body, {"current_password": ("is required to change the email", "is incorrect")}
        ),
    ),
    "GET /users/me/sessions": (
        422,
        lambda body: _only_errors(body, {"cursor": ("is not a cursor returned by this endpoint",)}),
    ),
    # The admin's user cursor is opaque too (issue 11): a string of the
    # cursor alphabet that this server did not make is refused the same way.
    "GET /admin/users": (
        422,
        lambda body: _only_errors(body, {"cursor": ("is not a cursor returned by this endpoint",)}),
    ),
    # The audit listings' cursors are opaque in the same way. The admin's
    # filters also relate to what exists and to each other: `event` must
    # name an event the log knows (the schema allows any such-shaped name,
    # so that a name added later is not a breaking change), and `until`
    # must not be before `since`.
    "GET /users/me/events": (
        422,
        lambda body: _only_errors(body, {"cursor": ("is not a cursor returned by this endpoint",)}),
    ),
    "GET /admin/audit": (
        422,
        lambda body: _only_errors(
            body,
            {
                "cursor": ("is not a cursor returned by this endpoint",),
                "event": ("is not an audit event name",),
                "until": ("must not be before since",),
            },
        ),
    ),
    # A server whose access tokens are signed with the HS256 secret (the
    # fixed keys of `PORTCULLIS_JWT_SECRET`, or the v1 key file) keeps no
    # keys in the store, so there is nothing to rotate: 409 with this exact
    # problem type. Whether the keys are stored is the server's
    # configuration, which no schema can express. A server with stored keys
    # answers 200 and never matches this.
    "POST /admin/keys/rotate": (
        409,
        lambda body: body.get("type") == "urn:portcullis:problem:keys-fixed-by-secret",
    ),
    # Credentials of an account that does not exist (the fuzzer cannot know a
    # real one): RFC 6749 §5.2 `invalid_grant`. Schemathesis already exempts
    # the OAuth2 `tokenUrl` (/auth/token) this way; /auth/login is its JSON twin.
    "POST /auth/login": (400, lambda body: body.get("error") == "invalid_grant"),
    # NIST SP 800-63B-4 rules the schema cannot express: the blocklist, and a
    # password containing the username or the email's local part.
    "POST /auth/register": (
        422,
        lambda body: _only_errors(body, {"password": PASSWORD_RULES}),
    ),
    # A wrong current password, or a new one breaking the rules above.
    "POST /users/me/password": (
        422,
        lambda body: _only_errors(
            body, {"current_password": ("is incorrect",), "new_password": PASSWORD_RULES}
        ),
    ),
    # A wrong password (deleting an account re-verifies it).
    "DELETE /users/me": (422, lambda body: _only_errors(body, {"password": ("is incorrect",)})),
    # `["admin"]` is schema-valid, but the ordinary account's credential only
    # carries `profile`, and a key never gets more than its creator.
    "POST /users/me/api-keys": (
        422,
        lambda body: _only_errors(
            body,
            {"scopes": ("must not exceed the scopes of the credential creating the key",)},
        ),
    ),
}


def _only_errors(body: dict, allowed: dict[str, tuple[str, ...]]) -> bool:
    errors = body.get("errors")
    if body.get("status") != 422 or not isinstance(errors, list) or not errors:
        return False
    return all(
        isinstance(error, dict) and error.get("message") in allowed.get(error.get("field"), ())
        for error in errors
    )


# Format characters above U+FFFF (general category Cf) that `full_name`
# refuses. The document's `pattern` cannot name them: ECMA-262 without the
# `u` flag has no escape beyond U+FFFF. A 422 on `full_name` is expected
# exactly when the generated name holds one of them.
ASTRAL_FORMAT_CHARACTERS = (
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
FULL_NAME_REFUSAL = "must not contain invisible, formatting or line-separator characters"


def _holds_astral_format_character(case) -> bool:
    name = case.body.get("full_name") if isinstance(case.body, dict) else None
    return isinstance(name, str) and any(
        start <= ord(c) <= end for c in name for start, end in ASTRAL_FORMAT_CHARACTERS
    )


# Every request target (path and query) over 8 KiB is refused with 414
# before any operation sees it (middleware.rs, MAX_URI_BYTES). The document
# cannot state a limit on the whole target, only per parameter, so a
# fuzzed query whose parameters are each too long (and so schema-violating)
# can meet the 414 first: an expected rejection, not an undocumented status.
URI_TOO_LONG_DETAIL = "the request target must not exceed 8 KiB"


def _is_uri_too_long(response) -> bool:
    if response.status_code != 414:
        return False
    try:
        body = response.json()
    except Exception:
        return False
    return isinstance(body, dict) and body.get("detail") == URI_TOO_LONG_DETAIL


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) in ("ST201", "ST103") and _is_uri_too_long(response):
        log("expected-rejection", f"{case.operation.label} 414 request target over 8 KiB")
        return False
    if getattr(failure, "code", None) != "ST202":
        return True
    if response.status_code == 422 and _holds_astral_format_character(case):
        try:
            body = response.json()
        except Exception:
            return True
        if isinstance(body, dict) and _only_errors(body, {"full_name": (FULL_NAME_REFUSAL,)}):
            log("expected-rejection", f"{case.operation.label} 422 full_name beyond U+FFFF")
            return False
    exception = POSITIVE_DATA_EXCEPTIONS.get(case.operation.label)
    if exception is None or response.status_code != exception[0]:
        return True
    try:
        body = response.json()
    except Exception:
        return True
    if isinstance(body, dict) and exception[1](body):
        log("expected-rejection", f"{case.operation.label} {response.status_code} {body.get('errors') or body.get('error')}")
        return False
    return True
