//! Real clients against the mio server over loopback: swaks (STARTTLS,
//! AUTH, pipelining), Python's smtplib (STARTTLS, AUTH) and Postfix's
//! smtp-source (load). Each test skips with a printed reason when its peer
//! is not installed (`.ci/install-peers` installs them; with
//! `SMTP_PEERS_REQUIRED=1` a missing peer fails the test instead).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use smtp_mio::server::store::Credentials;
use smtp_proto::keyword::Mechanism;
use smtp_tests::peers;

/// The crate's test server with its certificate in a file, for peers that
/// read one.
struct Fixture {
    server: common::TestServer,
    addr: String,
    cert: PathBuf,
}

impl Fixture {
    /// A server with STARTTLS (self-signed certificate written to a file)
    /// and, if `auth`, AUTH PLAIN/LOGIN required for alice:s3cret.
    fn start(auth: bool) -> Self {
        let mut credentials = Credentials::new();
        if auth {
            credentials.add("alice", "s3cret");
        }
        let server = common::start_store(credentials, |o| {
            if auth {
                o.session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
                o.session.auth.required_for_mail = true;
            }
        });
        let cert = server.dir.path().join("cert.pem");
        std::fs::write(&cert, server.identity.chain_pem()).unwrap();
        Self {
            addr: server.addr.to_string(),
            server,
            cert,
        }
    }

    fn delivered(&self) -> Vec<String> {
        let mut messages: Vec<String> = self
            .server
            .files("new")
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        messages.sort();
        messages
    }

    fn tmp_is_empty(&self) -> bool {
        self.server.files("tmp").is_empty()
    }
}

#[test]
fn swaks_starttls_auth_pipelining() {
    let Some(swaks) = peers::swaks() else { return };
    let server = Fixture::start(true);
    let mut cmd = swaks.command();
    cmd.args(["--server", &server.addr])
        .args(["--from", "alice@example.org", "--to", "b@example.net"])
        .args(["--tls", "--tls-verify", "--tls-ca-path"])
        .arg(&server.cert)
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "s3cret",
        ])
        .args(["--pipeline", "--body", "swaks was here", "--timeout", "10"]);
    let out = peers::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{}", out.stdout_text());
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].contains("with ESMTPSA id"), "{}", delivered[0]);
    assert!(delivered[0].contains("swaks was here"));
    assert!(server.tmp_is_empty());

    // A wrong password is refused and nothing is delivered.
    let mut cmd = swaks.command();
    cmd.args(["--server", &server.addr])
        .args(["--from", "alice@example.org", "--to", "b@example.net"])
        .args(["--tls", "--tls-ca-path"])
        .arg(&server.cert)
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "nope",
        ])
        .args(["--timeout", "10"]);
    let out = peers::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(!out.status.success());
    assert!(out.stdout_text().contains("535"), "{}", out.stdout_text());
    assert_eq!(server.delivered().len(), 1);
}

#[test]
fn python_smtplib_starttls_auth() {
    let Some(python) = peers::aiosmtpd_python() else {
        return;
    };
    let server = Fixture::start(true);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    let script = r#"
import smtplib, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
with smtplib.SMTP(host, port, local_hostname="client.test", timeout=10) as s:
    s.starttls(context=ctx)
    s.login("alice", "s3cret")
    refused = s.sendmail("alice@example.org", ["b@example.net", "c@example.net"],
                         b"Subject: smtplib\r\n\r\nfrom python\r\n.dot line\r\n")
    assert refused == {}, refused
print("sent")
"#;
    let mut cmd = python.command();
    cmd.arg("-c")
        .arg(script)
        .arg(host)
        .arg(port)
        .arg(&server.cert);
    let out = peers::run_bounded(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        out.stdout_text(),
        out.stderr_text()
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    // smtplib dot-stuffs the ".dot line"; the store has it unstuffed.
    assert!(
        delivered[0].ends_with("\r\n\r\nfrom python\r\n.dot line\r\n"),
        "{:?}",
        delivered[0]
    );
    // Two recipients: no `for` clause (it would disclose one of them).
    assert!(!delivered[0].contains("\tfor <"));
}

#[test]
fn smtp_source_load() {
    let Some(source) = peers::smtp_source() else {
        return;
    };
    let server = Fixture::start(false);
    let mut cmd = source.command();
    cmd.args(["-m", "200", "-s", "10", "-l", "2048"])
        .arg(&server.addr);
    let out = peers::run_bounded(&mut cmd, Duration::from_secs(120)).unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 200);
    assert!(delivered.iter().all(|m| m.starts_with("Received: from ")));
    assert!(server.tmp_is_empty());
}
