//! cloudtoken: being written.
