"""A stock OAuth2 client against Portcullis: requests-oauthlib, nothing bespoke.

Usage: oauth_client.py BASE_URL USERNAME PASSWORD [--ca-cert cert.pem]

Uses requests_oauthlib.OAuth2Session with oauthlib's LegacyApplicationClient
(the RFC 6749 §4.3 resource owner password credentials grant) exactly as its
documentation shows: fetch_token(token_url, username=, password=), a protected
call through the session, refresh_token(token_url), and a second call. Asserts
the 200s and that the refresh rotated both tokens. Exits non-zero on failure.
"""

import argparse
import sys

from oauthlib.oauth2 import LegacyApplicationClient
from requests_oauthlib import OAuth2Session

CLIENT_ID = "portcullis-ci"  # any public client id: the server ignores it


def fail(message: str) -> None:
    print(f"oauth-client: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--ca-cert", help="PEM file to verify the server's TLS certificate with")
    args = parser.parse_args()

    base = args.base_url.rstrip("/")
    token_url = f"{base}/auth/token"
    verify = args.ca_cert if args.ca_cert else True

    session = OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID))
    # verify= goes on every call: requests lets REQUESTS_CA_BUNDLE in the
    # environment override session.verify.

    print(f"oauth-client: fetch_token({token_url}) with the password grant")
    first = session.fetch_token(
        token_url=token_url, username=args.username, password=args.password, verify=verify
    )
    print(f"oauth-client: got token_type={first.get('token_type')} "
          f"expires_in={first.get('expires_in')} scope={first.get('scope')}")
    if not first.get("access_token") or not first.get("refresh_token"):
        fail(f"token response lacks access_token or refresh_token: keys {sorted(first)}")

    r = session.get(f"{base}/users/me", timeout=30, verify=verify)
    print(f"oauth-client: GET /users/me -> {r.status_code}")
    if r.status_code != 200:
        fail(f"GET /users/me answered {r.status_code}: {r.text}")
    if r.json().get("username") != args.username:
        fail(f"GET /users/me returned another user: {r.text}")

    access_1, refresh_1 = first["access_token"], first["refresh_token"]
    print(f"oauth-client: refresh_token({token_url})")
    second = session.refresh_token(token_url, verify=verify)
    if second.get("access_token") == access_1:
        fail("the refreshed access token equals the first one")
    if second.get("refresh_token") == refresh_1:
        fail("the refresh token was not rotated")

    r = session.get(f"{base}/users/me", timeout=30, verify=verify)
    print(f"oauth-client: GET /users/me with the refreshed token -> {r.status_code}")
    if r.status_code != 200:
        fail(f"GET /users/me with the refreshed token answered {r.status_code}: {r.text}")
    if r.json().get("username") != args.username:
        fail(f"GET /users/me returned another user: {r.text}")

    print("oauth-client: ok (password grant, protected call, refresh with rotation, protected call)")


if __name__ == "__main__":
    main()
