//! One module per subcommand, each with its `Args` and `run`.

pub mod create;
pub mod demo;
pub mod ftok;
pub mod read;
pub mod recv;
pub mod send;
pub mod write;
