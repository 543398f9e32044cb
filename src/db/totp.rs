//! The `totp_factors` and `totp_recovery_codes` tables: each user's second factor.
//!
//! Everything that must hold between concurrent requests, on any replica, is one
//! conditional statement: a code's step is spent only if it is later than the last one
//! spent, a recovery code only if it is still unused, an enrolment confirmed only if the
//! secret that was checked is still the pending one.

use sea_orm::{
    entity::prelude::*, sea_query::Expr, ActiveValue::Set, Condition, QuerySelect, TransactionTrait,
};

use super::session;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    /// The active factor's secret, base32; `None` while only an enrolment is pending.
    pub secret: Option<String>,
    /// Unix seconds, as are the others.
    pub enabled_at: Option<i64>,
    /// The last step a code was accepted for.
    pub last_used_step: Option<i64>,
    /// An enrolment awaiting its first code.
    pub pending_secret: Option<String>,
    pub pending_since: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The recovery codes' table.
pub mod recovery_code {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "totp_recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i32,
        /// HMAC-SHA256 of the code, hex.
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// User `user_id`'s factor row, if they have started enrolling.
pub async fn find(db: &DatabaseConnection, user_id: i32) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(user_id).one(db).await
}

/// Whether each of `user_ids` has an active factor; the ids that do.
pub async fn enabled_among(db: &DatabaseConnection, user_ids: &[i32]) -> Result<Vec<i32>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::UserId)
        .filter(Column::UserId.is_in(user_ids.iter().copied()))
        .filter(Column::Secret.is_not_null())
        .into_tuple()
        .all(db)
        .await
}

/// Records `secret` as user `user_id`'s pending enrolment, replacing an earlier pending
/// one and leaving an active factor as it is.
pub async fn start_enrolment(
    db: &DatabaseConnection,
    user_id: i32,
    secret: String,
    now: i64,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        user_id: Set(user_id),
        secret: Set(None),
        enabled_at: Set(None),
        last_used_step: Set(None),
        pending_secret: Set(Some(secret)),
        pending_since: Set(Some(now)),
    };
    Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(Column::UserId)
                .update_columns([Column::PendingSecret, Column::PendingSince])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Turns user `user_id`'s pending enrolment `secret` on, with `step` (its first code's)
/// spent, replaces their recovery codes with `code_hashes`, and ends their sessions other
/// than `keep_session`: one transaction. `false` if `secret` is no longer pending (a newer
/// enrolment, or a concurrent confirmation, came first).
pub async fn confirm(
    db: &DatabaseConnection,
    user_id: i32,
    secret: &str,
    step: i64,
    now: i64,
    code_hashes: Vec<String>,
    keep_session: Option<&str>,
) -> Result<bool, DbErr> {
    let secret = secret.to_owned();
    let keep_session = keep_session.map(str::to_owned);
    db.transaction::<_, bool, DbErr>(|txn| {
        Box::pin(async move {
            let confirmed = Entity::update_many()
                .col_expr(Column::Secret, Expr::value(secret.clone()))
                .col_expr(Column::EnabledAt, Expr::value(now))
                .col_expr(Column::LastUsedStep, Expr::value(step))
                .col_expr(Column::PendingSecret, Expr::value(Option::<String>::None))
                .col_expr(Column::PendingSince, Expr::value(Option::<i64>::None))
                .filter(Column::UserId.eq(user_id))
                .filter(Column::PendingSecret.eq(secret))
                .exec(txn)
                .await?;
            if confirmed.rows_affected == 0 {
                return Ok(false);
            }
            store_codes(txn, user_id, code_hashes).await?;
            session::end_others_of(txn, user_id, keep_session.as_deref()).await?;
            Ok(true)
        })
    })
    .await
    .map_err(transaction_error)
}

/// Records that a code of `step` was accepted for user `user_id`'s active factor
/// `secret`; `false` if a code of `step` or a later step was accepted already (a replay),
/// or the factor changed meanwhile.
pub async fn spend_step(
    db: &DatabaseConnection,
    user_id: i32,
    secret: &str,
    step: i64,
) -> Result<bool, DbErr> {
    let spent = Entity::update_many()
        .col_expr(Column::LastUsedStep, Expr::value(step))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Secret.eq(secret))
        .filter(
            Condition::any()
                .add(Column::LastUsedStep.is_null())
                .add(Column::LastUsedStep.lt(step)),
        )
        .exec(db)
        .await?;
    Ok(spent.rows_affected == 1)
}

/// Spends user `user_id`'s unused recovery code `code_hash`; `false` if they have no
/// such unused code.
pub async fn spend_recovery_code(
    db: &DatabaseConnection,
    user_id: i32,
    code_hash: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let spent = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(code_hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(spent.rows_affected == 1)
}

/// How many unused recovery codes user `user_id` has.
pub async fn codes_left(db: &DatabaseConnection, user_id: i32) -> Result<u64, DbErr> {
    recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(db)
        .await
}

/// Replaces user `user_id`'s recovery codes with `code_hashes`, if their factor is
/// active; `false` if it is not.
pub async fn replace_codes(
    db: &DatabaseConnection,
    user_id: i32,
    code_hashes: Vec<String>,
) -> Result<bool, DbErr> {
    db.transaction::<_, bool, DbErr>(|txn| {
        Box::pin(async move {
            let active = Entity::find_by_id(user_id)
                .filter(Column::Secret.is_not_null())
                .one(txn)
                .await?
                .is_some();
            if active {
                store_codes(txn, user_id, code_hashes).await?;
            }
            Ok(active)
        })
    })
    .await
    .map_err(transaction_error)
}

async fn store_codes(
    txn: &impl ConnectionTrait,
    user_id: i32,
    code_hashes: Vec<String>,
) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    recovery_code::Entity::insert_many(code_hashes.into_iter().map(|code_hash| {
        recovery_code::ActiveModel {
            user_id: Set(user_id),
            code_hash: Set(code_hash),
            used_at: Set(None),
        }
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Turns `username`'s second factor off and revokes every session and token of theirs
/// (bumping `token_version`), in one transaction: the user's row first, then the factor,
/// then the sessions (the lock order of `session`). Returns whether the user exists.
pub async fn reset(db: &super::Db, username: &str) -> Result<bool, DbErr> {
    super::retrying_conflicts(db, |txn| {
        let username = username.to_owned();
        Box::pin(async move {
            use super::user;
            let bumped = user::Entity::update_many()
                .col_expr(
                    user::Column::TokenVersion,
                    Expr::col(user::Column::TokenVersion).add(1),
                )
                .filter(user::Column::Username.eq(&username))
                .exec(txn)
                .await?;
            let found = user::Entity::find()
                .filter(user::Column::Username.eq(&username))
                .one(txn)
                .await?;
            let (1.., Some(user)) = (bumped.rows_affected, found) else {
                return Ok(false);
            };
            remove(txn, user.id).await?;
            session::end_all_of(txn, &username).await?;
            Ok(true)
        })
    })
    .await
}

/// Removes user `user_id`'s factor, pending enrolment and recovery codes; returns whether
/// they had a factor or an enrolment.
pub async fn remove(txn: &impl ConnectionTrait, user_id: i32) -> Result<bool, DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    let removed = Entity::delete_by_id(user_id).exec(txn).await?;
    Ok(removed.rows_affected > 0)
}

fn transaction_error(e: sea_orm::TransactionError<DbErr>) -> DbErr {
    match e {
        sea_orm::TransactionError::Connection(e) | sea_orm::TransactionError::Transaction(e) => e,
    }
}
