from gatehouse_openapi_client import ApiClient, Configuration, DefaultApi
from gatehouse_openapi_client.models import Item, User


def read_me(base_url: str, username: str, password: str) -> tuple[User, list[Item]]:
    """Logs in with the password grant, then reads the user and their items."""
    config = Configuration(host=base_url)
    with ApiClient(config) as client:
        token = DefaultApi(client).login_for_access_token_token_post(
            username=username, password=password
        )

    # The generated client sends the OAuth2PasswordBearer token itself.
    config.access_token = token.access_token
    with ApiClient(config) as client:
        api = DefaultApi(client)
        return api.read_users_me_users_me_get(), api.read_own_items_users_me_items_get()
