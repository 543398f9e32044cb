use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims a resource server reads from a gatehouse access token.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub scope: String,
    pub exp: u64,
}

/// Verifies a gatehouse access token knowing nothing but the service's JWKS URL and its
/// `JWT_ALGORITHM` (`Algorithm::RS256` or `Algorithm::EdDSA`). Cache the `JwkSet` for its
/// `Cache-Control: max-age` and fetch it again when a token names a `kid` it does not have.
pub async fn verify(
    jwks_url: &str,
    token: &str,
    algorithm: Algorithm,
) -> Result<Claims, Box<dyn std::error::Error>> {
    let jwks: JwkSet = reqwest::get(jwks_url)
        .await?
        .error_for_status()?
        .json()
        .await?;
    let kid = decode_header(token)?.kid.ok_or("the token names no key")?;
    let jwk = jwks.find(&kid).ok_or("the token names an unknown key")?;
    let key = DecodingKey::from_jwk(jwk)?;
    // Only that algorithm: a token claiming another is refused before any key is used.
    let mut validation = Validation::new(algorithm);
    validation.validate_aud = false; // or set_audience(&[...]) when JWT_AUDIENCE is set
    Ok(decode::<Claims>(token, &key, &validation)?.claims)
}
