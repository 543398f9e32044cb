"""The Python client of openapi-generator (`python`) against a running gatehouse."""

import json
import os

import pytest
from gatehouse_openapi_client import ApiClient, Configuration, DefaultApi
from gatehouse_openapi_client.exceptions import (
    BadRequestException,
    UnauthorizedException,
    UnprocessableEntityException,
)
from gatehouse_openapi_client.models import HTTPValidationError

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
    with ApiClient(Configuration(host=BASE_URL)) as client:
        response = DefaultApi(client).login_for_access_token_token_post_with_http_info(
            username="johndoe", password="secret"
        )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.data.token_type == "bearer"
    assert response.data.expires_in == 1800


def test_a_wrong_password_raises_a_typed_401():
    with ApiClient(Configuration(host=BASE_URL)) as client:
        with pytest.raises(UnauthorizedException) as raised:
            DefaultApi(client).login_for_access_token_token_post(
                username="johndoe", password="wrong"
            )

    assert raised.value.status == 401
    assert raised.value.headers["www-authenticate"] == "Bearer"
    assert json.loads(raised.value.body) == {"detail": "Incorrect username or password"}


def test_a_forged_token_raises_a_typed_401():
    config = Configuration(host=BASE_URL, access_token="not.a.token")
    with ApiClient(config) as client:
        with pytest.raises(UnauthorizedException) as raised:
            DefaultApi(client).read_users_me_users_me_get()

    assert raised.value.headers["www-authenticate"] == 'Bearer scope="me", error="invalid_token"'
    assert raised.value.data.detail == "Could not validate credentials"


def test_a_disabled_user_raises_a_typed_400_inactive_user():
    config = Configuration(host=BASE_URL)
    with ApiClient(config) as client:
        token = DefaultApi(client).login_for_access_token_token_post(
            username="alice", password="secret2"
        )
    config.access_token = token.access_token
    with ApiClient(config) as client:
        with pytest.raises(BadRequestException) as raised:
            DefaultApi(client).read_users_me_users_me_get()

    assert raised.value.data.detail == "Inactive user"


def test_a_too_long_password_raises_a_typed_422():
    # 600 two-byte characters: within the document's maxLength, over the 1024-byte limit.
    with ApiClient(Configuration(host=BASE_URL)) as client:
        with pytest.raises(UnprocessableEntityException) as raised:
            DefaultApi(client).login_for_access_token_token_post(
                username="johndoe", password="é" * 600
            )

    body = raised.value.data.actual_instance
    assert isinstance(body, HTTPValidationError)
    [problem] = body.detail
    assert (problem.type, problem.loc) == ("string_too_long", ["body", "password"])
