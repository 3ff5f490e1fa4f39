//! GlobalSign DSS as a token (issue 13), against the reference emulator
//! (examples/globalsign-dss-emulator) on 127.0.0.1, never a mock:
//!
//! - `clients`: real applications in processes of their own — OpenSC pkcs11-tool (listing without a
//!   login, SHA256-RSA-PKCS and RSA-PKCS signatures, PSS refused because the API offers none), poppler's
//!   pdfsig with an NSS database, OpenSSL 3 with pkcs11-provider (a CMS signature), Java's jarsigner
//!   through SunPKCS11 — each signature verified by `openssl` against the emulator's demo CA; the
//!   processes share one identity.
//! - `renewal`: a signing run spanning several renewals of short-lived identities (the emulator's
//!   lifetime shortened to seconds), by an application that finds its objects per signature and by
//!   one that keeps its handles: no signature ever fails to verify under the certificate the
//!   application read.
//! - `limits`: an exhausted quota, rate limits (signatures and identities) and an expired session give
//!   their mapped CK_RV and a log line that names them, without waiting for the service's Retry-After.
//!
//! Needs the packages tests/run.sh installs (opensc, poppler-utils, libnss3-tools, pkcs11-provider,
//! openjdk-17-jdk-headless, softhsm2). Alone, after `cargo build --release`:
//! `cargo test --release -p cloudtoken-tests --test globalsign`.

mod clients;
mod limits;
mod renewal;
mod world;
