//! The operations a session can have active: signing (sign.rs) and local digesting (digest.rs). Each is a
//! value the session installs and takes (session.rs); the operations never reach into a session.

pub mod digest;
pub mod sign;

#[cfg(test)]
mod tests;
