"""Signup, verification and password reset against a running gatehouse whose mail goes to
a real SMTP server (aiosmtpd, saving to a Maildir), driven as a person would: the mail is
read from the mailbox, its link opened, the page's form submitted, and the new account
used with a real OAuth client library (Authlib)."""

import email
import email.policy
import html.parser
import mailbox
import os
import time
import urllib.parse

import requests
from authlib.integrations.requests_client import OAuth2Session

BASE_URL = os.environ["GATEHOUSE_URL"]
PUBLIC_URL = os.environ["GATEHOUSE_PUBLIC_URL"]
MAILDIR = os.environ["MAILDIR"]
TOKEN_URL = f"{BASE_URL}/token"
ME_URL = f"{BASE_URL}/users/me/"
PASSWORD = "correct horse battery staple"


def mails_to(address, count, timeout=20):
    """The mails to `address` in the Maildir, parsed, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        if os.path.isdir(MAILDIR):
            for message in mailbox.Maildir(MAILDIR, factory=None, create=False):
                parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
                if parsed["To"] == address:
                    found.append(parsed)
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} mails to {address}"
        time.sleep(0.2)


def link_in(mail, path):
    """The link to `path` in the mail's plain text, as a person would copy it."""
    text = mail.get_body(("plain",)).get_content()
    html_part = mail.get_body(("html",)).get_content()
    for word in text.split():
        if f"{path}?token=" in word:
            assert word in html_part, "both parts carry the link"
            return word
    raise AssertionError(f"no {path} link in {text!r}")


def on_this_server(link):
    """The link's URL on the server under test: the mail's links start with PUBLIC_URL."""
    assert link.startswith(PUBLIC_URL + "/"), link
    return BASE_URL + link[len(PUBLIC_URL):]


class FormReader(html.parser.HTMLParser):
    """The page's one form: its method and its hidden fields."""

    def __init__(self):
        super().__init__()
        self.method = None
        self.fields = {}
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.method = attrs.get("method")
            assert "action" not in attrs
        elif tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs["value"]
        elif tag == "script":
            self.scripts += 1


def open_page(url):
    """GET a link's page as a browser would; the page's form."""
    page = requests.get(url)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    form = FormReader()
    form.feed(page.text)
    assert form.method == "post" and form.scripts == 0
    return form


def sign_in(username, password):
    client = OAuth2Session(client_id="contract-checks", token_endpoint_auth_method="none")
    client.fetch_token(TOKEN_URL, username=username, password=password)
    return client


def test_signup_then_the_mailed_link_verifies_the_address_and_the_account_signs_in():
    address = "carol@example.com"
    signup = requests.post(f"{BASE_URL}/users/", json={
        "username": "carol", "email": address, "password": PASSWORD, "full_name": "Carol"})
    assert signup.status_code == 201, signup.text
    assert signup.json() == {"username": "carol", "email": address, "full_name": "Carol",
                             "disabled": False}
    [mail] = mails_to(address, 1)
    assert mail["Subject"] == "Confirm your email address"
    assert mail["Message-ID"] and mail["Date"]
    link = on_this_server(link_in(mail, "/verify-email"))
    # A scanner opening the link first spends nothing.
    requests.get(link)
    form = open_page(link)
    verified = requests.post(link, data=form.fields)
    assert verified.status_code == 200
    assert "Your address is verified" in verified.text
    assert requests.post(link, data=form.fields).status_code == 400

    client = sign_in("carol", PASSWORD)
    assert client.get(ME_URL).json() == {"username": "carol", "email": address,
                                          "full_name": "Carol", "disabled": False}


def test_forgot_then_the_mailed_link_resets_the_password():
    address = "dave@example.com"
    signup = requests.post(f"{BASE_URL}/users/", json={
        "username": "dave", "email": address, "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    old_session = sign_in("dave", PASSWORD)
    forgot = requests.post(f"{BASE_URL}/forgot-password", json={"email": "Dave@Example.com"})
    unknown = requests.post(f"{BASE_URL}/forgot-password", json={"email": "nobody@example.com"})
    assert (forgot.status_code, forgot.json()) == (unknown.status_code, unknown.json())
    assert forgot.status_code == 202

    subjects = {mail["Subject"]: mail for mail in mails_to(address, 2)}
    assert sorted(subjects) == ["Confirm your email address", "Reset your password"]
    reset_mail = subjects["Reset your password"]
    link = on_this_server(link_in(reset_mail, "/reset-password"))
    form = open_page(link)
    weak = requests.post(link, data={**form.fields, "password": "password1"})
    assert weak.status_code == 422 and "too common" in weak.text
    new_password = "a brand new pass phrase"
    done = requests.post(link, data={**form.fields, "password": new_password})
    assert done.status_code == 200 and "Your password is changed" in done.text

    assert old_session.get(ME_URL).status_code == 401, "a reset ends every session"
    old = requests.post(TOKEN_URL, data={"username": "dave", "password": PASSWORD})
    assert (old.status_code, old.json()) == (401, {"detail": "Incorrect username or password"})
    assert sign_in("dave", new_password).get(ME_URL).json()["username"] == "dave"
    # The link worked once.
    assert requests.get(link).status_code == 400
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    again = requests.post(f"{BASE_URL}/reset-password", json={"token": token, "password": "x" * 12})
    assert (again.status_code, again.json()) == (400, {"detail": "Invalid or expired token"})
