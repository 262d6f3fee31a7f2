//! End-to-end tests of the built `shmkit` binary against real segments.

mod common;
mod demo;
mod segments;
