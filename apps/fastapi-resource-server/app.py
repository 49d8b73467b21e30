"""A resource server that trusts Portcullis tokens without sharing a secret.

Two routes, the two ways a service checks a Portcullis access token:

- ``GET /notes`` verifies the token locally: the signature against the key
  the token's ``kid`` names in Portcullis's JWKS (found through its RFC 8414
  metadata), and the RFC 9068 rules (``typ`` is ``at+jwt``; ``iss``, ``aud``
  and ``exp`` checked; ``sub``, ``iat``, ``jti`` present). No call to
  Portcullis per request, so a revoked token stays valid here until it
  expires (minutes).
- ``POST /transfers`` is revocation-sensitive: after the local check it asks
  Portcullis's RFC 7662 introspection endpoint, with an API key made for this
  service (scope ``introspect``), whether the token is still active. A token
  of a logged-out session is refused at once.

Configuration (environment):

- ``PORTCULLIS_URL``: Portcullis's public base URL, which is also its issuer.
- ``RESOURCE_AUDIENCE``: the audience Portcullis's tokens carry (``aud``).
- ``INTROSPECTION_API_KEY``: an API key with the ``introspect`` scope.
- ``PORTCULLIS_CA_FILE`` (optional): a CA bundle for a Portcullis on TLS
  with a private certificate.

Run: ``uvicorn app:app --port 9000`` with those variables set.
"""

import os
import ssl
from functools import lru_cache

import httpx
import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# The only algorithms this service accepts, whatever a token or a JWKS says.
# HS256 is excluded on purpose: a resource server never holds a shared secret.
ACCEPTED_ALGORITHMS = {"EdDSA", "ES256"}
# RFC 9068 §2.1: the media type of an access token, with or without the
# "application/" prefix, compared case-insensitively.
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}
# Seconds of clock difference tolerated between Portcullis and this host.
LEEWAY_SECONDS = 30
# The shortest time between two fetches of the key set caused by unknown
# kids.
JWKS_REFETCH_SECONDS = 5


class Settings:
    def __init__(self) -> None:
        self.portcullis_url = os.environ["PORTCULLIS_URL"].rstrip("/")
        self.audience = os.environ["RESOURCE_AUDIENCE"]
        self.introspection_api_key = os.environ["INTROSPECTION_API_KEY"]
        self.ca_file = os.environ.get("PORTCULLIS_CA_FILE")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


@lru_cache
def settings() -> Settings:
    return Settings()


@lru_cache
def metadata() -> dict:
    """Portcullis's RFC 8414 metadata, read once: the issuer and the URLs."""
    config = settings()
    response = httpx.get(
        f"{config.portcullis_url}/.well-known/oauth-authorization-server",
        verify=config.ssl_context(),
        timeout=10,
    )
    response.raise_for_status()
    document = response.json()
    if document["issuer"] != config.portcullis_url:
        raise RuntimeError(
            f"metadata issuer {document['issuer']!r} is not {config.portcullis_url!r}"
        )
    return document


@lru_cache
def jwks_client() -> jwt.PyJWKClient:
    # PyJWKClient caches the key set and fetches it again when a token names
    # a kid it does not hold: a key published ahead of its first use is
    # already cached, and one published since (a forced rotation) is fetched
    # once, at most every JWKS_REFETCH_SECONDS, so made-up kids cannot turn
    # into a flood of fetches. The cache lives no longer than Portcullis's
    # JWKS max-age (at most 300 s).
    return jwt.PyJWKClient(
        metadata()["jwks_uri"],
        cache_jwk_set=True,
        lifespan=300,
        cooldown_duration=JWKS_REFETCH_SECONDS,
        ssl_context=settings().ssl_context(),
        timeout=10,
    )


bearer = HTTPBearer(auto_error=False)


def unauthorized(description: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=description,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def verified_claims(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> dict:
    """The claims of a valid Portcullis access token, or 401."""
    if credentials is None:
        raise HTTPException(
            status_code=401, detail="a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    token = credentials.credentials
    try:
        header = jwt.get_unverified_header(token)
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise unauthorized("not an access token (typ)")
        signing_key = jwks_client().get_signing_key_from_jwt(token)
        # The key's algorithm, never the header's (RFC 8725 §3.1).
        algorithm = signing_key.algorithm_name
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise unauthorized("key algorithm not accepted")
        return jwt.decode(
            token,
            signing_key.key,
            algorithms=[algorithm],
            audience=settings().audience,
            issuer=metadata()["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except HTTPException:
        raise
    except (jwt.PyJWTError, jwt.PyJWKClientError) as error:
        raise unauthorized(f"invalid token: {type(error).__name__}") from None


def introspection(token: str) -> dict:
    """Portcullis's RFC 7662 answer for `token`."""
    config = settings()
    response = httpx.post(
        metadata()["introspection_endpoint"],
        data={"token": token, "token_type_hint": "access_token"},
        headers={"X-API-Key": config.introspection_api_key},
        verify=config.ssl_context(),
        timeout=10,
    )
    if response.status_code != 200:
        # Our own credential was refused: that is our fault, not the caller's.
        raise HTTPException(status_code=502, detail="introspection failed")
    return response.json()


app = FastAPI(title="Portcullis resource server example")


@app.get("/notes")
def notes(claims: dict = Depends(verified_claims)) -> dict:
    return {"owner": claims["sub"], "scope": claims.get("scope", ""), "notes": []}


@app.post("/transfers")
def transfer(
    claims: dict = Depends(verified_claims),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> dict:
    answer = introspection(credentials.credentials)
    if answer.get("active") is not True or answer.get("sub") != claims["sub"]:
        raise unauthorized("token is no longer active")
    return {"owner": claims["sub"], "accepted": True}
