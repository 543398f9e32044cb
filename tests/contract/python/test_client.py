"""The Python client (openapi-python-client) against a running gatehouse."""

import os

from gatehouse_client import AuthenticatedClient, Client
from gatehouse_client.api.default import (
    login_for_access_token_token_post as login,
    read_users_me_users_me_get as read_me_endpoint,
)
from gatehouse_client.models import (
    BodyLoginForAccessTokenTokenPost,
    HTTPError,
    HTTPValidationError,
    Token,
)

from snippet import read_me

BASE_URL = os.environ["GATEHOUSE_URL"]


def test_the_readme_snippet_logs_in_and_reads_the_user_and_the_items():
    user, items = read_me(BASE_URL, "johndoe", "secret")

    assert user.to_dict() == {
        "username": "johndoe",
        "email": "johndoe@example.com",
        "full_name": "John Doe",
        "disabled": False,
    }
    assert [item.to_dict() for item in items] == [{"item_id": "Foo", "owner": "johndoe"}]


def test_the_token_response_is_parsed_with_its_cache_headers():
    form = BodyLoginForAccessTokenTokenPost(username="johndoe", password="secret")
    response = login.sync_detailed(client=Client(base_url=BASE_URL), body=form)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert isinstance(response.parsed, Token)
    assert response.parsed.token_type == "bearer"
    assert response.parsed.expires_in == 1800
    assert response.parsed.additional_properties == {}


def test_a_wrong_password_is_a_parsed_401_error():
    form = BodyLoginForAccessTokenTokenPost(username="johndoe", password="wrong")
    response = login.sync_detailed(client=Client(base_url=BASE_URL), body=form)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.parsed == HTTPError(detail="Incorrect username or password")


def test_a_forged_token_is_a_parsed_401_error():
    client = AuthenticatedClient(base_url=BASE_URL, token="not.a.token")
    response = read_me_endpoint.sync_detailed(client=client)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="me", error="invalid_token"'
    assert response.parsed == HTTPError(detail="Could not validate credentials")


def test_a_too_long_password_is_a_parsed_422_validation_error():
    # 600 two-byte characters: within the document's maxLength, over the 1024-byte limit.
    form = BodyLoginForAccessTokenTokenPost(username="johndoe", password="é" * 600)
    response = login.sync_detailed(client=Client(base_url=BASE_URL), body=form)

    assert response.status_code == 422
    assert isinstance(response.parsed, HTTPValidationError)
    [problem] = response.parsed.detail
    assert (problem.type_, problem.loc) == ("string_too_long", ["body", "password"])
