//! API tokens: a prefix and 32 random bytes, stored only as their SHA-256.
//! A slow password hash is not needed: the secret has 256 bits of entropy.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "nsp_";
const SECRET_BYTES: usize = 32;
const TOKEN_LEN: usize = PREFIX.len() + SECRET_BYTES * 2;

/// A new token and the hash to store for it.
pub fn generate() -> (String, [u8; 32]) {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{PREFIX}{}", hex::encode(secret));
    let hash = sha256(&token);
    (token, hash)
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token in an `Authorization` header: raw, as the astro CLI sends it,
/// or after `Bearer `. `None` when it cannot be one of ours, so no lookup is spent.
pub fn from_header(value: &str) -> Option<&str> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    let well_formed = token.len() == TOKEN_LEN
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_recognised_raw_and_bearer() {
        let (token, hash) = generate();
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(sha256(&token), hash);
        assert_eq!(from_header(&token), Some(token.as_str()));
        assert_eq!(
            from_header(&format!("Bearer {token}")),
            Some(token.as_str())
        );
        assert_eq!(
            from_header(&format!("bearer  {token} ")),
            Some(token.as_str())
        );
        assert_ne!(generate().0, token);
    }

    #[test]
    fn malformed_headers_are_not_tokens() {
        let (token, _) = generate();
        for bad in [
            "",
            "Bearer",
            "nsp_123",
            &format!("Basic {token}"),
            &token[1..],
            &format!("{}zz", &token[..token.len() - 2]),
        ] {
            assert_eq!(from_header(bad), None, "{bad}");
        }
    }
}
