//! The kinds of shared object and the header words that identify them: the
//! part of the format that inspection reads too (without the rest of
//! `core::segment`).

// Under loom only the ring and events are exercised.
#![cfg_attr(loom, allow(dead_code))]

/// The first eight bytes of every shmkit segment ("SHMKITCH": the name dates
/// from when channels were the only kind).
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMKITCH");
/// The layout version; a reader refuses any other. Version 1 (shmkit 0.1's
/// first channels) had pid-based liveness and 32-bit frame lengths; version
/// 2 channels did not meet through bells (`core::bell`), which version 3
/// channels wait for while connecting; version 4 patterns keep poll words
/// for their pollers (`core::doorbell`).
pub(crate) const VERSION: u32 = 4;
/// `Meta::ready` once the creator has written every field.
pub(crate) const READY: u32 = 1;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    /// One sender, one receiver.
    Channel = 1,
    /// One publisher, many subscribers.
    Topic = 2,
    /// Many senders, one receiver.
    ManyToOne = 3,
    /// One server, many clients: request/response.
    Service = 4,
    /// One writer of a latest value, any number of readers.
    LatestValue = 5,
}

impl Kind {
    /// Every kind, in number order.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Channel,
        Kind::Topic,
        Kind::ManyToOne,
        Kind::Service,
        Kind::LatestValue,
    ];

    /// The kind's name, as `ls` shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Channel => "channel",
            Kind::Topic => "topic",
            Kind::ManyToOne => "many-to-one",
            Kind::Service => "service",
            Kind::LatestValue => "latest-value",
        }
    }

    /// The kind a number read from a segment stands for.
    pub(crate) fn from_number(kind: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u32 == kind)
    }
}
