//! shmkit: safe POSIX and System V shared memory for Linux.
//!
//! Two kinds of shared memory, one set of habits:
//!
//! - [`posix`]: objects named `/name` (`shm_open`, `ftruncate`, `mmap`,
//!   `shm_unlink`), handled by [`posix::PosixShm`].
//! - [`sysv`]: segments found by a [`sysv::Key`] (`shmget`, `shmat`,
//!   `shmctl`), handled by [`sysv::SysvShm`].
//! - [`memfd`]: nameless memory sealed against shrinking, handed to another
//!   process over a Unix socket, handled by [`memfd::Memfd`].
//!
//! Both map into a [`map::Mapping`], which copies in and out with bounds
//! checks and offers atomics for control words, because memory that another
//! process can write at any moment must never be seen as a plain `&[u8]`.
//! Creating, opening and removing are separate, explicit calls; dropping a
//! handle never removes the object unless it was wrapped with
//! `remove_on_drop()`. Everything is created with mode `0600` unless asked
//! otherwise. Every failure is one [`Error`] that names the object.
//!
//! # POSIX
//!
//! ```
//! use shmkit::posix::{self, Options, PosixShm, ShmName};
//!
//! let name = ShmName::new(format!("/shmkit-doc-lib-{}", std::process::id()))?;
//! let shm = PosixShm::create(&name, &Options::new().size(4096))?;
//! shm.map()?.write_at(0, b"This is writer!!!\0")?;
//!
//! let reader = PosixShm::open(&name, &Options::new().read_only(true))?;
//! let text = reader.map()?.read_cstr(0)?;
//! println!("from writer: {}", String::from_utf8_lossy(&text));
//! assert_eq!(text, b"This is writer!!!");
//! posix::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! # System V
//!
//! ```
//! use shmkit::sysv::{Key, Options, SysvShm};
//!
//! let key = Key::ftok("/", 0x53)?; // as C's ftok("/", 'S')
//! # let key = Key::PRIVATE; // keep doc tests from colliding with real users of that key
//! let shm = SysvShm::create(key, &Options::new().size(4096))?;
//! shm.attach()?.write_at(0, b"This is writer!!!\0")?;
//!
//! let reader = SysvShm::from_id(shm.id())?;
//! let text = reader.attach_read_only()?.read_cstr(0)?;
//! assert_eq!(text, b"This is writer!!!");
//! reader.remove()?; // IPC_RMID
//! # Ok::<(), shmkit::Error>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(loom))]
pub mod channel;
mod core;
pub mod error;
pub mod guard;
pub mod inspect;
pub mod key;
pub mod latest;
#[cfg(not(loom))]
pub mod many_to_one;
pub mod memfd;
pub mod name;
pub mod posix;
#[cfg(not(loom))]
pub mod service;
#[cfg(all(feature = "tokio", not(loom)))]
#[allow(unsafe_code)] // registering a descriptor with tokio's reactor (its I/O-safety contract)
pub mod tokio;
#[cfg(not(loom))]
pub mod topic;
#[cfg(not(loom))]
pub mod wait;

// The two modules that turn addresses and C calls into safe values.
#[allow(unsafe_code)]
pub mod map;
#[allow(unsafe_code)]
pub mod sysv;
// File leases, OFD locks, signal dispositions and the name service: C calls rustix lacks.
#[allow(unsafe_code)]
mod sys;

pub use error::{Error, Result, Role, Target};

/// The README's Rust examples, compiled as doc tests (`no_run` where they
/// would touch well-known names).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
pub use guard::{Removable, RemoveOnDrop};
