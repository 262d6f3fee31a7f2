//! What `stat` shows of a shmkit pattern's header (the channel's is in
//! `view`): JSON views and the text lines.

use serde::Serialize;

use crate::view::short_size;

/// One participant of a pattern: its role, process and state.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantView {
    /// `writer`, `publisher`, `subscriber`, `sender`, `receiver`, `server`,
    /// `client`.
    pub role: &'static str,
    /// The process that holds (or held) the seat, a pid of its own PID
    /// namespace.
    pub pid: u32,
    /// Whether it still takes part (the kernel holds its seat's lock).
    pub alive: bool,
    /// Whether it left in order.
    pub closed: bool,
}

impl ParticipantView {
    /// `pid 12 (alive)`, `pid 12 (closed)`, `pid 12 (gone: exited without
    /// closing)`.
    pub fn describe(&self) -> String {
        let state = match (self.closed, self.alive) {
            (true, _) => "closed",
            (false, true) => "alive",
            (false, false) => "gone: exited without closing",
        };
        format!("pid {} ({state})", self.pid)
    }
}

/// What a latest value's header says.
#[derive(Debug, Clone, Serialize)]
pub struct LatestView {
    /// The longest value it holds, in bytes.
    pub max_size: u64,
    /// The newest complete version: the number of values written.
    pub version: u64,
    /// The newest value's length (null before the first write).
    pub len: Option<u64>,
    /// Whether it stays after its last participant has left.
    pub keep: bool,
    /// Whether any process takes part now (readers are not counted one by
    /// one).
    pub in_use: bool,
    /// The writer, null before one joined.
    pub writer: Option<ParticipantView>,
}

impl LatestView {
    /// The view of a latest value's header.
    pub fn new(i: &shmkit::latest::LatestInfo) -> LatestView {
        LatestView {
            max_size: i.max_size,
            version: i.version,
            len: i.len,
            keep: i.keep,
            in_use: i.in_use,
            writer: i.writer.as_ref().map(|w| ParticipantView {
                role: "writer",
                pid: w.pid,
                alive: w.alive,
                closed: w.closed,
            }),
        }
    }

    /// Its lines in `stat`.
    pub fn lines(&self, l: &mut Vec<(&'static str, String)>) {
        l.push((
            "pattern",
            format!(
                "a shmkit latest value: values up to {} bytes ({}), {}",
                self.max_size,
                short_size(self.max_size),
                if self.keep {
                    "kept until removed"
                } else {
                    "removed when its last participant leaves"
                }
            ),
        ));
        l.push((
            "value",
            match self.len {
                Some(len) => format!("version {}, {len} bytes", self.version),
                None => "none written yet".to_owned(),
            },
        ));
        l.push((
            "writer",
            self.writer
                .as_ref()
                .map_or("not joined yet".to_owned(), ParticipantView::describe),
        ));
        l.push((
            "in use",
            if self.in_use {
                "yes: a writer or reader takes part".to_owned()
            } else {
                "no".to_owned()
            },
        ));
    }
}
