use gatehouse_client::{types, Client};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

/// Logs in with the password grant, then reads the user and their items.
pub async fn read_me(
    base_url: &str,
    username: &str,
    password: &str,
) -> Result<(types::User, Vec<types::Item>), Box<dyn std::error::Error>> {
    let form = types::BodyLoginForAccessTokenTokenPost {
        username: username.parse()?,
        password: password.parse()?,
        grant_type: None,
        scope: None,
        refresh_token: None,
        client_id: None,
        client_secret: None,
        otp: None,
        code: None,
        redirect_uri: None,
        code_verifier: None,
    };
    let token = Client::new(base_url)
        .login_for_access_token_token_post(&form)
        .await?
        .into_inner();

    // progenitor leaves authentication to the reqwest client it wraps.
    let bearer = HeaderValue::from_str(&format!("Bearer {}", token.access_token))?;
    let headers = HeaderMap::from_iter([(AUTHORIZATION, bearer)]);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let client = Client::new_with_client(base_url, http);

    let user = client.read_users_me_users_me_get().await?.into_inner();
    let items = client
        .read_own_items_users_me_items_get()
        .await?
        .into_inner();
    Ok((user, items))
}
