//! Access tokens: issuing and strict validation, with HS256 (the tutorial's shared secret,
//! [`super::server_secret`]) or EdDSA (the Ed25519 keys of [`super::keys`]).

use std::{
    fmt,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::{
    keys::{self, KeySet, LEEWAY_SECS},
    server_secret::ServerSecret,
};

/// Tokens longer than this are rejected before any decoding work.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// `base64url({"alg":"HS256","typ":"JWT"})`: the header PyJWT writes, byte for byte.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// What a token must carry besides `sub`, `exp` and `iat`.
#[derive(Debug, Clone, Default)]
pub struct TokenSettings {
    pub lifetime: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    /// The user's row id: never reused, unlike a username that may be deleted and re-created.
    uid: i32,
    exp: u64,
    iat: u64,
    /// The user's `token_version` at issue time; a bump revokes the token.
    ver: i64,
    /// The granted scopes, space separated (RFC 8693 §4.2; FastAPI's chapter).
    scope: &'a str,
    /// The session the token belongs to; ending it revokes the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    /// When the user signed in: kept by refreshes (OpenID Connect Core §2).
    auth_time: u64,
    /// How: RFC 8176 methods (`["pwd"]`, `["pwd","otp"]`).
    amr: &'a [&'a str],
    /// Whether the user's address was verified when the token was issued (OpenID
    /// Connect's claim name).
    email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Who and what an access token is issued for.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenFor<'a> {
    pub username: &'a str,
    /// The user's row id.
    pub uid: i32,
    /// The user's `token_version`: a bump revokes the token.
    pub token_version: i64,
    /// The granted scopes, space separated.
    pub scope: &'a str,
    /// The session; `None` for a token outside any (a login while the database refuses
    /// writes).
    pub sid: Option<&'a str>,
    /// When the user signed in (Unix seconds), and with which RFC 8176 methods.
    pub auth_time: u64,
    pub amr: &'a [&'a str],
    /// Whether the user's address is verified.
    pub email_verified: bool,
}

/// The claims of a token that passed validation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    /// Absent in tokens issued before it was introduced; such tokens are refused.
    pub uid: Option<i32>,
    pub ver: i64,
    pub iat: Option<u64>,
    /// Required by validation.
    pub exp: u64,
    /// Space-separated scopes; absent in tokens issued before gatehouse had scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The session; absent in tokens issued before gatehouse had sessions.
    #[serde(default)]
    pub sid: Option<String>,
    /// When the user signed in; absent in tokens issued before gatehouse recorded it.
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// How the user signed in (RFC 8176); empty in tokens issued before.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Whether the address was verified at issue; absent in tokens issued before.
    #[serde(default)]
    pub email_verified: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("claims could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("token names no key (`kid`)")]
    NoKid,
    /// The `kid` is none of the published keys: perhaps one this replica has not loaded.
    #[error("token names an unknown key")]
    UnknownKid,
    #[error("no signing key")]
    NoSigningKey,
}

/// The algorithm tokens are signed with (`JWT_ALGORITHM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret: the tutorial's.
    #[default]
    Hs256,
    /// Ed25519 (RFC 8037): resource servers verify with the published public keys.
    EdDsa,
}

impl JwtAlgorithm {
    /// The JOSE name, as in a token's header and in `JWT_ALGORITHM`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::EdDsa => keys::ALGORITHM,
        }
    }
}

/// What signs and verifies.
enum Keys {
    Hs256 {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    /// Swapped whole when a reload finds a rotation: readers hold their copy, never a lock.
    EdDsa(RwLock<Arc<KeySet>>),
}

/// Issues and validates access tokens with one key and one set of rules.
pub struct TokenAuthority {
    keys: Keys,
    validation: Validation,
    settings: TokenSettings,
}

impl fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenAuthority {
    /// HS256 with the server secret.
    pub fn new(secret: &ServerSecret, settings: TokenSettings) -> Self {
        let secret = secret.expose();
        let keys = Keys::Hs256 {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        };
        Self::with_keys(keys, Algorithm::HS256, settings)
    }

    /// EdDSA with the Ed25519 keys of `keys`; [`Self::replace_key_set`] swaps them.
    pub fn eddsa(keys: KeySet, settings: TokenSettings) -> Self {
        let keys = Keys::EdDsa(RwLock::new(Arc::new(keys)));
        Self::with_keys(keys, Algorithm::EdDSA, settings)
    }

    fn with_keys(keys: Keys, algorithm: Algorithm, settings: TokenSettings) -> Self {
        // Only the configured algorithm is accepted: `none`, HS512, RS256, and HS256 under
        // EdDSA (the public key used as an HMAC secret), fail before the signature check.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &settings.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &settings.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            keys,
            validation,
            settings,
        }
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        match self.keys {
            Keys::Hs256 { .. } => JwtAlgorithm::Hs256,
            Keys::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// The Ed25519 keys in use; `None` under HS256, whose secret is never published.
    pub fn key_set(&self) -> Option<Arc<KeySet>> {
        match &self.keys {
            Keys::Hs256 { .. } => None,
            Keys::EdDsa(set) => Some(set.read().unwrap_or_else(PoisonError::into_inner).clone()),
        }
    }

    /// Replaces the Ed25519 keys (after a rotation); does nothing under HS256.
    pub fn replace_key_set(&self, keys: KeySet) {
        if let Keys::EdDsa(set) = &self.keys {
            *set.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        }
    }

    /// The `iss` tokens carry (`JWT_ISSUER`).
    pub fn issuer(&self) -> Option<&str> {
        self.settings.issuer.as_deref()
    }

    /// The `aud` tokens carry (`JWT_AUDIENCE`).
    pub fn audience(&self) -> Option<&str> {
        self.settings.audience.as_deref()
    }

    // EdDSA-only stand-ins until i24-rs256 merges (its versions replace these): enough
    // for the contract checks to see id tokens under JWT_ALGORITHM=EdDSA.
    pub fn signs_id_tokens(&self) -> bool {
        matches!(self.keys, Keys::EdDsa(_))
    }

    /// `claims` signed with the current Ed25519 key (header `{"alg":"EdDSA",...,"kid"}`).
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        let set = self.key_set().ok_or(TokenError::NoSigningKey)?;
        let key = set.signing(unix_now()).ok_or(TokenError::NoSigningKey)?;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let message = format!("{}.{payload}", key.header_b64());
        let signature = key.sign_b64(message.as_bytes());
        Ok(format!("{message}.{signature}"))
    }

    /// The id token's `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the
    /// SHA-512 of `access_token` (Ed25519's hash), base64url. `None` under HS256.
    pub fn at_hash(&self, access_token: &str) -> Option<String> {
        use sha2::{Digest, Sha512};
        let Keys::EdDsa(_) = self.keys else {
            return None;
        };
        let digest = Sha512::digest(access_token.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
    }

    /// The `aud` of an id token this service signed (expired ones too: a logout hint).
    pub fn id_token_audience(&self, token: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Audience {
            aud: String,
        }
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let set = self.key_set()?;
        let key = set.verifying(&kid, unix_now())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims::<&str>(&[]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Audience>(token, key.decoding_key(), &validation)
            .ok()
            .map(|data| data.claims.aud)
    }

    /// Seconds a new token stays valid.
    pub fn lifetime_secs(&self) -> u64 {
        self.settings.lifetime.as_secs()
    }

    /// A signed access token for `token`, issued at `now` (Unix seconds).
    pub fn issue_access_token(
        &self,
        token: &AccessTokenFor<'_>,
        now: u64,
    ) -> Result<String, TokenError> {
        let claims = IssuedClaims {
            sub: token.username,
            uid: token.uid,
            exp: now + self.lifetime_secs(),
            iat: now,
            ver: token.token_version,
            scope: token.scope,
            sid: token.sid,
            auth_time: token.auth_time,
            amr: token.amr,
            email_verified: token.email_verified,
            iss: self.settings.issuer.as_deref(),
            aud: self.settings.audience.as_deref(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
        match &self.keys {
            Keys::Hs256 { encoding, .. } => {
                let message = format!("{HEADER_B64}.{payload}");
                let signature =
                    jsonwebtoken::crypto::sign(message.as_bytes(), encoding, Algorithm::HS256)?;
                Ok(format!("{message}.{signature}"))
            }
            Keys::EdDsa(_) => {
                let set = self.key_set().ok_or(TokenError::NoSigningKey)?;
                let key = set.signing(now).ok_or(TokenError::NoSigningKey)?;
                let message = format!("{}.{payload}", key.header_b64());
                let signature = key.sign_b64(message.as_bytes());
                Ok(format!("{message}.{signature}"))
            }
        }
    }

    /// The claims of `token` if it is ours, unexpired and well formed; `now` in Unix seconds.
    pub fn validate_access_token(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let claims = match &self.keys {
            Keys::Hs256 { decoding, .. } => {
                jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)?.claims
            }
            Keys::EdDsa(_) => {
                // Only a key we published, named by the token: never a key the token brings.
                let kid = jsonwebtoken::decode_header(token)?
                    .kid
                    .ok_or(TokenError::NoKid)?;
                let set = self.key_set().ok_or(TokenError::UnknownKid)?;
                let key = set.verifying(&kid, now).ok_or(TokenError::UnknownKid)?;
                jsonwebtoken::decode::<Claims>(token, key.decoding_key(), &self.validation)?.claims
            }
        };
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TokenAuthority {
        let key = ServerSecret::new(vec![7u8; 32]).unwrap();
        TokenAuthority::new(
            &key,
            TokenSettings {
                lifetime: Duration::from_secs(1800),
                ..Default::default()
            },
        )
    }

    #[test]
    fn issued_token_has_pyjwt_header_and_round_trips() {
        let auth = authority();
        let now = unix_now();
        let mut token = AccessTokenFor {
            username: "johndoe",
            uid: 12,
            token_version: 3,
            scope: "me",
            sid: None,
            auth_time: now - 60,
            amr: &["pwd"],
            email_verified: true,
        };
        let issued = auth.issue_access_token(&token, now).unwrap();
        assert!(issued.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        let claims = auth.validate_access_token(&issued, now).unwrap();
        assert_eq!(
            claims,
            Claims {
                sub: "johndoe".into(),
                uid: Some(12),
                ver: 3,
                iat: Some(now),
                exp: now + 1800,
                scope: Some("me".into()),
                sid: None,
                auth_time: Some(now - 60),
                amr: vec!["pwd".into()],
                email_verified: Some(true),
            }
        );
        token.sid = Some("sid1");
        token.amr = &["pwd", "otp"];
        let in_session = auth.issue_access_token(&token, now).unwrap();
        let claims = auth.validate_access_token(&in_session, now).unwrap();
        assert_eq!(claims.sid.as_deref(), Some("sid1"));
        assert_eq!(claims.amr, ["pwd", "otp"]);
    }

    /// A token of exactly `len` bytes signed with [`authority`]'s key, if padding reaches it.
    fn token_of_length(len: usize, now: u64) -> Option<String> {
        let key = EncodingKey::from_secret(&[7u8; 32]);
        // The payload is base64 of the claims: about 4/3 of the pad, plus a fixed part.
        (len * 3 / 4 - 200..len).find_map(|pad| {
            let claims = serde_json::json!({"sub": "johndoe", "exp": now + 600, "iat": now,
                                            "ver": 0, "pad": "x".repeat(pad)});
            let token =
                jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
            (token.len() == len).then_some(token)
        })
    }

    #[test]
    fn token_limit_is_8_kib_checked_before_decoding() {
        let auth = authority();
        let now = unix_now();
        let at_limit = token_of_length(MAX_TOKEN_BYTES, now).unwrap();
        assert_eq!(
            auth.validate_access_token(&at_limit, now).unwrap().sub,
            "johndoe"
        );
        // Longer, even well-formed and correctly signed, is refused unread. (Base64 skips
        // some lengths, so the first signable one past the limit.)
        let over = (MAX_TOKEN_BYTES + 1..MAX_TOKEN_BYTES + 5)
            .find_map(|len| token_of_length(len, now))
            .unwrap();
        assert!(matches!(
            auth.validate_access_token(&over, now),
            Err(TokenError::TooLong)
        ));
    }
}

/// Property tests over the decoder: arbitrary strings, and tokens assembled from
/// arbitrary header and claims JSON, are rejected (or accepted only when ours and valid)
/// without a panic. Bounded cases (`PROPTEST_CASES`, default 256); failures are kept in
/// `proptest-regressions/` as regression tests.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn authority() -> TokenAuthority {
        TokenAuthority::new(
            &ServerSecret::new(KEY.to_vec()).unwrap(),
            TokenSettings {
                lifetime: Duration::from_secs(1800),
                ..Default::default()
            },
        )
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "\\PC{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("sub".to_owned()),
                        Just("exp".to_owned()),
                        Just("iat".to_owned()),
                        Just("nbf".to_owned()),
                        Just("ver".to_owned()),
                        Just("alg".to_owned()),
                        Just("typ".to_owned()),
                        "[a-z]{1,5}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_strings_are_rejected_without_panicking(token in "\\PC{0,300}") {
            prop_assert!(authority().validate_access_token(&token, unix_now()).is_err());
        }

        #[test]
        fn tokens_of_arbitrary_json_are_valid_only_when_well_formed(
            header in json_value(),
            claims in json_value(),
            signed in any::<bool>(),
        ) {
            let message = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = if signed {
                jsonwebtoken::crypto::sign(
                    message.as_bytes(),
                    &EncodingKey::from_secret(&KEY),
                    Algorithm::HS256,
                )
                .unwrap()
            } else {
                "c2lnbmF0dXJl".to_owned()
            };
            let now = unix_now();
            let result = authority().validate_access_token(&format!("{message}.{signature}"), now);
            if let Ok(accepted) = result {
                // Accepted means: our signature, HS256, a string sub, a future exp.
                prop_assert!(signed);
                prop_assert_eq!(&header["alg"], "HS256");
                prop_assert_eq!(claims["sub"].as_str(), Some(accepted.sub.as_str()));
                prop_assert!(claims["exp"].as_u64().is_some_and(|exp| exp + LEEWAY_SECS > now));
            }
        }
    }
}
