"""The authorization-code flow's rules as a browser and a client meet them, with `requests`
alone: the login and consent pages and their forms, single sign-on and `prompt`, errors
sent back to the client and those shown on a page instead, the code's single use, PKCE,
CSRF, and logout."""

import pytest
import requests
from sign_in import (
    BASE_URL,
    LOGOUT_URI,
    ME_URL,
    REDIRECT_URI,
    Browser,
    authorize_url,
    discovery,
    form_of,
    pkce_pair,
    query_of,
    register_client,
    token_request,
)

ISSUER = discovery()["issuer"]


@pytest.fixture(scope="module")
def client():
    return register_client("flow first party", post_logout_redirect_uris=[LOGOUT_URI])


@pytest.fixture(scope="module")
def third_party():
    return register_client("flow third party", first_party=False)


def assert_error_page(resp, status=400):
    """An HTML page, never a redirect: the client or its redirect URI cannot be trusted."""
    assert resp.status_code == status, resp.text
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_the_login_page_carries_the_request_and_a_csrf_token(client):
    _, challenge = pkce_pair()
    url = authorize_url(client["client_id"], challenge, state="st-1", nonce="n-1")
    browser = Browser()
    page = browser.open(url)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    # The form may post to gatehouse and be redirected on to the client's origin only.
    assert "form-action 'self' http://127.0.0.1:9;" in policy
    assert client["client_name"] in page.text
    form = form_of(page)
    assert form.action == "/authorize/login"
    assert form.inputs["csrf_token"] == browser.cookie("gatehouse_csrf")
    for name, value in query_of(url).items():
        assert form.inputs[name] == value, name
    assert {"username", "password", "otp"} <= form.inputs.keys()


def test_a_wrong_password_shows_the_login_page_again(client):
    _, challenge = pkce_pair()
    browser = Browser()
    page = browser.open(authorize_url(client["client_id"], challenge))
    again = browser.submit(page, username="johndoe", password="wrong")
    assert again.status_code == 401
    assert "Incorrect username or password" in again.text
    assert form_of(again).inputs["username"] == "johndoe"
    assert browser.cookie("gatehouse_session") is None
    # The page works on: the right password signs in.
    browser.submit(again, username="johndoe", password="secret")
    assert query_of(browser.redirected_to)["code"]


def test_a_first_party_client_gets_its_code_with_state_and_iss(client):
    verifier, challenge = pkce_pair()
    browser = Browser()
    callback = browser.sign_in(authorize_url(client["client_id"], challenge, state="xyz"))
    assert callback.startswith(REDIRECT_URI + "?")
    back = query_of(callback)
    assert back.keys() == {"code", "state", "iss"}
    assert (back["state"], back["iss"]) == ("xyz", ISSUER)
    resp = token_request(client, back["code"], verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    token = resp.json()
    assert token.keys() == {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
    assert token["token_type"] == "bearer"
    assert set(token["scope"].split()) == {"openid", "profile", "email", "me"}


def test_the_third_party_consent_page_allows_and_denies(third_party):
    verifier, challenge = pkce_pair()
    browser = Browser()
    login = browser.open(authorize_url(third_party["client_id"], challenge, state="s-deny"))
    consent = browser.submit(login, username="johndoe", password="secret")
    assert consent.status_code == 200 and browser.redirected_to is None
    assert browser.cookie("gatehouse_session")
    form = form_of(consent)
    assert form.action == "/authorize/consent"
    assert form.buttons == [("decision", "allow"), ("decision", "deny")]
    assert "Signed in as <strong>johndoe</strong>" in consent.text
    assert "See your email address." in consent.text
    assert "frame-ancestors 'none'" in consent.headers["Content-Security-Policy"]

    browser.submit(consent, button=("decision", "deny"))
    back = query_of(browser.redirected_to)
    assert back["error"] == "access_denied"
    assert (back["state"], back["iss"]) == ("s-deny", ISSUER)
    assert "code" not in back

    # Signed in already: the consent page comes at once, and allowing sends a code.
    consent = browser.open(authorize_url(third_party["client_id"], challenge, state="s-allow"))
    assert consent.status_code == 200 and "decision" in consent.text
    browser.submit(consent, button=("decision", "allow"))
    back = query_of(browser.redirected_to)
    assert (back["state"], back["iss"]) == ("s-allow", ISSUER)
    assert token_request(third_party, back["code"], verifier).status_code == 200


def test_a_signed_in_browser_is_not_asked_again_until_prompt_login(client):
    browser = Browser()
    verifier, challenge = pkce_pair()
    first = query_of(browser.sign_in(authorize_url(client["client_id"], challenge)))
    assert token_request(client, first["code"], verifier).status_code == 200

    # Single sign-on: straight back with a code.
    verifier, challenge = pkce_pair()
    resp = browser.open(authorize_url(client["client_id"], challenge, state="sso"))
    assert resp.status_code == 302
    second = query_of(browser.redirected_to)
    assert second["state"] == "sso"
    assert token_request(client, second["code"], verifier).status_code == 200

    # prompt=none, signed in: the same.
    verifier, challenge = pkce_pair()
    browser.open(authorize_url(client["client_id"], challenge, prompt="none"))
    assert token_request(client, query_of(browser.redirected_to)["code"], verifier).status_code == 200

    # prompt=login: the login page again, then a code.
    _, challenge = pkce_pair()
    page = browser.open(authorize_url(client["client_id"], challenge, prompt="login"))
    assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text
    assert form_of(page).inputs["prompt"] == "login"
    browser.submit(page, username="johndoe", password="secret")
    assert query_of(browser.redirected_to)["code"]


def test_prompt_none_answers_login_required_when_signed_out(client, third_party):
    _, challenge = pkce_pair()
    browser = Browser()
    resp = browser.open(authorize_url(client["client_id"], challenge, prompt="none", state="pn"))
    assert resp.status_code == 302
    back = query_of(browser.redirected_to)
    assert back["error"] == "login_required"
    assert (back["state"], back["iss"]) == ("pn", ISSUER)
    # Signed in, a third party not allowed yet: consent_required.
    browser.sign_in(authorize_url(client["client_id"], challenge))
    browser.open(authorize_url(third_party["client_id"], challenge, prompt="none"))
    assert query_of(browser.redirected_to)["error"] == "consent_required"


def test_a_code_used_twice_is_refused_and_its_first_tokens_die(client):
    verifier, challenge = pkce_pair()
    code = query_of(Browser().sign_in(authorize_url(client["client_id"], challenge)))["code"]
    first = token_request(client, code, verifier).json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert requests.get(ME_URL, headers=bearer).status_code == 200

    again = token_request(client, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert requests.get(ME_URL, headers=bearer).status_code == 401
    refresh = requests.post(
        f"{BASE_URL}/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


def test_a_wrong_verifier_or_redirect_uri_is_invalid_grant(client):
    verifier, challenge = pkce_pair()
    code = query_of(Browser().sign_in(authorize_url(client["client_id"], challenge)))["code"]
    wrong = token_request(client, code, pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # The code was spent by that try: even the right verifier is refused now.
    assert token_request(client, code, verifier).json()["error"] == "invalid_grant"

    verifier, challenge = pkce_pair()
    code = query_of(Browser().sign_in(authorize_url(client["client_id"], challenge)))["code"]
    elsewhere = token_request(client, code, verifier, redirect_uri=REDIRECT_URI + "/other")
    assert elsewhere.json()["error"] == "invalid_grant"
    missing = token_request(client, code, None)
    assert missing.status_code in (400, 422), missing.text


@pytest.mark.parametrize(
    "params",
    [
        {"code_challenge": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": "too-short"},
    ],
    ids=["no challenge", "no method", "plain", "malformed challenge"],
)
def test_a_request_without_an_s256_challenge_is_sent_back_as_invalid_request(client, params):
    _, challenge = pkce_pair()
    browser = Browser()
    resp = browser.open(authorize_url(client["client_id"], challenge, state="pkce", **params))
    assert resp.status_code == 302, resp.text
    back = query_of(browser.redirected_to)
    assert browser.redirected_to.startswith(REDIRECT_URI + "?")
    assert back["error"] == "invalid_request"
    assert (back["state"], back["iss"]) == ("pkce", ISSUER)
    assert back["error_description"]


def test_an_unknown_client_gets_an_error_page(client):
    _, challenge = pkce_pair()
    resp = requests.get(authorize_url("no-such-client", challenge), allow_redirects=False)
    assert_error_page(resp)
    assert "Unknown application" in resp.text
    resp = requests.get(authorize_url(None, challenge), allow_redirects=False)
    assert_error_page(resp)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/extra",
        REDIRECT_URI + "?next=/admin",
        REDIRECT_URI + "#fragment",
        REDIRECT_URI.replace(":9/", ":10/"),
        REDIRECT_URI.replace("127.0.0.1", "localhost"),
        "https://attacker.example/callback",
    ],
)
def test_a_redirect_uri_not_registered_exactly_gets_an_error_page(client, redirect_uri):
    _, challenge = pkce_pair()
    resp = requests.get(
        authorize_url(client["client_id"], challenge, redirect_uri=redirect_uri), allow_redirects=False
    )
    assert_error_page(resp)
    assert "Unregistered redirect address" in resp.text


def test_the_login_form_without_its_csrf_token_is_refused(client):
    _, challenge = pkce_pair()
    browser = Browser()
    page = browser.open(authorize_url(client["client_id"], challenge))
    form = form_of(page)
    for token in (None, "x" * 43, ""):
        data = {**form.inputs, "username": "johndoe", "password": "secret"}
        if token is None:
            del data["csrf_token"]
        else:
            data["csrf_token"] = token
        resp = browser.session.post(f"{BASE_URL}{form.action}", data=data, allow_redirects=False)
        assert_error_page(resp)
        assert "This form has expired" in resp.text
    # Another browser (no CSRF cookie) posting this page's token: refused too.
    data = {**form.inputs, "username": "johndoe", "password": "secret"}
    resp = requests.post(f"{BASE_URL}{form.action}", data=data, allow_redirects=False)
    assert_error_page(resp)
    assert browser.cookie("gatehouse_session") is None


def test_logout_ends_the_browser_session_and_returns_to_the_client(client):
    verifier, challenge = pkce_pair()
    browser = Browser()
    code = query_of(browser.sign_in(authorize_url(client["client_id"], challenge)))["code"]
    id_token = token_request(client, code, verifier).json()["id_token"]

    logout = browser.session.get(
        f"{BASE_URL}/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"},
        allow_redirects=False,
    )
    assert logout.status_code == 302, logout.text
    assert logout.headers["Location"] == f"{LOGOUT_URI}?state=bye"
    assert browser.cookie("gatehouse_session") is None
    # Signed out: the next authorization asks for the password again.
    page = browser.open(authorize_url(client["client_id"], challenge))
    assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text


def test_logout_names_the_client_by_client_id_too_and_never_redirects_elsewhere(client):
    browser = Browser()
    _, challenge = pkce_pair()
    browser.sign_in(authorize_url(client["client_id"], challenge))
    resp = browser.session.get(
        f"{BASE_URL}/logout",
        params={"client_id": client["client_id"], "post_logout_redirect_uri": LOGOUT_URI},
        allow_redirects=False,
    )
    assert resp.status_code == 302 and resp.headers["Location"] == LOGOUT_URI
    # Not registered, or no client named: a page, and signed out all the same.
    browser.sign_in(authorize_url(client["client_id"], challenge))
    for params in (
        {"client_id": client["client_id"], "post_logout_redirect_uri": "https://attacker.example/"},
        {"post_logout_redirect_uri": LOGOUT_URI},
    ):
        resp = browser.session.get(f"{BASE_URL}/logout", params=params, allow_redirects=False)
        assert resp.status_code == 200 and "Location" not in resp.headers
        assert "You are signed out" in resp.text
    assert browser.cookie("gatehouse_session") is None
