//! The token request form: FastAPI's `OAuth2PasswordRequestForm` (the password grant of
//! RFC 6749 §4.3), validated the way FastAPI does it, and the refresh grant of RFC 6749 §6
//! (`grant_type=refresh_token`), whose errors are OAuth errors. Read by
//! [`FormBody`](super::form::FormBody).

use poem_openapi::{
    types::{Example, Password},
    Object,
};
use secrecy::SecretString;
use serde_json::Value;

use super::{
    error::{Error, ValidationError},
    form::{ErrorStyle, Fields, FormRequest},
};
use crate::accounts::{MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS};

const GRANT_TYPE_PATTERN: &str = "^password$";
/// The `grant_type` of a refresh (RFC 6749 §6).
const REFRESH_GRANT: &str = "refresh_token";
/// The `grant_type` of the authorization-code grant (RFC 6749 §4.1.3).
const CODE_GRANT: &str = "authorization_code";
/// Longest `otp` accepted: a code is 6 digits, a recovery code 11 characters.
const MAX_OTP_CHARS: usize = 64;
/// What a rejected secret is echoed as, like pydantic's `SecretStr`.
const MASKED: &str = "**********";

/// The login form as the OpenAPI document describes it (FastAPI's schema name).
#[derive(Debug, Object)]
#[oai(
    rename = "Body_login_for_access_token_token_post",
    example,
    skip_serializing_if_is_none
)]
pub struct LoginFormSchema {
    /// `password` (or not sent, or empty) for the password grant; `refresh_token` for the
    /// refresh grant (RFC 6749 §6), which takes `refresh_token` (and optionally `scope`)
    /// instead of `username` and `password`; `authorization_code` for the code of
    /// `GET /authorize` (RFC 6749 §4.1.3), which takes `code`, `redirect_uri`,
    /// `code_verifier` and the client's credentials instead.
    #[oai(validator(pattern = r"^(password|refresh_token|authorization_code)?$"))]
    grant_type: Option<String>,
    /// Required by the password grant.
    #[oai(validator(min_length = 1, max_length = 128))]
    username: String,
    /// Required by the password grant; at most 1024 bytes of UTF-8.
    #[oai(validator(min_length = 1, max_length = 1024))]
    password: Password,
    /// The refresh grant's refresh token, from an earlier token response.
    refresh_token: Option<Password>,
    /// Space-separated scopes wanted; the token gets those the user holds. Absent or
    /// empty: the configured `DEFAULT_SCOPES`, else every scope the user holds.
    // No `default: ""` as FastAPI declares: openapi-typescript would make the field
    // required in the request type unless run with `--default-non-nullable false`.
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Password>,
    /// The second factor, for a user with TOTP on: the 6-digit code of their
    /// authenticator app, or one of their recovery codes. Ignored for other users.
    #[oai(validator(max_length = 64))]
    otp: Option<Password>,
    /// The authorization-code grant's code, from the redirect of `GET /authorize`.
    code: Option<String>,
    /// The authorization-code grant's redirect URI: the one `GET /authorize` was sent.
    redirect_uri: Option<String>,
    /// The authorization-code grant's PKCE verifier (RFC 7636 §4.5).
    code_verifier: Option<Password>,
}

/// The demo user's login (`serve --demo`), so "Try it out" and example-driven tools
/// reach the success path.
impl Example for LoginFormSchema {
    fn example() -> Self {
        Self {
            grant_type: Some("password".to_owned()),
            username: "johndoe".to_owned(),
            password: Password("secret".to_owned()),
            scope: None,
            refresh_token: None,
            client_id: None,
            client_secret: None,
            otp: None,
            code: None,
            redirect_uri: None,
            code_verifier: None,
        }
    }
}

/// A validated token request: which grant, with its fields.
pub enum TokenRequestForm {
    Password(OAuth2PasswordRequestForm),
    Refresh(RefreshRequestForm),
    Code(CodeRequestForm),
}

/// A validated authorization-code grant (RFC 6749 §4.1.3, RFC 7636 §4.5), with the
/// client's credentials from the form (`client_secret_post`; `Authorization: Basic` is
/// read by the endpoint).
pub struct CodeRequestForm {
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: SecretString,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

/// A validated refresh grant (RFC 6749 §6).
pub struct RefreshRequestForm {
    pub refresh_token: SecretString,
    /// The scopes wanted; none: all granted at login.
    pub scopes: Vec<String>,
}

/// A validated login form.
pub struct OAuth2PasswordRequestForm {
    pub username: String,
    pub password: SecretString,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// The second factor, when sent (see [`LoginFormSchema`]).
    pub otp: Option<SecretString>,
}

/// The space-separated scopes of field `scope`.
fn scopes(fields: &Fields) -> Vec<String> {
    fields
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

impl FormRequest for TokenRequestForm {
    type Schema = LoginFormSchema;

    /// `grant_type=refresh_token` is the refresh grant, whose problems are OAuth errors;
    /// anything else is the password grant, validated exactly as FastAPI does.
    fn from_fields(fields: &Fields) -> Result<Self, Error> {
        if fields.get("grant_type") == Some(CODE_GRANT) {
            return Ok(Self::Code(CodeRequestForm {
                code: fields.required("code", ErrorStyle::OAuth)?.to_owned(),
                redirect_uri: fields
                    .required("redirect_uri", ErrorStyle::OAuth)?
                    .to_owned(),
                code_verifier: SecretString::from(
                    fields.required("code_verifier", ErrorStyle::OAuth)?,
                ),
                client_id: fields.get("client_id").map(str::to_owned),
                client_secret: fields.get("client_secret").map(SecretString::from),
            }));
        }
        if fields.get("grant_type") != Some(REFRESH_GRANT) {
            return OAuth2PasswordRequestForm::validate(fields).map(Self::Password);
        }
        let refresh_token = fields.required("refresh_token", ErrorStyle::OAuth)?;
        Ok(Self::Refresh(RefreshRequestForm {
            refresh_token: SecretString::from(refresh_token),
            scopes: scopes(fields),
        }))
    }
}

impl OAuth2PasswordRequestForm {
    /// FastAPI's rules: an empty value counts as absent, the last of repeated fields wins,
    /// and every problem is reported, in field order, in one 422.
    fn validate(fields: &Fields) -> Result<Self, Error> {
        let get = |name: &str| fields.get(name);
        let mut errors = Vec::new();

        if let Some(grant_type) = get("grant_type") {
            if grant_type != "password" {
                errors.push(ValidationError::pattern_mismatch(
                    "grant_type",
                    GRANT_TYPE_PATTERN,
                    grant_type,
                ));
            }
        }
        let username = get("username");
        match username {
            None => errors.push(ValidationError::missing("username")),
            Some(u) if u.chars().count() > MAX_USERNAME_CHARS => {
                errors.push(ValidationError::too_long(
                    "username",
                    MAX_USERNAME_CHARS,
                    "characters",
                    Value::String(u.to_owned()),
                ))
            }
            Some(_) => {}
        }
        let password = get("password");
        match password {
            None => errors.push(ValidationError::missing("password")),
            Some(p) if p.len() > MAX_PASSWORD_BYTES => errors.push(ValidationError::too_long(
                "password",
                MAX_PASSWORD_BYTES,
                "bytes",
                Value::String(MASKED.to_owned()),
            )),
            Some(_) => {}
        }
        let otp = get("otp");
        if otp.is_some_and(|otp| otp.chars().count() > MAX_OTP_CHARS) {
            errors.push(ValidationError::too_long(
                "otp",
                MAX_OTP_CHARS,
                "characters",
                Value::String(MASKED.to_owned()),
            ));
        }

        match (username, password) {
            (Some(username), Some(password)) if errors.is_empty() => Ok(Self {
                username: username.to_owned(),
                password: SecretString::from(password),
                scopes: scopes(fields),
                client_id: get("client_id").map(str::to_owned),
                client_secret: get("client_secret").map(SecretString::from),
                otp: otp.map(SecretString::from),
            }),
            _ => Err(Error::Validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn errors(pairs: &[(&str, &str)]) -> Vec<ValidationError> {
        match OAuth2PasswordRequestForm::validate(&fields(pairs)) {
            Err(Error::Validation(errors)) => errors,
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("form validated"),
        }
    }

    #[test]
    fn empty_fields_count_as_missing_in_field_order() {
        let e = errors(&[("username", ""), ("password", "")]);
        assert_eq!(
            e,
            vec![
                ValidationError::missing("username"),
                ValidationError::missing("password")
            ]
        );
    }

    #[test]
    fn grant_type_other_than_password_is_reported_first() {
        let e = errors(&[("grant_type", "client_credentials")]);
        assert_eq!(e[0].kind, "string_pattern_mismatch");
        assert_eq!(e.len(), 3);
    }

    #[test]
    fn limits_are_inclusive_and_password_is_masked() {
        let name = "é".repeat(MAX_USERNAME_CHARS);
        let pw = "p".repeat(MAX_PASSWORD_BYTES);
        let ok = OAuth2PasswordRequestForm::validate(&fields(&[
            ("username", &name),
            ("password", &pw),
            ("scope", "a  b"),
        ]))
        .unwrap();
        assert_eq!(ok.scopes, vec!["a", "b"]);

        let e = errors(&[
            ("username", &format!("{name}x")),
            ("password", &format!("{pw}x")),
        ]);
        assert_eq!(e[0].kind, "string_too_long");
        assert_eq!(e[1].input, Value::String(MASKED.to_owned()));
    }

    #[test]
    fn last_repeated_field_wins() {
        let ok = OAuth2PasswordRequestForm::validate(&fields(&[
            ("username", "a"),
            ("username", "b"),
            ("password", "p"),
        ]))
        .unwrap();
        assert_eq!(ok.username, "b");
    }
}

/// Property tests: any body, of any declared type, parses to fields or to nothing, and
/// validation answers for every field set: never a panic. Cases are bounded
/// (`PROPTEST_CASES`, default 256); a failing input is kept in `proptest-regressions/`
/// and becomes a regression test.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::{super::form::parse_fields, *};

    fn parse(content_type: &str, body: Vec<u8>) -> Fields {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(parse_fields(content_type, bytes::Bytes::from(body)))
    }

    fn content_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("multipart/form-data; boundary=XyZ".to_owned()),
            "multipart/form-data; boundary=[ -~]{0,80}",
            "[ -~]{0,60}",
        ]
    }

    /// Multipart bodies that are nearly right, so the parser gets past the boundary.
    fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(("[a-z_]{0,12}", any::<Vec<u8>>()), 0..4).prop_map(|parts| {
            let mut body = Vec::new();
            for (name, value) in parts {
                body.extend_from_slice(
                    format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                        .as_bytes(),
                );
                body.extend_from_slice(&value);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--XyZ--\r\n");
            body
        })
    }

    proptest! {
        #[test]
        fn any_body_parses_and_validates_without_panicking(
            content_type in content_type(),
            body in prop_oneof![any::<Vec<u8>>(), multipart_body()],
        ) {
            let fields = parse(&content_type, body);
            let _ = TokenRequestForm::from_fields(&fields);
        }

        #[test]
        fn urlencoded_credentials_round_trip_within_the_limits(
            username in "\\PC{1,140}",
            password in "\\PC{1,300}",
        ) {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("username", &username)
                .append_pair("password", &password)
                .finish();
            let fields = parse("application/x-www-form-urlencoded", body.into_bytes());
            let valid = username.chars().count() <= MAX_USERNAME_CHARS
                && password.len() <= MAX_PASSWORD_BYTES;
            match OAuth2PasswordRequestForm::validate(&fields) {
                Ok(form) => {
                    prop_assert!(valid);
                    prop_assert_eq!(form.username, username);
                }
                Err(Error::Validation(errors)) => {
                    prop_assert!(!valid);
                    prop_assert!(errors.iter().all(|e| e.kind == "string_too_long"));
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
