//! The OAuth clients of "Sign in with gatehouse": the admin API (`/admin/clients/`,
//! `/admin/clients/{client_id}`, scope `admin`) and `gatehouse client add|list|remove`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse::{accounts::clients, db::oauth_client};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    cli::gatehouse,
    helpers::{parts, spawn_app, start, TestApp, TestDb},
};

/// A token of the demo's johndoe, who holds `admin`, with exactly `scope`.
async fn token_with(app: &TestApp, scope: &str) -> String {
    app.login_with_scope("johndoe", "secret", scope).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let (status, body, _) = parts(req.send().await.unwrap(), &[]).await;
    (status, body)
}

/// `body` without `client_secret`, and that secret.
fn split_secret(mut body: Value) -> (Value, Option<String>) {
    let secret = body
        .as_object_mut()
        .unwrap()
        .remove("client_secret")
        .map(|s| s.as_str().unwrap().to_owned());
    (body, secret)
}

fn is_random_base64url(value: &Value, bytes: usize) -> bool {
    value
        .as_str()
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .is_some_and(|decoded| decoded.len() == bytes)
}

#[tokio::test]
async fn admin_registers_public_and_confidential_clients_and_shows_the_secret_once() {
    let app = spawn_app().await;
    let admin = token_with(&app, "admin").await;

    // A public client, with the default scopes; no secret in the answer.
    let (status, public) = send(
        &app,
        Method::POST,
        "/admin/clients/",
        &admin,
        Some(json!({"client_name": "Notes SPA",
                    "redirect_uris": ["https://notes.example/callback"],
                    "confidential": false, "first_party": false})),
    )
    .await;
    assert_eq!(status, 201, "{public}");
    assert!(is_random_base64url(&public["client_id"], 16), "{public}");
    assert!(public["created_at"].is_string(), "{public}");
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        public,
        json!({"client_id": public_id, "client_name": "Notes SPA", "confidential": false,
               "first_party": false, "redirect_uris": ["https://notes.example/callback"],
               "post_logout_redirect_uris": [],
               "scopes": ["openid", "profile", "email", "me", "items"],
               "created_at": public["created_at"]}),
        "no client_secret for a public client"
    );

    // A confidential client: its secret in this answer only. The URIs are kept exactly as
    // given (the flow compares them exactly): no lowercased host, no dropped default port.
    let uris = [
        "https://Notes.Example:443/cb?b=2&a=1",
        "http://127.0.0.1:8765/cb",
    ];
    let (status, created) = send(
        &app,
        Method::POST,
        "/admin/clients/",
        &admin,
        Some(json!({"client_name": "Notes server", "redirect_uris": uris,
                    "confidential": true, "first_party": true,
                    "scopes": ["openid", "me", "openid"],
                    "post_logout_redirect_uris": ["https://notes.example/"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (confidential, secret) = split_secret(created.clone());
    let secret = secret.expect("a confidential client gets its secret");
    assert!(is_random_base64url(&json!(secret), 32), "{secret}");
    let id = confidential["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        confidential,
        json!({"client_id": id, "client_name": "Notes server", "confidential": true,
               "first_party": true, "redirect_uris": uris,
               "post_logout_redirect_uris": ["https://notes.example/"],
               "scopes": ["openid", "me"], "created_at": confidential["created_at"]})
    );

    // Never again: not when read, not in the list.
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("/admin/clients/{id}"),
            &admin,
            None
        )
        .await,
        (200, confidential.clone())
    );
    let resp = app
        .client
        .get(app.url("/admin/clients/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(&secret) && !text.contains("client_secret"),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list, json!([public, confidential]), "oldest first");

    // Stored as its SHA-256 only.
    let row = oauth_client::find(&app.db, &id).await.unwrap().unwrap();
    assert_eq!(
        row.secret_hash.as_deref(),
        Some(hex::encode(Sha256::digest(secret.as_bytes())).as_str())
    );
    assert!(oauth_client::find(&app.db, &public_id)
        .await
        .unwrap()
        .unwrap()
        .secret_hash
        .is_none());
    // The secret authenticates the client, the public client none.
    let client = clients::authenticate_client(&app.db, &id, Some(&secret))
        .await
        .unwrap();
    assert_eq!(client.client_id, id);
    assert!(clients::authenticate_client(&app.db, &id, None)
        .await
        .is_err());

    // Removed: 204, then 404 to every operation on it.
    let resp = app
        .client
        .delete(app.url(&format!("/admin/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    let not_found = (404, json!({"detail": "Client not found"}));
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(
            send(
                &app,
                method.clone(),
                &format!("/admin/clients/{id}"),
                &admin,
                None
            )
            .await,
            not_found,
            "{method}"
        );
    }
    assert!(clients::authenticate_client(&app.db, &id, Some(&secret))
        .await
        .is_err());
    assert_eq!(
        send(&app, Method::GET, "/admin/clients/", &admin, None).await,
        (200, json!([public]))
    );
    assert_eq!(
        send(&app, Method::GET, "/admin/clients/nobody", &admin, None).await,
        not_found
    );
}

#[tokio::test]
async fn client_registration_refuses_every_invalid_field_with_a_fastapi_shaped_422() {
    let app = spawn_app().await;
    let admin = token_with(&app, "admin").await;
    let create = |changes: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let mut body = json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"],
                                  "confidential": false, "first_party": false});
            for (key, value) in changes.as_object().unwrap() {
                body[key] = value.clone();
            }
            send(app, Method::POST, "/admin/clients/", admin, Some(body)).await
        }
    };
    let value_error = |field: &str, message: &str| {
        json!({"detail": [{"type": "value_error", "loc": ["body", field],
                           "msg": format!("Value error, {message}"), "input": null,
                           "ctx": {"error": message}}]})
    };
    let https_only = "must use https; http only on a loopback host (127.0.0.1, [::1], localhost)";
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("https://app.example/{i}"))
        .collect();
    let scopes = "me items admin introspect openid profile email";
    for (changes, field, message) in [
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "redirect_uris",
            format!("\"http://app.example/cb\" {https_only}"),
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb", "http://10.0.0.1/cb"]}),
            "redirect_uris",
            format!("\"http://10.0.0.1/cb\" {https_only}"),
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#done"]}),
            "redirect_uris",
            "\"https://app.example/cb#done\" must not have a fragment".to_owned(),
        ),
        (
            json!({"redirect_uris": ["/callback"]}),
            "redirect_uris",
            "\"/callback\" must be an absolute https URL (or http on a loopback host)".to_owned(),
        ),
        (
            json!({"redirect_uris": ["com.example.app:/callback"]}),
            "redirect_uris",
            "\"com.example.app:/callback\" must be an absolute https URL (or http on a \
             loopback host)"
                .to_owned(),
        ),
        (
            json!({"redirect_uris": ["https://me:pw@app.example/cb"]}),
            "redirect_uris",
            "\"https://me:pw@app.example/cb\" must not have user information".to_owned(),
        ),
        (
            json!({"redirect_uris": ["https://app.example/a b"]}),
            "redirect_uris",
            "\"https://app.example/a b\" must not contain spaces, control characters or \
             backslashes"
                .to_owned(),
        ),
        (
            json!({"redirect_uris": []}),
            "redirect_uris",
            "redirect_uris must have 1 to 10 URIs".to_owned(),
        ),
        (
            json!({"redirect_uris": eleven}),
            "redirect_uris",
            "redirect_uris must have 1 to 10 URIs".to_owned(),
        ),
        (
            json!({"post_logout_redirect_uris": ["http://app.example/"]}),
            "post_logout_redirect_uris",
            format!("\"http://app.example/\" {https_only}"),
        ),
        (
            json!({"post_logout_redirect_uris": eleven}),
            "post_logout_redirect_uris",
            "post_logout_redirect_uris must have at most 10 URIs".to_owned(),
        ),
        (
            json!({"scopes": ["me", "root"]}),
            "scopes",
            format!("unknown scope \"root\"; a client's scopes are: {scopes}"),
        ),
        (
            json!({"scopes": ["openid profile"]}),
            "scopes",
            format!("unknown scope \"openid profile\"; a client's scopes are: {scopes}"),
        ),
        (
            json!({"scopes": []}),
            "scopes",
            "a client needs at least one scope".to_owned(),
        ),
        (
            json!({"client_name": "   "}),
            "client_name",
            "client_name must be 1 to 100 characters, not blank".to_owned(),
        ),
    ] {
        assert_eq!(
            create(changes.clone()).await,
            (422, value_error(field, &message)),
            "{changes}"
        );
    }

    // What the schema says is answered as pydantic would.
    assert_eq!(
        create(json!({"client_name": ""})).await,
        (
            422,
            json!({"detail": [{"type": "string_too_short", "loc": ["body", "client_name"],
                               "msg": "String should have at least 1 character", "input": "",
                               "ctx": {"min_length": 1}}]})
        )
    );
    let (status, body) = create(json!({"client_name": "n".repeat(101)})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_too_long");
    let (status, body) = create(json!({"client_name": "a\u{7}b"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_pattern_mismatch");
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/admin/clients/",
            &admin,
            Some(json!({}))
        )
        .await,
        (
            422,
            json!({"detail": [
                {"type": "missing", "loc": ["body", "client_name"], "msg": "Field required", "input": null},
                {"type": "missing", "loc": ["body", "redirect_uris"], "msg": "Field required", "input": null},
                {"type": "missing", "loc": ["body", "confidential"], "msg": "Field required", "input": null},
                {"type": "missing", "loc": ["body", "first_party"], "msg": "Field required", "input": null},
            ]})
        )
    );
    let (status, body) = create(json!({"redirect_uris": "https://app.example/cb"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "list_type");

    assert_eq!(
        send(&app, Method::GET, "/admin/clients/", &admin, None).await,
        (200, json!([])),
        "nothing refused was registered"
    );

    // The loopback hosts of RFC 8252 may use http; any host may use https.
    for uri in [
        "http://127.0.0.1:8000/cb",
        "http://[::1]:8000/cb",
        "http://localhost/cb",
        "https://localhost:8443/",
    ] {
        let (status, body) = create(json!({"redirect_uris": [uri]})).await;
        assert_eq!(status, 201, "{uri}: {body}");
        assert_eq!(body["redirect_uris"], json!([uri]));
    }
    let ten: Vec<String> = (0..10)
        .map(|i| format!("https://app.example/{i}"))
        .collect();
    let (status, body) = create(
        json!({"redirect_uris": ten, "post_logout_redirect_uris": ten,
                                       "scopes": ["me", "items", "admin", "introspect",
                                                  "openid", "profile", "email"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn client_operations_need_the_admin_scope() {
    let app = spawn_app().await;
    let not_admin = token_with(&app, "me items").await;
    let body = json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"],
                      "confidential": false, "first_party": false});
    for (method, path) in [
        (Method::GET, "/admin/clients/"),
        (Method::POST, "/admin/clients/"),
        (Method::GET, "/admin/clients/some-client"),
        (Method::DELETE, "/admin/clients/some-client"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&not_admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            parts(resp, &["www-authenticate"]).await,
            (
                401,
                json!({"detail": "Not enough permissions"}),
                vec![Some(
                    r#"Bearer scope="admin", error="insufficient_scope""#.to_owned()
                )]
            ),
            "{method} {path}"
        );
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            parts(resp, &["www-authenticate"]).await,
            (
                401,
                json!({"detail": "Not authenticated"}),
                vec![Some("Bearer".to_owned())]
            ),
            "{method} {path} without a token"
        );
    }
    let admin = token_with(&app, "admin").await;
    assert_eq!(
        send(&app, Method::GET, "/admin/clients/", &admin, None).await,
        (200, json!([])),
        "nothing was registered"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn clients_registered_from_the_cli_are_served_by_the_api_and_removed_by_the_cli() {
    let dir = TestDb::new().await;
    let add = gatehouse(
        &dir,
        &[
            "client",
            "add",
            "Notes server",
            "--redirect-uri",
            "https://notes.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--confidential",
            "--first-party",
            "--scope",
            "openid",
            "--scope",
            "me",
            "--post-logout-redirect-uri",
            "https://notes.example/",
        ],
        "",
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let out = text(&add.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let id = lines[0].strip_prefix("client_id: ").unwrap().to_owned();
    let secret = lines[1].strip_prefix("client_secret: ").unwrap().to_owned();
    assert!(is_random_base64url(&json!(id), 16), "{id}");
    assert!(is_random_base64url(&json!(secret), 32), "{secret}");
    assert_eq!(
        text(&add.stderr),
        "The client secret is shown only this once: gatehouse keeps only its hash.\n"
    );

    let public = gatehouse(
        &dir,
        &[
            "client",
            "add",
            "CLI tool",
            "--redirect-uri",
            "http://[::1]/cb",
        ],
        "",
    );
    assert!(public.status.success(), "{}", text(&public.stderr));
    let public_out = text(&public.stdout);
    let public_id = public_out
        .strip_prefix("client_id: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap()
        .to_owned();
    assert_eq!(text(&public.stderr), "", "no secret, no note");

    // The API serves what the CLI registered, never the secret, which authenticates it.
    let app = start(dir.settings()).await;
    let admin = token_with(&app, "admin").await;
    let (status, body) = send(
        &app,
        Method::GET,
        &format!("/admin/clients/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"client_id": id, "client_name": "Notes server", "confidential": true,
               "first_party": true,
               "redirect_uris": ["https://notes.example/cb", "http://127.0.0.1:9000/cb"],
               "post_logout_redirect_uris": ["https://notes.example/"],
               "scopes": ["openid", "me"], "created_at": body["created_at"]})
    );
    let client = clients::authenticate_client(&app.db, &id, Some(&secret))
        .await
        .unwrap();
    assert_eq!(client.client_name, "Notes server");

    let list = gatehouse(&dir, &["client", "list"], "");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listing = text(&list.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 7, "{listing}");
    assert!(lines[0].starts_with("client_id "), "{listing}");
    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        columns,
        [
            id.as_str(),
            "confidential",
            "skipped",
            "openid",
            "me",
            "Notes",
            "server"
        ],
        "{listing}"
    );
    assert_eq!(
        &lines[2..5],
        [
            "  redirect_uri: https://notes.example/cb",
            "  redirect_uri: http://127.0.0.1:9000/cb",
            "  post_logout_redirect_uri: https://notes.example/",
        ]
    );
    let columns: Vec<&str> = lines[5].split_whitespace().collect();
    assert_eq!(columns[..3], [public_id.as_str(), "public", "asked"]);
    assert_eq!(lines[6], "  redirect_uri: http://[::1]/cb");
    assert!(!listing.contains(&secret));

    let remove = gatehouse(&dir, &["client", "remove", &id], "");
    assert!(remove.status.success(), "{}", text(&remove.stderr));
    assert_eq!(text(&remove.stdout), format!("removed client {id}\n"));
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("/admin/clients/{id}"),
            &admin,
            None
        )
        .await,
        (404, json!({"detail": "Client not found"}))
    );
    let again = gatehouse(&dir, &["client", "remove", &id], "");
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr),
        format!("error: no client with id \"{id}\"\n")
    );
}

#[tokio::test]
async fn client_add_refuses_what_the_api_refuses() {
    let dir = TestDb::new().await;
    for (args, message) in [
        (
            &[
                "client",
                "add",
                "App",
                "--redirect-uri",
                "http://app.example/cb",
            ][..],
            "error: \"http://app.example/cb\" must use https; http only on a loopback host \
             (127.0.0.1, [::1], localhost)\n",
        ),
        (
            &[
                "client",
                "add",
                "App",
                "--redirect-uri",
                "https://a.example/#x",
            ][..],
            "error: \"https://a.example/#x\" must not have a fragment\n",
        ),
        (
            &[
                "client",
                "add",
                "App",
                "--redirect-uri",
                "https://a.example/",
                "--scope",
                "root",
            ][..],
            "error: unknown scope \"root\"; a client's scopes are: me items admin introspect \
             openid profile email\n",
        ),
        (
            &["client", "add", "", "--redirect-uri", "https://a.example/"][..],
            "error: client_name must be 1 to 100 characters, not blank\n",
        ),
    ] {
        let out = gatehouse(&dir, args, "");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), message, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
    // No redirect URI at all: clap's usage error.
    let out = gatehouse(&dir, &["client", "add", "App"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--redirect-uri <URI>"));

    let list = gatehouse(&dir, &["client", "list"], "");
    assert_eq!(
        text(&list.stdout).lines().count(),
        1,
        "only the header: nothing was registered"
    );
}

#[test]
fn a_client_id_that_starts_with_a_hyphen_is_removed_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::sqlite_url(dir.path());
    let out =
        crate::helpers::gatehouse_cli(&url, &["client", "remove", "-_starts-with-a-hyphen"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no client with id \"-_starts-with-a-hyphen\""),
        "read as the id, not as an option: {stderr}"
    );
}
