"""What the sign-in checks share: the service's OpenID Connect metadata, clients registered
through the admin API, a browser played with `requests` (cookies kept, forms read with
html.parser and posted as a browser posts them), and an id token's own checks."""

import base64
import hashlib
import html.parser
import os
import secrets
import urllib.parse

import requests

BASE_URL = os.environ["GATEHOUSE_URL"]
# The id tokens' algorithm: RS256 or EdDSA (run.sh runs the checks under each).
ALGORITHM = os.environ.get("GATEHOUSE_ALGORITHM", "EdDSA")
ME_URL = f"{BASE_URL}/users/me/"
# Where the test clients are sent back to: never fetched (the tests read the Location),
# so nothing needs to listen there.
REDIRECT_URI = "http://127.0.0.1:9/callback"
LOGOUT_URI = "http://127.0.0.1:9/signed-out"
# `serve --demo`'s user, with every scope and a verified address.
USERNAME, PASSWORD = "johndoe", "secret"


def discovery():
    resp = requests.get(f"{BASE_URL}/.well-known/openid-configuration")
    resp.raise_for_status()
    return resp.json()


def admin_headers():
    resp = requests.post(
        f"{BASE_URL}/token", data={"username": USERNAME, "password": PASSWORD, "scope": "admin"}
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def register_client(name, *, confidential=False, first_party=True, **extra):
    """A client registered through `POST /admin/clients/`: its id, and its secret when
    confidential."""
    body = {
        "client_name": f"{name} {secrets.token_hex(3)}",
        "redirect_uris": [REDIRECT_URI],
        "confidential": confidential,
        "first_party": first_party,
        **extra,
    }
    resp = requests.post(f"{BASE_URL}/admin/clients/", json=body, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    client = resp.json()
    assert ("client_secret" in client) == confidential, client
    return client


def pkce_pair():
    """A code verifier (RFC 7636 §4.1) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(client_id, challenge, **params):
    """`/authorize` for `client_id` with PKCE; `params` add to or replace the defaults
    (None leaves one out)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email me",
        "state": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": secrets.token_urlsafe(12),
        **params,
    }
    query = {k: v for k, v in query.items() if v is not None}
    return f"{BASE_URL}/authorize?{urllib.parse.urlencode(query)}"


def query_of(url):
    """The query of `url`, each parameter once."""
    parsed = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, strict_parsing=False)
    assert all(len(v) == 1 for v in parsed.values()), url
    return {k: v[0] for k, v in parsed.items()}


def left_half_hash(value):
    """OpenID Connect Core §3.1.3.6: base64url of the left half of the hash the id
    token's algorithm uses (SHA-256 for RS256, SHA-512 for EdDSA's Ed25519)."""
    digest = {"RS256": hashlib.sha256, "EdDSA": hashlib.sha512}[ALGORITHM](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class Form:
    """A page's one form: where it posts, its inputs with their values, and its buttons."""

    def __init__(self, action, method, inputs, buttons):
        self.action = action
        self.method = method
        self.inputs = inputs
        self.buttons = buttons


class FormReader(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(attrs.get("action"), attrs.get("method"), {}, []))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs[attrs["name"]] = attrs.get("value") or ""
        elif tag == "button" and self.forms and attrs.get("name"):
            self.forms[-1].buttons.append((attrs["name"], attrs.get("value") or ""))


def form_of(resp):
    """The one form of the page `resp`."""
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers
    reader = FormReader()
    reader.feed(resp.text)
    assert len(reader.forms) == 1, resp.text
    form = reader.forms[0]
    assert form.method == "post", resp.text
    return form


class Browser:
    """A browser: its cookies, and each step's answer as the browser gets it. Redirects to
    the service are followed; the client's redirect URI is not (its URL is the result)."""

    def __init__(self):
        self.session = requests.Session()
        self.redirected_to = None

    def open(self, url):
        """GET `url`; the page it ends on (or the last answer, a redirect away)."""
        return self._follow(self.session.get(url, allow_redirects=False))

    def submit(self, page, button=None, **fields):
        """Posts the page's form with the inputs' values and `fields`, as a browser does
        (`button`, a `(name, value)` pair, is the one clicked)."""
        form = form_of(page)
        data = {**form.inputs, **fields}
        if button:
            assert button in form.buttons, form.buttons
            data[button[0]] = button[1]
        target = urllib.parse.urljoin(page.url, form.action)
        return self._follow(self.session.post(target, data=data, allow_redirects=False))

    def _follow(self, resp):
        self.redirected_to = None
        while resp.is_redirect:
            location = urllib.parse.urljoin(resp.url, resp.headers["Location"])
            if not location.startswith(BASE_URL + "/"):
                self.redirected_to = location
                return resp
            resp = self.session.get(location, allow_redirects=False)
        return resp

    def sign_in(self, url, username=USERNAME, password=PASSWORD):
        """Opens `url` (an authorization request), signs in on the login page and returns
        where the browser is sent back: the client's redirect URI with its query."""
        page = self.open(url)
        assert page.status_code == 200, page.text
        assert "<h1>Sign in</h1>" in page.text
        after = self.submit(page, username=username, password=password)
        assert after.status_code == 303, after.text
        assert self.redirected_to, after.headers
        return self.redirected_to

    def cookie(self, name):
        return self.session.cookies.get(name)


def token_request(client, code, verifier, redirect_uri=REDIRECT_URI, **extra):
    """`POST /token` for `code`, as a public client (or with `extra`'s authentication)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client["client_id"],
        **extra,
    }
    return requests.post(f"{BASE_URL}/token", data={k: v for k, v in data.items() if v is not None})
