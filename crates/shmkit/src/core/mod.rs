//! The messaging core: the pieces every pattern is made of, each knowing
//! nothing of the others' roles.
//!
//! - [`segment`]: the shared object and its header (magic, kind, version,
//!   sizes), atomic publication, validation, trust, capacity negotiation,
//!   and exclusive removal of an abandoned object.
//! - [`slots`]: participants, whose liveness is an open-file-description
//!   lock the kernel drops when they die (the `fcntl` calls are in
//!   `crate::sys::ofd`).
//! - [`participant`]: joining an object in a seat (creating it, or taking
//!   over an abandoned one), and leaving it.
//! - [`event`]: a futex word with a count of sleepers.
//! - [`bell`]: a FIFO per participant that waits through a descriptor.
//! - [`doorbell`]: bells, lives and watches for objects with many
//!   participants (a descriptor to poll, death without a timer).
//! - [`ring`]: frames from one producer to N consumer positions.
//!
//! Under `--cfg loom` only the lock-free parts (`event`, `ring`) are built,
//! for the model checker.

#[cfg(not(loom))]
pub(crate) mod bell;
#[cfg(not(loom))]
pub(crate) mod doorbell;
pub(crate) mod event;
pub(crate) mod kind;
#[cfg(not(loom))]
pub(crate) mod participant;
#[allow(unsafe_code)] // the ring's memory and counters
pub(crate) mod ring;
#[cfg(not(loom))]
#[allow(unsafe_code)] // the meta line's place in the mapping
pub(crate) mod segment;
#[cfg(not(loom))]
pub(crate) mod slots;
pub(crate) mod sync;
