//! End-to-end tests of the built `shmkit` binary against real segments.

mod channel;
mod common;
mod demo;
mod full;
mod grammar;
mod inspect;
mod install;
mod latest;
mod leftovers;
mod many_to_one;
mod segments;
mod service;
mod topic;
