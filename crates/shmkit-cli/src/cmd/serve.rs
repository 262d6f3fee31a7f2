//! `shmkit serve`: answer a service's requests by running a command.

use std::io::Write;
use std::process::{Command, Stdio};

use shmkit::posix::ShmName;
use shmkit::service::{Options, Server, TrySendError};

use crate::exit::{warn, Failure, Result};
use crate::units::parse_capacity;

const EXAMPLES: &str = "\
Examples:
  shmkit serve /upper -- tr a-z A-Z        and elsewhere: shmkit call /upper hello
  shmkit serve /dns --clients 64 -- sh -c 'getent hosts \"$(cat)\"'

Each request runs the command once, with the request on its standard input;
its standard output is the response. A command that exits non-zero sends an
error response (its standard error, or its status): `call` prints it and exits 1.
Requests are answered one at a time, in turn from each client. Runs until
interrupted (Ctrl-C, SIGTERM), then removes the service.";

/// Arguments of `shmkit serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The service, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    name: ShmName,
    /// How many clients may be connected at once, if this side creates the
    /// service (default 16).
    #[arg(long, value_name = "N")]
    clients: Option<usize>,
    /// Each request and response ring's size if this side creates the
    /// service (default 64K); the longest request or response is half of it,
    /// less 16 bytes.
    #[arg(long, value_parser = parse_capacity)]
    capacity: Option<u64>,
    /// Accept an existing service owned by another user or with wider
    /// permissions than 0600.
    #[arg(long)]
    allow_foreign: bool,
    /// The command that answers, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<std::ffi::OsString>,
}

/// Runs `shmkit serve`.
pub fn run(args: Args) -> Result {
    crate::signals::install()?;
    let mut opts = Options::new().allow_foreign(args.allow_foreign);
    if let Some(n) = args.clients {
        opts = opts.clients(n);
    }
    if let Some(cap) = args.capacity {
        opts = opts.capacity(cap);
    }
    if let Some(stop) = crate::signals::stop_flag() {
        opts = opts.interrupt(stop);
    }
    let mut server = Server::connect(&args.name, &opts)?;
    let max = server.max_message();
    loop {
        // Copied out, not read in place (`recv_request_ref`): the command
        // runs for milliseconds, and the request's space goes back to its
        // client at once (`stat` shows it taken); the copy is handed to the
        // writer as it is.
        let mut req = server.recv_request()?;
        let (ok, body) = answer(&args.command, std::mem::take(&mut req.body));
        let mut body = if body.len() > max {
            (
                false,
                format!(
                    "the response of {} bytes is longer than the {max} bytes this service carries",
                    body.len()
                )
                .into_bytes(),
            )
        } else {
            (ok, body)
        };
        // an error's text, cut to what the ring carries (a small ring's
        // limit may be shorter than the text saying so)
        if !body.0 {
            body.1.truncate(max);
        }
        let sent = if body.0 {
            server.respond(req.client, req.id, &body.1)
        } else {
            server.respond_error(req.client, req.id, &body.1)
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full) => warn(format!(
                "{}: client pid {} does not take its responses; one dropped",
                args.name, req.client.pid
            )),
            Err(TrySendError::Disconnected(e) | TrySendError::Failed(e)) => return Err(Failure::Shm(e)),
        }
    }
}

/// Runs the command with `request` on its standard input: `(true, stdout)`
/// if it succeeded, else `(false, why)`.
fn answer(command: &[std::ffi::OsString], request: Vec<u8>) -> (bool, Vec<u8>) {
    let program = command[0].to_string_lossy().into_owned();
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("{program}: {e}").into_bytes()),
    };
    // Written from a thread: a command that answers before it has read
    // everything must not block us on a full pipe.
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&request);
    });
    let output = child.wait_with_output();
    let _ = writer.join();
    match output {
        Ok(out) if out.status.success() => (true, out.stdout),
        Ok(out) => {
            let mut why = out.stderr;
            while why.last().is_some_and(|b| b.is_ascii_whitespace()) {
                why.pop();
            }
            if why.is_empty() {
                why = format!("{program}: {}", out.status).into_bytes();
            }
            (false, why)
        }
        Err(e) => (false, format!("{program}: {e}").into_bytes()),
    }
}
