"""Sign in with gatehouse through Authlib, as a relying party would use it: discovery,
the authorization-code flow with PKCE (S256), the id token validated with joserfc against
the JWKS and Authlib's OpenID Connect claims (iss, aud, nonce, at_hash), and /userinfo;
public and confidential clients (client_secret_basic, client_secret_post)."""

import os

# The service listens on plain http on 127.0.0.1: Authlib insists on https unless told so.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sign_in import (
    ALGORITHM,
    BASE_URL,
    ME_URL,
    REDIRECT_URI,
    Browser,
    discovery,
    left_half_hash,
    query_of,
    register_client,
)

METADATA = discovery()


class EdDSAProviderMetadata(OpenIDProviderMetadata):
    """OpenID Connect Discovery §3 wants RS256 among the id token algorithms; a service
    under JWT_ALGORITHM=EdDSA signs with EdDSA alone, and says so."""

    def validate_id_token_signing_alg_values_supported(self):
        assert self["id_token_signing_alg_values_supported"] == ["EdDSA"]


def test_the_discovery_document_is_valid_openid_provider_metadata():
    rules = OpenIDProviderMetadata if ALGORITHM == "RS256" else EdDSAProviderMetadata
    metadata = rules(METADATA)
    metadata.validate()
    assert metadata["issuer"] == BASE_URL
    assert metadata["authorization_endpoint"] == f"{BASE_URL}/authorize"
    assert metadata["token_endpoint"] == f"{BASE_URL}/token"
    assert metadata["userinfo_endpoint"] == f"{BASE_URL}/userinfo"
    assert metadata["end_session_endpoint"] == f"{BASE_URL}/logout"
    assert metadata["id_token_signing_alg_values_supported"] == [ALGORITHM]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "authorization_code" in metadata["grant_types_supported"]
    assert {"openid", "profile", "email"} <= set(metadata["scopes_supported"])
    assert metadata["authorization_response_iss_parameter_supported"] is True
    # The RFC 8414 document says the same.
    same = requests.get(f"{BASE_URL}/.well-known/oauth-authorization-server").json()
    assert same == METADATA
    keys = requests.get(metadata["jwks_uri"]).json()["keys"]
    assert keys and all(key["alg"] == ALGORITHM for key in keys), keys


def session(client, method="none"):
    return OAuth2Session(
        client_id=client["client_id"],
        client_secret=client.get("client_secret"),
        token_endpoint_auth_method=method,
        scope="openid profile email me",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )


def sign_in(client, browser, method="none", **params):
    """Authlib's authorization request, signed in on the login page by `browser`, and the
    code exchanged; the session, the token and the nonce sent."""
    oauth = session(client, method)
    verifier = generate_token(48)
    nonce = generate_token(16)
    url, state = oauth.create_authorization_url(
        METADATA["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
    )
    callback = browser.sign_in(url)
    back = query_of(callback)
    assert back["state"] == state
    assert back["iss"] == METADATA["issuer"]  # RFC 9207
    token = oauth.fetch_token(
        METADATA["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    return oauth, token, nonce


def validated_id_token(token, client_id, nonce):
    """The id token's claims, its signature checked against the JWKS and its claims with
    Authlib's OpenID Connect rules (iss, aud, exp, iat, nonce, azp, at_hash)."""
    keys = KeySet.import_key_set(requests.get(METADATA["jwks_uri"]).json())
    decoded = jwt.decode(
        token["id_token"], keys, registry=JWSRegistry(algorithms=[ALGORITHM], strict_check_header=False)
    )
    assert decoded.header["alg"] == ALGORITHM
    assert decoded.header["kid"] in {key.kid for key in keys}
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": METADATA["issuer"]},
            "aud": {"essential": True, "value": client_id},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)
    # Authlib checks at_hash only when present: it must be, and right for the algorithm.
    assert claims["at_hash"] == left_half_hash(token["access_token"])
    return claims


def test_a_public_first_party_client_signs_in_with_pkce_and_gets_a_valid_id_token():
    client = register_client("Authlib public")
    oauth, token, nonce = sign_in(client, Browser())
    assert token["token_type"] == "bearer"
    assert set(token["scope"].split()) == {"openid", "profile", "email", "me"}
    assert token["expires_in"] > 0 and token["refresh_token"]

    claims = validated_id_token(token, client["client_id"], nonce)
    assert claims["nonce"] == nonce
    assert claims["azp"] == client["client_id"]
    assert claims["amr"] == ["pwd"]
    assert claims["preferred_username"] == "johndoe"
    assert claims["name"] == "John Doe"
    assert claims["email"] == "johndoe@example.com"
    assert claims["email_verified"] is True

    info = oauth.get(METADATA["userinfo_endpoint"])
    assert info.status_code == 200, info.text
    assert info.json() == {
        "sub": claims["sub"],
        "name": "John Doe",
        "preferred_username": "johndoe",
        "email": "johndoe@example.com",
        "email_verified": True,
    }
    assert oauth.get(ME_URL).json()["username"] == "johndoe"
    # The refresh token works as a password login's does.
    refreshed = oauth.refresh_token(METADATA["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert oauth.get(ME_URL).status_code == 200


def test_the_userinfo_claims_follow_the_scopes_granted():
    client = register_client("Authlib openid only")
    oauth = session(client)
    oauth.scope = "openid"
    verifier, nonce = generate_token(48), generate_token(16)
    url, _ = oauth.create_authorization_url(
        METADATA["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    token = oauth.fetch_token(
        METADATA["token_endpoint"], authorization_response=Browser().sign_in(url), code_verifier=verifier
    )
    claims = validated_id_token(token, client["client_id"], nonce)
    assert "email" not in claims and "preferred_username" not in claims
    assert oauth.get(METADATA["userinfo_endpoint"]).json() == {"sub": claims["sub"]}
    # No `me`: the service's own API refuses the token.
    assert oauth.get(ME_URL).status_code == 401


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_confidential_client_authenticates_at_the_token_endpoint(method):
    client = register_client(f"Authlib {method}", confidential=True)
    oauth, token, nonce = sign_in(client, Browser(), method)
    validated_id_token(token, client["client_id"], nonce)
    assert oauth.get(ME_URL).status_code == 200


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_wrong_client_secret_is_invalid_client(method):
    client = register_client(f"Authlib wrong {method}", confidential=True)
    client["client_secret"] = "not-the-secret"
    oauth = session(client, method)
    verifier = generate_token(48)
    url, _ = oauth.create_authorization_url(METADATA["authorization_endpoint"], code_verifier=verifier)
    callback = Browser().sign_in(url)
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(METADATA["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert refused.value.error == "invalid_client"


def test_a_confidential_client_without_its_secret_is_invalid_client():
    client = register_client("Authlib no secret", confidential=True)
    oauth = session({"client_id": client["client_id"]})
    verifier = generate_token(48)
    url, _ = oauth.create_authorization_url(METADATA["authorization_endpoint"], code_verifier=verifier)
    callback = Browser().sign_in(url)
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(METADATA["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert refused.value.error == "invalid_client"


def test_a_third_party_client_gets_a_code_once_the_user_allows_it():
    client = register_client("Authlib third party", first_party=False)
    oauth = session(client)
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = oauth.create_authorization_url(
        METADATA["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    browser = Browser()
    login = browser.open(url)
    consent = browser.submit(login, username="johndoe", password="secret")
    assert consent.status_code == 200 and browser.redirected_to is None
    assert "Allow <strong>" in consent.text
    browser.submit(consent, button=("decision", "allow"))
    assert query_of(browser.redirected_to)["state"] == state
    token = oauth.fetch_token(
        METADATA["token_endpoint"], authorization_response=browser.redirected_to, code_verifier=verifier
    )
    validated_id_token(token, client["client_id"], nonce)
