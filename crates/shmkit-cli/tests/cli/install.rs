//! Installing the command: shell completions and the manual pages.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{assert_code, run, stdout, TempDir};

/// The subcommands a person uses (the hidden ones are left out).
const SUBCOMMANDS: &[&str] = &[
    "create",
    "write",
    "read",
    "send",
    "recv",
    "pub",
    "sub",
    "put",
    "get",
    "serve",
    "call",
    "stat",
    "ls",
    "rm",
    "ftok",
    "limits",
    "doctor",
    #[cfg(feature = "bench")]
    "bench",
    "demo",
    "completions",
    "man",
];

/// Whether `program` can be started; prints why a check is skipped if not.
fn have(program: &str, why: &str) -> bool {
    match Command::new(program).arg("--version").output() {
        Ok(_) => true,
        Err(_) => {
            eprintln!("skipped: {why}: `{program}` is not installed");
            false
        }
    }
}

/// Runs `program args… FILE` with `text` in FILE; returns its status,
/// standard output and standard error.
fn check_with(program: &str, args: &[&str], text: &str) -> (bool, String, String) {
    let dir = TempDir::new();
    let file = dir.path().join("input");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = Command::new(program)
        .args(args)
        .arg(&file)
        .stdin(Stdio::null())
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_name_every_subcommand_and_parse() {
    for (shell, marker, checker) in [
        ("bash", "complete -F _shmkit", ["bash", "-n"]),
        ("zsh", "#compdef shmkit", ["zsh", "-n"]),
        ("fish", "complete -c shmkit", ["fish", "--no-execute"]),
    ] {
        let out = run(&["completions", shell]);
        assert_code(&out, 0);
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: no {marker:?}:\n{script}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        // the script is valid for its shell, where that shell is installed
        if have(checker[0], &format!("checking the {shell} completion's syntax")) {
            let (ok, _, err) = check_with(checker[0], &checker[1..], &script);
            assert!(ok, "{shell} -n: {err}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_code(&out, 2);
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let out = run(&["man"]);
    assert_code(&out, 0);
    let page = stdout(&out);
    assert!(
        page.lines().any(|l| l.starts_with(".TH shmkit 1 ")),
        "no .TH line:\n{page}"
    );
    let subcommands = page.split(".SH SUBCOMMANDS").nth(1).expect("no SUBCOMMANDS section");
    for sub in SUBCOMMANDS {
        assert!(subcommands.contains(&format!("shmkit\\-{sub}(1)")), "{sub} missing");
    }
    for hidden in ["bench-peer", "demo-step"] {
        assert!(!page.contains(&hidden.replace('-', "\\-")), "hidden {hidden} shown");
    }
    // the exit status table, from --help's text
    assert!(page.contains("Exit status:"), "{page}");

    // one page for each subcommand it lists
    let list = run(&["man", "--list"]);
    assert_code(&list, 0);
    assert_eq!(stdout(&list).lines().collect::<Vec<_>>(), SUBCOMMANDS);
    for sub in SUBCOMMANDS {
        let out = run(&["man", sub]);
        assert_code(&out, 0);
        let page = stdout(&out);
        assert!(
            page.lines().any(|l| l.starts_with(&format!(".TH shmkit-{sub} 1 "))),
            "{sub}:\n{page}"
        );
    }
    assert_code(&run(&["man", "bench-peer"]), 2);
    assert_code(&run(&["man", "nope"]), 2);

    // groff reads it without a warning, and man shows it
    if have("groff", "checking the man page with groff") {
        let (ok, _, err) = check_with("groff", &["-man", "-Tutf8", "-ww", "-z"], &page);
        assert!(ok && err.is_empty(), "groff: {err}");
    }
    if have("man", "showing the man page with man -l") {
        let (ok, text, err) = check_with("man", &["-l"], &page);
        assert!(ok, "man -l: {err}");
        assert!(text.contains("NAME") && text.contains("SUBCOMMANDS"), "{text}");
    }
}
