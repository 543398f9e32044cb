//! Access tokens: issuing and strict validation, with HS256 (the tutorial's shared secret,
//! [`super::server_secret`]), EdDSA or RS256 (the Ed25519 or RSA keys of [`super::keys`]);
//! and, under the asymmetric two, other JWTs signed with the same keys (OpenID Connect's id
//! tokens: [`TokenAuthority::sign_claims`], [`TokenAuthority::at_hash`]).

use std::{
    fmt,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use super::{
    keys::{KeyAlgorithm, KeySet, LEEWAY_SECS},
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
    /// RSA with SHA-256 (RFC 7518 §3.3), published like EdDSA's keys: what most gateways
    /// and OpenID Connect relying parties accept.
    Rs256,
}

impl JwtAlgorithm {
    pub const ALL: [JwtAlgorithm; 3] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::EdDsa,
        JwtAlgorithm::Rs256,
    ];

    /// The JOSE name, as in a token's header and in `JWT_ALGORITHM`.
    pub fn as_str(self) -> &'static str {
        match self.key_algorithm() {
            None => "HS256",
            Some(algorithm) => algorithm.as_str(),
        }
    }

    /// The algorithm of the published, rotated keys; `None` for HS256.
    pub fn key_algorithm(self) -> Option<KeyAlgorithm> {
        match self {
            JwtAlgorithm::Hs256 => None,
            JwtAlgorithm::EdDsa => Some(KeyAlgorithm::EdDsa),
            JwtAlgorithm::Rs256 => Some(KeyAlgorithm::Rs256),
        }
    }
}

impl From<KeyAlgorithm> for JwtAlgorithm {
    fn from(algorithm: KeyAlgorithm) -> Self {
        match algorithm {
            KeyAlgorithm::EdDsa => JwtAlgorithm::EdDsa,
            KeyAlgorithm::Rs256 => JwtAlgorithm::Rs256,
        }
    }
}

/// What signs and verifies.
enum Keys {
    Hs256 {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    /// EdDSA or RS256. The set is swapped whole when a reload finds a rotation: readers
    /// hold their copy, never a lock. Only its keys of `algorithm` sign or verify.
    Asymmetric {
        algorithm: KeyAlgorithm,
        set: RwLock<Arc<KeySet>>,
    },
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
        Self::asymmetric(KeyAlgorithm::EdDsa, keys, settings)
    }

    /// RS256 with the RSA keys of `keys`; [`Self::replace_key_set`] swaps them.
    pub fn rs256(keys: KeySet, settings: TokenSettings) -> Self {
        Self::asymmetric(KeyAlgorithm::Rs256, keys, settings)
    }

    /// `algorithm` with its keys in `keys` (keys of another algorithm in the set are
    /// never used).
    pub fn asymmetric(algorithm: KeyAlgorithm, keys: KeySet, settings: TokenSettings) -> Self {
        let keys = Keys::Asymmetric {
            algorithm,
            set: RwLock::new(Arc::new(keys)),
        };
        Self::with_keys(keys, algorithm.jwt(), settings)
    }

    fn with_keys(keys: Keys, algorithm: Algorithm, settings: TokenSettings) -> Self {
        // Only the configured algorithm is accepted: `none`, HS512, another asymmetric
        // algorithm, and HS256 under EdDSA or RS256 (the public key used as an HMAC
        // secret), fail before the signature check.
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
            Keys::Asymmetric { algorithm, .. } => algorithm.into(),
        }
    }

    /// The keys in use (Ed25519 or RSA); `None` under HS256, whose secret is never
    /// published.
    pub fn key_set(&self) -> Option<Arc<KeySet>> {
        match &self.keys {
            Keys::Hs256 { .. } => None,
            Keys::Asymmetric { set, .. } => {
                Some(set.read().unwrap_or_else(PoisonError::into_inner).clone())
            }
        }
    }

    /// Replaces the keys (after a rotation); does nothing under HS256.
    pub fn replace_key_set(&self, keys: KeySet) {
        if let Keys::Asymmetric { set, .. } = &self.keys {
            *set.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        }
    }

    /// Whether OpenID Connect id tokens can be signed: under RS256 and EdDSA, whose keys
    /// are published; not under HS256, whose secret only gatehouse may hold.
    pub fn signs_id_tokens(&self) -> bool {
        matches!(self.keys, Keys::Asymmetric { .. })
    }

    /// `header.payload.signature` of `payload` (base64url JSON) with the key of the
    /// configured asymmetric algorithm that signs at `now`; the header is
    /// `{"alg":…,"typ":"JWT","kid":…}`.
    fn sign_with_key(&self, payload: &str, now: u64) -> Result<String, TokenError> {
        let Keys::Asymmetric { algorithm, set } = &self.keys else {
            return Err(TokenError::NoSigningKey);
        };
        let set = set.read().unwrap_or_else(PoisonError::into_inner).clone();
        let key = set
            .signing(now)
            .filter(|key| key.algorithm() == *algorithm)
            .ok_or(TokenError::NoSigningKey)?;
        let message = format!("{}.{payload}", key.header_b64());
        let signature = key.sign_b64(message.as_bytes());
        Ok(format!("{message}.{signature}"))
    }

    /// A JWT of exactly `claims` (serialized as they are: no claim is added), signed with
    /// the current asymmetric key; header `{"alg":…,"typ":"JWT","kid":…}`. For OpenID
    /// Connect's id tokens. `Err(NoSigningKey)` under HS256.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        if !self.signs_id_tokens() {
            return Err(TokenError::NoSigningKey);
        }
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        self.sign_with_key(&payload, unix_now())
    }

    /// An id token's `at_hash` for `access_token` (OpenID Connect Core §3.1.3.6): the
    /// left half of its hash under the id token's algorithm, base64url without padding:
    /// SHA-256 for RS256, SHA-512 for EdDSA (Ed25519 hashes with it). `None` under HS256.
    pub fn at_hash(&self, access_token: &str) -> Option<String> {
        let digest = match self.algorithm() {
            JwtAlgorithm::Hs256 => return None,
            JwtAlgorithm::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
            JwtAlgorithm::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
        };
        Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
    }

    /// The `iss` tokens carry (`JWT_ISSUER`).
    pub fn issuer(&self) -> Option<&str> {
        self.settings.issuer.as_deref()
    }

    /// The `aud` tokens carry (`JWT_AUDIENCE`).
    pub fn audience(&self) -> Option<&str> {
        self.settings.audience.as_deref()
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
            Keys::Asymmetric { .. } => self.sign_with_key(&payload, now),
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
            Keys::Asymmetric { algorithm, .. } => {
                // Only a key we published, named by the token: never a key the token brings.
                let kid = jsonwebtoken::decode_header(token)?
                    .kid
                    .ok_or(TokenError::NoKid)?;
                let set = self.key_set().ok_or(TokenError::UnknownKid)?;
                let key = set
                    .verifying(&kid, now)
                    .filter(|key| key.algorithm() == *algorithm)
                    .ok_or(TokenError::UnknownKid)?;
                jsonwebtoken::decode::<Claims>(token, key.decoding_key(), &self.validation)?.claims
            }
        };
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }

    /// The audience (the client) of `id_token`, an id token this service signed, expired
    /// or not (RP-initiated logout's `id_token_hint`, OpenID Connect RP-Initiated Logout
    /// §2); `None` for anything else.
    pub fn id_token_audience(&self, id_token: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Audience {
            aud: String,
        }
        let Keys::Asymmetric { algorithm, .. } = &self.keys else {
            return None;
        };
        if id_token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let kid = jsonwebtoken::decode_header(id_token).ok()?.kid?;
        let set = self.key_set()?;
        let key = set
            .verifying(&kid, unix_now())
            .filter(|key| key.algorithm() == *algorithm)?;
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["aud"]);
        jsonwebtoken::decode::<Audience>(id_token, key.decoding_key(), &validation)
            .ok()
            .map(|data| data.claims.aud)
    }
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{Ed25519Key, RsaKey};

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

    fn settings() -> TokenSettings {
        TokenSettings {
            lifetime: Duration::from_secs(1800),
            ..Default::default()
        }
    }

    /// An RS256 authority with one fresh key (generated once for these tests).
    fn rs256() -> TokenAuthority {
        static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let pem = PEM.get_or_init(|| RsaKey::generate().to_pem());
        TokenAuthority::rs256(KeySet::single(RsaKey::from_pem(pem).unwrap()), settings())
    }

    fn eddsa() -> TokenAuthority {
        TokenAuthority::eddsa(KeySet::single(Ed25519Key::generate()), settings())
    }

    fn johndoe(now: u64) -> AccessTokenFor<'static> {
        AccessTokenFor {
            username: "johndoe",
            uid: 1,
            token_version: 0,
            scope: "me",
            sid: None,
            auth_time: now,
            amr: &["pwd"],
            email_verified: true,
        }
    }

    fn header(token: &str) -> serde_json::Value {
        let b64 = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn rs256_tokens_round_trip_and_name_their_key() {
        let auth = rs256();
        assert_eq!(auth.algorithm(), JwtAlgorithm::Rs256);
        assert_eq!(auth.algorithm().as_str(), "RS256");
        let now = unix_now();
        let token = auth.issue_access_token(&johndoe(now), now).unwrap();
        let kid = auth
            .key_set()
            .unwrap()
            .signing(now)
            .unwrap()
            .kid()
            .to_owned();
        assert_eq!(
            header(&token),
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid})
        );
        assert_eq!(
            auth.validate_access_token(&token, now).unwrap().sub,
            "johndoe"
        );
        // Strict: another algorithm's key set never verifies, nor signs, under RS256.
        let other = eddsa();
        let eddsa_token = other.issue_access_token(&johndoe(now), now).unwrap();
        assert!(auth.validate_access_token(&eddsa_token, now).is_err());
        assert!(other.validate_access_token(&token, now).is_err());
        // An Ed25519 key in an RS256 authority's set neither signs nor verifies.
        let ed25519 = Ed25519Key::generate();
        let same_key = TokenAuthority::eddsa(
            KeySet::single(Ed25519Key::from_pem(&ed25519.to_pem()).unwrap()),
            settings(),
        );
        let mixed = TokenAuthority::rs256(KeySet::single(ed25519), settings());
        assert!(matches!(
            mixed.issue_access_token(&johndoe(now), now),
            Err(TokenError::NoSigningKey)
        ));
        let signed = same_key.issue_access_token(&johndoe(now), now).unwrap();
        assert!(matches!(
            mixed.validate_access_token(&signed, now),
            Err(TokenError::UnknownKid)
        ));
    }

    #[test]
    fn sign_claims_signs_exactly_the_claims_with_the_current_key() {
        let claims = serde_json::json!({"iss": "https://auth.example.com", "sub": "12",
                                        "aud": "client", "nonce": "n-0S6_WzA2Mj"});
        for auth in [rs256(), eddsa()] {
            assert!(auth.signs_id_tokens());
            let token = auth.sign_claims(&claims).unwrap();
            let key_set = auth.key_set().unwrap();
            let key = key_set.signing(unix_now()).unwrap();
            assert_eq!(
                header(&token),
                serde_json::json!({"alg": auth.algorithm().as_str(), "typ": "JWT",
                                   "kid": key.kid()})
            );
            let mut validation = Validation::new(key.algorithm().jwt());
            validation.set_required_spec_claims::<&str>(&[]);
            validation.validate_exp = false;
            validation.validate_aud = false;
            let decoded =
                jsonwebtoken::decode::<serde_json::Value>(&token, key.decoding_key(), &validation)
                    .unwrap();
            assert_eq!(decoded.claims, claims);
        }
        let hs256 = authority();
        assert!(!hs256.signs_id_tokens());
        assert!(matches!(
            hs256.sign_claims(&claims),
            Err(TokenError::NoSigningKey)
        ));
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core 1.0 Appendix A.3's access token and its RS256 at_hash; the
        // EdDSA one from Python: base64.urlsafe_b64encode(hashlib.sha512(t).digest()[:32]).
        let access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            rs256().at_hash(access_token).as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(
            eddsa().at_hash(access_token).as_deref(),
            Some("q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM")
        );
        assert_eq!(authority().at_hash(access_token), None);
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
