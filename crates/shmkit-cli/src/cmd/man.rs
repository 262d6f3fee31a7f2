//! `shmkit man`: the manual pages, shmkit(1) and shmkit-SUBCOMMAND(1), in
//! roff, generated from the command line's own definition (clap_mangen).

use std::io::Write;

use crate::exit::{Failure, Result};

const EXAMPLES: &str = "\
Examples:
  shmkit man > shmkit.1 && man -l shmkit.1
  shmkit man create > shmkit-create.1
  for c in '' $(shmkit man --list); do shmkit man $c > shmkit${c:+-$c}.1; done";

/// Arguments of `shmkit man`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The subcommand whose page to print, shmkit-SUBCOMMAND(1) [default:
    /// shmkit(1), which lists them all].
    subcommand: Option<String>,
    /// Print the names of the subcommands that have a page, one a line.
    #[arg(long, conflicts_with = "subcommand")]
    list: bool,
}

/// Runs `shmkit man`: prints a page of `command` (the whole `shmkit`
/// command line: options, subcommands, examples, exit status) on standard
/// output.
pub fn run(args: Args, command: clap::Command) -> Result {
    let mut out = std::io::stdout().lock();
    let visible = || command.get_subcommands().filter(|c| !c.is_hide_set());
    if args.list {
        for sub in visible() {
            writeln!(out, "{}", sub.get_name())?;
        }
        return Ok(());
    }
    let page = match &args.subcommand {
        None => command.clone(),
        Some(name) => match visible().find(|c| c.get_name() == name) {
            // its page is named as the top page refers to it
            Some(sub) => sub
                .clone()
                .display_name(format!("shmkit-{name}"))
                .bin_name(format!("shmkit {name}"))
                .version(env!("CARGO_PKG_VERSION")),
            None => return Err(Failure::Message(format!("{name:?}: no such subcommand"), 2)),
        },
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    out.write_all(&roff)?;
    Ok(())
}
