"""Smoke test of the Python client that openapi-python-client generates from
the live /openapi.json (package `portcullis_client`, installed by
.ci/stages/generated-client.sh).

Usage: generated_client_smoke.py BASE_URL

Only the generated functions and models are used: register, log in both ways
(POST /auth/token form and POST /auth/login JSON), GET /users/me with each
bearer token. Every response must parse into the declared model; the clients
raise on any status the document does not declare. Exits non-zero on failure.
"""

import sys
import uuid

from portcullis_client import AuthenticatedClient, Client
from portcullis_client.api.auth import login, register, token
from portcullis_client.api.users import get_me
from portcullis_client.models import (
    LoginRequest,
    RegisterRequest,
    TokenRequest,
    TokenResponse,
    User,
)


def fail(message: str) -> None:
    print(f"generated-client: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(response, status: int, model: type, what: str):
    if response.status_code != status:
        fail(f"{what} answered {int(response.status_code)}, wanted {status}: "
             f"{response.content.decode(errors='replace')}")
    if not isinstance(response.parsed, model):
        fail(f"{what}: the generated client parsed {type(response.parsed).__name__}, "
             f"wanted {model.__name__}")
    print(f"generated-client: {what} -> {int(response.status_code)} {model.__name__}")
    return response.parsed


def main() -> None:
    base = sys.argv[1].rstrip("/")
    username = f"gen-{uuid.uuid4().hex[:12]}"
    password = "amber lantern over seven quiet hills"

    anonymous = Client(base_url=base, raise_on_unexpected_status=True, timeout=30.0)

    user = expect(
        register.sync_detailed(
            client=anonymous,
            body=RegisterRequest(username=username, email=f"{username}@example.com",
                                 password=password, full_name="Generated Client"),
        ),
        201, User, "register.sync_detailed (POST /auth/register)",
    )
    if user.username != username:
        fail(f"registered user is {user.username!r}, wanted {username!r}")

    form = expect(
        token.sync_detailed(
            client=anonymous,
            body=TokenRequest(grant_type="password", username=username, password=password),
        ),
        200, TokenResponse, "token.sync_detailed (POST /auth/token, form)",
    )
    as_json = expect(
        login.sync_detailed(client=anonymous,
                            body=LoginRequest(username=username, password=password)),
        200, TokenResponse, "login.sync_detailed (POST /auth/login, JSON)",
    )

    for label, grant in (("form token", form), ("JSON login token", as_json)):
        if grant.token_type.lower() != "bearer":
            fail(f"{label}: token_type {grant.token_type!r}")
        authed = AuthenticatedClient(base_url=base, token=grant.access_token,
                                     raise_on_unexpected_status=True, timeout=30.0)
        me = expect(get_me.sync_detailed(client=authed), 200, User,
                    f"get_me.sync_detailed (GET /users/me) with the {label}")
        if me.username != username or str(me.id) != str(user.id):
            fail(f"GET /users/me returned {me.username!r} ({me.id}), wanted {username!r} ({user.id})")

    print(f"generated-client: ok (user {username})")


if __name__ == "__main__":
    main()
