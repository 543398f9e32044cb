//! The `oauth_clients` table: the applications that may use "Sign in with gatehouse".
//! A client's redirect URIs are stored as a JSON array of strings, exactly as registered;
//! a confidential client's secret only as its hash (see `auth::client_secret`).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{entity::prelude::*, ActiveValue::Set, QueryOrder};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub client_name: String,
    /// The SHA-256 of a confidential client's secret, hex; `None` for a public client.
    pub secret_hash: Option<String>,
    pub confidential: bool,
    /// Trusted by the service: its users are not asked for consent.
    pub first_party: bool,
    /// A JSON array of strings ([`Model::redirect_uris`]).
    pub redirect_uris: String,
    /// A JSON array of strings ([`Model::post_logout_redirect_uris`]).
    pub post_logout_redirect_uris: String,
    /// The scopes the client may ask for, space separated.
    pub scopes: String,
    pub created_at: ChronoDateTimeUtc,
}

/// Never prints the secret's hash.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("oauth_client::Model")
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name)
            .field("confidential", &self.confidential)
            .field("first_party", &self.first_party)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// The redirect URIs, as registered.
    pub fn redirect_uris(&self) -> Result<Vec<String>, DbErr> {
        uri_list(&self.redirect_uris)
    }

    /// The post-logout redirect URIs, as registered.
    pub fn post_logout_redirect_uris(&self) -> Result<Vec<String>, DbErr> {
        uri_list(&self.post_logout_redirect_uris)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A client to store, its values checked.
pub struct NewClient {
    pub client_id: String,
    pub client_name: String,
    pub secret_hash: Option<String>,
    pub confidential: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Space separated.
    pub scopes: String,
}

/// Stores `new`; returns it as stored.
pub async fn insert(db: &impl ConnectionTrait, new: NewClient) -> Result<Model, DbErr> {
    let row = Model {
        client_id: new.client_id,
        client_name: new.client_name,
        secret_hash: new.secret_hash,
        confidential: new.confidential,
        first_party: new.first_party,
        redirect_uris: uri_text(&new.redirect_uris)?,
        post_logout_redirect_uris: uri_text(&new.post_logout_redirect_uris)?,
        scopes: new.scopes,
        // PostgreSQL keeps microseconds: what is returned here is what is read back.
        created_at: now(),
    };
    let active = ActiveModel {
        client_id: Set(row.client_id.clone()),
        client_name: Set(row.client_name.clone()),
        secret_hash: Set(row.secret_hash.clone()),
        confidential: Set(row.confidential),
        first_party: Set(row.first_party),
        redirect_uris: Set(row.redirect_uris.clone()),
        post_logout_redirect_uris: Set(row.post_logout_redirect_uris.clone()),
        scopes: Set(row.scopes.clone()),
        created_at: Set(row.created_at),
    };
    Entity::insert(active).exec_without_returning(db).await?;
    Ok(row)
}

/// The client `client_id`, if registered.
pub async fn find(db: &impl ConnectionTrait, client_id: &str) -> Result<Option<Model>, DbErr> {
    // PostgreSQL text cannot hold NUL, and no client id has one.
    if client_id.contains('\0') {
        return Ok(None);
    }
    Entity::find_by_id(client_id.to_owned()).one(db).await
}

/// Every client, oldest first (ties by client id).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::ClientId)
        .all(db)
        .await
}

/// Deletes the client `client_id`; returns whether it existed.
pub async fn delete(db: &impl ConnectionTrait, client_id: &str) -> Result<bool, DbErr> {
    if client_id.contains('\0') {
        return Ok(false);
    }
    let deleted = Entity::delete_by_id(client_id.to_owned()).exec(db).await?;
    Ok(deleted.rows_affected > 0)
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn uri_text(uris: &[String]) -> Result<String, DbErr> {
    serde_json::to_string(uris).map_err(|e| DbErr::Custom(format!("encoding URIs: {e}")))
}

fn uri_list(text: &str) -> Result<Vec<String>, DbErr> {
    serde_json::from_str(text).map_err(|e| {
        DbErr::Type(format!(
            "oauth_clients: a URI list is not a JSON array: {e}"
        ))
    })
}
