//! One thread waits on 8 channel receivers at once with a wait set, and
//! prints which delivered what. Eight sender threads (other processes, in
//! real life) send a few messages each, at their own pace, then close.
//!
//! ```sh
//! cargo run -p shmkit --release --example poll_many
//! ```

use std::time::Duration;

use shmkit::channel::{Options, Receiver, Sender, TryRecvError};
use shmkit::posix::ShmName;
use shmkit::wait::WaitSet;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<ShmName> = (0..8)
        .map(|i| ShmName::new(format!("/shmkit-poll-many-{}-{i}", std::process::id())))
        .collect::<Result<_, _>>()?;
    let senders: Vec<_> = names
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, name)| {
            std::thread::spawn(move || -> shmkit::Result<()> {
                let mut tx = Sender::connect(&name, &Options::new())?;
                for n in 0..3 {
                    std::thread::sleep(Duration::from_millis(10 * (i as u64 + 1) + 7 * n));
                    tx.send(format!("message {n} from sender {i}").as_bytes())?;
                }
                Ok(()) // dropping the sender closes the channel
            })
        })
        .collect();

    let mut receivers = names
        .iter()
        .map(|name| Receiver::connect(name, &Options::new()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut set = WaitSet::new()?;
    for (key, rx) in receivers.iter().enumerate() {
        set.add(rx, key as u64)?;
    }
    let mut open = receivers.len();
    while open > 0 {
        let ready = set.wait(Some(Duration::from_secs(10)))?.to_vec();
        if ready.is_empty() {
            return Err("nothing happened for 10 s".into());
        }
        for key in ready {
            let rx = &mut receivers[key as usize];
            // drain it: the call that finds it empty arms it again
            loop {
                match rx.try_recv() {
                    Ok(msg) => println!("receiver {key}: {}", String::from_utf8_lossy(&msg)),
                    Err(TryRecvError::Empty) => break,
                    Err(e) if e.is_disconnected() => {
                        println!("receiver {key}: the sender has closed");
                        set.remove(&*rx)?;
                        open -= 1;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for s in senders {
        s.join().expect("sender thread")?;
    }
    Ok(())
}
