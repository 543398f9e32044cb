//! The admin API's OAuth clients (scope `admin`): `/admin/clients/` and
//! `/admin/clients/{client_id}`, the applications that may use "Sign in with gatehouse".
//! Registered here exactly as `gatehouse client ...` registers them, through
//! `accounts::clients`, with the same checks. A confidential client's secret is in the
//! creation's answer only: it is stored as a hash and never shown again.

use chrono::{DateTime, TimeZone, Utc};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{param::Path, payload::Json, types::Example, ApiResponse, Object, OpenApi};
use secrecy::ExposeSecret;

use super::{
    admin::AUTH,
    error::{
        ApiError, Error, ErrorStatuses, BODY_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT,
        STORAGE_UNAVAILABLE,
    },
    json_body::JsonBody,
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};
use crate::accounts::{Client, NewClient};

/// A registered OAuth client; never its secret.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AdminClient {
    /// What the client sends as `client_id`: 128 random bits, base64url.
    pub client_id: String,
    pub client_name: String,
    /// Whether the client has a secret and must authenticate with it
    /// (`client_secret_basic` or `client_secret_post`); a public client uses PKCE alone.
    pub confidential: bool,
    /// Whether the client is trusted by the service: its users are not asked for consent.
    pub first_party: bool,
    /// A `redirect_uri` must equal one of these exactly.
    pub redirect_uris: Vec<String>,
    /// Where `GET /logout` may send the browser afterwards, compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes the client may ask for.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Example for AdminClient {
    fn example() -> Self {
        Self {
            client_id: "5m1kPqG4H2n9Xc7yJv3aLw".to_owned(),
            client_name: "Notes".to_owned(),
            confidential: true,
            first_party: false,
            redirect_uris: vec!["https://notes.example/callback".to_owned()],
            post_logout_redirect_uris: vec!["https://notes.example/".to_owned()],
            scopes: ["openid", "profile", "email", "me", "items"]
                .map(str::to_owned)
                .to_vec(),
            created_at: Utc
                .with_ymd_and_hms(2026, 12, 9, 10, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

impl From<Client> for AdminClient {
    fn from(c: Client) -> Self {
        Self {
            client_id: c.client_id,
            client_name: c.client_name,
            confidential: c.confidential,
            first_party: c.first_party,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            scopes: c.scopes,
            created_at: c.created_at,
        }
    }
}

/// A client just registered: the client, and a confidential client's secret, shown this
/// once.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AdminClientCreated {
    #[oai(flatten)]
    pub client: AdminClient,
    /// A confidential client's secret (256 random bits, base64url): shown in this answer
    /// only, stored as a hash. Absent for a public client.
    pub client_secret: Option<String>,
}

impl Example for AdminClientCreated {
    fn example() -> Self {
        Self {
            client: AdminClient::example(),
            client_secret: Some("q3Yx0b0vVt8m2bH6lJ1S7k9wQ4rE5tU6yI7oP8aS9dF".to_owned()),
        }
    }
}

/// A client to register.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AdminClientCreate {
    /// 1 to 100 characters, no control characters: shown on the consent page.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub client_name: String,
    /// 1 to 10 absolute URLs, each `https`, or `http` on a loopback host (`127.0.0.1`,
    /// `[::1]`, `localhost`; RFC 8252), without fragment or user information, at most
    /// 2000 characters. Stored exactly as given: a `redirect_uri` must equal one.
    pub redirect_uris: Vec<String>,
    /// Whether the client can keep a secret (a server-side application): it gets one.
    pub confidential: bool,
    /// Whether the client is the service's own: its users are not asked for consent.
    pub first_party: bool,
    /// The scopes the client may ask for: the service's (`me`, `items`, `admin`,
    /// `introspect`) and OpenID Connect's (`openid`, `profile`, `email`); absent:
    /// `["openid", "profile", "email", "me", "items"]`.
    pub scopes: Option<Vec<String>>,
    /// 0 to 10 URLs under the rules of `redirect_uris`, where `GET /logout` may send the
    /// browser afterwards; absent: none.
    pub post_logout_redirect_uris: Option<Vec<String>>,
}

impl Example for AdminClientCreate {
    fn example() -> Self {
        Self {
            client_name: "Notes".to_owned(),
            redirect_uris: vec!["https://notes.example/callback".to_owned()],
            confidential: true,
            first_party: false,
            scopes: None,
            post_logout_redirect_uris: Some(vec!["https://notes.example/".to_owned()]),
        }
    }
}

const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "Client not found");

pub enum ListErrors {}
impl ErrorStatuses for ListErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] =
        &[AUTH[0], AUTH[1], STORAGE_UNAVAILABLE, INTERNAL_ERROR];
}

pub enum CreateErrors {}
impl ErrorStatuses for CreateErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        AUTH[0],
        AUTH[1],
        REQUEST_TIMEOUT,
        BODY_TOO_LARGE,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is missing or of the wrong type; a name outside its \
             limits; no redirect URI or more than 10; a redirect URI that is not absolute, \
             not https (nor http on a loopback host), or has a fragment or user \
             information; an unknown scope",
        ),
        STORAGE_UNAVAILABLE,
        INTERNAL_ERROR,
    ];
}

pub enum ClientErrors {}
impl ErrorStatuses for ClientErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        AUTH[0],
        AUTH[1],
        NOT_FOUND,
        STORAGE_UNAVAILABLE,
        INTERNAL_ERROR,
    ];
}

#[derive(ApiResponse)]
pub enum ClientsResponse {
    /// Every client, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<AdminClient>>),
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// The client was registered; a confidential client's secret is in this answer only.
    #[oai(status = 201)]
    Created(Json<AdminClientCreated>),
}

#[derive(ApiResponse)]
pub enum ClientResponse {
    /// The client.
    #[oai(status = 200)]
    Ok(Json<AdminClient>),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// The client was removed: it can no longer sign anyone in.
    #[oai(status = 204)]
    NoContent,
}

#[derive(Default)]
pub struct AdminClientsApi;

#[OpenApi(prefix_path = "/admin/clients/")]
impl AdminClientsApi {
    /// List OAuth clients
    ///
    /// Every client registered for "Sign in with gatehouse", oldest first; never a secret.
    /// Needs the `admin` scope.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "list_clients_admin_clients__get"
    )]
    async fn list_clients(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
    ) -> Result<ClientsResponse, ApiError<ListErrors>> {
        let clients = state.accounts.clients().await?;
        Ok(ClientsResponse::Ok(Json(
            clients.into_iter().map(AdminClient::from).collect(),
        )))
    }

    /// Register an OAuth client
    ///
    /// With the same checks as `gatehouse client add`. A confidential client's
    /// `client_secret` is in this answer only. Needs the `admin` scope.
    #[oai(
        path = "/",
        method = "post",
        operation_id = "create_client_admin_clients__post"
    )]
    async fn create_client(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        body: JsonBody<AdminClientCreate>,
    ) -> Result<CreatedResponse, ApiError<CreateErrors>> {
        let new = body.0;
        let (client, secret) = state
            .accounts
            .register_client(NewClient {
                client_name: new.client_name,
                redirect_uris: new.redirect_uris,
                confidential: new.confidential,
                first_party: new.first_party,
                scopes: new.scopes,
                post_logout_redirect_uris: new.post_logout_redirect_uris.unwrap_or_default(),
            })
            .await?;
        Ok(CreatedResponse::Created(Json(AdminClientCreated {
            client: client.into(),
            client_secret: secret.map(|s| s.expose_secret().to_owned()),
        })))
    }
}

#[derive(Default)]
pub struct AdminClientApi;

#[OpenApi]
impl AdminClientApi {
    /// Read an OAuth client
    ///
    /// Never its secret. Needs the `admin` scope.
    #[oai(
        path = "/admin/clients/:client_id",
        method = "get",
        operation_id = "read_client_admin_clients__client_id__get"
    )]
    async fn read_client(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        client_id: Path<String>,
    ) -> Result<ClientResponse, ApiError<ClientErrors>> {
        match state.accounts.client(&client_id).await? {
            Some(client) => Ok(ClientResponse::Ok(Json(client.into()))),
            None => Err(Error::ClientNotFound.into()),
        }
    }

    /// Remove an OAuth client
    ///
    /// It can no longer sign anyone in. Needs the `admin` scope.
    #[oai(
        path = "/admin/clients/:client_id",
        method = "delete",
        operation_id = "delete_client_admin_clients__client_id__delete"
    )]
    async fn delete_client(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        client_id: Path<String>,
    ) -> Result<DeletedResponse, ApiError<ClientErrors>> {
        if state.accounts.remove_client(&client_id).await? {
            Ok(DeletedResponse::NoContent)
        } else {
            Err(Error::ClientNotFound.into())
        }
    }
}
