//! Email verification: `GET /verify-email` (the page a mail's link opens), `POST
//! /verify-email` (its button, or an API client) and `POST /request-verify-token`.

use poem::{http::StatusCode, web::Data};
use poem_openapi::{param::Query, payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{
    json_body::JsonBody,
    json_or_form::JsonOrForm,
    pages::{Page, PageOr},
    users::User,
    AppState,
};
use crate::{
    accounts::AccountsError,
    api::error::{ApiError, ErrorStatuses},
};

/// A token from a mail's link.
#[derive(Debug, Object)]
#[oai(example)]
pub struct VerifyToken {
    /// The `token` of the link.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub token: String,
}

impl Example for VerifyToken {
    fn example() -> Self {
        Self {
            token: "q1b0XnWf3a2uWvUo2fH2aAq1b0XnWf3a2uWvUo2fH2a".to_owned(),
        }
    }
}

/// An address to send a mail to.
#[derive(Debug, Object)]
#[oai(example)]
pub struct MailRequest {
    #[oai(validator(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub email: String,
}

impl Example for MailRequest {
    fn example() -> Self {
        Self {
            email: "johndoe@example.com".to_owned(),
        }
    }
}

/// What happened, in words.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Message {
    pub message: String,
}

impl Example for Message {
    fn example() -> Self {
        Self {
            message: MAIL_ACCEPTED.to_owned(),
        }
    }
}

/// The one answer of `/request-verify-token` and `/forgot-password`, whatever the address.
pub const MAIL_ACCEPTED: &str = "If an account has this address, a mail is on its way to it.";

const BODY: [(StatusCode, &str); 3] = [
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
        "Validation Error: a field is missing, of the wrong type or too long",
    ),
];
const INTERNAL: (StatusCode, &str) = (
    StatusCode::INTERNAL_SERVER_ERROR,
    "Internal Server Error; the cause is logged, never shown",
);

pub enum VerifyErrors {}
impl ErrorStatuses for VerifyErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Invalid or expired token: unknown, used, expired, or the user's address changed",
        ),
        BODY[0],
        BODY[1],
        BODY[2],
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable; retry later",
        ),
        INTERNAL,
    ];
}

pub enum MailRequestErrors {}
impl ErrorStatuses for MailRequestErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        BODY[0],
        BODY[1],
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: `email` is missing, of the wrong type, too long, or not an \
             address mail can be sent to",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Mail is not configured (no `SMTP_URL`), or storage unavailable; retry later",
        ),
        INTERNAL,
    ];
}

#[derive(ApiResponse)]
pub enum VerifiedResponse {
    /// The address is verified; the user as stored.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[derive(ApiResponse)]
pub enum AcceptedResponse {
    /// Accepted: the same answer whether or not an account has the address.
    #[oai(status = 202)]
    Accepted(Json<Message>),
}

#[derive(Default)]
pub struct VerifyEmailApi;

#[OpenApi]
impl VerifyEmailApi {
    /// The page of a verification link
    ///
    /// What a person's browser opens from the mail: a page whose button confirms the
    /// address (it posts the token to `POST /verify-email`). Opening it spends nothing,
    /// so mail scanners that follow links do no harm. An invalid or expired link gets a
    /// page saying so (400).
    #[oai(
        path = "/verify-email",
        method = "get",
        operation_id = "verify_email_page_verify_email_get"
    )]
    async fn verify_email_page(
        &self,
        state: Data<&AppState>,
        /// The `token` of the mail's link.
        token: Query<Option<String>>,
    ) -> Page {
        let token = token.0.unwrap_or_default();
        match state.accounts.verification_address(&token).await {
            Ok(Some(email)) => Page::verify_email(&token, &email),
            Ok(None) => Page::invalid_link(),
            Err(e) => error_page(&e),
        }
    }

    /// Verify an email address
    ///
    /// Spends the token of a verification mail and marks the address verified. Takes
    /// JSON `{"token"}`; the page of the link posts the same field as a form and gets a
    /// page back.
    #[oai(
        path = "/verify-email",
        method = "post",
        operation_id = "verify_email_verify_email_post"
    )]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        body: JsonOrForm<VerifyToken>,
    ) -> Result<PageOr<VerifiedResponse>, ApiError<VerifyErrors>> {
        let form = matches!(body, JsonOrForm::Form { .. });
        let token = match body {
            JsonOrForm::Json(t) => t.token,
            JsonOrForm::Form { parsed, .. } => match parsed {
                Ok(t) => t.token,
                Err(_) => return Ok(PageOr::Page(Page::invalid_link())),
            },
        };
        match state.accounts.verify_email(&token).await {
            Ok(user) if form => Ok(PageOr::Page(Page::message(
                StatusCode::OK,
                "Your address is verified",
                &format!(
                    "{} is confirmed as the address of your account. You can close this page.",
                    user.email.unwrap_or_default()
                ),
            ))),
            Ok(user) => Ok(PageOr::Api(VerifiedResponse::Ok(Json(user.into())))),
            Err(e) if form => Ok(PageOr::Page(error_page(&e))),
            Err(e) => Err(e.into()),
        }
    }

    /// Ask for another verification mail
    ///
    /// Sends a new verification link to `email` if an enabled account has it unverified.
    /// The answer is the same, and as fast, whether or not one does; at most
    /// `MAIL_PER_ADDRESS_PER_HOUR` mails go to one address in an hour.
    #[oai(
        path = "/request-verify-token",
        method = "post",
        operation_id = "request_verify_token_request_verify_token_post"
    )]
    async fn request_verify_token(
        &self,
        state: Data<&AppState>,
        body: JsonBody<MailRequest>,
    ) -> Result<AcceptedResponse, ApiError<MailRequestErrors>> {
        state.accounts.request_verification(&body.0.email).await?;
        Ok(accepted())
    }
}

pub(super) fn accepted() -> AcceptedResponse {
    AcceptedResponse::Accepted(Json(Message {
        message: MAIL_ACCEPTED.to_owned(),
    }))
}

/// The page for a failure of an operation a page's form posted to.
pub(super) fn error_page(e: &AccountsError) -> Page {
    match e {
        AccountsError::InvalidEmailToken => Page::invalid_link(),
        other => {
            tracing::warn!(error = %other, "answering a page's form");
            Page::unavailable()
        }
    }
}
