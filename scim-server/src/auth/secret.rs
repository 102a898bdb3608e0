//! Secrets in memory and their stored form.
//!
//! Every secret we accept (static tokens, issued access tokens, OAuth client secrets) is at
//! least 256 bits of randomness that we generated, or a client secret an operator configured.
//! For high-entropy secrets a fast hash is the right choice: nobody can brute-force 2^256
//! pre-images, so a slow password hash (argon2, bcrypt) would only cost CPU on every request.
//! What is stored is the lowercase hex SHA-256 of the secret; comparisons of hashes are
//! constant-time ([`subtle::ConstantTimeEq`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The workspace's one secret type (redacting `Debug`, `Display` and `Serialize`), owned by the
/// lowest crate that holds secrets.
pub use scim_graph_bridge::secret::SecretString;

/// The SHA-256 of a secret (raw bytes).
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha256(secret))
}

/// Constant-time comparison of two hex hashes (case-insensitive on the hex digits). Unequal
/// lengths compare unequal (the length of a hash is not a secret).
pub fn hashes_equal(a: &str, b: &str) -> bool {
    match (hex::decode(a), hex::decode(b)) {
        (Ok(a), Ok(b)) => a.ct_eq(&b).into(),
        _ => false,
    }
}

/// Constant-time comparison of a raw digest with a hex hash.
pub fn digest_matches_hex(digest: &[u8; 32], hex_hash: &str) -> bool {
    let mut decoded = [0u8; 32];
    if hex::decode_to_slice(hex_hash, &mut decoded).is_err() {
        return false;
    }
    digest.ct_eq(&decoded).into()
}

/// A new random secret: `prefix` followed by 32 bytes from the operating system's CSPRNG,
/// base64url without padding (43 characters). The alphabet has no `.`, so a secret is never
/// mistaken for a JWT.
pub fn generate_secret(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether `s` is a 64-digit hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_serialize_redact() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
    }

    #[test]
    fn hashes_compare() {
        let h = hash_secret("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hashes_equal(&h, &h.to_uppercase()));
        assert!(!hashes_equal(&h, &hash_secret("abd")));
        assert!(!hashes_equal(&h, "zz"));
        assert!(digest_matches_hex(&sha256("abc"), &h));
        assert!(!digest_matches_hex(&sha256("abc"), "00"));
    }

    #[test]
    fn generated_secrets_are_distinct_and_dotless() {
        let a = generate_secret("scim_");
        let b = generate_secret("scim_");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("scim_"));
        assert_eq!(a.expose().len(), 5 + 43);
        assert!(!a.expose().contains('.'));
    }
}
