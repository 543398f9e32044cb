"""Sign in with gatehouse through requests-oauthlib (OAuth2Session with pkce='S256'), the id
token verified with PyJWT against the JWKS (PyJWKClient) and its nonce and at_hash checked
by hand; single sign-on across two clients in one browser."""

import os

# The service listens on plain http on 127.0.0.1: oauthlib insists on https unless told so.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import secrets

import jwt
from requests_oauthlib import OAuth2Session
from sign_in import ALGORITHM, ME_URL, REDIRECT_URI, Browser, discovery, left_half_hash, register_client

METADATA = discovery()
JWKS = jwt.PyJWKClient(METADATA["jwks_uri"])


def sign_in(client, browser, scope="openid profile email me"):
    """The flow with requests-oauthlib; the session, its token, the id token's claims."""
    oauth = OAuth2Session(client["client_id"], redirect_uri=REDIRECT_URI, scope=scope, pkce="S256")
    nonce = secrets.token_urlsafe(16)
    # oauthlib checks the state sent back itself.
    url, _ = oauth.authorization_url(METADATA["authorization_endpoint"], nonce=nonce)
    callback = browser.sign_in(url) if not browser.cookie("gatehouse_session") else sso(browser, url)
    secret = client.get("client_secret")
    token = oauth.fetch_token(
        METADATA["token_endpoint"],
        authorization_response=callback,
        # A public client names itself; a confidential one authenticates with Basic.
        include_client_id=secret is None,
        client_secret=secret,
    )
    claims = verified_id_token(token, client["client_id"], nonce)
    return oauth, token, claims


def sso(browser, url):
    """A signed-in browser goes straight back to the client: no login page."""
    resp = browser.open(url)
    assert resp.status_code == 302, resp.text
    assert browser.redirected_to, resp.headers
    return browser.redirected_to


def verified_id_token(token, client_id, nonce):
    key = JWKS.get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(
        token["id_token"],
        key,
        algorithms=[ALGORITHM],
        audience=client_id,
        issuer=METADATA["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"]},
        leeway=5,
    )
    assert jwt.get_unverified_header(token["id_token"])["alg"] == ALGORITHM
    assert claims["nonce"] == nonce
    assert claims["at_hash"] == left_half_hash(token["access_token"])
    return claims


def test_a_public_client_signs_in_and_reads_userinfo():
    client = register_client("requests-oauthlib public")
    oauth, token, claims = sign_in(client, Browser())
    assert set(token["scope"]) == {"openid", "profile", "email", "me"}
    info = oauth.get(METADATA["userinfo_endpoint"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["preferred_username"] == "johndoe"
    assert oauth.get(ME_URL).json()["username"] == "johndoe"


def test_a_confidential_client_signs_in_with_basic_authentication():
    client = register_client("requests-oauthlib confidential", confidential=True)
    oauth, _, claims = sign_in(client, Browser())
    assert claims["aud"] == client["client_id"]
    assert oauth.get(ME_URL).status_code == 200


def test_one_sign_in_serves_two_clients_in_one_browser():
    first = register_client("requests-oauthlib SSO one")
    second = register_client("requests-oauthlib SSO two")
    browser = Browser()
    _, _, one = sign_in(first, browser)
    assert browser.cookie("gatehouse_session")
    _, _, two = sign_in(second, browser)
    assert two["sub"] == one["sub"]
    # The same sign-in: the same time and method, two audiences.
    assert two["auth_time"] == one["auth_time"]
    assert (one["aud"], two["aud"]) == (first["client_id"], second["client_id"])
