//! RS256 tokens (SPEC §12): RSA keys generated, stored, published and rotated as EdDSA's
//! are (`jwks.rs`, `rotation.rs`), and validation that accepts only RS256 with a published
//! `kid`. Each algorithm keeps its own keys: one is never loaded under the other.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse::{
    app::App,
    auth::{
        keys::{Ed25519Key, RsaKey},
        token::JwtAlgorithm,
    },
    config::ServeArgs,
    db::signing_key,
};
use jsonwebtoken::{
    jwk::{JwkSet, ThumbprintHash},
    Algorithm, DecodingKey, EncodingKey, Validation,
};
use rsa::{
    pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _},
    pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding},
    BigUint, RsaPrivateKey, RsaPublicKey,
};
use serde_json::{json, Value};

use crate::{
    helpers::{
        forge, forge_with, gatehouse_command, output_within, segment, spawn_app, spawn_app_with,
        start, TestApp, TestDb,
    },
    jwks::{invalid_token, johndoe_claims, jwks, me_status, sign_eddsa, stored_pem},
};

async fn spawn_rs256_app() -> TestApp {
    spawn_app_with(|s| s.jwt_algorithm = JwtAlgorithm::Rs256).await
}

/// A token with exactly this header and claims, signed by `algorithm` (RS256, RS512,
/// PS256...) with the RSA key of PKCS#8 PEM `pem`.
fn sign_rsa(header: &Value, claims: &Value, pem: &str, algorithm: Algorithm) -> String {
    // jsonwebtoken takes an RSA private key as PKCS#1 DER.
    let der = RsaPrivateKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    forge_with(
        header,
        claims,
        &EncodingKey::from_rsa_der(der.as_bytes()),
        algorithm,
    )
}

/// The `n` and `e` of the one published key.
async fn published_n_e(app: &TestApp) -> (String, String, String) {
    let body = jwks(app).await.1;
    let key = &body["keys"][0];
    let text = |name: &str| key[name].as_str().unwrap().to_owned();
    (text("kid"), text("n"), text("e"))
}

#[tokio::test]
async fn rs256_tokens_name_the_published_rsa_key_that_verifies_them() {
    let app = spawn_app_with(|s| {
        s.jwt_algorithm = JwtAlgorithm::Rs256;
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
    let n = keys[0]["n"].as_str().unwrap();
    assert_eq!(
        keys[0],
        json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": kid, "alg": "RS256", "use": "sig"})
    );
    // A 2048-bit modulus, without a leading zero octet (RFC 7518 §6.3.1.1).
    let modulus = URL_SAFE_NO_PAD.decode(n).unwrap();
    assert_eq!((modulus.len(), modulus[0] >= 0x80), (256, true));
    // The header's exact bytes: alg, typ, kid in that order.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
        format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#).as_bytes()
    );
    // A resource server holding only the published n and e verifies the token.
    let key = DecodingKey::from_rsa_components(n, "AQAB").unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(
        (claims["sub"].as_str(), claims["scope"].is_string()),
        (Some("johndoe"), true)
    );
    // So does one that reads the JWKS as a set, and the kid is the RFC 7638 thumbprint.
    let set: JwkSet = serde_json::from_value(body.clone()).unwrap();
    let jwk = set.find(kid).unwrap();
    assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), kid);
    let key = DecodingKey::from_jwk(jwk).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_ok());
    assert_eq!(me_status(&app, &token).await.0, 200);
    // Stored as EdDSA's keys are: a PKCS#8 PEM, under its algorithm.
    let rows = signing_key::all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].algorithm.as_str(),
            rows[0].generation,
            rows[0].kid.as_str()
        ),
        ("RS256", 1, kid)
    );
    assert!(rows[0]
        .private_key
        .starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[tokio::test]
async fn the_documented_resource_server_verifies_rs256_tokens_with_only_the_jwks_url() {
    let app = spawn_rs256_app().await;
    let login = app.login_with_scope("johndoe", "secret", "me items").await;
    let token = login["access_token"].as_str().unwrap();
    let jwks_url = app.url("/.well-known/jwks.json");
    let claims = crate::jwks_snippet::verify(&jwks_url, token, Algorithm::RS256)
        .await
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.scope.as_str()),
        ("johndoe", "me items")
    );
    // Pinned to the configured algorithm: told EdDSA, it refuses the RS256 token.
    assert!(
        crate::jwks_snippet::verify(&jwks_url, token, Algorithm::EdDSA)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rs256_key_is_generated_once_and_shared_by_restarts() {
    crate::jwks::key_is_generated_once_and_shared_by_restarts(JwtAlgorithm::Rs256).await;
}

#[tokio::test]
async fn rs256_key_can_come_from_a_pem_file_pkcs8_or_pkcs1_and_then_nothing_is_stored() {
    let key = RsaKey::generate();
    let pkcs8 = key.to_pem();
    let private = RsaPrivateKey::from_pkcs8_pem(&pkcs8).unwrap();
    let pkcs1 = private.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    for pem in [pkcs8, pkcs1] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsa.pem");
        std::fs::write(&path, &pem).unwrap();
        let app = spawn_app_with(|s| {
            s.jwt_algorithm = JwtAlgorithm::Rs256;
            s.jwt_private_key_file = Some(path);
        })
        .await;
        let (kid, n, e) = published_n_e(&app).await;
        assert_eq!(
            (kid.as_str(), n.as_str(), e.as_str()),
            (key.kid(), key.public_n(), key.public_e())
        );
        let token = app.token("johndoe", "secret").await;
        assert_eq!(segment(&token, 0)["kid"], key.kid());
        assert_eq!(me_status(&app, &token).await.0, 200);
        assert!(signing_key::all(&app.db).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_key_file_of_another_algorithm_or_too_small_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024)
        .unwrap()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    let cases = [
        (
            JwtAlgorithm::Rs256,
            Ed25519Key::generate().to_pem(),
            "the PEM private key is not an RSA key in PKCS#8 or PKCS#1 form",
        ),
        (
            JwtAlgorithm::Rs256,
            small,
            "the RSA key has 1024 bits; RS256 needs at least 2048",
        ),
        (
            JwtAlgorithm::EdDsa,
            RsaKey::generate().to_pem(),
            "the PEM private key is not an Ed25519 key in PKCS#8 form",
        ),
    ];
    for (algorithm, pem, reason) in cases {
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let test_db = TestDb::new().await;
        let mut settings = test_db.settings();
        settings.jwt_algorithm = algorithm;
        settings.jwt_private_key_file = Some(path.clone());
        let serve = ServeArgs {
            bind: "127.0.0.1:0".parse().unwrap(),
            demo: false,
        };
        let Err(error) = App::build(&settings, &serve).await else {
            panic!("{algorithm:?} started with a wrong key file");
        };
        assert_eq!(
            error.to_string(),
            format!(
                "invalid --jwt-private-key-file {}: {reason}",
                path.display()
            )
        );
        // `migrate` checks the file too, before the first `serve`.
        let out = output_within(
            gatehouse_command()
                .arg("migrate")
                .env("DATABASE_URL", &test_db.url)
                .env("JWT_ALGORITHM", algorithm.as_str())
                .env("JWT_PRIVATE_KEY_FILE", &path),
            "",
            std::time::Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with(&format!("{reason}\n")),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_valid_rs256_token_signed_with_the_stored_key_is_accepted() {
    // The control for the refusals below: the same construction, done right, passes.
    let app = spawn_rs256_app().await;
    let (kid, pem) = stored_pem(&app).await;
    let token = sign_rsa(
        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &johndoe_claims(&app).await,
        &pem,
        Algorithm::RS256,
    );
    assert_eq!(me_status(&app, &token).await.0, 200);
}

#[tokio::test]
async fn hs256_with_the_rsa_public_key_as_secret_is_refused_in_every_form() {
    let app = spawn_rs256_app().await;
    let body = jwks(&app).await.1;
    let jwk = &body["keys"][0];
    let (kid, n, e) = published_n_e(&app).await;
    let public = RsaPublicKey::new(
        BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&n).unwrap()),
        BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&e).unwrap()),
    )
    .unwrap();
    let spki_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let secrets: Vec<Vec<u8>> = vec![
        URL_SAFE_NO_PAD.decode(&n).unwrap(),
        n.as_bytes().to_vec(),
        spki_pem.clone().into_bytes(),
        spki_pem.trim_end().as_bytes().to_vec(),
        public.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes(),
        public.to_public_key_der().unwrap().into_vec(),
        public.to_pkcs1_der().unwrap().into_vec(),
        jwk.to_string().into_bytes(),
    ];
    for secret in secrets {
        let claims = johndoe_claims(&app).await;
        let token = forge_with(
            &header,
            &claims,
            &EncodingKey::from_secret(&secret),
            Algorithm::HS256,
        );
        assert_eq!(me_status(&app, &token).await, invalid_token());
    }
}

#[tokio::test]
async fn alg_none_unknown_kid_another_key_no_kid_other_rsa_algorithms_and_eddsa_are_refused() {
    let app = spawn_rs256_app().await;
    let (kid, pem) = stored_pem(&app).await;
    let claims = johndoe_claims(&app).await;
    let stranger = RsaKey::generate();
    let stranger_pem = stranger.to_pem();
    let ed25519 = Ed25519Key::generate();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rs256 = |kid: Option<&str>, pem: &str| {
        let header = match kid {
            Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            None => json!({"alg": "RS256", "typ": "JWT"}),
        };
        sign_rsa(&header, &claims, pem, Algorithm::RS256)
    };
    let mut forged = vec![
        // alg none, with and without a signature.
        none.clone(),
        format!("{none}c2ln"),
        // A key of its own under its own kid: unknown.
        rs256(Some(stranger.kid()), &stranger_pem),
        // Another key under the published kid.
        rs256(Some(&kid), &stranger_pem),
        // The right key, but no kid, or a kid that is not a published one.
        rs256(None, &pem),
        rs256(Some("made-up"), &pem),
        // An HS256 token with the service's HS256 test secret: not the configured algorithm.
        forge(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            crate::helpers::TEST_SECRET,
        ),
        // EdDSA, under its own kid and under the published one.
        sign_eddsa(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": ed25519.kid()}),
            &claims,
            &ed25519.to_pem(),
        ),
        sign_eddsa(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
            &claims,
            &ed25519.to_pem(),
        ),
    ];
    // The right key and kid under the other RSA algorithms: only RS256 is accepted.
    for (alg, algorithm) in [
        ("RS384", Algorithm::RS384),
        ("RS512", Algorithm::RS512),
        ("PS256", Algorithm::PS256),
    ] {
        forged.push(sign_rsa(
            &json!({"alg": alg, "typ": "JWT", "kid": kid}),
            &claims,
            &pem,
            algorithm,
        ));
    }
    for token in forged {
        assert_eq!(me_status(&app, &token).await, invalid_token(), "{token}");
    }
}

#[tokio::test]
async fn under_hs256_and_eddsa_an_rs256_token_is_refused() {
    let key = RsaKey::generate();
    let hs256 = spawn_app().await;
    let token = sign_rsa(
        &json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()}),
        &johndoe_claims(&hs256).await,
        &key.to_pem(),
        Algorithm::RS256,
    );
    assert_eq!(me_status(&hs256, &token).await, invalid_token());
    let eddsa = spawn_app_with(|s| s.jwt_algorithm = JwtAlgorithm::EdDsa).await;
    let (ed_kid, _) = stored_pem(&eddsa).await;
    let claims = johndoe_claims(&eddsa).await;
    for kid in [key.kid(), ed_kid.as_str()] {
        let token = sign_rsa(
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            &claims,
            &key.to_pem(),
            Algorithm::RS256,
        );
        assert_eq!(me_status(&eddsa, &token).await, invalid_token());
    }
}

/// `gatehouse keys args...` on `db` with `env`; its stdout and stderr.
fn keys_command(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let out = output_within(
        gatehouse_command()
            .arg("keys")
            .args(args)
            .env("DATABASE_URL", &db.url)
            .envs(env.iter().copied()),
        "",
        std::time::Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn each_algorithm_keeps_its_own_keys_when_the_setting_changes() {
    let test_db = TestDb::new().await;
    let mut settings = test_db.settings();
    settings.jwt_algorithm = JwtAlgorithm::EdDsa;
    let eddsa = start(settings.clone()).await;
    let eddsa_token = eddsa.token("johndoe", "secret").await;
    let eddsa_jwks = jwks(&eddsa).await.1;

    // Switched to RS256: a first RSA key of its own; the Ed25519 key is neither published
    // nor accepted.
    settings.jwt_algorithm = JwtAlgorithm::Rs256;
    let rs256 = start(settings.clone()).await;
    let rs256_jwks = jwks(&rs256).await.1;
    assert_eq!(rs256_jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(rs256_jwks["keys"][0]["kty"], "RSA");
    assert_eq!(me_status(&rs256, &eddsa_token).await, invalid_token());
    let rs256_token = rs256.token("johndoe", "secret").await;
    assert_eq!(segment(&rs256_token, 0)["alg"], "RS256");
    let rows: Vec<(String, i32)> = signing_key::all(&rs256.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.algorithm, row.generation))
        .collect();
    assert_eq!(rows, [("EdDSA".to_owned(), 1), ("RS256".to_owned(), 1)]);

    // A rotation under RS256 makes an RSA key and leaves the Ed25519 key alone.
    let (out, _) = keys_command(&test_db, &[("JWT_ALGORITHM", "RS256")], &["rotate"]);
    assert!(out.starts_with("new key "), "{out}");
    let rows: Vec<(String, i32)> = signing_key::all(&rs256.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.algorithm, row.generation))
        .collect();
    assert_eq!(
        rows,
        [
            ("EdDSA".to_owned(), 1),
            ("RS256".to_owned(), 1),
            ("RS256".to_owned(), 2)
        ]
    );

    // Back to EdDSA: its own key again, and its tokens are good; RS256's are not.
    settings.jwt_algorithm = JwtAlgorithm::EdDsa;
    let again = start(settings).await;
    assert_eq!(jwks(&again).await.1, eddsa_jwks);
    assert_eq!(me_status(&again, &eddsa_token).await.0, 200);
    assert_eq!(me_status(&again, &rs256_token).await, invalid_token());

    // `keys list` lists the configured algorithm's keys; under HS256, both, with a note.
    let eddsa_kid = eddsa_jwks["keys"][0]["kid"].as_str().unwrap();
    let rsa_kid = rs256_jwks["keys"][0]["kid"].as_str().unwrap();
    let algs_listed = |list: &str| -> Vec<(String, String)> {
        list.lines()
            .skip(1)
            .map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                (columns[0].to_owned(), columns[2].to_owned())
            })
            .collect()
    };
    let (list, _) = keys_command(&test_db, &[("JWT_ALGORITHM", "RS256")], &["list"]);
    assert!(list.starts_with("kid "), "{list}");
    let listed = algs_listed(&list);
    assert_eq!(listed.len(), 2, "{list}");
    assert_eq!(listed[0], (rsa_kid.to_owned(), "RS256".to_owned()));
    assert!(listed.iter().all(|(_, alg)| alg == "RS256"));
    let (list, note) = keys_command(&test_db, &[], &["list"]);
    assert_eq!(
        note,
        "note: JWT_ALGORITHM is HS256; these keys sign nothing\n"
    );
    let listed = algs_listed(&list);
    assert_eq!(listed.len(), 3, "{list}");
    assert_eq!(listed[0], (eddsa_kid.to_owned(), "EdDSA".to_owned()));
}
