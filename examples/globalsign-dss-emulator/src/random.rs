//! Randomness from the operating system: identity IDs, access tokens, API keys and secrets, serials.

/// Fills `buf` from the OS. A failing OS RNG leaves nothing safe to do: this panics (a request then
/// fails with a 500; `init` stops).
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// `n` random bytes as lower-case hex.
pub fn hex(n: usize) -> zeroize::Zeroizing<String> {
    let mut b = zeroize::Zeroizing::new(vec![0u8; n]);
    fill(&mut b);
    zeroize::Zeroizing::new(base16ct::lower::encode_string(&b))
}
