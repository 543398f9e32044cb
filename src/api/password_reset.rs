//! Password reset: `POST /forgot-password`, `GET /reset-password` (the page a mail's link
//! opens) and `POST /reset-password` (its form, or an API client).

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    param::Query,
    payload::Json,
    types::{Example, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::SecretString;

use super::{
    json_body::JsonBody,
    json_or_form::JsonOrForm,
    pages::{Page, PageOr},
    verification::{
        accepted, error_page, AcceptedResponse, MailRequest, MailRequestErrors, Message,
    },
    AppState,
};
use crate::{
    accounts::AccountsError,
    api::error::{ApiError, ErrorStatuses},
};

/// A new password, with the token of a reset mail's link.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ResetPassword {
    /// The `token` of the link.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub token: String,
    /// At least `PASSWORD_MIN_LENGTH` characters (default 8), at most 1024 bytes, and not
    /// one of the most common passwords.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: Password,
}

impl Example for ResetPassword {
    fn example() -> Self {
        Self {
            token: "q1b0XnWf3a2uWvUo2fH2aAq1b0XnWf3a2uWvUo2fH2a".to_owned(),
            password: Password("correct horse battery staple".to_owned()),
        }
    }
}

/// What `POST /reset-password` answers on success.
pub const PASSWORD_CHANGED: &str =
    "Password changed. Every session of the account has ended: sign in with the new password.";

pub enum ResetErrors {}
impl ErrorStatuses for ResetErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Invalid or expired token: unknown, used, expired, or dead because the password \
             changed since it was sent",
        ),
        (
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time",
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body larger than 16 KiB",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is missing or of the wrong type, or the password is \
             too short (`string_too_short`), too long or too common",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable, or password hashing saturated; retry later",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error; the cause is logged, never shown",
        ),
    ];
}

#[derive(ApiResponse)]
pub enum ResetResponse {
    /// The password is changed; every session and token of the user has ended.
    #[oai(status = 200)]
    Ok(Json<Message>),
}

#[derive(Default)]
pub struct PasswordResetApi;

#[OpenApi]
impl PasswordResetApi {
    /// Ask for a password reset mail
    ///
    /// Sends a link to choose a new password to `email` if an enabled account has it. The
    /// answer is the same, and as fast, whether or not one does; at most
    /// `MAIL_PER_ADDRESS_PER_HOUR` mails go to one address in an hour.
    #[oai(
        path = "/forgot-password",
        method = "post",
        operation_id = "forgot_password_forgot_password_post"
    )]
    async fn forgot_password(
        &self,
        state: Data<&AppState>,
        body: JsonBody<MailRequest>,
    ) -> Result<AcceptedResponse, ApiError<MailRequestErrors>> {
        state.accounts.forgot_password(&body.0.email).await?;
        Ok(accepted())
    }

    /// The page of a reset link
    ///
    /// What a person's browser opens from the mail: a form for the new password (it posts
    /// to `POST /reset-password`). Opening it spends nothing. An invalid or expired link
    /// gets a page saying so (400).
    #[oai(
        path = "/reset-password",
        method = "get",
        operation_id = "reset_password_page_reset_password_get"
    )]
    async fn reset_password_page(
        &self,
        state: Data<&AppState>,
        /// The `token` of the mail's link.
        token: Query<Option<String>>,
    ) -> Page {
        let token = token.0.unwrap_or_default();
        match state.accounts.reset_token_is_live(&token).await {
            Ok(true) => Page::reset_password(StatusCode::OK, &token, min_length(&state), &[]),
            Ok(false) => Page::invalid_link(),
            Err(e) => error_page(&e),
        }
    }

    /// Reset a password
    ///
    /// Spends the token of a reset mail and sets the new password: every session and
    /// token of the user ends, and the address counts as verified. Takes JSON `{"token",
    /// "password"}`; the page of the link posts the same fields as a form and gets a page
    /// back.
    #[oai(
        path = "/reset-password",
        method = "post",
        operation_id = "reset_password_reset_password_post"
    )]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        body: JsonOrForm<ResetPassword>,
    ) -> Result<PageOr<ResetResponse>, ApiError<ResetErrors>> {
        let form_token = body.form_field("token").unwrap_or_default().to_owned();
        let (reset, form) = match body {
            JsonOrForm::Json(reset) => (reset, false),
            JsonOrForm::Form {
                parsed: Ok(reset), ..
            } => (reset, true),
            JsonOrForm::Form { parsed: Err(_), .. } => {
                let problems = ["Type the new password.".to_owned()];
                return Ok(PageOr::Page(Page::reset_password(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &form_token,
                    min_length(&state),
                    &problems,
                )));
            }
        };
        let password = SecretString::from(reset.password.0);
        match state.accounts.reset_password(&reset.token, password).await {
            Ok(()) if form => Ok(PageOr::Page(Page::message(
                StatusCode::OK,
                "Your password is changed",
                PASSWORD_CHANGED,
            ))),
            Ok(()) => Ok(PageOr::Api(ResetResponse::Ok(Json(Message {
                message: PASSWORD_CHANGED.to_owned(),
            })))),
            Err(AccountsError::WeakPassword { violation, .. }) if form => {
                let problems = [capitalized(&violation.to_string())];
                Ok(PageOr::Page(Page::reset_password(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &reset.token,
                    min_length(&state),
                    &problems,
                )))
            }
            Err(e) if form => Ok(PageOr::Page(error_page(&e))),
            Err(e) => Err(e.into()),
        }
    }
}

fn min_length(state: &AppState) -> usize {
    state.accounts.rules().password_policy.min_length
}

fn capitalized(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
