//! End-to-end tests of the built `shmkit` binary against real segments.

mod channel;
mod common;
mod demo;
mod full;
mod grammar;
mod inspect;
mod install;
mod leftovers;
mod segments;
mod topic;
