//! cloudtoken: a PKCS#11 module that presents the credentials of a remote signing service as a local
//! token.
//!
//! The shared library exports only the PKCS#11 functions (see `ffi`). Signing keys never leave the
//! service: the module hashes locally, obtains an authorization (PIN, one-time password) and asks the
//! service to sign the hash. Calls go one way: the C boundary (`ffi`) → the operation (`operation`) →
//! authorization (`auth`) → the service account (`token::account`) → the service seam (`service`) → a
//! protocol client (remote-client). README, "How the code is laid out", has one line per module.
//!
//! The Rust API is for the `cloudtoken` tool only: configuration, naming, the agent protocol and the
//! batch environment; everything else is crate-private.

// The FFI boundary turns panics into CKR_GENERAL_ERROR (ffi::guard); with panic=abort a bug would kill
// the application that loaded the module instead.
#[cfg(panic = "abort")]
compile_error!("cloudtoken must be built with panic = \"unwind\": the C boundary catches panics");

pub mod agent;
mod auth;
pub mod batch;
mod child;
pub mod config;
mod error;
mod ffi;
mod log;
mod mechanism;
pub mod naming;
mod object;
mod operation;
mod prompt;
pub mod runtime;
pub mod service;
mod session;
mod state;
mod token;
mod totp;
