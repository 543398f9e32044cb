import jwt

# One client per service. It keeps the key set for `lifespan` seconds: at most gatehouse's
# JWKS_MAX_AGE_SECS, so it has a rotated key before the key signs a token.
jwks = jwt.PyJWKClient("http://127.0.0.1:8000/.well-known/jwks.json", lifespan=300)


def verify(token: str, jwks: jwt.PyJWKClient = jwks) -> dict:
    """The claims of a gatehouse access token (JWT_ALGORITHM=EdDSA), verified with
    nothing but the service's JWKS URL; raises jwt.InvalidTokenError otherwise."""
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["EdDSA"], options={"verify_aud": False})
