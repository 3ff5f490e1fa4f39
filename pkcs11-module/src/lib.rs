//! cloudtoken: a PKCS#11 module that presents the credentials of a remote Cloud Signature Consortium
//! (CSC) signing service as a local token.
//!
//! The shared library exports only the PKCS#11 functions (see `ffi`). Signing keys never leave the
//! service: the module hashes locally, obtains an authorization (PIN, one-time password) and asks the
//! service to sign the hash.

// PKCS#11 names (C_Initialize, pInitArgs, ...) are kept as the specification spells them.
#![allow(non_snake_case)]

pub mod agent;
mod auth;
pub mod batch;
pub mod config;
mod digest;
mod error;
mod ffi;
mod log;
pub mod mechanism;
pub mod naming;
pub mod object;
mod prompt;
mod session;
mod sign;
mod state;
mod token;
mod totp;
