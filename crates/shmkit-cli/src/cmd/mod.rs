//! One module per subcommand, each with its `Args` and `run`.

pub mod call;
pub mod completions;
pub mod create;
pub mod demo;
pub mod doctor;
pub mod ftok;
pub mod get;
pub mod limits;
pub mod ls;
pub mod man;
pub mod publish;
pub mod put;
pub mod read;
pub mod recv;
pub mod rm;
pub mod send;
pub mod serve;
pub mod stat;
pub mod subscribe;
pub mod write;
