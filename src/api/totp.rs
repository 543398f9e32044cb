//! The signed-in user's second factor: `/users/me/totp` (enrol, read, turn off),
//! `/users/me/totp/confirm` and `/users/me/totp/recovery-codes`. All need the `me` scope;
//! changing the factor also needs a recent sign-in (see `accounts::totp`).

use poem::{http::StatusCode, web::Data};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, Error, ErrorStatuses},
    json_body::JsonBody,
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};
use crate::accounts::{AccountsError, Enrolment, TotpStatus};

/// A new TOTP enrolment: what the authenticator app needs. Shown once.
#[derive(Debug, Object)]
#[oai(rename = "TotpEnrolment", example)]
pub struct TotpEnrolmentBody {
    /// The secret (160 bits), base32 without padding, for typing it in.
    pub secret: String,
    /// `otpauth://totp/<issuer>:<username>?secret=…&issuer=…` (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
    /// The URI as a QR code, a self-contained SVG image, for scanning it.
    pub qr_svg: String,
}

impl From<Enrolment> for TotpEnrolmentBody {
    fn from(e: Enrolment) -> Self {
        Self {
            secret: e.secret,
            otpauth_uri: e.otpauth_uri,
            qr_svg: e.qr_svg,
        }
    }
}

impl Example for TotpEnrolmentBody {
    fn example() -> Self {
        Self {
            secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned(),
            otpauth_uri: "otpauth://totp/gatehouse:johndoe?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
                          &issuer=gatehouse&algorithm=SHA1&digits=6&period=30"
                .to_owned(),
            qr_svg: "<?xml version=\"1.0\" standalone=\"yes\"?><svg xmlns=\"http://www.w3.org/2000/svg\" …</svg>"
                .to_owned(),
        }
    }
}

/// The first code of a new enrolment, proving the authenticator has the secret.
#[derive(Debug, Object)]
#[oai(rename = "TotpConfirmation", example)]
pub struct TotpConfirmation {
    /// The 6-digit code the authenticator app shows now.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub code: String,
}

impl Example for TotpConfirmation {
    fn example() -> Self {
        Self {
            code: "492039".to_owned(),
        }
    }
}

/// A new set of recovery codes. Shown once: each works once, in place of a TOTP code.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RecoveryCodes {
    /// Ten codes of 50 random bits each, `xxxxx-xxxxx`.
    pub recovery_codes: Vec<String>,
}

impl Example for RecoveryCodes {
    fn example() -> Self {
        Self {
            recovery_codes: vec!["7k3qd-9xw2m".to_owned(), "m4r8t-0c6vh".to_owned()],
        }
    }
}

/// Whether the user has TOTP on.
#[derive(Debug, Object)]
#[oai(rename = "TotpStatus", example)]
pub struct TotpStatusBody {
    pub enabled: bool,
    /// Unused recovery codes (0 while TOTP is off).
    pub recovery_codes_left: u64,
}

impl From<TotpStatus> for TotpStatusBody {
    fn from(s: TotpStatus) -> Self {
        Self {
            enabled: s.enabled,
            recovery_codes_left: s.recovery_codes_left,
        }
    }
}

impl Example for TotpStatusBody {
    fn example() -> Self {
        Self {
            enabled: true,
            recovery_codes_left: 10,
        }
    }
}

#[derive(ApiResponse)]
pub enum EnrolmentResponse {
    /// A new secret, pending until confirmed. Not to be cached.
    #[oai(status = 200)]
    Ok(
        Json<TotpEnrolmentBody>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum RecoveryCodesResponse {
    /// The codes, shown this once. Not to be cached.
    #[oai(status = 200)]
    Ok(
        Json<RecoveryCodes>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum StatusResponse {
    /// Whether TOTP is on.
    #[oai(status = 200)]
    Ok(Json<TotpStatusBody>),
}

#[derive(ApiResponse)]
pub enum DisabledResponse {
    /// TOTP is off; logins need the password only.
    #[oai(status = 204)]
    NoContent,
}

const INACTIVE: (StatusCode, &str) = (
    StatusCode::BAD_REQUEST,
    "Inactive user: the account is disabled",
);
const UNAUTHORIZED: (StatusCode, &str) = (
    StatusCode::UNAUTHORIZED,
    "Not authenticated (no bearer token); the token could not be validated; or Not enough \
     permissions (the token lacks the `me` scope)",
);
const STEP_UP: (StatusCode, &str) = (
    StatusCode::UNAUTHORIZED,
    "Not authenticated; the token could not be validated; Not enough permissions; or the \
     sign-in is not recent enough (RFC 9470: `WWW-Authenticate: Bearer \
     error=\"insufficient_user_authentication\"` with `max_age`, and `acr_values=\"mfa\"` \
     when the user has TOTP on and the sign-in did not use it): sign in again, with `otp`",
);
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
        "Validation Error: `code` is missing, empty, too long or not a string",
    ),
];
const TAIL: [(StatusCode, &str); 2] = [
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Storage unavailable; retry later",
    ),
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error; the cause is logged, never shown",
    ),
];

pub enum EnrolErrors {}
impl ErrorStatuses for EnrolErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[INACTIVE, STEP_UP, TAIL[0], TAIL[1]];
}

pub enum StatusErrors {}
impl ErrorStatuses for StatusErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] =
        &[INACTIVE, UNAUTHORIZED, TAIL[0], TAIL[1]];
}

pub enum ConfirmErrors {}
impl ErrorStatuses for ConfirmErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Incorrect code (not the code of the pending secret now); No TOTP enrolment to \
             confirm (none was started, or a newer one replaced it); or Inactive user",
        ),
        UNAUTHORIZED,
        BODY[0],
        BODY[1],
        BODY[2],
        TAIL[0],
        TAIL[1],
    ];
}

pub enum ChangeErrors {}
impl ErrorStatuses for ChangeErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "TOTP is not on (no codes to replace), or Inactive user",
        ),
        STEP_UP,
        TAIL[0],
        TAIL[1],
    ];
}

/// `no-store`: secrets and codes are shown once.
fn no_store() -> String {
    "no-store".to_owned()
}

#[derive(Default)]
pub struct MyTotpApi;

#[OpenApi]
impl MyTotpApi {
    /// Start enrolling a TOTP authenticator
    ///
    /// Returns a new secret as an `otpauth://` URI and a QR code for the authenticator app.
    /// TOTP is not on until `POST /users/me/totp/confirm` sends its first code; an active
    /// factor stays on meanwhile. Needs a recent sign-in (`REAUTH_MAX_AGE_SECS`), with the
    /// second factor if TOTP is already on.
    #[oai(
        path = "/users/me/totp",
        method = "post",
        operation_id = "enrol_totp_users_me_totp_post"
    )]
    async fn enrol(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<EnrolmentResponse, ApiError<EnrolErrors>> {
        let enrolment = state
            .accounts
            .start_totp_enrolment(&auth.0, &auth.1)
            .await?;
        Ok(EnrolmentResponse::Ok(Json(enrolment.into()), no_store()))
    }

    /// Read whether TOTP is on
    ///
    /// Whether the current user has a second factor on, and how many of their recovery
    /// codes are still unused.
    #[oai(
        path = "/users/me/totp",
        method = "get",
        operation_id = "read_totp_users_me_totp_get"
    )]
    async fn status(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<StatusResponse, ApiError<StatusErrors>> {
        let status = state.accounts.totp_status(&auth.0).await?;
        Ok(StatusResponse::Ok(Json(status.into())))
    }

    /// Turn TOTP off
    ///
    /// Logins then need the password only, and the recovery codes stop working. Needs a
    /// recent sign-in with the second factor.
    #[oai(
        path = "/users/me/totp",
        method = "delete",
        operation_id = "disable_totp_users_me_totp_delete"
    )]
    async fn disable(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<DisabledResponse, ApiError<ChangeErrors>> {
        state.accounts.disable_totp(&auth.0, &auth.1).await?;
        Ok(DisabledResponse::NoContent)
    }

    /// Confirm a TOTP enrolment
    ///
    /// Send the code the authenticator app shows for the pending secret: TOTP is then on,
    /// every other session of the user ends, and ten recovery codes are returned, shown this
    /// once. From now on a login sends `otp` with the password.
    #[oai(
        path = "/users/me/totp/confirm",
        method = "post",
        operation_id = "confirm_totp_users_me_totp_confirm_post"
    )]
    async fn confirm(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
        body: JsonBody<TotpConfirmation>,
    ) -> Result<RecoveryCodesResponse, ApiError<ConfirmErrors>> {
        let codes = state
            .accounts
            .confirm_totp(&auth.0, &auth.1, &body.0.code)
            .await
            .map_err(|e| match e {
                AccountsError::IncorrectCode => Error::IncorrectConfirmationCode,
                other => other.into(),
            })?;
        Ok(RecoveryCodesResponse::Ok(
            Json(RecoveryCodes {
                recovery_codes: codes,
            }),
            no_store(),
        ))
    }

    /// Replace the recovery codes
    ///
    /// Ten new codes, shown this once; the old ones stop working. Needs a recent sign-in
    /// with the second factor.
    #[oai(
        path = "/users/me/totp/recovery-codes",
        method = "post",
        operation_id = "replace_recovery_codes_users_me_totp_recovery_codes_post"
    )]
    async fn recovery_codes(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<RecoveryCodesResponse, ApiError<ChangeErrors>> {
        let codes = state
            .accounts
            .replace_recovery_codes(&auth.0, &auth.1)
            .await?;
        Ok(RecoveryCodesResponse::Ok(
            Json(RecoveryCodes {
                recovery_codes: codes,
            }),
            no_store(),
        ))
    }
}
