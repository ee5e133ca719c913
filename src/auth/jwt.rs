//! Access tokens: HS256 JWTs. Only HS256 is accepted (`alg: none` and every other algorithm
//! are refused), the signature and expiry are checked, and the session id inside is checked
//! against the database on every request (see `sessions.rs`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub email: String,
    pub roles: Vec<String>,
    /// Always `"authenticated"`, as PostgREST-style clients expect.
    pub role: String,
    /// The session id.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    /// Present on tokens an admin issued to act as the user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imp: bool,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|s| (*s).to_owned()).collect();
        JwtKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthorized("invalid or expired token".into()))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn claims(exp_offset: i64) -> Claims {
        let now = crate::util::now_ms() / 1000;
        Claims {
            sub: "u1".into(),
            email: "a@b.c".into(),
            roles: vec![],
            role: "authenticated".into(),
            sid: "s1".into(),
            iat: now,
            exp: now + exp_offset,
            imp: false,
        }
    }

    #[test]
    fn signed_tokens_verify() {
        let keys = JwtKeys::new(b"secret-1");
        let token = keys.sign(&claims(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims(60));
    }

    #[test]
    fn forged_expired_and_unsigned_tokens_are_refused() {
        let keys = JwtKeys::new(b"secret-1");
        let other = JwtKeys::new(b"secret-2");
        assert!(keys.verify(&other.sign(&claims(60)).unwrap()).is_err(), "wrong signature");
        assert!(keys.verify(&keys.sign(&claims(-5)).unwrap()).is_err(), "expired");
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(60)).unwrap());
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"HS512","typ":"JWT"}"#, r#"{"alg":"RS256"}"#] {
            let head = URL_SAFE_NO_PAD.encode(header);
            assert!(keys.verify(&format!("{head}.{body}.")).is_err(), "{header}");
            assert!(keys.verify(&format!("{head}.{body}")).is_err(), "{header}");
        }
        for junk in ["", "a.b.c", "not a token", "...."] {
            assert!(keys.verify(junk).is_err());
        }
    }
}
