//! Tells the tests whether they are built to run as root: those that need
//! root (to drop a child to another user, or to make namespaces) are then
//! ignored, with the reason, in the test runner's output instead of passing
//! without having run. CI runs as root, and runs them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shmkit_no_root)");
    println!("cargo::rerun-if-changed=build.rs");
    // a build under another user (sudo, su) changes these
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=HOME");
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    if !root {
        println!("cargo::rustc-cfg=shmkit_no_root");
    }
}
