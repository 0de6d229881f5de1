//! Real clients against the mio server over loopback: swaks (STARTTLS,
//! AUTH, pipelining), Python's smtplib (STARTTLS, AUTH) and Postfix's
//! smtp-source (load). Each test skips with a printed reason when its peer
//! is not installed (`.ci/install-peers` installs them; with
//! `SMTP_PEERS_REQUIRED=1` a missing peer fails the test instead).

// The peer helpers of the test crate, included directly so this crate needs
// no dependency on it.
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/src/peers.rs"]
mod peers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_mio::server::{Options, Running, Server};
use smtp_mio::tls::TlsIdentity;
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::server::Config;
use smtp_proto::{InjectionPolicy, TlsMode};

struct Fixture {
    running: Option<Running>,
    addr: String,
    cert: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A server with STARTTLS (self-signed certificate written to a file)
    /// and, if `auth`, AUTH PLAIN/LOGIN required for alice:s3cret.
    fn start(auth: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("maildir"))
            .unwrap()
            .with_hostname("mx.test");
        let mut credentials = Credentials::new();
        let mut session = Config::new(Domain::new("mx.test").unwrap().into_owned());
        session.tls = TlsMode::Opportunistic;
        session.on_injection = InjectionPolicy::Close;
        if auth {
            credentials.add("alice", "s3cret");
            session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
            session.auth.required_for_mail = true;
        }
        let identity = TlsIdentity::self_signed("mx.test", std::time::SystemTime::now()).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, identity.chain_pem()).unwrap();
        let mut options = Options::new(session);
        options.listen = vec!["127.0.0.1:0".parse().unwrap()];
        options.threads = 2;
        options.tls = Some(identity.server_config().unwrap());
        options.shutdown_grace = Duration::from_secs(5);
        let backend = StoreBackend::new(Store::Maildir(Arc::new(maildir)), "mx.test", credentials);
        let server = Server::bind(options, backend).unwrap();
        let addr = server.local_addrs()[0].to_string();
        Self {
            running: Some(server.spawn().unwrap()),
            addr,
            cert,
            dir,
        }
    }

    fn delivered(&self) -> Vec<String> {
        let mut messages: Vec<String> = std::fs::read_dir(self.dir.path().join("maildir/new"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        messages.sort();
        messages
    }

    fn tmp_is_empty(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("maildir/tmp"))
            .unwrap()
            .next()
            .is_none()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown();
        }
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
