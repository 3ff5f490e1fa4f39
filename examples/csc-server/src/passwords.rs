//! Argon2id hashes of account passwords and PINs. Only the PHC strings are stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// Argon2id with the crate's defaults (19 MiB, 2 passes: the OWASP recommendation).
pub fn hash(secret: &[u8]) -> String {
    let salt = SaltString::encode_b64(crate::random::bytes::<16>().as_ref())
        .expect("16 bytes are a valid salt");
    Argon2::default()
        .hash_password(secret, &salt)
        .expect("Argon2 with default parameters")
        .to_string()
}

/// Constant-time comparison is Argon2's; a malformed stored hash verifies nothing.
pub fn verify(secret: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so that an unknown user name answers as slowly as a wrong
/// password.
pub fn verify_dummy(secret: &[u8]) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash(b"no such user"));
    let _ = verify(secret, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_secret() {
        let h = hash(b"123456");
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("123456"));
        assert!(verify(b"123456", &h));
        assert!(!verify(b"123457", &h));
        assert!(!verify(b"", &h));
        assert!(!verify(b"123456", "not a hash"));
        // Salted: the same secret hashes differently.
        assert_ne!(h, hash(b"123456"));
    }
}
