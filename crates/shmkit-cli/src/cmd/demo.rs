//! `shmkit demo`: the classic shared-memory demos, each side a real process,
//! and a channel streaming a million messages between two processes.
//!
//! For each kind a writer process creates a 4096-byte object and writes
//! `This is writer!!!`, then a reader process maps it, prints
//! `from writer: This is writer!!!` and removes it. Both are this executable,
//! re-run with the hidden `demo-step` subcommand. Names are unique per run,
//! so two demos can run at once, and a guard removes what a failed step left.

use std::path::{Path, PathBuf};
use std::process::Command;

use shmkit::channel;
use shmkit::posix::{self, PosixShm, ShmName};
use shmkit::sysv::{Key, SysvShm};

use crate::exit::{Failure, Result};

/// The message the writers write.
const MESSAGE: &str = "This is writer!!!";
/// The size the writers give their objects, as the classic demo does.
const SIZE: u64 = 4096;

/// Arguments of `shmkit demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Arguments of the hidden `shmkit demo-step`.
#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// Which side to play.
    #[arg(value_enum)]
    step: Step,
    /// The POSIX name, or `PATH:ID` for the System V key.
    object: String,
}

/// One side of a demo.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Step {
    PosixWrite,
    PosixRead,
    SysvWrite,
    SysvRead,
    ChanSend,
    ChanRecv,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::PosixWrite => "posix-write",
            Step::PosixRead => "posix-read",
            Step::SysvWrite => "sysv-write",
            Step::SysvRead => "sysv-read",
            Step::ChanSend => "chan-send",
            Step::ChanRecv => "chan-recv",
        }
    }
}

/// Runs both demos.
pub fn run(_args: Args) -> Result {
    let exe = std::env::current_exe()?;
    let pid = std::process::id();
    say(format_args!(
        "shmkit demo: the classic writer and reader, each in a process of its own."
    ))?;
    say(format_args!(""))?;
    posix_demo(&exe, pid)?;
    say(format_args!(""))?;
    sysv_demo(&exe, pid)?;
    say(format_args!(""))?;
    channel_demo(&exe, pid)?;
    say(format_args!(""))?;
    say(format_args!(
        "Done: each reader removed its object, nothing is left behind."
    ))?;
    Ok(())
}

fn posix_demo(exe: &Path, pid: u32) -> Result {
    let name = ShmName::new(format!("/shmkit-demo-{pid}"))?;
    say(format_args!("== POSIX shared memory: {name} =="))?;
    let mut guard = Leftover::Posix(name.clone());
    spawn_step(exe, Step::PosixWrite, name.as_str())?;
    spawn_step(exe, Step::PosixRead, name.as_str())?;
    match PosixShm::open(&name, &Default::default()) {
        Err(shmkit::Error::NotFound { .. }) => {}
        _ => return Err(Failure::Message(format!("{name}: the reader did not remove it"), 1)),
    }
    guard.disarm();
    Ok(())
}

fn sysv_demo(exe: &Path, pid: u32) -> Result {
    // ftok needs an existing file: one of our own keeps concurrent demos apart.
    let file = TempFile::create(std::env::temp_dir().join(format!("shmkit-demo-{pid}.key")))?;
    let (key, proj_id) = free_key(&file.0)?;
    let object = format!("{}:{proj_id}", file.0.display());
    say(format_args!(
        "== System V shared memory: key {key} = ftok(\"{}\", {proj_id}) ==",
        file.0.display()
    ))?;
    let mut guard = Leftover::Sysv(key);
    spawn_step(exe, Step::SysvWrite, &object)?;
    spawn_step(exe, Step::SysvRead, &object)?;
    match SysvShm::open(key, &Default::default()) {
        Err(shmkit::Error::NotFound { .. }) => {}
        _ => return Err(Failure::Message(format!("key:{key}: the reader did not remove it"), 1)),
    }
    guard.disarm();
    Ok(())
}

/// How many messages the channel demo streams, and how big each is.
const CHANNEL_MESSAGES: u64 = 1_000_000;
const CHANNEL_MESSAGE_SIZE: usize = 64;

fn channel_demo(exe: &Path, pid: u32) -> Result {
    let name = ShmName::new(format!("/shmkit-demo-{pid}-chan"))?;
    say(format_args!(
        "== Channel: {name}, {CHANNEL_MESSAGES} messages of {CHANNEL_MESSAGE_SIZE} bytes =="
    ))?;
    let mut guard = Leftover::Posix(name.clone());
    // Both at once: either may start first.
    let spawn = |step: Step| {
        Command::new(exe)
            .args(["demo-step", step.name(), name.as_str()])
            .spawn()
    };
    let mut receiver = spawn(Step::ChanRecv)?;
    let mut sender = spawn(Step::ChanSend)?;
    let (sent, received) = (sender.wait()?, receiver.wait()?);
    for (step, status) in [(Step::ChanSend, sent), (Step::ChanRecv, received)] {
        if !status.success() {
            return Err(Failure::Message(
                format!("the {} step failed ({status})", step.name()),
                1,
            ));
        }
    }
    match PosixShm::open(&name, &Default::default()) {
        Err(shmkit::Error::NotFound { .. }) => {}
        _ => return Err(Failure::Message(format!("{name}: the channel was not removed"), 1)),
    }
    guard.disarm();
    Ok(())
}

/// An `ftok` key for `path` that no segment uses yet, and its project id.
fn free_key(path: &Path) -> Result<(Key, u8)> {
    for proj_id in b'A'..=b'Z' {
        let key = Key::ftok(path, proj_id)?;
        if let Err(shmkit::Error::NotFound { .. }) = SysvShm::open(key, &Default::default()) {
            return Ok((key, proj_id));
        }
    }
    Err(Failure::Message(
        format!("{}: every demo key is in use", path.display()),
        4,
    ))
}

/// Runs one step in a new process of this executable and waits for it.
fn spawn_step(exe: &Path, step: Step, object: &str) -> Result {
    let status = Command::new(exe).args(["demo-step", step.name(), object]).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Message(
            format!("the {} step failed ({status})", step.name()),
            1,
        ))
    }
}

/// Runs one step of a demo (in the process `spawn_step` started).
pub fn run_step(args: StepArgs) -> Result {
    let me = std::process::id();
    match args.step {
        Step::PosixWrite => {
            let name = ShmName::new(args.object)?;
            let shm = PosixShm::create(&name, &posix::Options::new().size(SIZE))?;
            note(format_args!(
                "  writer (pid {me}): shm_open(\"{name}\", O_CREAT|O_EXCL|O_RDWR, 0600), sized to {SIZE} bytes"
            ));
            shm.map()?.write_at(0, c_string(MESSAGE).as_slice())?;
            note(format_args!(
                "  writer (pid {me}): mapped it and wrote \"{MESSAGE}\"; unmapped and closed, the object stays"
            ));
        }
        Step::PosixRead => {
            let name = ShmName::new(args.object)?;
            let shm = PosixShm::open(&name, &posix::Options::new().read_only(true))?;
            let map = shm.map()?;
            note(format_args!(
                "  reader (pid {me}): shm_open(\"{name}\", O_RDONLY), mapped {} bytes read-only",
                map.len()
            ));
            let text = map.read_cstr(0)?;
            note(format_args!("from writer: {}", String::from_utf8_lossy(&text)));
            drop(map);
            posix::remove(&name)?;
            note(format_args!("  reader (pid {me}): shm_unlink(\"{name}\"): removed"));
        }
        Step::SysvWrite => {
            let key = parse_ftok(&args.object)?;
            let shm = SysvShm::create(key, &shmkit::sysv::Options::new().size(SIZE))?;
            note(format_args!(
                "  writer (pid {me}): shmget({key}, {SIZE}, IPC_CREAT|IPC_EXCL|0600) gave id {}",
                shm.id()
            ));
            shm.attach()?.write_at(0, c_string(MESSAGE).as_slice())?;
            note(format_args!(
                "  writer (pid {me}): attached it, wrote \"{MESSAGE}\" and detached; the segment stays"
            ));
        }
        Step::ChanSend => {
            let name = ShmName::new(args.object)?;
            let mut tx = channel::Sender::connect(&name, &channel_options())?;
            note(format_args!(
                "  sender (pid {me}): connected to receiver pid {}, sending",
                tx.peer_pid().unwrap_or(0)
            ));
            let mut msg = [0u8; CHANNEL_MESSAGE_SIZE];
            for seq in 0..CHANNEL_MESSAGES {
                msg[..8].copy_from_slice(&seq.to_le_bytes());
                tx.send(&msg)?;
            }
            note(format_args!("  sender (pid {me}): sent all, closing"));
        }
        Step::ChanRecv => {
            let name = ShmName::new(args.object)?;
            let mut rx = channel::Receiver::connect(&name, &channel_options())?;
            note(format_args!(
                "  receiver (pid {me}): connected to sender pid {}, receiving",
                rx.peer_pid().unwrap_or(0)
            ));
            let mut buf = Vec::new();
            let mut count = 0u64;
            let mut started = None;
            loop {
                match rx.recv_into(&mut buf) {
                    Ok(()) => {
                        started.get_or_insert_with(std::time::Instant::now);
                        let seq = buf.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
                        if seq != Some(count) {
                            return Err(Failure::Message(
                                format!("{name}: message {count} arrived out of order"),
                                1,
                            ));
                        }
                        count += 1;
                    }
                    Err(shmkit::Error::Closed { .. }) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            let secs = started.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
            let bytes = count * CHANNEL_MESSAGE_SIZE as u64;
            note(format_args!(
                "  receiver (pid {me}): {count} messages in order, {bytes} bytes in {:.3} s: {:.2} million messages/s, {:.0} MB/s",
                secs,
                count as f64 / secs / 1e6,
                bytes as f64 / secs / 1e6
            ));
        }
        Step::SysvRead => {
            let key = parse_ftok(&args.object)?;
            let shm = SysvShm::open(key, &shmkit::sysv::Options::new().read_only(true))?;
            let map = shm.attach_read_only()?;
            note(format_args!(
                "  reader (pid {me}): shmget({key}) found id {}, attached read-only",
                shm.id()
            ));
            let text = map.read_cstr(0)?;
            note(format_args!("from writer: {}", String::from_utf8_lossy(&text)));
            drop(map);
            shm.remove()?;
            note(format_args!("  reader (pid {me}): detached, shmctl(IPC_RMID): removed"));
        }
    }
    Ok(())
}

/// The demo's channel options: a short connect timeout, so a lost peer
/// does not hang the demo.
fn channel_options() -> channel::Options {
    channel::Options::new().timeout(std::time::Duration::from_secs(10))
}

/// Prints one line; a closed standard output ends the demo quietly.
fn say(line: std::fmt::Arguments<'_>) -> Result {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")?;
    Ok(())
}

/// Prints one line of a step; the step does its work even when nobody reads
/// its output any more.
fn note(line: std::fmt::Arguments<'_>) {
    let _ = say(line);
}

/// `PATH:ID` to the key `ftok(PATH, ID)`.
fn parse_ftok(object: &str) -> Result<Key> {
    let (path, id) = object
        .rsplit_once(':')
        .ok_or_else(|| Failure::Message(format!("{object}: expected PATH:ID"), 2))?;
    let id: u8 = id
        .parse()
        .map_err(|_| Failure::Message(format!("{object}: ID must be 1 to 255"), 2))?;
    Ok(Key::ftok(path, id)?)
}

/// `text` followed by a NUL byte, as C's `strcpy` writes it.
fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// An object a failed demo may have left; removed on drop unless disarmed.
enum Leftover {
    Posix(ShmName),
    Sysv(Key),
    Nothing,
}

impl Leftover {
    fn disarm(&mut self) {
        *self = Leftover::Nothing;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let removed = match self {
            Leftover::Posix(name) => posix::remove(name).is_ok(),
            Leftover::Sysv(key) => SysvShm::open(*key, &Default::default()).is_ok_and(|shm| shm.remove().is_ok()),
            Leftover::Nothing => false,
        };
        if removed {
            crate::exit::warn("demo: removed what the failed step left behind");
        }
    }
}

/// A file that exists while this value does.
struct TempFile(PathBuf);

impl TempFile {
    fn create(path: PathBuf) -> Result<TempFile> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
