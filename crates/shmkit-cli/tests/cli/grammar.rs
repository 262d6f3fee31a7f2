//! One grammar: every flag that takes a size, and every flag that takes a
//! duration, accepts and refuses the same forms (README, "Sizes and
//! durations"). The unit tests in `src/units.rs` try every form's value;
//! these show that each flag goes through that one parser.
//!
//! A form is tried without running anything: with the command's required
//! target left out, clap parses every value first and then complains of
//! the missing target (accepted) or of the value, naming the flag
//! (refused). `bench` has no required argument: a `--rounds 0` after the
//! form plays that part (clap parses values in order).

use std::process::Output;

use crate::common::{assert_code, posix_name, run, shmkit, stderr};

/// Sizes every size flag accepts (within every flag's range: a power of
/// two from 64 to 64M, as channel capacities and bench sizes must be).
const SIZES: &[&str] = &[
    "4096", "0064", "4K", "4k", "4KiB", "4kib", "4KIB", "64K", "1M", "1m", "1MiB", "1mib", "64M",
];

/// Sizes no flag accepts (`1,024` is refused too, but is a list of two
/// for `bench --sizes`).
const NOT_SIZES: &[&str] = &[
    "", "K", "4KB", "4kb", "1MB", "1GB", "4B", "4Ki", "4P", "-1", "+1", "1.5M", "4 K", " 4K", "0x1000", "1_024", "1e3",
    "four",
];

/// Durations every duration flag accepts (within every flag's range: more
/// than zero and at most an hour, as `bench --duration` must be).
const DURATIONS: &[&str] = &[
    "1ns", "100us", "250ms", "1s", "90s", "1sec", "1.5s", "30m", "2min", "1h", "1hr", "1m30s", "1m 30s",
];

/// Durations no flag accepts.
const NOT_DURATIONS: &[&str] = &[
    "", "5", "90", "s", "1S", "2H", "-1s", "+1s", "1_000ms", "1e3s", "fast", " 1s", "1s ",
];

/// Runs `args` with `form` in place of `{}`.
fn try_form(args: &[&str], form: &str) -> Output {
    // `--flag=FORM`: a form such as `-1` is then a value, not an option
    let argv: Vec<String> = args.iter().map(|a| a.replace("{}", form)).collect();
    shmkit().args(&argv).output().unwrap()
}

/// `args` accepts `form` (and did nothing), or refuses it naming `flag`.
fn check(args: &[&str], flag: &str, form: &str, accepted: bool) {
    let out = try_form(args, form);
    assert_code(&out, 2);
    let err = stderr(&out);
    let refused = err.contains(&format!("invalid value '{form}' for '{flag}"));
    assert_eq!(
        !refused,
        accepted,
        "{args:?} with {form:?}: expected {}; stderr:\n{err}",
        if accepted { "accepted" } else { "refused" }
    );
    if accepted {
        // the other complaint: the missing target, or bench's `--rounds 0`
        assert!(
            err.contains("required arguments were not provided") || err.contains("for '--rounds"),
            "{args:?} with {form:?}: {err}"
        );
    }
}

const SIZE_FLAGS: &[(&[&str], &str)] = &[
    (&["create", "--size={}"], "--size"),
    (&["write", "--create", "--size={}"], "--size"),
    (&["send", "--capacity={}"], "--capacity"),
    (&["recv", "--capacity={}"], "--capacity"),
    #[cfg(feature = "bench")]
    (&["bench", "--sizes={}", "--rounds", "0"], "--sizes"),
];

const DURATION_FLAGS: &[(&[&str], &str)] = &[
    (&["rm", "--older-than={}"], "--older-than"),
    (&["send", "--timeout={}"], "--timeout"),
    (&["recv", "--timeout={}"], "--timeout"),
    #[cfg(feature = "bench")]
    (&["bench", "--duration={}", "--rounds", "0"], "--duration"),
];

#[test]
fn every_size_flag_accepts_and_refuses_the_same_forms() {
    for (args, flag) in SIZE_FLAGS {
        for form in SIZES {
            check(args, flag, form, true);
        }
        for form in NOT_SIZES {
            check(args, flag, form, false);
        }
    }
}

#[test]
fn every_duration_flag_accepts_and_refuses_the_same_forms() {
    for (args, flag) in DURATION_FLAGS {
        for form in DURATIONS {
            check(args, flag, form, true);
        }
        for form in NOT_DURATIONS {
            check(args, flag, form, false);
        }
    }
}

#[test]
fn kb_is_refused_with_what_to_write_instead() {
    let out = run(&["create", "--size", "4KB"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("write 4K or 4KiB"), "{}", stderr(&out));
}

#[test]
fn the_forms_mean_the_same_bytes() {
    for (form, cmd) in [("4KiB", "create"), ("4k", "write")] {
        let (name, _guard) = posix_name();
        let out = match cmd {
            "create" => run(&["create", &name, "--size", form]),
            _ => shmkit()
                .args(["write", &name, "--create", "--size", form, "x"])
                .output()
                .unwrap(),
        };
        assert_code(&out, 0);
        let len = std::fs::metadata(format!("/dev/shm{name}")).unwrap().len();
        assert_eq!(len, 4096, "{cmd} --size {form}");
    }
}
