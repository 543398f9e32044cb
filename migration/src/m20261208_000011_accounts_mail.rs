use std::collections::HashSet;

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, Statement},
};

/// Accounts people run themselves: signup, email verification and password reset.
///
/// - `users.email_key`: the address as compared ([`email_key`]: trimmed, lowercased),
///   under a UNIQUE index, so the database itself refuses a second user with the same
///   address however the requests race. Existing users get theirs here, the oldest user
///   first; a later user whose address another already holds keeps it without a key
///   (grandfathered: `gatehouse user list` reports them), so duplicates that exist never
///   stop the migration.
/// - `users.email_verified`: whether the user proved the address is theirs; `false` for
///   existing users.
/// - `email_tokens`: the links of verification and reset mails, stored as SHA-256 only,
///   each with its kind, user, the key of the address it went to, expiry and when it was
///   used.
/// - `mail_outbox`: every mail, written in the transaction of the change that causes it
///   and delivered by a sender on some replica (claimed by a lease in `next_attempt_at`);
///   the text is dropped once delivered.
#[derive(DeriveMigrationName)]
pub struct Migration;

const EMAIL_KEY_INDEX: &str = "idx_users_email_key";
const OUTBOX_DUE_INDEX: &str = "idx_mail_outbox_due";
const TOKENS_USER_INDEX: &str = "idx_email_tokens_user";

/// How an address is compared: trimmed and lowercased (Unicode), so `Ann@Example.com`
/// and `ann@example.com` are one address. The application keys new addresses with this
/// same function.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement, and cannot add a UNIQUE one.
        for column in [
            text_null(Users::EmailKey).to_owned(),
            boolean(Users::EmailVerified).default(false).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        record_email_keys(manager.get_connection()).await?;
        manager
            .create_index(
                Index::create()
                    .name(EMAIL_KEY_INDEX)
                    .table(Users::Table)
                    .col(Users::EmailKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailTokens::Table)
                    .col(pk_auto(EmailTokens::Id))
                    .col(string_len_uniq(EmailTokens::TokenHash, 64))
                    .col(string_len(EmailTokens::Kind, 16))
                    .col(integer(EmailTokens::UserId))
                    .col(text(EmailTokens::EmailKey))
                    .col(big_integer(EmailTokens::TokenVersion))
                    .col(big_integer(EmailTokens::CreatedAt))
                    .col(big_integer(EmailTokens::ExpiresAt))
                    .col(big_integer_null(EmailTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailTokens::Table, EmailTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(TOKENS_USER_INDEX)
                    .table(EmailTokens::Table)
                    .col(EmailTokens::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .col(pk_auto(MailOutbox::Id))
                    .col(text(MailOutbox::Recipient))
                    .col(string_len(MailOutbox::Kind, 16))
                    .col(text_null(MailOutbox::Message))
                    .col(big_integer(MailOutbox::CreatedAt))
                    .col(integer(MailOutbox::Attempts).default(0))
                    .col(big_integer(MailOutbox::NextAttemptAt))
                    .col(string_len_null(MailOutbox::ClaimedBy, 32))
                    .col(text_null(MailOutbox::LastError))
                    .col(big_integer_null(MailOutbox::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_DUE_INDEX)
                    .table(MailOutbox::Table)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EmailTokens::Table).to_owned())
            .await?;
        // The index first: SQLite cannot drop an indexed column.
        manager
            .drop_index(
                Index::drop()
                    .name(EMAIL_KEY_INDEX)
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Users::EmailVerified, Users::EmailKey] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Gives each existing user with an address its key, oldest user first; a user whose
/// address an older user holds keeps none.
async fn record_email_keys(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all(Statement::from_string(
            backend,
            "SELECT id, email FROM users WHERE email IS NOT NULL ORDER BY id",
        ))
        .await?;
    let mut held = HashSet::new();
    for row in rows {
        let id: i32 = row.try_get("", "id")?;
        let email: String = row.try_get("", "email")?;
        let key = email_key(&email);
        if key.is_empty() || !held.insert(key.clone()) {
            continue;
        }
        let update = Query::update()
            .table(Users::Table)
            .value(Users::EmailKey, key)
            .and_where(Expr::col(Users::Id).eq(id))
            .to_owned();
        db.execute(backend.build(&update)).await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    EmailKey,
    EmailVerified,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Id,
    TokenHash,
    Kind,
    UserId,
    EmailKey,
    TokenVersion,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Recipient,
    Kind,
    Message,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    ClaimedBy,
    LastError,
    DeliveredAt,
}
