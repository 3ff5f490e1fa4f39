//! csc-server's modules, as a library: the `csc-server` binary (main.rs) and the other reference services
//! of the examples (the CryptoPro DSS emulator; the GlobalSign DSS emulator for the TLS listener alone)
//! build on its plumbing — the state folder, sealing at rest (`vault`), passwords, TOTP, the
//! hash-chained audit trail, the demo PKI, the page sessions and HTML scaffolding, and the TLS listener —
//! instead of each keeping a copy.

pub mod access;
pub mod algorithms;
pub mod api;
pub mod approval;
pub mod audit;
pub mod clock;
pub mod db;
pub mod error;
pub mod files;
pub mod hsm;
pub mod init;
pub mod keys;
pub mod listener;
pub mod lockouts;
pub mod model;
pub mod oauth2;
pub mod otp;
pub mod passwords;
pub mod phone;
pub mod pki;
pub mod random;
pub mod sad;
pub mod server;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod vault;
