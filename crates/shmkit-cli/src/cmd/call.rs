//! `shmkit call`: one request to a service, its response on standard output.

use std::io::{Read, Write};
use std::time::Duration;

use shmkit::posix::ShmName;
use shmkit::service::{Client, Options, Status};

use crate::exit::{Failure, Result};
use crate::units::parse_duration;

const EXAMPLES: &str = "\
Examples:
  shmkit call /upper hello                 prints HELLO (with `shmkit serve /upper -- tr a-z A-Z`)
  shmkit call /upper < request.txt --timeout 2s

TEXT is sent with a newline after it, as `echo` would; standard input is sent
as it is. Exits 0 with the response on standard output; 1 when the server sends
an error response (printed on standard error); 8 if the server died; 9 on timeout.";

/// Arguments of `shmkit call`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The service, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    name: ShmName,
    /// The request (default: standard input).
    text: Option<String>,
    /// How long to wait for the server to be there and to answer (default:
    /// for ever).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Accept an existing service owned by another user or with wider
    /// permissions than 0600.
    #[arg(long)]
    allow_foreign: bool,
}

/// Runs `shmkit call`.
pub fn run(args: Args) -> Result {
    let request = match &args.text {
        Some(text) => format!("{text}\n").into_bytes(),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::Message(format!("stdin: {e}"), 1))?;
            buf
        }
    };
    crate::signals::install()?;
    let mut opts = Options::new().allow_foreign(args.allow_foreign);
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    if let Some(stop) = crate::signals::stop_flag() {
        opts = opts.interrupt(stop);
    }
    // One deadline for connecting and calling together, as --timeout says.
    let started = std::time::Instant::now();
    let mut client = Client::connect(&args.name, &opts)?;
    let response = match args.timeout {
        Some(t) => client.call_timeout(&request, t.saturating_sub(started.elapsed()))?,
        None => client.call(&request)?,
    };
    match response.status {
        Status::Ok => {
            let mut out = std::io::stdout().lock();
            out.write_all(&response.body)?;
            out.flush()?;
            Ok(())
        }
        Status::Error => Err(Failure::Message(
            format!(
                "{}: the server answered with an error: {}",
                args.name,
                String::from_utf8_lossy(&response.body)
            ),
            1,
        )),
    }
}
