"""The Python client (openapi-python-client) against a running gatehouse."""

import os

from gatehouse_client import AuthenticatedClient, Client
from gatehouse_client.api.default import (
    create_user_admin_users_post as create_user,
    login_for_access_token_token_post as login,
    read_own_items_users_me_items_get as read_items,
    read_users_me_users_me_get as read_me_endpoint,
    update_user_admin_users_username_patch as update_user,
)
from gatehouse_client.models import (
    AdminUserCreate,
    AdminUserUpdate,
    BodyLoginForAccessTokenTokenPost,
    HTTPError,
    HTTPValidationError,
    Scope,
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


def bearer(username, password, scope=None):
    """A client authorized as `username`, with the token's `scope` when given."""
    form = BodyLoginForAccessTokenTokenPost(username=username, password=password)
    if scope is not None:
        form.scope = scope
    token = login.sync(client=Client(base_url=BASE_URL), body=form)
    assert isinstance(token, Token), token
    return AuthenticatedClient(base_url=BASE_URL, token=token.access_token)


def test_an_admin_creates_a_user_changes_its_scopes_and_disables_it():
    admin = bearer("johndoe", "secret", "admin")
    created = create_user.sync_detailed(
        client=admin,
        body=AdminUserCreate(username="py-carol", password="carol-pw", email="py-carol@example.com"),
    )
    assert created.status_code == 201
    assert created.parsed.scopes == [Scope.ME, Scope.ITEMS]

    carol = bearer("py-carol", "carol-pw")
    assert read_items.sync_detailed(client=carol).status_code == 200

    changed = update_user.sync_detailed("py-carol", client=admin, body=AdminUserUpdate(scopes=[Scope.ME]))
    assert changed.status_code == 200
    assert changed.parsed.scopes == [Scope.ME]
    refused = read_items.sync_detailed(client=carol)
    assert refused.status_code == 401
    assert refused.parsed == HTTPError(detail="Not enough permissions")
    assert refused.headers["www-authenticate"] == 'Bearer scope="items me", error="insufficient_scope"'

    disabled = update_user.sync_detailed("py-carol", client=admin, body=AdminUserUpdate(disabled=True))
    assert disabled.status_code == 200
    assert disabled.parsed.disabled is True
    assert read_me_endpoint.sync_detailed(client=carol).status_code == 401
