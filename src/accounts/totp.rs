//! The second factor (SPEC §11): enrolling a TOTP authenticator, confirming it, recovery
//! codes, turning it off, the code a login must bring, and "recent sign-in" (RFC 9470).
//!
//! A login of a user with TOTP on brings `otp`: a current code (its 30-second step, or
//! the one before or after) or an unused recovery code. Either is spent by one
//! conditional statement, so a code is accepted once, on any replica (RFC 6238 §5.2).
//! The session then records `amr = pwd otp` and its `auth_time`, which every token of it
//! carries, refreshed ones included.
//!
//! Changing the factor (enrolling, turning it off, new recovery codes) needs a recent
//! sign-in: within `REAUTH_MAX_AGE_SECS`, and with the second factor once one is on, so
//! that a stolen password alone, or an old token, cannot replace or remove it.

use std::{collections::HashSet, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use super::{now_secs, Accounts, AccountsError, SignedIn};
use crate::{
    auth::{
        recovery_code::{self, RecoveryCodeKey},
        token::unix_now,
        totp,
    },
    db::{self, user},
};

/// Default of `REAUTH_MAX_AGE_SECS`.
pub const DEFAULT_REAUTH_MAX_AGE_SECS: u64 = 300;
/// Default of `TOTP_ISSUER`.
pub const DEFAULT_TOTP_ISSUER: &str = "gatehouse";

/// RFC 8176 authentication method references.
pub const AMR_PASSWORD: &str = "pwd";
pub const AMR_OTP: &str = "otp";

/// How the second factor behaves.
#[derive(Debug)]
pub struct SecondFactorRules {
    /// The issuer authenticator apps show (`TOTP_ISSUER`).
    pub issuer: String,
    /// How old a sign-in may be for a change of the factor (`REAUTH_MAX_AGE_SECS`).
    pub reauth_max_age: Duration,
    /// Whether every `admin` operation needs a sign-in with the factor.
    pub required_for_admin: bool,
    pub recovery_key: RecoveryCodeKey,
}

/// A new enrolment, shown once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret, base32, for people who type it.
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// Whether a user has TOTP on, and how many recovery codes they have left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpStatus {
    pub enabled: bool,
    pub recovery_codes_left: u64,
}

/// How a user signed in: the RFC 8176 methods of the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Methods(&'static [&'static str]);

impl Methods {
    pub const PASSWORD: Methods = Methods(&[AMR_PASSWORD]);
    pub const PASSWORD_AND_OTP: Methods = Methods(&[AMR_PASSWORD, AMR_OTP]);

    /// Space separated, as the session stores them.
    pub fn stored(&self) -> String {
        self.0.join(" ")
    }
}

/// Why a sign-in is not recent enough for an operation (RFC 9470).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUp {
    /// The most a sign-in's age may be, in seconds; `None` when only the factor counts.
    pub max_age: Option<u64>,
    /// Whether the sign-in lacks the second factor.
    pub factor_missing: bool,
}

impl Accounts {
    fn second_factor_rules(&self) -> &SecondFactorRules {
        &self.second_factor
    }

    /// Starts an enrolment for the signed-in `current` user (a recent sign-in: see the
    /// module's comment): a new secret, pending until [`Self::confirm_totp`]. An active
    /// factor stays on meanwhile.
    pub async fn start_totp_enrolment(
        &self,
        user: &user::Model,
        signed_in: &SignedIn,
    ) -> Result<Enrolment, AccountsError> {
        self.require_recent_sign_in(user, signed_in).await?;
        let secret = totp::new_secret();
        let encoded = totp::secret_base32(&secret);
        db::totp::start_enrolment(&self.db, user.id, encoded.clone(), now_secs()).await?;
        let otpauth_uri =
            totp::otpauth_uri(&self.second_factor_rules().issuer, &user.username, &secret);
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(|e| AccountsError::Invalid {
            field: "username",
            message: format!("the username is too long for a QR code: {e}"),
        })?;
        Ok(Enrolment {
            secret: encoded,
            otpauth_uri,
            qr_svg,
        })
    }

    /// Turns the pending enrolment on once `code` proves the authenticator has its secret;
    /// returns a new set of recovery codes (shown once) and ends the user's other sessions.
    pub async fn confirm_totp(
        &self,
        user: &user::Model,
        signed_in: &SignedIn,
        code: &str,
    ) -> Result<Vec<String>, AccountsError> {
        let pending = db::totp::find(&self.db, user.id)
            .await?
            .and_then(|factor| factor.pending_secret)
            .ok_or(AccountsError::NoTotpEnrolment)?;
        let secret = totp::secret_from_base32(&pending).ok_or(AccountsError::NoTotpEnrolment)?;
        let step = totp::matching_step(&secret, code, unix_now(), None)
            .ok_or(AccountsError::IncorrectCode)?;
        let (codes, hashes) = self.new_recovery_codes_for(user);
        let confirmed = db::totp::confirm(
            &self.db,
            user.id,
            &pending,
            i64::try_from(step).unwrap_or(i64::MAX),
            now_secs(),
            hashes,
            signed_in.session_id.as_deref(),
        )
        .await?;
        if !confirmed {
            return Err(AccountsError::NoTotpEnrolment);
        }
        tracing::info!(user = %user.username, "TOTP turned on");
        Ok(codes)
    }

    /// Whether `user` has TOTP on, and their recovery codes left.
    pub async fn totp_status(&self, user: &user::Model) -> Result<TotpStatus, AccountsError> {
        let enabled = self.has_totp(user).await?;
        let recovery_codes_left = if enabled {
            db::totp::codes_left(&self.db, user.id).await?
        } else {
            0
        };
        Ok(TotpStatus {
            enabled,
            recovery_codes_left,
        })
    }

    /// Turns `user`'s factor off (a recent sign-in with it).
    pub async fn disable_totp(
        &self,
        user: &user::Model,
        signed_in: &SignedIn,
    ) -> Result<(), AccountsError> {
        self.require_recent_sign_in(user, signed_in).await?;
        db::totp::remove(&self.db, user.id).await?;
        tracing::info!(user = %user.username, "TOTP turned off");
        Ok(())
    }

    /// A new set of recovery codes for `user` (a recent sign-in with the factor); the old
    /// set stops working.
    pub async fn replace_recovery_codes(
        &self,
        user: &user::Model,
        signed_in: &SignedIn,
    ) -> Result<Vec<String>, AccountsError> {
        self.require_recent_sign_in(user, signed_in).await?;
        let (codes, hashes) = self.new_recovery_codes_for(user);
        if !db::totp::replace_codes(&self.db, user.id, hashes).await? {
            return Err(AccountsError::TotpNotEnabled);
        }
        Ok(codes)
    }

    fn new_recovery_codes_for(&self, user: &user::Model) -> (Vec<String>, Vec<String>) {
        let key = &self.second_factor_rules().recovery_key;
        (0..recovery_code::CODES_PER_SET)
            .map(|_| {
                let code = recovery_code::new_code();
                let hash = key.hash(
                    user.id,
                    &recovery_code::normalize(&code).expect("a new code reads back"),
                );
                (code, hash)
            })
            .unzip()
    }

    async fn has_totp(&self, user: &user::Model) -> Result<bool, AccountsError> {
        Ok(db::totp::find(&self.db, user.id)
            .await?
            .is_some_and(|factor| factor.secret.is_some()))
    }

    /// The methods of a login of `user` (with `factor`, as read with the user), whose
    /// password was right, that brought `otp`:
    /// [`Methods::PASSWORD`] for a user without TOTP (an `otp` is then ignored), else the
    /// code or recovery code is spent and [`Methods::PASSWORD_AND_OTP`] returned.
    /// [`AccountsError::SecondFactorRequired`] without one, and
    /// [`AccountsError::IncorrectCode`] for a wrong, used or replayed one.
    pub(super) async fn second_factor(
        &self,
        user: &user::Model,
        factor: Option<db::totp::Model>,
        otp: Option<&SecretString>,
    ) -> Result<Methods, AccountsError> {
        let Some(secret) =
            factor.and_then(|factor| factor.secret.map(|s| (s, factor.last_used_step)))
        else {
            return Ok(Methods::PASSWORD);
        };
        let Some(otp) = otp
            .map(ExposeSecret::expose_secret)
            .filter(|o| !o.is_empty())
        else {
            return Err(AccountsError::SecondFactorRequired);
        };
        let (encoded, last_used) = secret;
        if totp::as_code(otp).is_some() {
            let bytes = totp::secret_from_base32(&encoded).ok_or(AccountsError::IncorrectCode)?;
            let last_used = last_used.and_then(|s| u64::try_from(s).ok());
            let step = totp::matching_step(&bytes, otp, unix_now(), last_used)
                .ok_or(AccountsError::IncorrectCode)?;
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            if db::totp::spend_step(&self.db, user.id, &encoded, step).await? {
                return Ok(Methods::PASSWORD_AND_OTP);
            }
            return Err(AccountsError::IncorrectCode);
        }
        let Some(code) = recovery_code::normalize(otp) else {
            return Err(AccountsError::IncorrectCode);
        };
        let hash = self.second_factor_rules().recovery_key.hash(user.id, &code);
        if db::totp::spend_recovery_code(&self.db, user.id, &hash, now_secs()).await? {
            tracing::info!(user = %user.username, "recovery code used");
            return Ok(Methods::PASSWORD_AND_OTP);
        }
        Err(AccountsError::IncorrectCode)
    }

    /// Whether `user` signed in recently enough to change their second factor: within
    /// `REAUTH_MAX_AGE_SECS`, and with the factor if they have one on.
    pub async fn require_recent_sign_in(
        &self,
        user: &user::Model,
        signed_in: &SignedIn,
    ) -> Result<(), AccountsError> {
        let max_age = self.second_factor_rules().reauth_max_age.as_secs();
        let recent = signed_in
            .auth_time
            .is_some_and(|at| unix_now().saturating_sub(at) <= max_age);
        let factor_missing = !signed_in.has_method(AMR_OTP) && self.has_totp(user).await?;
        if recent && !factor_missing {
            return Ok(());
        }
        Err(AccountsError::StepUpRequired(StepUp {
            max_age: Some(max_age),
            factor_missing,
        }))
    }

    /// With `REQUIRE_MFA_FOR_ADMIN`, whether a user about to use an `admin` operation
    /// signed in with the second factor.
    pub(super) fn require_factor_for_admin(
        &self,
        signed_in: &SignedIn,
    ) -> Result<(), AccountsError> {
        if !self.second_factor_rules().required_for_admin || signed_in.has_method(AMR_OTP) {
            return Ok(());
        }
        Err(AccountsError::StepUpRequired(StepUp {
            max_age: None,
            factor_missing: true,
        }))
    }
}

/// The ids of `users` who have TOTP on.
pub async fn enabled_among(
    db: &db::Db,
    users: &[user::Model],
) -> Result<HashSet<i32>, AccountsError> {
    let ids: Vec<i32> = users.iter().map(|u| u.id).collect();
    Ok(db::totp::enabled_among(db, &ids)
        .await?
        .into_iter()
        .collect())
}

/// Turns `username`'s TOTP off and ends every session and token of theirs (an operator or
/// an admin, for a user who lost their authenticator and their recovery codes).
pub async fn reset_totp(db: &db::Db, username: &str) -> Result<(), AccountsError> {
    if db::totp::reset(db, username).await? {
        tracing::info!(user = %username, "TOTP reset: turned off, sessions ended");
        Ok(())
    } else {
        Err(AccountsError::NoSuchUser(username.to_owned()))
    }
}
