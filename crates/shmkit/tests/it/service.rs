//! Request/response between real processes: correlation with several
//! clients and several requests in flight, a killed server, clients killed
//! at random moments, error responses, timeouts, and cleanup.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmkit::posix::{PosixShm, ShmName};
use shmkit::service::{self, Client, Options, Server, Status, TrySendError};
use shmkit::Error;

use crate::common::{posix_name, LiveChild};

fn opts(clients: usize) -> Options {
    Options::new()
        .clients(clients)
        .capacity(4096)
        .timeout(Duration::from_secs(20))
}

fn gone(name: &ShmName) -> bool {
    matches!(PosixShm::open(name, &Default::default()), Err(Error::NotFound { .. }))
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Closed { .. } => "closed",
        Error::PeerGone { .. } => "peer-gone",
        Error::TimedOut { .. } => "timed-out",
        _ => "other",
    }
}

/// A request's body: the client's pid and a number.
fn body(seq: u64) -> Vec<u8> {
    format!("{}:{seq}", std::process::id()).into_bytes()
}

/// What the test servers answer: the request reversed.
fn answer(request: &[u8]) -> Vec<u8> {
    request.iter().rev().copied().collect()
}

/// Serves `count` requests, or until interrupted; returns how many and how
/// it ended.
fn serve(server: &mut Server, count: u64) -> (u64, Option<Error>) {
    let mut n = 0;
    loop {
        if n == count {
            return (n, None);
        }
        match server.recv_request() {
            Ok(req) => {
                let reply = answer(&req.body);
                match server.respond(req.client, req.id, &reply) {
                    Ok(()) => n += 1,
                    Err(e) => panic!("respond: {e}"),
                }
            }
            Err(e) => return (n, Some(e)),
        }
    }
}

/// Calls with `depth` requests in flight until `stop(sent)`; every
/// response must answer its own request. Returns the calls completed, or
/// the error.
fn call_loop(client: &mut Client, depth: usize, stop: impl Fn(u64) -> bool) -> Result<u64, Error> {
    let mut seq = 0u64;
    let mut in_flight = std::collections::VecDeque::new();
    let mut done = 0;
    while !stop(seq) || !in_flight.is_empty() {
        while !stop(seq) && in_flight.len() < depth {
            let b = body(seq);
            seq += 1;
            in_flight.push_back((client.send_request(&b)?, b));
        }
        // take them out of order: the newest first, then the oldest
        let (id, b) = if seq % 2 == 0 {
            in_flight.pop_back().unwrap()
        } else {
            in_flight.pop_front().unwrap()
        };
        let r = client.receive_response(id)?;
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.body, answer(&b), "the response to request {id}, and nobody else's");
        done += 1;
    }
    Ok(done)
}

/// Child roles; `child::main` hands roles starting with `svc-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    let report = |line: String| println!("@{line}");
    match role {
        // svc-calls NAME SEATS COUNT DEPTH: COUNT calls with DEPTH in flight.
        "svc-calls" => {
            let count: u64 = args[2].parse().unwrap();
            let depth: usize = args[3].parse().unwrap();
            let mut client = Client::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report("connected".into());
            let n = call_loop(&mut client, depth, |sent| sent >= count).unwrap();
            report(format!("calls {n}"));
        }
        // svc-calls-until-eof NAME SEATS DEPTH: calls until a line comes or
        // stdin closes; reports the count or the error.
        "svc-calls-until-eof" => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                flag.store(true, Ordering::Relaxed);
            });
            let mut client = Client::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report("connected".into());
            match call_loop(&mut client, args[2].parse().unwrap(), |_| stop.load(Ordering::Relaxed)) {
                Ok(n) => report(format!("calls {n}")),
                Err(e) => report(format!("error {}", kind(&e))),
            }
        }
        // svc-pending NAME SEATS: send a request, report, wait for its
        // response and report how that ended; then one more call.
        "svc-pending" => {
            let mut client = Client::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            let id = client.send_request(b"are you there?").unwrap();
            report("sent".into());
            match client.receive_response(id) {
                Ok(r) => report(format!("response {:?}", r.body)),
                Err(e) => report(format!("error {}", kind(&e))),
            }
            match client.call(b"and now?") {
                Ok(r) => report(format!("response {:?}", r.body)),
                Err(e) => report(format!("error {}", kind(&e))),
            }
        }
        // svc-serve-silent NAME SEATS: be the server, answer nothing.
        "svc-serve-silent" => {
            let _server = Server::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report("connected".into());
            std::thread::sleep(Duration::from_secs(60));
        }
        // svc-serve-when-told NAME: be the server of 64-byte rings; take
        // nothing until a line comes, then answer every request up to one
        // whose body is "last", and report their bodies.
        "svc-serve-when-told" => {
            let o = Options::new()
                .clients(1)
                .capacity(64)
                .respond_timeout(Duration::from_secs(20));
            let mut server = Server::connect(&name, &o).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            let mut bodies = Vec::new();
            loop {
                let req = server.recv_request().unwrap();
                server.respond(req.client, req.id, &answer(&req.body)).unwrap();
                bodies.push(String::from_utf8(req.body).unwrap());
                if bodies.last().unwrap() == "last" {
                    break;
                }
            }
            report(format!("served {}", bodies.join(",")));
        }
        other => panic!("unknown service role {other:?}"),
    }
}

#[test]
fn three_clients_with_requests_in_flight_each_get_their_own_responses() {
    let (name, _guard) = posix_name();
    let mut server = Server::connect(&name, &opts(3)).unwrap();
    let clients: Vec<LiveChild> = (0..3)
        .map(|_| LiveChild::spawn("svc-calls", &[name.as_str(), "3", "2000", "8"]))
        .collect();
    let (served, end) = serve(&mut server, 3 * 2000);
    assert!(end.is_none() && served == 3 * 2000, "{served} {end:?}");
    for mut c in clients {
        assert_eq!(c.expect_line(), "connected");
        assert_eq!(c.expect_line(), "calls 2000");
        c.finish();
    }
    drop(server);
    assert!(gone(&name));
}

#[test]
fn a_killed_server_fails_pending_and_later_calls_with_peer_gone() {
    let (name, _guard) = posix_name();
    let mut s = LiveChild::spawn("svc-serve-silent", &[name.as_str(), "2"]);
    assert_eq!(s.expect_line(), "connected");
    let mut c = LiveChild::spawn("svc-pending", &[name.as_str(), "2"]);
    assert_eq!(c.expect_line(), "sent");
    s.kill();
    assert_eq!(c.expect_line(), "error peer-gone", "the pending call");
    assert_eq!(c.expect_line(), "error peer-gone", "a later call");
    c.finish();
    assert!(gone(&name));
}

#[test]
fn error_responses_timeouts_and_a_slow_client() {
    let (name, _guard) = posix_name();
    assert!(matches!(
        Client::connect(&name, &opts(1).timeout(Duration::from_millis(100))),
        Err(Error::TimedOut { .. })
    ));
    assert!(gone(&name), "a client that gave up leaves nothing");
    let mut server = Server::connect(&name, &opts(1).respond_timeout(Duration::from_millis(50))).unwrap();
    let mut client = Client::connect(&name, &Options::new().timeout(Duration::from_secs(5))).unwrap();
    // an error response
    let id = client.send_request(b"boom").unwrap();
    let req = server.recv_request().unwrap();
    assert_eq!(
        (req.id, req.body.as_slice(), req.client),
        (id, &b"boom"[..], client.id())
    );
    server.respond_error(req.client, req.id, b"it failed").unwrap();
    let r = client.receive_response(id).unwrap();
    assert_eq!(r.into_result(), Err(b"it failed".to_vec()));
    // a call that times out is abandoned; its late response is dropped
    let e = client.call_timeout(b"slow", Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    assert_eq!(client.pending(), 0);
    let late = server.recv_request().unwrap();
    server.respond(late.client, late.id, b"too late").unwrap();
    let id = client.send_request(b"next").unwrap();
    let req = server.recv_request().unwrap();
    server.respond(req.client, req.id, b"on time").unwrap();
    assert_eq!(client.receive_response(id).unwrap().body, b"on time");
    // a client that does not read its responses: its ring fills, and the
    // server is held up at most its respond_timeout
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(client.send_request(b"x").unwrap());
        let req = server.recv_request().unwrap();
        match server.respond(req.client, req.id, &[7; 100]) {
            Ok(()) => {}
            Err(TrySendError::Full) => {
                assert!(matches!(
                    server.try_respond(req.client, req.id, &[7; 100]),
                    Err(TrySendError::Full)
                ));
                let info = service::info(&name).unwrap();
                assert!(info.seats[0].rings[1].backlog > 0);
                // a client that has gone gets nothing, however full its
                // ring: not `Full` for ever
                drop(client);
                assert!(matches!(server.try_respond(req.client, req.id, &[7; 100]), Ok(())));
                drop(server);
                assert!(gone(&name));
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("a 4 KiB response ring took 200 responses of 100 bytes");
}

#[test]
fn clients_killed_at_random_moments_200_times() {
    const KILLS: usize = 200;
    let (name, _guard) = posix_name();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = Server::connect(&name, &opts(2).interrupt(stop.clone())).unwrap();
    let serving = std::thread::spawn(move || serve(&mut server, u64::MAX));
    let mut survivor = LiveChild::spawn("svc-calls-until-eof", &[name.as_str(), "2", "4"]);
    assert_eq!(survivor.expect_line(), "connected");
    for _ in 0..KILLS {
        let mut victim = LiveChild::spawn("svc-calls-until-eof", &[name.as_str(), "2", "4"]);
        assert_eq!(victim.expect_line(), "connected");
        std::thread::sleep(Duration::from_micros(next() % 10_000));
        victim.kill();
    }
    survivor.send("stop");
    let line = survivor.expect_line();
    assert!(line.starts_with("calls "), "the survivor's calls all answered: {line}");
    survivor.finish();
    stop.store(true, Ordering::Relaxed);
    let (served, end) = serving.join().unwrap();
    assert!(matches!(end, Some(Error::Interrupted { .. })), "{end:?}");
    eprintln!("{KILLS} kills in {:?}; {served} requests answered", started.elapsed());
    assert!(gone(&name));
}

/// Fills the request ring of a server that takes nothing, with requests
/// `r0`, `r1`, … each given `patience`; returns their ids and bodies, and
/// the error that ended it.
fn fill(client: &mut Client, patience: Duration) -> (Vec<(u64, String)>, Error) {
    let mut sent = Vec::new();
    loop {
        let b = format!("r{}", sent.len());
        match client.send_request_timeout(b.as_bytes(), patience) {
            Ok(id) => sent.push((id, b)),
            Err(e) => return (sent, e),
        }
        assert!(sent.len() < 1000, "a request ring that never fills");
    }
}

#[test]
fn send_request_timeout_gives_up_on_a_full_ring_having_sent_nothing() {
    let (name, _guard) = posix_name();
    let mut s = LiveChild::spawn("svc-serve-when-told", &[name.as_str()]);
    assert_eq!(s.expect_line(), "connected");
    let mut client = Client::connect(&name, &Options::new().timeout(Duration::from_secs(20))).unwrap();
    let (sent, err) = fill(&mut client, Duration::from_millis(20));
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(!sent.is_empty(), "a 64-byte ring takes a request");
    assert_eq!(client.pending(), sent.len(), "the request that timed out was not sent");
    let e = client.send_request_timeout(b"never", Duration::ZERO).unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    assert_eq!(client.pending(), sent.len());
    // the server serves from now on: this one waits for the room it makes
    s.send("serve");
    let last = client.send_request_timeout(b"last", Duration::from_secs(20)).unwrap();
    for (id, b) in &sent {
        assert_eq!(client.receive_response(*id).unwrap().body, answer(b.as_bytes()));
    }
    assert_eq!(client.receive_response(last).unwrap().body, answer(b"last"));
    let bodies: Vec<&str> = sent.iter().map(|(_, b)| b.as_str()).chain(["last"]).collect();
    assert_eq!(
        s.expect_line(),
        format!("served {}", bodies.join(",")),
        "the server got every request sent, and none that timed out"
    );
    s.finish();
    let e = client
        .send_request_timeout(b"after", Duration::from_secs(20))
        .unwrap_err();
    assert!(matches!(e, Error::Closed { .. }), "the server left: {e}");
    drop(client);
    assert!(gone(&name));

    // a server that dies while the ring is full ends the wait
    let mut s = LiveChild::spawn("svc-serve-silent", &[name.as_str(), "1"]);
    assert_eq!(s.expect_line(), "connected");
    let mut client = Client::connect(&name, &Options::new().timeout(Duration::from_secs(20))).unwrap();
    let (sent, err) = fill(&mut client, Duration::from_millis(20));
    assert!(matches!(err, Error::TimedOut { .. }) && !sent.is_empty(), "{err}");
    s.kill();
    let e = client
        .send_request_timeout(b"anyone?", Duration::from_secs(20))
        .unwrap_err();
    assert!(matches!(e, Error::PeerGone { .. }), "{e}");
    drop(client);
    assert!(gone(&name));
}
