//! What `stat` shows of a shmkit pattern's header (the channel's is in
//! `view`): JSON views and the text lines.

use serde::Serialize;

use crate::view::{plural, short_size};

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
    /// Whether it waits through a descriptor (it took its endpoint's
    /// descriptor, to poll it or to await it), as its poll word says.
    pub polling: bool,
}

impl ParticipantView {
    /// `pid 12 (alive)`, `pid 12 (alive, polling)`, `pid 12 (closed)`,
    /// `pid 12 (gone: exited without closing)`.
    pub fn describe(&self) -> String {
        let state = match (self.closed, self.alive) {
            (true, _) => "closed",
            (false, true) if self.polling => "alive, polling",
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
    /// Readers that wait through a descriptor now (each holds a word of the
    /// poll roster).
    pub polling_readers: u32,
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
                // a writer never waits
                polling: false,
            }),
            polling_readers: i.pollers,
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
        if self.polling_readers > 0 {
            l.push(("polling", plural(u64::from(self.polling_readers), "reader", "readers")));
        }
    }
}

fn participant(role: &'static str, s: &shmkit::channel::SideInfo, polling: bool) -> ParticipantView {
    ParticipantView {
        role,
        pid: s.pid,
        alive: s.alive,
        closed: s.closed,
        polling,
    }
}

/// One ring of a seat.
#[derive(Debug, Clone, Serialize)]
pub struct RingView {
    /// Messages its writer has committed (in the seat's generation).
    pub messages_sent: u64,
    /// Messages its reader has taken.
    pub messages_received: u64,
    /// Messages committed and not yet taken.
    pub backlog: u64,
}

/// One seat of a many-to-one object or a service.
#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    /// The seat, from 0.
    pub seat: usize,
    /// Its participant now or last (null: never used).
    pub participant: Option<ParticipantView>,
    /// The rings' generation: each new participant in the seat starts one.
    pub generation: u32,
    /// Whether a new participant waits for the previous one's last messages
    /// to be delivered.
    pub waiting: bool,
    /// Many-to-one: the sender's ring; service: requests, then responses.
    pub rings: Vec<RingView>,
}

fn seat(role: &'static str, s: &shmkit::many_to_one::SeatInfo) -> SeatView {
    SeatView {
        seat: s.seat,
        participant: s.participant.as_ref().map(|p| participant(role, p, s.polling)),
        generation: s.generation,
        waiting: s.waiting,
        rings: s
            .rings
            .iter()
            .map(|r| RingView {
                messages_sent: r.messages_sent,
                messages_received: r.messages_received,
                backlog: r.backlog,
            })
            .collect(),
    }
}

/// What a many-to-one object's or a service's header says.
#[derive(Debug, Clone, Serialize)]
pub struct SeatsView {
    /// Each ring's size in bytes.
    pub capacity: u64,
    /// The longest message (request, response) it carries.
    pub max_message: u64,
    /// The receiver (many-to-one) or server (service), null before one
    /// joined.
    pub owner: Option<ParticipantView>,
    /// Messages sent and not yet received, over every seat (service: the
    /// requests).
    pub backlog: u64,
    /// Every seat, used or not.
    pub seats: Vec<SeatView>,
}

impl SeatsView {
    /// The view of a many-to-one object's header.
    pub fn many_to_one(i: &shmkit::many_to_one::ManyToOneInfo) -> SeatsView {
        SeatsView {
            capacity: i.capacity,
            max_message: i.max_message,
            owner: i
                .receiver
                .as_ref()
                .map(|r| participant("receiver", r, i.receiver_polling)),
            backlog: i.backlog(),
            seats: i.seats.iter().map(|s| seat("sender", s)).collect(),
        }
    }

    /// The view of a service's header.
    pub fn service(i: &shmkit::service::ServiceInfo) -> SeatsView {
        SeatsView {
            capacity: i.capacity,
            max_message: i.max_message,
            owner: i.server.as_ref().map(|r| participant("server", r, i.server_polling)),
            backlog: i.backlog(),
            seats: i.seats.iter().map(|s| seat("client", s)).collect(),
        }
    }

    /// Its lines in `stat`: `what` is "many-to-one" or "service".
    pub fn lines(&self, what: &str, l: &mut Vec<(&'static str, String)>) {
        let (owner, seat_role): (&'static str, &'static str) = if what == "service" {
            ("server", "client")
        } else {
            ("receiver", "sender")
        };
        l.push((
            "pattern",
            format!(
                "a shmkit {what}: {} {seat_role} seats, rings of {} bytes ({}), messages up to {} bytes",
                self.seats.len(),
                self.capacity,
                short_size(self.capacity),
                self.max_message
            ),
        ));
        l.push((
            owner,
            self.owner
                .as_ref()
                .map_or("not joined yet".to_owned(), ParticipantView::describe),
        ));
        l.push((
            "backlog",
            format!("{} sent and not yet taken", plural(self.backlog, "message", "messages")),
        ));
        for s in &self.seats {
            let Some(p) = &s.participant else { continue };
            let rings: Vec<String> = s
                .rings
                .iter()
                .map(|r| format!("{} sent, {} taken", r.messages_sent, r.messages_received))
                .collect();
            l.push((
                seat_role,
                format!(
                    "seat {}: {}, generation {}{}; {}",
                    s.seat,
                    p.describe(),
                    s.generation,
                    if s.waiting { ", a new one waits" } else { "" },
                    rings.join(" / ")
                ),
            ));
        }
    }
}

/// One subscriber of a topic.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberView {
    /// The seat, from 0.
    pub seat: usize,
    /// Its subscriber now or last.
    pub participant: ParticipantView,
    /// Whether the publisher does not wait for it.
    pub lossy: bool,
    /// Its position in the ring (bytes ever read).
    pub position: u64,
    /// Messages published that it has not read (a lossy one may have lost
    /// some of them).
    pub lag_messages: u64,
    /// Bytes between its position and the publisher's.
    pub lag_bytes: u64,
}

/// What a topic's header says.
#[derive(Debug, Clone, Serialize)]
pub struct TopicView {
    /// The ring's size in bytes (0 until a publisher has come).
    pub capacity: u64,
    /// The longest message it carries.
    pub max_message: u64,
    /// How many subscribers may take part at once.
    pub max_subscribers: usize,
    /// How many past messages a new subscriber starts with, at most.
    pub history: u64,
    /// The publisher, null before one joined.
    pub publisher: Option<ParticipantView>,
    /// Messages published.
    pub messages_published: u64,
    /// Payload bytes published.
    pub bytes_published: u64,
    /// Messages the ring still holds intact.
    pub messages_held: u64,
    /// Every seat ever used.
    pub subscribers: Vec<SubscriberView>,
}

impl TopicView {
    /// The view of a topic's header.
    pub fn new(i: &shmkit::topic::TopicInfo) -> TopicView {
        TopicView {
            capacity: i.capacity,
            max_message: i.max_message,
            max_subscribers: i.max_subscribers,
            history: i.history,
            publisher: i.publisher.as_ref().map(|p| ParticipantView {
                role: "publisher",
                pid: p.pid,
                alive: p.alive,
                closed: p.closed,
                polling: p.polling,
            }),
            messages_published: i.messages_published,
            bytes_published: i.bytes_published,
            messages_held: i.messages_held,
            subscribers: i
                .subscribers
                .iter()
                .map(|s| SubscriberView {
                    seat: s.seat,
                    participant: ParticipantView {
                        role: "subscriber",
                        pid: s.pid,
                        alive: s.alive,
                        closed: s.closed,
                        polling: s.polling,
                    },
                    lossy: s.lossy,
                    position: s.position,
                    lag_messages: s.lag_messages,
                    lag_bytes: s.lag_bytes,
                })
                .collect(),
        }
    }

    /// Its lines in `stat`.
    pub fn lines(&self, l: &mut Vec<(&'static str, String)>) {
        l.push((
            "pattern",
            format!(
                "a shmkit topic: ring of {} bytes ({}), messages up to {} bytes, up to {} subscribers, history {}",
                self.capacity,
                short_size(self.capacity),
                self.max_message,
                self.max_subscribers,
                self.history
            ),
        ));
        l.push((
            "publisher",
            self.publisher
                .as_ref()
                .map_or("not joined yet".to_owned(), ParticipantView::describe),
        ));
        l.push((
            "published",
            format!(
                "{}, {} bytes; {} still in the ring",
                plural(self.messages_published, "message", "messages"),
                self.bytes_published,
                self.messages_held
            ),
        ));
        for s in &self.subscribers {
            l.push((
                "subscriber",
                format!(
                    "seat {}: {}, {}, {} behind ({} bytes)",
                    s.seat,
                    s.participant.describe(),
                    if s.lossy { "lossy" } else { "blocking" },
                    plural(s.lag_messages, "message", "messages"),
                    s.lag_bytes
                ),
            ));
        }
    }
}
