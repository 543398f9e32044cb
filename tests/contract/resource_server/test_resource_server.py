"""A resource server that knows nothing but gatehouse's URLs: it verifies tokens with
PyJWT's PyJWKClient (docs/resource-servers.md's snippet, verify_with_jwks.py) before and after
`gatehouse keys rotate`, and Authlib accepts the RFC 8414 metadata.

Environment: GATEHOUSE_URL (a service with JWT_ALGORITHM=EdDSA and JWKS_MAX_AGE_SECS=2),
GATEHOUSE_BIN and DATABASE_URL (to rotate its key)."""

import os
import subprocess
import time

import httpx
import jwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from verify_with_jwks import verify

URL = os.environ["GATEHOUSE_URL"]


def login() -> str:
    resp = httpx.post(f"{URL}/token", data={"username": "johndoe", "password": "secret"})
    resp.raise_for_status()
    return resp.json()["access_token"]


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def test_authlib_accepts_the_metadata():
    resp = httpx.get(f"{URL}/.well-known/oauth-authorization-server")
    resp.raise_for_status()
    metadata = AuthorizationServerMetadata(resp.json())
    metadata.validate()
    assert metadata["issuer"] == URL
    assert metadata["jwks_uri"] == f"{URL}/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["authorization_code", "password", "refresh_token"]


def test_a_token_verifies_with_only_the_jwks_url_before_and_after_a_rotation():
    # lifespan = the service's JWKS_MAX_AGE_SECS, as docs/resource-servers.md says.
    jwks = jwt.PyJWKClient(f"{URL}/.well-known/jwks.json", lifespan=2)
    old = login()
    assert verify(old, jwks)["sub"] == "johndoe"

    out = subprocess.run(
        [os.environ["GATEHOUSE_BIN"], "keys", "rotate"],
        env={
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "JWT_ALGORITHM": "EdDSA",
            "JWKS_MAX_AGE_SECS": "2",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    new_kid = out.stdout.split()[2]
    # The new key signs after the max-age (2 s) + 1 s, once the service has reloaded.
    deadline = time.monotonic() + 10
    new = login()
    while kid(new) != new_kid:
        assert time.monotonic() < deadline, "the rotated key never started signing"
        time.sleep(0.2)
        new = login()
    assert kid(new) != kid(old)
    # The same client has fetched the set again since: it knows the new key.
    assert verify(new, jwks)["sub"] == "johndoe"
    # The old token still verifies: its key is retired, still published.
    assert verify(old, jwks)["sub"] == "johndoe"


def test_a_forged_token_is_refused():
    jwks = jwt.PyJWKClient(f"{URL}/.well-known/jwks.json")
    token = login()
    header, payload, _ = token.split(".")
    with pytest.raises(jwt.InvalidTokenError):
        verify(f"{header}.{payload}.{'A' * 86}", jwks)
    # HS256 with the published public key as the secret.
    x = httpx.get(f"{URL}/.well-known/jwks.json").json()["keys"][0]["x"]
    forged = jwt.encode({"sub": "johndoe"}, x, algorithm="HS256", headers={"kid": kid(token)})
    with pytest.raises(jwt.InvalidTokenError):
        verify(forged, jwks)
