//! The operations a session can have active: signing (sign.rs, with concurrent signatures of one
//! credential sent together by coalesce.rs) and local digesting (digest.rs). Each is a value the session
//! installs and takes (session.rs); the operations never reach into a session.

pub mod coalesce;
pub mod digest;
pub mod sign;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_batching;
