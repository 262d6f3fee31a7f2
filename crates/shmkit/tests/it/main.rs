//! Integration tests: real objects, real processes. One test binary (see
//! `common.rs` for names, guards and child processes).

mod channel;
mod channel_core;
mod child;
mod common;
mod inspect;
mod interop;
mod latest;
mod latest_poll;
mod many_to_one;
mod many_to_one_poll;
mod memfd;
mod poll;
mod posix;
mod service;
mod service_poll;
mod shrink;
mod sysv;
mod tokio;
mod topic;
mod topic_poll;
