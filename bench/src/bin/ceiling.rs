//! The two ceilings gatehouse's `GET /users/me/` is measured against, as bare poem servers:
//!
//! - `ceiling jwt <addr>`: `GET /users/me/` checks the bearer token with gatehouse's own
//!   [`TokenAuthority`] (same key from `SECRET_KEY`, same rules) and answers the same JSON
//!   as gatehouse, but looks nothing up: the framework + JWT ceiling.
//! - `ceiling hello <addr>`: `GET /` answers `hello`: the transport ceiling.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use gatehouse::auth::{
    server_secret::ServerSecret,
    token::{unix_now, TokenAuthority, TokenSettings},
};
use poem::{
    get, handler,
    http::{header, StatusCode},
    listener::TcpListener,
    web::{Data, Json},
    EndpointExt, IntoResponse, Request, Response, Route, Server,
};
use serde::Serialize;

/// The body gatehouse answers for the demo user johndoe.
#[derive(Serialize)]
struct User {
    username: String,
    email: &'static str,
    full_name: &'static str,
    disabled: bool,
}

#[handler]
fn users_me(req: &Request, tokens: Data<&Arc<TokenAuthority>>) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    match token.map(|t| tokens.validate_access_token(t, unix_now())) {
        Some(Ok(claims)) => Json(User {
            username: claims.sub,
            email: "johndoe@example.com",
            full_name: "John Doe",
            disabled: false,
        })
        .into_response(),
        _ => (StatusCode::UNAUTHORIZED, "Could not validate credentials").into_response(),
    }
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(Ok(addr))) = (args.get(1), args.get(2).map(|a| a.parse::<SocketAddr>()))
    else {
        eprintln!("usage: ceiling jwt|hello <addr>   (jwt reads SECRET_KEY)");
        return ExitCode::FAILURE;
    };
    let result = match mode.as_str() {
        "jwt" => {
            let key = std::env::var("SECRET_KEY").unwrap_or_default();
            let key = match ServerSecret::new(key.into_bytes()) {
                Ok(key) => key,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let tokens = Arc::new(TokenAuthority::new(
                &key,
                TokenSettings {
                    lifetime: Duration::from_secs(30 * 60),
                    ..Default::default()
                },
            ));
            let app = Route::new().at("/users/me/", get(users_me)).data(tokens);
            Server::new(TcpListener::bind(addr)).run(app).await
        }
        "hello" => {
            Server::new(TcpListener::bind(addr))
                .run(Route::new().at("/", get(hello)))
                .await
        }
        other => {
            eprintln!("unknown mode {other:?}; use jwt or hello");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
