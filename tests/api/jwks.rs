//! EdDSA tokens and `/.well-known/jwks.json` (SPEC §8): who signs, what is published, and
//! that verification accepts only the configured algorithm and a published `kid`.

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use gatehouse::{
    auth::{keys::Ed25519Key, token::JwtAlgorithm},
    db::signing_key,
};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::{json, Value};

use crate::helpers::{
    forge, forge_with, now, parts, segment, spawn_app, spawn_app_with, start, TestApp, TestDb,
};

/// RFC 8410 §10.3's example key; its public key is RFC 8410 §10.1's.
pub const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";

pub async fn spawn_eddsa_app() -> TestApp {
    spawn_app_with(|s| s.jwt_algorithm = JwtAlgorithm::EdDsa).await
}

/// The app's JWKS response: status, body, `Cache-Control`.
pub async fn jwks(app: &TestApp) -> (u16, Value, Vec<Option<String>>) {
    parts(
        app.get("/.well-known/jwks.json", None).await,
        &["cache-control"],
    )
    .await
}

/// The DER inside a PKCS#8 PEM, as jsonwebtoken's `EncodingKey::from_ed_der` wants it.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// A token with exactly this header and claims, signed with Ed25519 key `pem`.
pub fn sign_eddsa(header: &Value, claims: &Value, pem: &str) -> String {
    forge_with(
        header,
        claims,
        &EncodingKey::from_ed_der(&pem_der(pem)),
        Algorithm::EdDSA,
    )
}

/// The private key the app signs with now (the only stored one).
pub async fn stored_pem(app: &TestApp) -> (String, String) {
    let rows = signing_key::all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    (rows[0].kid.clone(), rows[0].private_key.clone())
}

/// Claims that johndoe's own login would carry.
pub async fn johndoe_claims(app: &TestApp) -> Value {
    let uid = gatehouse::db::user::find(&app.db, "johndoe")
        .await
        .unwrap()
        .unwrap()
        .id;
    json!({"sub": "johndoe", "uid": uid, "exp": now() + 600, "iat": now(), "ver": 0,
           "scope": "me items"})
}

pub async fn me_status(app: &TestApp, token: &str) -> (u16, Value, Vec<Option<String>>) {
    parts(app.me(token).await, &["www-authenticate"]).await
}

pub fn invalid_token() -> (u16, Value, Vec<Option<String>>) {
    (
        401,
        json!({"detail": "Could not validate credentials"}),
        vec![Some(
            "Bearer scope=\"me\", error=\"invalid_token\"".to_owned(),
        )],
    )
}

#[tokio::test]
async fn under_hs256_tokens_keep_pyjwts_header_and_no_key_is_published() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    assert_eq!(
        jwks(&app).await,
        (
            200,
            json!({"keys": []}),
            vec![Some("public, max-age=300".to_owned())]
        )
    );
    assert!(signing_key::all(&app.db).await.unwrap().is_empty());
}

#[tokio::test]
async fn eddsa_tokens_name_the_published_key_that_verifies_them() {
    let app = spawn_app_with(|s| {
        s.jwt_algorithm = JwtAlgorithm::EdDsa;
        s.jwks_max_age_secs = 120;
    })
    .await;
    let token = app.token("johndoe", "secret").await;
    let (status, body, headers) = jwks(&app).await;
    assert_eq!(status, 200);
    assert_eq!(headers, [Some("public, max-age=120".to_owned())]);
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    let x = keys[0]["x"].as_str().unwrap();
    assert_eq!(
        keys[0],
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"})
    );
    assert_eq!(
        segment(&token, 0),
        json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})
    );
    // The header's exact bytes: alg, typ, kid in that order.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#).as_bytes()
    );
    // A resource server that has only the JWKS verifies the token.
    let set: JwkSet = serde_json::from_value(body.clone()).unwrap();
    let key = DecodingKey::from_jwk(set.find(kid).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "johndoe");
    // The kid is the RFC 7638 thumbprint of the published key.
    assert_eq!(
        set.find(kid)
            .unwrap()
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        kid
    );
    assert_eq!(me_status(&app, &token).await.0, 200);
}

#[tokio::test]
async fn the_documented_resource_server_verifies_a_token_with_only_the_jwks_url() {
    let app = spawn_eddsa_app().await;
    let login = app.login_with_scope("johndoe", "secret", "me items").await;
    let token = login["access_token"].as_str().unwrap();
    let jwks_url = app.url("/.well-known/jwks.json");
    let claims = crate::jwks_snippet::verify(&jwks_url, token, Algorithm::EdDSA)
        .await
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.scope.as_str()),
        ("johndoe", "me items")
    );
    assert_eq!(claims.exp, segment(token, 1)["exp"].as_u64().unwrap());
    // And it refuses what gatehouse refuses: another key under the published kid.
    let (kid, _) = stored_pem(&app).await;
    let forged = sign_eddsa(
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
        &johndoe_claims(&app).await,
        &Ed25519Key::generate().to_pem(),
    );
    assert!(
        crate::jwks_snippet::verify(&jwks_url, &forged, Algorithm::EdDSA)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn eddsa_key_is_generated_once_and_shared_by_restarts() {
    key_is_generated_once_and_shared_by_restarts(JwtAlgorithm::EdDsa).await;
}

/// Under `algorithm`, two starts on one database publish the same single generated key,
/// and a token of the first is valid on the second.
pub async fn key_is_generated_once_and_shared_by_restarts(algorithm: JwtAlgorithm) {
    let test_db = TestDb::new().await;
    let mut settings = test_db.settings();
    settings.jwt_algorithm = algorithm;
    let first = start(settings.clone()).await;
    let token = first.token("johndoe", "secret").await;
    let second = start(settings).await;
    assert_eq!(jwks(&first).await.1, jwks(&second).await.1);
    assert_eq!(me_status(&second, &token).await.0, 200);
    assert_eq!(signing_key::all(&second.db).await.unwrap().len(), 1);
}

#[tokio::test]
async fn eddsa_key_can_come_from_a_pem_file_and_then_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed25519.pem");
    std::fs::write(&path, RFC8410_PEM).unwrap();
    let app = spawn_app_with(|s| {
        s.jwt_algorithm = JwtAlgorithm::EdDsa;
        s.jwt_private_key_file = Some(path);
    })
    .await;
    let expected = Ed25519Key::from_pem(RFC8410_PEM).unwrap();
    let body = jwks(&app).await.1;
    assert_eq!(body["keys"][0]["kid"], expected.kid());
    // RFC 8410 §10.1's public key.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(body["keys"][0]["x"].as_str().unwrap())
            .unwrap(),
        hex::decode("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1").unwrap()
    );
    let token = app.token("johndoe", "secret").await;
    assert_eq!(segment(&token, 0)["kid"], expected.kid());
    assert_eq!(me_status(&app, &token).await.0, 200);
    assert!(signing_key::all(&app.db).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_valid_token_signed_with_the_stored_key_is_accepted() {
    // The control for the refusals below: the same construction, done right, passes.
    let app = spawn_eddsa_app().await;
    let (kid, pem) = stored_pem(&app).await;
    let token = sign_eddsa(
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
        &johndoe_claims(&app).await,
        &pem,
    );
    assert_eq!(me_status(&app, &token).await.0, 200);
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret_is_refused_in_every_form() {
    let app = spawn_eddsa_app().await;
    let body = jwks(&app).await.1;
    let jwk = &body["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let x = jwk["x"].as_str().unwrap();
    let raw = URL_SAFE_NO_PAD.decode(x).unwrap();
    // SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 §4), as a PEM.
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki)
    );
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let secrets: Vec<Vec<u8>> = vec![
        raw.clone(),
        x.as_bytes().to_vec(),
        pem.clone().into_bytes(),
        pem.trim_end().as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
        spki,
    ];
    for secret in secrets {
        let claims = johndoe_claims(&app).await;
        let key = EncodingKey::from_secret(&secret);
        let token = forge_with(&header, &claims, &key, Algorithm::HS256);
        assert_eq!(me_status(&app, &token).await, invalid_token());
    }
}

#[tokio::test]
async fn alg_none_unknown_kid_another_key_and_no_kid_are_refused() {
    let app = spawn_eddsa_app().await;
    let (kid, pem) = stored_pem(&app).await;
    let claims = johndoe_claims(&app).await;
    let stranger = Ed25519Key::generate();
    let stranger_pem = stranger.to_pem();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let forged = [
        // alg none, with and without a signature.
        none.clone(),
        format!("{none}c2ln"),
        // A key of its own under its own kid: unknown.
        sign_eddsa(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": stranger.kid()}),
            &claims,
            &stranger_pem,
        ),
        // Another key under the published kid.
        sign_eddsa(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
            &claims,
            &stranger_pem,
        ),
        // The right key, but no kid.
        sign_eddsa(&json!({"alg": "EdDSA", "typ": "JWT"}), &claims, &pem),
        // The right key, a kid that is not a published one.
        sign_eddsa(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": "made-up"}),
            &claims,
            &pem,
        ),
        // An HS256 token with the service's HS256 test secret: not the configured algorithm.
        forge(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            crate::helpers::TEST_SECRET,
        ),
    ];
    for token in forged {
        assert_eq!(me_status(&app, &token).await, invalid_token(), "{token}");
    }
}

#[tokio::test]
async fn under_hs256_an_eddsa_token_is_refused() {
    let app = spawn_app().await;
    let key = Ed25519Key::generate();
    let token = sign_eddsa(
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid()}),
        &johndoe_claims(&app).await,
        &key.to_pem(),
    );
    assert_eq!(me_status(&app, &token).await, invalid_token());
}
