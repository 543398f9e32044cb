//! Tokens speak for a user, not for a username: a name deleted and created again is
//! another user, and the old user's tokens do not read the new account.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{parts, segment, spawn_app};

#[tokio::test]
async fn token_of_a_deleted_user_is_refused_after_the_name_is_created_again() {
    let app = spawn_app().await;
    let old_token = app.token("johndoe", "secret").await;
    assert_eq!(app.me(&old_token).await.status(), 200);
    let uid = segment(&old_token, 1)["uid"].clone();
    assert!(uid.is_i64(), "{uid}");

    // Deleted with SQL, as an operator with only the database at hand would; the service's
    // own delete is `DELETE /admin/users/{username}` (tests/api/admin.rs).
    app.db
        .execute_unprepared("DELETE FROM users WHERE username = 'johndoe'")
        .await
        .unwrap();
    gatehouse::db::user::create(
        &app.db,
        gatehouse::db::user::NewUser {
            username: "johndoe".to_owned(),
            email: Some("new-johndoe@example.com".to_owned()),
            full_name: Some("Another John".to_owned()),
            // The tutorial's hash of "secret": same name, same password, same version 0.
            hashed_password: "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc".to_owned(),
            disabled: false,
            username_skeleton: None,
            scopes: None,
        },
    )
    .await
    .unwrap();

    let (status, body, headers) = parts(app.me(&old_token).await, &["www-authenticate"]).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Could not validate credentials"}))
    );
    let challenge = headers[0].clone().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // The new user's own token works, and carries a new id.
    let new_token = app.token("johndoe", "secret").await;
    assert_ne!(segment(&new_token, 1)["uid"], uid);
    let (status, body, _) = parts(app.me(&new_token).await, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["email"], "new-johndoe@example.com");
}

#[tokio::test]
async fn token_without_a_user_id_is_refused() {
    let app = spawn_app().await;
    let t = crate::helpers::now();
    // What gatehouse issued before tokens carried `uid`: valid signature, current version.
    let legacy = crate::helpers::forge(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": "johndoe", "exp": t + 600, "iat": t, "ver": 0}),
        crate::helpers::TEST_SECRET,
    );
    let (status, body, _) = parts(app.me(&legacy).await, &[]).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Could not validate credentials"}))
    );
}
