//! `shmkit completions`: a shell's completion script, generated from the
//! command line's own definition (clap_complete), so it never falls behind.

use std::io::Write;

use crate::exit::Result;

const EXAMPLES: &str = "\
Examples:
  shmkit completions bash > ~/.local/share/bash-completion/completions/shmkit
  shmkit completions zsh > ~/.zfunc/_shmkit      (with fpath+=(~/.zfunc) in .zshrc)
  shmkit completions fish > ~/.config/fish/completions/shmkit.fish";

/// Arguments of `shmkit completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Runs `shmkit completions`: prints the script for `command` (the whole
/// `shmkit` command line) on standard output.
pub fn run(args: Args, mut command: clap::Command) -> Result {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "shmkit", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
