//! Randomness from the operating system, for keys, secrets, tokens and codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

/// Fills `buf` from the OS. A failing OS RNG leaves nothing safe to do, so this aborts the operation by
/// panicking (the server turns a panicking request into a 500; `init` stops).
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

pub fn bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut b = Zeroizing::new([0u8; N]);
    fill(b.as_mut());
    b
}

/// 256 random bits as base64url: access and refresh tokens, SADs.
pub fn token() -> Zeroizing<String> {
    Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes::<32>().as_ref()))
}

/// 144 random bits as 24 base64url characters: account passwords.
pub fn password() -> Zeroizing<String> {
    Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes::<18>().as_ref()))
}

/// `n` uniformly distributed decimal digits (rejection sampling, so no modulo bias): PINs, SMS codes.
pub fn digits(n: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut pool = Zeroizing::new([0u8; 32]);
    let mut used = pool.len();
    while out.len() < n {
        if used == pool.len() {
            fill(pool.as_mut());
            used = 0;
        }
        let b = pool[used];
        used += 1;
        if b < 250 {
            out.push(char::from(b'0' + b % 10));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_digits_and_vary() {
        let a = digits(6);
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|c| c.is_ascii_digit()));
        // Ten draws of 6 digits all equal would mean a broken generator (probability 1e-54).
        let draws: Vec<String> = (0..10).map(|_| digits(6).to_string()).collect();
        assert!(draws.iter().any(|d| d != &draws[0]));
        // Every digit value shows up over many draws.
        let many = digits(2000);
        for d in b'0'..=b'9' {
            assert!(
                many.bytes().any(|c| c == d),
                "digit {} never drawn",
                d as char
            );
        }
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = token();
        let b = token();
        assert_eq!(a.len(), 43);
        assert_ne!(*a, *b);
        assert_eq!(password().len(), 24);
    }
}
