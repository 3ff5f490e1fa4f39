//! Headless Chromium for the tests of the services' pages (csc-server's approval page, the DSS
//! emulator's confirmation page): Debian's `chromium` over the DevTools protocol, trusting the demo CA by
//! its key pin, and typing into a page. `CHROMIUM_BIN` overrides the browser's path.

use headless_chrome::protocol::cdp::Input;
use headless_chrome::{Browser, LaunchOptions};
use sha2::Digest;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Chromium program (`CHROMIUM_BIN` overrides `/usr/bin/chromium`); a loud failure when missing.
pub fn chromium_path() -> PathBuf {
    let p =
        PathBuf::from(std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        p.exists(),
        "{} missing: install Debian's chromium (`apt-get install chromium`; tests/run.sh does it)",
        p.display()
    );
    p
}

/// base64 SHA-256 of the SubjectPublicKeyInfo of the first certificate in `pem_file`: Chromium trusts a
/// test server through `--ignore-certificate-errors-spki-list`, which needs no system trust store.
pub fn spki_pin(pem_file: &Path) -> String {
    use base64::Engine;
    use der::{Decode, Encode};
    let pem =
        std::fs::read(pem_file).unwrap_or_else(|e| panic!("read {}: {e}", pem_file.display()));
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap_or_else(|| panic!("no certificate in {}", pem_file.display()))
        .expect("PEM certificate");
    let cert = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate");
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .expect("SPKI");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&spki))
}

/// Headless Chromium with its profile in `profile`, trusting the service whose CA is `ca_pem`.
pub fn launch_chromium(ca_pem: &Path, profile: &Path) -> Browser {
    let pin = format!("--ignore-certificate-errors-spki-list={}", spki_pin(ca_pem));
    let args: Vec<&OsStr> = [
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        pin.as_str(),
    ]
    .into_iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(chromium_path()))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile.to_path_buf()))
        .window_size(Some((1000, 1100)))
        .idle_browser_timeout(Duration::from_secs(120))
        .args(args)
        .build()
        .expect("Chromium launch options");
    Browser::new(options).expect("launch Chromium")
}

/// Focuses the input `selector` and enters `text` as one input event (per-key events are slow on a
/// busy machine, and the page has no script that would see the difference).
pub fn fill(tab: &headless_chrome::Tab, selector: &str, text: &str) {
    tab.wait_for_element(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .unwrap();
    tab.call_method(Input::InsertText {
        text: text.to_owned(),
    })
    .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
}
