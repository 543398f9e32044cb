//! The `users` table and its queries: one way each to create a user ([`create`]), to
//! change one ([`change`]) and to delete one, and the lookups.

use chrono::Utc;
use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, OnConflict},
    ActiveValue::{NotSet, Set},
    Condition, DatabaseTransaction, DbBackend, QueryOrder, QueryTrait, SqlErr, Statement,
    UpdateMany,
};

use super::{
    built_once::{built_once, BuiltOnce},
    email_key, retrying_conflicts, session, totp, Db,
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub hashed_password: String,
    pub disabled: bool,
    /// Carried in every access token; bumping it revokes all tokens issued before.
    pub token_version: i64,
    /// The scopes the user holds, space separated (`me items`).
    pub scopes: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// The look-alike key of the username (see `accounts::usernames`), unique; `None` for a
    /// user whose name looks like an older user's, or not recorded yet.
    #[sea_orm(unique)]
    pub username_skeleton: Option<String>,
    /// The address as compared (`migration::email_key`: trimmed, lowercased), unique; `None`
    /// without an address, or for a user whose address an older user already had when
    /// addresses became unique (see `gatehouse user list`).
    #[sea_orm(unique)]
    pub email_key: Option<String>,
    /// Whether the user proved `email` is theirs (a verification or a reset link).
    pub email_verified: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_one = "super::totp::Entity")]
    SecondFactor,
}

impl Related<totp::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SecondFactor.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub hashed_password: String,
    pub disabled: bool,
    /// The name's look-alike key (`users.username_skeleton`), unique; `None` leaves it to
    /// be recorded when the server next starts.
    pub username_skeleton: Option<String>,
    /// The scopes the user holds, space separated; `None`: the schema's default
    /// (`me items`).
    pub scopes: Option<String>,
}

/// Creates `new` (in a transaction, or not) unless its username, look-alike key or
/// address (compared as [`email_key`]) is taken; returns whether it was created. The
/// UNIQUE indexes decide, so of two creations that race, one is created and the other
/// finds the name or address taken ([`taken`] says which). A new address is unverified.
pub async fn create(db: &impl ConnectionTrait, new: NewUser) -> Result<bool, DbErr> {
    let now = Utc::now();
    let user = ActiveModel {
        id: NotSet,
        username: Set(new.username),
        email_key: Set(new.email.as_deref().map(email_key)),
        email_verified: Set(false),
        email: Set(new.email),
        full_name: Set(new.full_name),
        hashed_password: Set(new.hashed_password),
        disabled: Set(new.disabled),
        token_version: Set(0),
        scopes: new.scopes.map_or(NotSet, Set),
        created_at: Set(now),
        updated_at: Set(now),
        username_skeleton: Set(new.username_skeleton),
    };
    // No conflict target: a taken name, look-alike key or address alike.
    let inserted = Entity::insert(user)
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// What another user already has of `new`, which [`create`] did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The username, or its look-alike key.
    Name,
    /// The address, compared as [`email_key`].
    Email,
}

/// Which of `new`'s unique values another user has: the name first.
pub async fn taken(db: &impl ConnectionTrait, new: &NewUser) -> Result<Taken, DbErr> {
    let mut name = Condition::any().add(Column::Username.eq(new.username.as_str()));
    if let Some(key) = &new.username_skeleton {
        name = name.add(Column::UsernameSkeleton.eq(key.as_str()));
    }
    if Entity::find().filter(name).one(db).await?.is_some() {
        return Ok(Taken::Name);
    }
    let Some(email) = new.email.as_deref() else {
        return Ok(Taken::Name);
    };
    let held = Entity::find()
        .filter(Column::EmailKey.eq(email_key(email)))
        .one(db)
        .await?;
    Ok(if held.is_some() {
        Taken::Email
    } else {
        Taken::Name
    })
}

/// The user named `username`, in a transaction (or on any connection).
pub async fn find_in(db: &impl ConnectionTrait, username: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Username.eq(username))
        .one(db)
        .await
}

/// Whether `e` is the refusal of an address another user has (`users.email_key`'s UNIQUE
/// index).
pub fn is_email_taken(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains("email_key"))
}

/// The user named `username`.
pub async fn find(db: &Db, username: &str) -> Result<Option<Model>, DbErr> {
    // No stored name has a NUL (PostgreSQL text cannot hold one, and it would answer an
    // error, not "no such row"), so such a lookup is simply "no user".
    if username.contains('\0') {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(backend, find_sql(backend), [username.into()]);
    Entity::find().from_raw_sql(stmt).one(db).await
}

/// What a login needs of a user: the user and their second factor, if any.
pub type Login = (Model, Option<totp::Model>);

/// The user named `sent`, else the one named `alternative` (another form of the same
/// name), with their second factor, in one query: a login reads nothing else before its
/// password check.
/// The user with row id `id`.
pub async fn find_by_id(db: &Db, id: i32) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn find_for_login(
    db: &Db,
    sent: &str,
    alternative: &str,
) -> Result<Option<Login>, DbErr> {
    // No stored name has a NUL (see `find`).
    let names: Vec<&str> = [sent, alternative]
        .into_iter()
        .filter(|name| !name.contains('\0'))
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let mut found = Entity::find()
        .filter(Column::Username.is_in(names))
        .find_also_related(totp::Entity)
        .all(db)
        .await?;
    found.sort_by_key(|(u, _)| u.username != sent);
    Ok(found.into_iter().next())
}

/// [`find`]'s SQL (see [`built_once`]). Usernames are unique, so it needs no `LIMIT`.
pub(super) fn find_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltOnce = BuiltOnce::new();
    built_once(&SQL, backend, || {
        Entity::find()
            .filter(Column::Username.eq(""))
            .build(backend)
            .sql
    })
}

/// Every user, by username.
pub async fn list(db: &Db) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_asc(Column::Username).all(db).await
}

/// Changes to one user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub hashed_password: Option<String>,
    pub scopes: Option<String>,
    /// Revokes every token and session issued so far, as a disable or a new password
    /// also does.
    pub revoke_tokens: bool,
}

/// Applies `changes` to `username`; a disable, a new password or `revoke_tokens` also
/// revokes every token and session issued before. Returns whether the user exists.
pub async fn change(db: &Db, username: &str, changes: UserChanges) -> Result<bool, DbErr> {
    let (update, revoke) = update_statement(username, changes);
    if !revoke {
        return Ok(update.exec(db).await?.rows_affected > 0);
    }
    // The user's row first, then the sessions (see `session`'s comment on lock order), in
    // one transaction: no refresh token may outlive the access tokens the bump revoked.
    retrying_conflicts(db, |txn| {
        let (update, username) = (update.clone(), username.to_owned());
        Box::pin(async move {
            let exists = update.exec(txn).await?.rows_affected > 0;
            session::end_all_of(txn, &username).await?;
            Ok(exists)
        })
    })
    .await
}

/// Applies `changes` that revoke nothing (a profile) to `username` in `txn`; returns
/// whether the user exists.
pub async fn change_in(
    txn: &DatabaseTransaction,
    username: &str,
    changes: UserChanges,
) -> Result<bool, DbErr> {
    let (update, _) = update_statement(username, changes);
    Ok(update.exec(txn).await?.rows_affected > 0)
}

/// Sets a new password hash and revokes every token and session issued before. Returns
/// whether the user exists.
pub async fn change_password(
    db: &Db,
    username: &str,
    hashed_password: String,
) -> Result<bool, DbErr> {
    let changes = UserChanges {
        hashed_password: Some(hashed_password),
        ..UserChanges::default()
    };
    change(db, username, changes).await
}

/// Enables or disables a user; disabling also revokes every token and session.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<bool, DbErr> {
    let changes = UserChanges {
        disabled: Some(disabled),
        ..UserChanges::default()
    };
    change(db, username, changes).await
}

/// Revokes every token and session issued to `username` so far.
pub async fn revoke_tokens(db: &Db, username: &str) -> Result<bool, DbErr> {
    let changes = UserChanges {
        revoke_tokens: true,
        ..UserChanges::default()
    };
    change(db, username, changes).await
}

/// The one statement that applies `changes` to `username`, and whether it revokes (bumps
/// `token_version`).
pub(super) fn update_statement(username: &str, changes: UserChanges) -> (UpdateMany<Entity>, bool) {
    let revoke = changes.revoke_tokens
        || changes.disabled == Some(true)
        || changes.hashed_password.is_some();
    let mut update = Entity::update_many()
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Username.eq(username));
    if let Some(email) = changes.email {
        let key = email.as_deref().map(email_key);
        // Another address is unverified until proven; the same one stays as it was.
        let verified = Expr::case(
            Expr::col(Column::EmailKey).eq(key.clone()),
            Expr::col(Column::EmailVerified),
        )
        .finally(false);
        update = update
            .col_expr(Column::EmailVerified, verified.into())
            .col_expr(Column::EmailKey, Expr::value(key))
            .col_expr(Column::Email, Expr::value(email));
    }
    if let Some(full_name) = changes.full_name {
        update = update.col_expr(Column::FullName, Expr::value(full_name));
    }
    if let Some(disabled) = changes.disabled {
        update = update.col_expr(Column::Disabled, Expr::value(disabled));
    }
    if let Some(hash) = changes.hashed_password {
        update = update.col_expr(Column::HashedPassword, Expr::value(hash));
    }
    if let Some(scopes) = changes.scopes {
        update = update.col_expr(Column::Scopes, Expr::value(scopes));
    }
    if revoke {
        update = update.col_expr(Column::TokenVersion, Expr::col(Column::TokenVersion).add(1));
    }
    (update, revoke)
}

/// Replaces an outdated hash after a successful login, without revoking tokens.
/// Only if the hash is still `old`: a concurrent password change wins.
pub async fn upgrade_password_hash(db: &Db, id: i32, old: &str, new: String) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::HashedPassword, Expr::value(new))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::HashedPassword.eq(old))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes `username`; returns whether the user existed.
pub async fn delete(db: &Db, username: &str) -> Result<bool, DbErr> {
    // The sessions first, in the one lock order, rather than by the foreign key's
    // cascade, whose order is the table's.
    retrying_conflicts(db, |txn| {
        let username = username.to_owned();
        Box::pin(async move {
            session::end_all_of(txn, &username).await?;
            let deleted = Entity::delete_many()
                .filter(Column::Username.eq(&username))
                .exec(txn)
                .await?;
            Ok(deleted.rows_affected > 0)
        })
    })
    .await
}
