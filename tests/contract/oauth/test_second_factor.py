"""A user turns TOTP on and signs in with it, as a person would: pyotp plays the
authenticator app (an implementation nobody on this project wrote), Authlib and
requests-oauthlib send the code in the password grant's `otp` field."""

import os
import time

os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import pyotp
import requests
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import LegacyApplicationClient, MissingTokenError
from requests_oauthlib import OAuth2Session as LegacySession

BASE_URL = os.environ["GATEHOUSE_URL"]
TOKEN_URL = f"{BASE_URL}/token"
ME_URL = f"{BASE_URL}/users/me/"
CLIENT_ID = "contract-checks"
USER, PASSWORD = "totp-person", "totp-person-passphrase"


def session():
    return OAuth2Session(client_id=CLIENT_ID, token_endpoint_auth_method="none")


def a_user_with_totp_on():
    """Creates USER through the admin API and turns TOTP on with pyotp; the TOTP and the
    recovery codes."""
    admin = session()
    admin.fetch_token(TOKEN_URL, username="johndoe", password="secret")
    created = admin.post(f"{BASE_URL}/admin/users/", json={"username": USER, "password": PASSWORD, "scopes": ["me"]})
    assert created.status_code == 201, created.text

    user = session()
    user.fetch_token(TOKEN_URL, username=USER, password=PASSWORD)
    enrolment = user.post(f"{BASE_URL}/users/me/totp").json()
    totp = pyotp.parse_uri(enrolment["otpauth_uri"])
    assert totp.secret == enrolment["secret"]
    assert (totp.issuer, totp.name, totp.digits, totp.interval) == ("gatehouse", USER, 6, 30)
    confirmed = user.post(f"{BASE_URL}/users/me/totp/confirm", json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    return totp, codes


def test_a_user_enrols_with_pyotp_and_signs_in_with_a_code_and_a_recovery_code():
    totp, codes = a_user_with_totp_on()

    # Without the code, Authlib gets the detail back rather than a token.
    refused = session().fetch_token(TOKEN_URL, username=USER, password=PASSWORD)
    assert refused == {"detail": "Second factor required"}

    client = session()
    # The confirmation spent this step's code; the next step's is accepted too (RFC 6238 §5.2).
    token = client.fetch_token(TOKEN_URL, username=USER, password=PASSWORD, otp=totp.at(time.time() + 30))
    assert token["token_type"] == "bearer"
    assert client.get(ME_URL).json()["username"] == USER
    # A refresh needs no code again.
    client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert client.get(ME_URL).status_code == 200

    # requests-oauthlib, with a recovery code; the same code a second time is refused.
    legacy = LegacySession(client=LegacyApplicationClient(client_id=CLIENT_ID))
    token = legacy.fetch_token(token_url=TOKEN_URL, username=USER, password=PASSWORD, otp=codes[0])
    assert legacy.get(ME_URL).json()["username"] == USER
    again = requests.post(TOKEN_URL, data={"username": USER, "password": PASSWORD, "otp": codes[0]}, timeout=10)
    assert (again.status_code, again.json()) == (401, {"detail": "Incorrect code"})
    status = legacy.get(f"{BASE_URL}/users/me/totp").json()
    assert status == {"enabled": True, "recovery_codes_left": 9}
    try:
        LegacySession(client=LegacyApplicationClient(client_id=CLIENT_ID)).fetch_token(
            token_url=TOKEN_URL, username=USER, password=PASSWORD
        )
        raise AssertionError("a login without the code got a token")
    except MissingTokenError:
        pass
