//! DKIM end to end, through the example programs run as processes: `send`
//! signs with the keys it is given, `mail-server` (asking the fake DNS
//! server, which serves the key records) verifies and stores the message
//! with `Authentication-Results` in front; forged results in the server's
//! name are removed, tampered and unsigned mail says so, and
//! `--dkim-verify off` adds nothing. Every process is bounded by a
//! deadline; the server listens on a port the system picks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::SystemTime;

use hickory_proto::rr::RecordType;
use smtp_proto::dkim::{Signer, SigningKey, SystemRandom};
use smtp_tests::examples;
use smtp_tests::fake_dns::{self, Answer, FakeDns};
use smtp_tests::mail_server;

const HOSTNAME: &str = "mx.test.example";

fn rsa_pem() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../smtp-proto/src/dkim/testdata/rsa2048.pem"
    ))
}

fn ed_pem() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../smtp-proto/src/dkim/testdata/ed25519.pem"
    ))
}

fn key(path: &Path) -> SigningKey {
    SigningKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fake DNS server with the keys' records at `sel._domainkey.example.org`.
fn zone() -> FakeDns {
    zone_with(Vec::new())
}

/// [`zone`] with more entries.
fn zone_with(extra: Vec<(&str, RecordType, Answer)>) -> FakeDns {
    let entries = [("ed", ed_pem()), ("rsa", rsa_pem())].map(|(selector, path)| {
        let record = key(&path).dns_record();
        let strings: Vec<&str> = record
            .as_bytes()
            .chunks(255)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let owner = format!("{selector}._domainkey.example.org");
        let answer = Answer::records(vec![fake_dns::txt(&owner, &strings)]);
        (owner, answer)
    });
    let mut all: Vec<_> = entries
        .iter()
        .map(|(owner, answer)| (owner.as_str(), RecordType::TXT, answer.clone()))
        .collect();
    all.extend(extra);
    FakeDns::start(all)
}

/// A `mail-server` process delivering into `dir/maildir`.
struct MailServer {
    process: mail_server::MailServer,
    addr: String,
}

impl MailServer {
    fn start(dir: &Path, dns: &FakeDns, extra: &[&str]) -> Self {
        // DKIM alone here; SPF and DMARC are auth_examples.rs's.
        let mut args = vec!["--spf", "off", "--dmarc", "off"];
        args.extend(extra);
        let process = mail_server::MailServer::delivering(dir, HOSTNAME, dns.addr(), &args);
        Self {
            addr: process.addr().to_string(),
            process,
        }
    }

    /// The messages stored, oldest first.
    fn messages(&self) -> Vec<String> {
        self.process.stored()
    }
}

/// Runs `send` with `args` to its end; its status and standard error.
fn send(args: &[&str]) -> (ExitStatus, String) {
    let mut cmd = Command::new(examples::example("smtp-blocking", "send"));
    cmd.args(args)
        .args(["--timeout", "30", "--starttls", "off"]);
    run_bounded(cmd)
}

/// Runs `cmd` to its end (killed at [`mail_server::EXIT`]); its status and
/// standard error.
fn run_bounded(mut cmd: Command) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = mail_server::wait_bounded(&mut child);
    (status, std::fs::read_to_string(err).unwrap())
}

fn send_ok(args: &[&str]) {
    let (status, stderr) = send(args);
    assert!(status.success(), "send failed: {stderr}");
}

/// The first header field of a stored message, unfolded.
fn first_field(message: &str) -> String {
    let mut lines = message.split("\r\n");
    let mut field = lines.next().unwrap().to_owned();
    for line in lines {
        if !line.starts_with([' ', '\t']) {
            break;
        }
        field.push(' ');
        field.push_str(line.trim_start());
    }
    field
}

#[test]
fn send_signs_twice_and_mail_server_records_both_passes() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(dir.path(), &dns, &[]);
    let (ed, rsa) = (ed_pem(), rsa_pem());
    send_ok(&[
        "--server",
        &server.addr,
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.net",
        "--body",
        "Signed twice.",
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "ed",
        "--dkim-key",
        ed.to_str().unwrap(),
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "rsa",
        "--dkim-key",
        rsa.to_str().unwrap(),
    ]);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let field = first_field(&messages[0]);
    assert!(
        field.starts_with(&format!("Authentication-Results: {HOSTNAME}; dkim=pass")),
        "{field}"
    );
    assert!(
        field.contains("dkim=pass header.d=example.org header.i=@example.org header.s=ed"),
        "{field}"
    );
    assert!(
        field.contains(
            "dkim=pass (2048-bit key) header.d=example.org header.i=@example.org header.s=rsa"
        ),
        "{field}"
    );
    assert_eq!(messages[0].matches("DKIM-Signature:").count(), 2);
}

#[test]
fn forged_tampered_and_unsigned_mail() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(dir.path(), &dns, &[]);
    let message = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: t\r\n\r\nBody.\r\n";
    // Signed, then changed on the way.
    let signer = Signer::new(key(&ed_pem()), "example.org", "ed").unwrap();
    let field = signer
        .sign_message(message.as_bytes(), SystemTime::now(), &SystemRandom::new())
        .unwrap();
    let tampered = format!("{field}{}", message.replace("Body.", "B0dy."));
    // Unsigned, with results forged in the server's name (and honest
    // ones of another server, which stay).
    let forged = format!(
        "Authentication-Results: {HOSTNAME};\r\n\tdkim=pass header.d=example.org\r\n\
         Authentication-Results: other.example; dkim=pass header.d=example.org\r\n{message}"
    );
    for (name, text) in [("tampered.eml", &tampered), ("forged.eml", &forged)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        send_ok(&[
            "--server",
            &server.addr,
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.net",
            "--body-file",
            path.to_str().unwrap(),
        ]);
    }
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    let (tampered, forged) = if messages[0].contains("B0dy") {
        (&messages[0], &messages[1])
    } else {
        (&messages[1], &messages[0])
    };
    let field = first_field(tampered);
    assert!(
        field.starts_with(&format!(
            "Authentication-Results: {HOSTNAME}; dkim=fail reason=\"body hash"
        )),
        "{field}"
    );
    assert_eq!(
        first_field(forged),
        format!("Authentication-Results: {HOSTNAME}; dkim=none")
    );
    let ours = format!("Authentication-Results: {HOSTNAME}");
    assert_eq!(forged.matches(&ours).count(), 1, "only ours: {forged}");
    assert!(forged.contains("Authentication-Results: other.example; dkim=pass"));
}

#[test]
fn verification_off_adds_nothing() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(dir.path(), &dns, &["--dkim-verify", "off"]);
    let ed = ed_pem();
    send_ok(&[
        "--server",
        &server.addr,
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.net",
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "ed",
        "--dkim-key",
        ed.to_str().unwrap(),
    ]);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(!messages[0].contains("Authentication-Results"));
    assert!(messages[0].contains("DKIM-Signature:"));
    assert_eq!(dns.udp_queries(), 0, "no key was asked for");
}

#[test]
fn send_explains_bad_keys_and_mismatched_flags() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    let ed = ed_pem();
    std::fs::write(&garbage, "not a key\n").unwrap();
    let common = [
        "--server",
        "127.0.0.1:9",
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.net",
    ];
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
                "s",
                "--dkim-key",
                garbage.to_str().unwrap(),
            ],
            "--dkim-key",
        ),
        (
            &[
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
                "s",
                "--dkim-key",
                "/nonexistent/key.pem",
            ],
            "No such file",
        ),
        (
            &[
                "--dkim-domain",
                "example.org",
                "--dkim-key",
                garbage.to_str().unwrap(),
            ],
            "as many",
        ),
        (
            &[
                "--dkim-domain",
                "not a domain",
                "--dkim-selector",
                "s",
                "--dkim-key",
                ed.to_str().unwrap(),
            ],
            "--dkim-domain",
        ),
    ];
    for (args, expected) in cases {
        let mut all = common.to_vec();
        all.extend_from_slice(args);
        let (status, stderr) = send(&all);
        assert_eq!(status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn mx_delivery_of_send_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    // One zone: the keys, and example.net's MX on this host (the port is
    // send's --mx-port).
    let dns = zone_with(vec![
        (
            "example.net",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("example.net", 10, "mx.example.net")]),
        ),
        (
            "mx.example.net",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx.example.net", "127.0.0.1")]),
        ),
    ]);
    let server = MailServer::start(dir.path(), &dns, &[]);
    let port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    let ed = ed_pem();
    send_ok(&[
        "--dns",
        &dns.addr().to_string(),
        "--mx-port",
        &port,
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.net",
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "ed",
        "--dkim-key",
        ed.to_str().unwrap(),
    ]);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let field = first_field(&messages[0]);
    assert!(
        field.starts_with(&format!(
            "Authentication-Results: {HOSTNAME}; dkim=pass header.d=example.org"
        )),
        "{field}"
    );
}

#[test]
fn bulk_send_signs_every_message() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(dir.path(), &dns, &[]);
    let (ed, rsa) = (ed_pem(), rsa_pem());
    let mut cmd = Command::new(examples::example("smtp-mio", "bulk-send"));
    cmd.args([
        "--server",
        &server.addr,
        "--starttls",
        "off",
        "--count",
        "3",
    ])
    .args(["--from", "alice@example.org", "--to", "bob@example.net"])
    .args([
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "rsa",
        "--dkim-key",
    ])
    .arg(&rsa)
    .args([
        "--dkim-domain",
        "example.org",
        "--dkim-selector",
        "ed",
        "--dkim-key",
    ])
    .arg(&ed);
    let (status, stderr) = run_bounded(cmd);
    assert!(status.success(), "bulk-send failed: {stderr}");
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    for message in &messages {
        let field = first_field(message);
        assert_eq!(field.matches("dkim=pass").count(), 2, "{field}");
        assert!(
            field.contains("header.s=rsa") && field.contains("header.s=ed"),
            "{field}"
        );
    }
    // A key file that is no key: refused up front, with its name.
    let mut cmd = Command::new(examples::example("smtp-mio", "bulk-send"));
    cmd.args(["--server", &server.addr, "--count", "1"])
        .args(["--from", "alice@example.org", "--to", "bob@example.net"])
        .args([
            "--dkim-domain",
            "example.org",
            "--dkim-selector",
            "x",
            "--dkim-key",
        ])
        .arg(dir.path().join("server-none.pem"));
    let (status, stderr) = run_bounded(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--dkim-key"), "{stderr}");
}
