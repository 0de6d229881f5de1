//! The `bulk-send` example run as a process against loopback servers: the
//! mio server with STARTTLS (its certificate trusted through `--tls-ca`) and
//! AUTH, Postfix's `smtp-sink`, a server refusing some recipients, and
//! command-line errors. Every run is bounded by a deadline.

mod common;

use smtp_tests::examples;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{start_store, start_with};
use smtp_mio::server::store::Credentials;
use smtp_mio::server::{Backend, ConnectionInfo, Responder, Session};
use smtp_proto::address::ForwardPath;
use smtp_proto::command::RcptParameters;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::Envelope;
use smtp_tests::peers;

/// Long enough for a debug build on a loaded machine; a hang fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs the `bulk-send` example (built now, with this test's profile),
/// bounded by [`DEADLINE`].
fn run(args: &[&str]) -> peers::RunOutput {
    let mut cmd = Command::new(examples::example("smtp-mio", "bulk-send"));
    cmd.args(args);
    peers::run_bounded(&mut cmd, DEADLINE).unwrap()
}

/// Checks the exit status; returns the standard output.
fn exit_with(out: &peers::RunOutput, code: i32) -> String {
    let stdout = out.stdout_text();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        out.stderr_text()
    );
    stdout
}

/// The number on the summary line starting with `name`.
fn summary(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
}

#[test]
fn starttls_with_ca_file_and_auth_delivers_every_message() {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = start_store(credentials, |o| {
        o.session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
        o.session.auth.required_for_mail = true;
    });
    let ca = server.dir.path().join("cert.pem");
    std::fs::write(&ca, server.identity.chain_pem()).unwrap();
    let addr = server.addr.to_string();
    let out = run(&[
        "--server",
        &addr,
        "--tls-ca",
        ca.to_str().unwrap(),
        "--auth",
        "alice:s3cret",
        "--starttls",
        "required",
        "--from",
        "alice@example.org",
        "--to",
        "b@example.net",
        "--to",
        "c@example.net",
        "--count",
        "60",
        "--concurrency",
        "4",
        "--size",
        "2000",
    ]);
    let stdout = out.stdout_text();
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(summary(&stdout, "accepted:"), 60, "{stdout}");
    assert_eq!(summary(&stdout, "temporary:"), 0, "{stdout}");
    assert_eq!(summary(&stdout, "permanent:"), 0, "{stdout}");
    assert_eq!(summary(&stdout, "not attempted:"), 0, "{stdout}");
    assert!(summary(&stdout, "rate:") > 0, "{stdout}");
    let connections = summary(&stdout, "connections:");
    assert!((1..=4).contains(&connections), "{stdout}");
    // Not a terminal: plain progress lines.
    assert!(stderr.contains("progress: 60/60 done"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");

    let files = server.files("new");
    assert_eq!(files.len(), 60);
    let mut subjects = Vec::new();
    let mut to_c = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("with ESMTPSA id"), "{text}");
        for header in ["Date: ", "Message-ID: <", "From: <alice@example.org>"] {
            assert!(text.contains(header), "{header} missing in {text}");
        }
        if text.contains("\r\nTo: <c@example.net>\r\n") {
            to_c += 1;
        }
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: bulk-send message "))
            .unwrap();
        subjects.push(subject.trim_end().to_owned());
    }
    // Round robin over the two recipients, every sequence number once.
    assert_eq!(to_c, 30);
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 60);
    assert!(subjects.contains(&String::from("60 of 60")), "{subjects:?}");
    server.shutdown();
}

#[test]
fn auth_is_refused_without_tls() {
    // With --starttls off: a command-line error before any connection.
    let out = run(&[
        "--server",
        "127.0.0.1:9",
        "--auth",
        "alice:s3cret",
        "--starttls",
        "off",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr_text().contains("AUTH over plaintext is refused"),
        "{}",
        out.stderr_text()
    );

    // Opportunistic against a server without STARTTLS: every message fails
    // and says why; nothing is delivered.
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = start_store(credentials, |o| {
        o.tls = None;
        o.session.tls = smtp_proto::TlsMode::Disabled;
        o.session.auth.mechanisms = vec![Mechanism::PLAIN];
    });
    let addr = server.addr.to_string();
    let out = run(&[
        "--server",
        &addr,
        "--auth",
        "alice:s3cret",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "3",
    ]);
    let stdout = out.stdout_text();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(summary(&stdout, "accepted:"), 0, "{stdout}");
    assert!(
        stdout.contains("AUTH refused over an unencrypted connection x3"),
        "{stdout}"
    );
    assert!(server.files("new").is_empty());
    server.shutdown();
}

#[test]
fn smtp_sink_takes_every_message() {
    let Some(sink) = peers::smtp_sink() else {
        return;
    };
    let server = peers::start_smtp_sink(&sink).unwrap();
    let addr = server.addr().to_string();
    let out = run(&[
        "--server",
        &addr,
        "--starttls",
        "off",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "500",
        "--concurrency",
        "8",
        "--per-host",
        "5",
    ]);
    let stdout = out.stdout_text();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}\n{}",
        out.stderr_text(),
        server.log()
    );
    assert_eq!(summary(&stdout, "accepted:"), 500, "{stdout}");
    // --per-host caps the connections to the one relay.
    assert!(summary(&stdout, "connections:") <= 5, "{stdout}");
}

/// Refuses recipients whose address contains "nobody" with a 550, and
/// records every message it takes.
#[derive(Clone, Default)]
struct Picky {
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct PickySession {
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    current: Vec<u8>,
}

impl Backend for Picky {
    type Session = PickySession;
    fn connect(&self, _info: &ConnectionInfo) -> Result<PickySession, Reply<'static>> {
        Ok(PickySession {
            messages: Arc::clone(&self.messages),
            current: Vec::new(),
        })
    }
}

impl Session for PickySession {
    fn rcpt(&mut self, to: &ForwardPath<'_>, _params: &RcptParameters<'_>, answer: Responder) {
        if to.to_string().contains("nobody") {
            answer.reply(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no such user").unwrap());
        } else {
            answer.accept();
        }
    }

    fn data(&mut self, chunk: &[u8]) {
        self.current.extend_from_slice(chunk);
    }

    fn data_end(&mut self, _envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
        let message = std::mem::take(&mut self.current);
        assert_eq!(message.len() as u64, size);
        self.messages.lock().unwrap().push(message);
        for answer in answers {
            answer.accept();
        }
    }

    fn reset(&mut self, _envelope: &Envelope<'_>, _reason: smtp_proto::server::ResetReason) {
        self.current.clear();
    }
}

#[test]
fn refused_recipients_exit_1_and_are_grouped_by_code() {
    let backend = Picky::default();
    let server = start_with(backend.clone(), tempfile::tempdir().unwrap(), |_| {});
    let addr = server.addr.to_string();
    let out = run(&[
        "--server",
        &addr,
        "--starttls",
        "off",
        "--from",
        "a@example.org",
        "--to",
        "ok@example.net",
        "--to",
        "nobody@example.net",
        "--to",
        "ok2@example.net",
        "--count",
        "30",
        "--concurrency",
        "3",
        "--size",
        "4097",
    ]);
    let stdout = exit_with(&out, 1);
    assert_eq!(summary(&stdout, "accepted:"), 20, "{stdout}");
    assert_eq!(summary(&stdout, "permanent:"), 10, "{stdout}");
    assert!(stdout.contains("  550 x10: no such user"), "{stdout}");
    server.shutdown();

    let messages = backend.messages.lock().unwrap();
    assert_eq!(messages.len(), 20);
    for message in messages.iter() {
        assert_well_formed(message, 4097);
    }
}

/// Exactly `size` octets, CRLF everywhere, lines of at most 78 characters,
/// the headers a message needs.
fn assert_well_formed(message: &[u8], size: usize) {
    assert_eq!(message.len(), size);
    assert!(message.ends_with(b"\r\n"));
    let text = std::str::from_utf8(message).unwrap();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap();
    for name in ["Date", "From", "To", "Subject", "Message-ID"] {
        assert!(
            headers.lines().any(|l| l.starts_with(&format!("{name}: "))),
            "{name} missing: {headers}"
        );
    }
    for line in text.split_inclusive('\n') {
        assert!(line.ends_with("\r\n"), "{line:?}");
        assert!(!line[..line.len() - 2].contains('\r'), "{line:?}");
        assert!(line.len() - 2 <= 78, "{} octets: {line:?}", line.len() - 2);
    }
    assert!(!body.is_empty());
}

#[test]
fn sizes_are_exact() {
    // Sizes around the line length, so every way a body can end is met as
    // the sequence numbers grow a digit.
    for size in [300, 301, 377, 378, 379, 1000] {
        let backend = Picky::default();
        let server = start_with(backend.clone(), tempfile::tempdir().unwrap(), |_| {});
        let addr = server.addr.to_string();
        let size_arg = size.to_string();
        let out = run(&[
            "--server",
            &addr,
            "--starttls",
            "off",
            "--from",
            "a@example.org",
            "--to",
            "b@example.net",
            "--count",
            "12",
            "--size",
            &size_arg,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", out.stdout_text());
        server.shutdown();
        let messages = backend.messages.lock().unwrap();
        assert_eq!(messages.len(), 12);
        for message in messages.iter() {
            assert_well_formed(message, size);
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let both = [
        "--server",
        "127.0.0.1:25",
        "--mx",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "1",
    ];
    let no_to = [
        "--server",
        "127.0.0.1:25",
        "--from",
        "a@example.org",
        "--count",
        "1",
    ];
    let neither = [
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "1",
    ];
    let auth_with_mx = [
        "--mx",
        "--auth",
        "u:p",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "1",
    ];
    let bad_address = [
        "--server",
        "127.0.0.1:25",
        "--from",
        "a@example.org",
        "--to",
        "not an address",
        "--count",
        "1",
    ];
    let too_small = [
        "--server",
        "127.0.0.1:25",
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "1",
        "--size",
        "100",
    ];
    for args in [
        &both[..],
        &no_to,
        &neither,
        &auth_with_mx,
        &bad_address,
        &too_small,
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{}",
            out.stdout_text(),
            out.stderr_text()
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout_text());
    }
}

#[test]
fn mx_routing_through_a_dns_server() {
    use smtp_tests::fake_dns::{self, Answer, FakeDns, RecordType};

    // The mio server offers STARTTLS with a certificate for localhost and
    // mx.test, not for mx.two.test: --insecure takes it anyway (encryption
    // without authentication, as Postfix's "may" level).
    let server = start_store(Credentials::new(), |_| {});
    let port = server.addr.port().to_string();
    let dns = FakeDns::start(vec![
        (
            "two.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("two.test", 10, "mx.two.test")]),
        ),
        (
            "mx.two.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx.two.test", "127.0.0.1")]),
        ),
        (
            "null.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("null.test", 0, ".")]),
        ),
    ]);
    let dns_addr = dns.addr().to_string();
    let out = run(&[
        "--mx",
        "--dns",
        &dns_addr,
        "--mx-port",
        &port,
        "--from",
        "a@example.org",
        "--to",
        "b@two.test",
        "--to",
        "c@null.test",
        "--count",
        "10",
        "--insecure",
    ]);
    let stdout = exit_with(&out, 1);
    assert_eq!(summary(&stdout, "accepted:"), 5, "{stdout}");
    assert_eq!(summary(&stdout, "permanent:"), 5, "{stdout}");
    assert!(stdout.contains("null MX"), "{stdout}");
    let stored = server.files("new");
    assert_eq!(stored.len(), 5);
    let text = std::fs::read_to_string(&stored[0]).unwrap();
    assert!(text.contains("with ESMTPS"), "delivered over TLS: {text}");
}

#[test]
fn required_tls_verifies_certificates_unless_insecure() {
    // The mail-server setup a newcomer runs: STARTTLS with a self-signed
    // certificate, no CA given to the client.
    let server = start_store(Credentials::new(), |_| {});
    let addr = server.addr.to_string();
    let run_with = |extra: &[&str]| {
        let mut args = vec![
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.net",
            "--count",
            "3",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Required TLS checks the certificate, and never falls back.
    let out = run_with(&["--starttls", "required"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout_text());
    assert!(
        out.stdout_text().contains("certificate"),
        "{}",
        out.stdout_text()
    );
    assert!(server.files("new").is_empty(), "nothing sent unverified");
    // --insecure: encrypted, not authenticated.
    let out = run_with(&["--starttls", "required", "--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stdout_text());
    let stored = server.files("new");
    assert_eq!(stored.len(), 3);
    let text = std::fs::read_to_string(&stored[0]).unwrap();
    assert!(text.contains("with ESMTPS"), "encrypted: {text}");
}

#[test]
fn opportunistic_tls_encrypts_without_verifying() {
    // The walk's opportunistic rule (Postfix's "may", RFC 7435): STARTTLS
    // whenever offered, whatever the certificate; the default.
    let server = start_store(Credentials::new(), |_| {});
    let addr = server.addr.to_string();
    let out = run(&[
        "--server",
        &addr,
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
        "--count",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stdout_text());
    let stored = server.files("new");
    assert_eq!(stored.len(), 3);
    let text = std::fs::read_to_string(&stored[0]).unwrap();
    assert!(text.contains("with ESMTPS"), "encrypted: {text}");
}
