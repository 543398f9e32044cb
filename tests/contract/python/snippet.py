from gatehouse_client import AuthenticatedClient, Client
from gatehouse_client.api.default import (
    login_for_access_token_token_post as login,
    read_own_items_users_me_items_get as read_items,
    read_users_me_users_me_get as read_me_endpoint,
)
from gatehouse_client.models import BodyLoginForAccessTokenTokenPost, Item, Token, User


def read_me(base_url: str, username: str, password: str) -> tuple[User, list[Item]]:
    """Logs in with the password grant, then reads the user and their items."""
    form = BodyLoginForAccessTokenTokenPost(username=username, password=password)
    token = login.sync(client=Client(base_url=base_url), body=form)
    if not isinstance(token, Token):
        raise RuntimeError(f"login failed: {token}")

    client = AuthenticatedClient(base_url=base_url, token=token.access_token)
    user = read_me_endpoint.sync(client=client)
    items = read_items.sync(client=client)
    if not isinstance(user, User) or not isinstance(items, list):
        raise RuntimeError(f"reading the user failed: {user} {items}")
    return user, items
