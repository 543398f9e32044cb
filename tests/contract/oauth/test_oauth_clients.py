"""Real OAuth client libraries against a running gatehouse: the password grant, refresh
token rotation (automatic, in requests-oauthlib), reuse detection and revocation, every
error understood as an OAuth error."""

import os
import time

# The service under test listens on plain http on localhost; oauthlib insists on https
# unless told so.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import InvalidGrantError, InvalidScopeError, LegacyApplicationClient
from requests_oauthlib import OAuth2Session as LegacySession

BASE_URL = os.environ["GATEHOUSE_URL"]
TOKEN_URL = f"{BASE_URL}/token"
REVOKE_URL = f"{BASE_URL}/revoke"
ME_URL = f"{BASE_URL}/users/me/"
CLIENT_ID = "contract-checks"


def authlib_session():
    # A public client: gatehouse asks no client authentication.
    return OAuth2Session(client_id=CLIENT_ID, token_endpoint_auth_method="none")


def test_authlib_logs_in_refreshes_and_detects_a_reused_refresh_token():
    client = authlib_session()
    token = client.fetch_token(TOKEN_URL, username="johndoe", password="secret")
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 1800
    assert len(token["refresh_token"]) == 83  # session id, rotation count and a 256-bit MAC
    assert client.get(ME_URL).json()["username"] == "johndoe"

    first = token["refresh_token"]
    refreshed = client.refresh_token(TOKEN_URL, refresh_token=first)
    assert refreshed["refresh_token"] != first
    assert client.get(ME_URL).status_code == 200

    with pytest.raises(OAuthError) as reused:
        authlib_session().refresh_token(TOKEN_URL, refresh_token=first)
    assert reused.value.error == "invalid_grant"
    assert "already used" in reused.value.description
    # The whole session ended: the refreshed access token and refresh token too.
    assert client.get(ME_URL).status_code == 401
    with pytest.raises(OAuthError) as ended:
        authlib_session().refresh_token(TOKEN_URL, refresh_token=refreshed["refresh_token"])
    assert ended.value.error == "invalid_grant"


def test_authlib_narrows_the_scope_on_refresh_and_is_refused_a_wider_one():
    client = authlib_session()
    token = client.fetch_token(TOKEN_URL, username="johndoe", password="secret", scope="me items")
    with pytest.raises(OAuthError) as wider:
        client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"], scope="me admin")
    assert wider.value.error == "invalid_scope"
    narrower = client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"], scope="me")
    assert narrower["scope"] == "me"


def test_authlib_revokes_a_refresh_token_and_the_session_ends():
    client = authlib_session()
    token = client.fetch_token(TOKEN_URL, username="johndoe", password="secret")
    resp = client.revoke_token(REVOKE_URL, token=token["refresh_token"], token_type_hint="refresh_token")
    assert resp.status_code == 200
    assert resp.content == b""
    assert client.get(ME_URL).status_code == 401
    with pytest.raises(OAuthError) as revoked:
        client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert revoked.value.error == "invalid_grant"
    # Unknown tokens: the same answer (RFC 7009 §2.2).
    assert client.revoke_token(REVOKE_URL, token="unknown").status_code == 200


def test_authlib_revokes_an_access_token():
    client = authlib_session()
    token = client.fetch_token(TOKEN_URL, username="johndoe", password="secret")
    resp = client.revoke_token(REVOKE_URL, token=token["access_token"], token_type_hint="access_token")
    assert resp.status_code == 200
    assert client.get(ME_URL).status_code == 401


def test_requests_oauthlib_refreshes_automatically_when_the_access_token_expires():
    updates = []
    client = LegacySession(
        client=LegacyApplicationClient(client_id=CLIENT_ID),
        auto_refresh_url=TOKEN_URL,
        auto_refresh_kwargs={"client_id": CLIENT_ID},
        token_updater=updates.append,
    )
    token = client.fetch_token(token_url=TOKEN_URL, username="johndoe", password="secret", include_client_id=True)
    first = token["refresh_token"]
    assert client.get(ME_URL).json()["username"] == "johndoe"

    # As if the 30 minutes had passed: the next request refreshes first.
    client.token = {**client.token, "expires_at": time.time() - 60}
    assert client.get(ME_URL).status_code == 200
    assert len(updates) == 1
    assert updates[0]["refresh_token"] != first

    with pytest.raises(InvalidGrantError) as reused:
        LegacySession(client=LegacyApplicationClient(client_id=CLIENT_ID)).refresh_token(
            TOKEN_URL, refresh_token=first, client_id=CLIENT_ID
        )
    assert reused.value.error == "invalid_grant"
    assert client.get(ME_URL).status_code == 401


def test_requests_oauthlib_understands_a_refused_scope():
    client = LegacySession(client=LegacyApplicationClient(client_id=CLIENT_ID, scope=["me"]))
    token = client.fetch_token(token_url=TOKEN_URL, username="johndoe", password="secret", include_client_id=True)
    assert token["scope"] == ["me"]
    client.scope = ["me", "admin"]
    with pytest.raises(InvalidScopeError) as wider:
        client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"], client_id=CLIENT_ID)
    assert wider.value.error == "invalid_scope"


def test_revoke_without_a_token_is_an_oauth_invalid_request():
    resp = requests.post(REVOKE_URL, data={"token_type_hint": "access_token"}, timeout=10)
    assert resp.status_code == 400
    assert resp.headers["cache-control"] == "no-store"
    assert resp.json() == {"error": "invalid_request", "error_description": "The token parameter is missing"}
