//! Integration tests: real objects, real processes. One test binary (see
//! `common.rs` for names, guards and child processes).

mod child;
mod common;
mod interop;
mod posix;
mod sysv;
