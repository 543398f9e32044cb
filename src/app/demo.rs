//! `serve --demo`: the FastAPI tutorial's users, so its examples work as written.

use crate::{
    accounts::{usernames, Scopes},
    db::{
        user::{self, NewUser},
        user_email, Db,
    },
};

/// The tutorial's users: johndoe/secret (its published hash) and disabled alice/secret2,
/// holding every scope; each unless a user of that name, or one that looks like it, exists.
pub(super) async fn seed_demo_users(db: &Db) -> Result<(), sea_orm::DbErr> {
    let demo = [
        NewUser {
            username: "johndoe".to_owned(),
            email: Some("johndoe@example.com".to_owned()),
            full_name: Some("John Doe".to_owned()),
            hashed_password: "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc".to_owned(),
            disabled: false,
            username_skeleton: Some(usernames::look_alike_key("johndoe")),
            scopes: Some(Scopes::all().to_string()),
        },
        NewUser {
            username: "alice".to_owned(),
            email: Some("alice@example.com".to_owned()),
            full_name: Some("Alice Wonderson".to_owned()),
            hashed_password: "$argon2id$v=19$m=65536,t=3,p=4$SGHSvpimTShkAsnQIG44jg$H/oGZa5X2ZGEn3OVecVvoNHDGyw4baYXQDDe6VfII7Y".to_owned(),
            disabled: true,
            username_skeleton: Some(usernames::look_alike_key("alice")),
            scopes: Some(Scopes::all().to_string()),
        },
    ];
    for demo_user in demo {
        let name = demo_user.username.clone();
        if user::create(db, demo_user).await? {
            // The tutorial's users log in under REQUIRE_VERIFIED_EMAIL too.
            user_email::mark_verified(db, &name).await?;
            tracing::info!(user = %name, "seeded demo user");
        }
    }
    Ok(())
}
