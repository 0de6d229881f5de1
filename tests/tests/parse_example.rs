//! smtp-proto's `parse` example run as a process: `--help`, and the README's line.

use std::process::{Command, Output};

use smtp_tests::examples;

fn parse(args: &[&str]) -> Output {
    // Bounded: it reads its arguments only (stdin is closed) and exits.
    Command::new(examples::example("smtp-proto", "parse"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn help_is_help_not_a_command() {
    for flag in ["--help", "-h"] {
        let out = parse(&[flag]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("Usage: parse [LINE]..."), "{stdout}");
        assert!(!stdout.contains("C: "), "{stdout}");
    }
    // `--` makes it a line again.
    let out = parse(&["--", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("C: --help\n"), "{stdout}");
    assert!(stdout.contains("error: command not recognized"), "{stdout}");
    let out = parse(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--help"));
}

#[test]
fn a_command_and_a_reply() {
    let out = parse(&[
        "MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME",
        "250-mx.example",
        "250 PIPELINING",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout
            .contains("encodes as \"MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME\\r\\n\""),
        "{stdout}"
    );
    assert!(stdout.contains("as an EHLO reply"), "{stdout}");
}
