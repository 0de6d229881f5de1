//! The `send` example run as a process: STARTTLS verified against a CA
//! file with AUTH, exit codes (0 / 75 / 1), the redacted transcript, MX
//! delivery through `--dns` and `--mx-port`.

use smtp_tests::examples;
use std::process::{Command, Output};

use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx};
use smtp_tests::pki::pki;
use smtp_tests::std_server::{Options, TestServer};

/// Runs the `send` example (built now, with this test's profile) to
/// completion.
fn run(args: &[&str]) -> Output {
    let bin = examples::example("smtp-blocking", "send");
    // Bounded: the example's own --timeout keeps it short.
    Command::new(bin).args(args).output().unwrap()
}

#[test]
fn starttls_with_ca_file_and_auth_exit_0_and_redacted_transcript() {
    let pki = pki();
    let server = TestServer::start(Options {
        tls: Some(pki.server_config.clone()),
        credentials: Some(("alice".into(), "pa55word".into())),
        ..Options::default()
    });
    let dir = std::env::temp_dir().join(format!("smtp-blocking-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let server_arg = format!("127.0.0.1:{}", server.port());
    let out = run(&[
        "--server",
        &server_arg,
        "--tls-ca",
        ca.to_str().unwrap(),
        "--auth",
        "alice:pa55word",
        "--from",
        "me@example.org",
        "--to",
        "you@example.org",
        "--body",
        "hello",
        "--timeout",
        "5",
        "--verbose",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("you@example.org: accepted"), "{stdout}");
    assert!(stderr.contains("C: STARTTLS"), "{stderr}");
    assert!(stderr.contains("<redacted>"), "{stderr}");
    assert!(!stderr.contains("pa55word"), "{stderr}");
    // AUTH PLAIN's base64 must not leak either.
    assert!(!stderr.contains("YWxpY2U"), "{stderr}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let text = String::from_utf8_lossy(&delivered[0].body);
    for header in ["Date: ", "Message-ID: <", "From: ", "To: ", "Subject: "] {
        assert!(text.contains(header), "{header} missing in {text}");
    }
    assert!(text.ends_with("\r\n\r\nhello\r\n"), "{text}");
    assert_eq!(delivered[0].auth_user.as_deref(), Some("alice"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exit_codes_follow_the_worst_recipient() {
    let server = TestServer::start(Options {
        refuse_rcpt: vec!["<bad@example.net>".into()],
        ..Options::default()
    });
    let server_arg = format!("127.0.0.1:{}", server.port());
    let out = run(&[
        "--server",
        &server_arg,
        "--from",
        "a@example.org",
        "--to",
        "ok@example.net",
        "--to",
        "bad@example.net",
        "--timeout",
        "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok@example.net: accepted"), "{stdout}");
    assert!(
        stdout.contains("bad@example.net: permanent failure: 550"),
        "{stdout}"
    );

    let busy = TestServer::start(Options {
        greeting: Some((421, "busy")),
        ..Options::default()
    });
    let busy_arg = format!("127.0.0.1:{}", busy.port());
    let out = run(&[
        "--server",
        &busy_arg,
        "--from",
        "a@example.org",
        "--to",
        "ok@example.net",
        "--timeout",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(75), "{:?}", out);
}

#[test]
fn mx_delivery_with_dns_and_mx_port() {
    let server = TestServer::start(Options::default());
    let dns = FakeDns::start(vec![
        (
            "example.net",
            RecordType::MX,
            Answer::records(vec![mx("example.net", 10, "mx.example.net")]),
        ),
        (
            "mx.example.net",
            RecordType::A,
            Answer::records(vec![addr("mx.example.net", "127.0.0.1")]),
        ),
        (
            "null.example",
            RecordType::MX,
            Answer::records(vec![mx("null.example", 0, ".")]),
        ),
    ]);
    let dns_arg = dns.addr().to_string();
    let port = server.port().to_string();
    let out = run(&[
        "--dns",
        &dns_arg,
        "--mx-port",
        &port,
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--subject",
        "via MX",
        "--timeout",
        "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("[mx.example.net 127.0.0.1]"), "{stdout}");
    assert!(String::from_utf8_lossy(&server.delivered()[0].body).contains("Subject: via MX"));

    let out = run(&[
        "--dns",
        &dns_arg,
        "--mx-port",
        &port,
        "--from",
        "a@example.org",
        "--to",
        "x@null.example",
        "--timeout",
        "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("null MX"), "{stdout}");
}

#[test]
fn a_bad_helo_name_is_a_usage_error_before_any_connection() {
    let server = TestServer::start(Options::default());
    let server_arg = format!("127.0.0.1:{}", server.port());
    let out = run(&[
        "--server",
        &server_arg,
        "--helo",
        "bad host",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--timeout",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--helo bad host"), "{stderr}");
    assert_eq!(server.connections(), 0, "connected with a bad EHLO name");
}
