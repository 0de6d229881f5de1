//! Interop with real servers: Postfix's `smtp-sink` (PIPELINING, AUTH
//! offered, no STARTTLS) and Python's aiosmtpd (STARTTLS and AUTH). Each
//! test skips with a printed reason when its peer is not installed
//! (`.ci/install-peers`; `. target/peers/env`); with `SMTP_PEERS_REQUIRED=1`
//! a missing peer fails the test instead.

use std::time::Duration;

use smtp_blocking::{Connection, Envelope, Outcome, ServerUrl, Settings, TlsConfig};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_tests::peers;
use smtp_tests::pki::pki;

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap().into_owned()),
        to.iter()
            .map(|t| ForwardPath::Mailbox(Mailbox::parse(t).unwrap().into_owned()))
            .collect(),
    )
}

fn settings() -> Settings {
    let mut s = Settings::default().with_timeout(Duration::from_secs(10));
    s.helo = Some("client.test".parse().unwrap());
    s
}

#[test]
fn smtp_sink_many_messages_over_one_connection() {
    let Some(sink) = peers::smtp_sink() else {
        return;
    };
    let server = peers::start_smtp_sink(&sink).unwrap();
    let url: ServerUrl = format!("smtp://{}?tls=off", server.addr()).parse().unwrap();
    let mut conn = Connection::open(&url, &settings()).unwrap();
    assert!(
        conn.session()
            .extensions()
            .is_some_and(|e| e.supports_pipelining())
    );
    for i in 0..20 {
        let body = format!("Subject: {i}\r\n\r\nmessage {i}\r\n.starts with a dot\r\n");
        let report = conn
            .send(
                &envelope(&["b@example.net", "c@example.net"]),
                body.as_bytes(),
            )
            .unwrap();
        assert!(report.all_accepted(), "{report:?}");
        assert!(report.data.unwrap().is_positive_completion());
    }
    conn.quit().unwrap();
}

#[test]
fn aiosmtpd_starttls_and_auth() {
    let Some(python) = peers::aiosmtpd_python() else {
        return;
    };
    let dir = peers::ScratchDir::new("smtp-blocking-aiosmtpd").unwrap();
    let pki = pki();
    let server = peers::start_aiosmtpd(
        &python,
        &peers::AiosmtpdOptions {
            tls: Some(pki.write_server_files(dir.path()).unwrap()),
            auth: Some(("alice".into(), "s3cr3t".into())),
            save: true,
        },
    )
    .unwrap();
    let mut s = settings();
    s.tls = TlsConfig::builder()
        .ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let url: ServerUrl = format!(
        "smtp://alice:s3cr3t@localhost:{}?tls=required",
        server.addr().port()
    )
    .parse()
    .unwrap();
    let mut conn = Connection::open(&url, &s).unwrap();
    assert!(conn.session().is_tls());
    let body = b"Subject: interop\r\n\r\nHello aiosmtpd.\r\n.dot\r\n";
    for _ in 0..2 {
        let report = conn.send(&envelope(&["b@example.net"]), body).unwrap();
        assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
        assert!(
            report.data.unwrap().first_line().contains("queued as"),
            "the final reply carries the queue id"
        );
    }
    conn.quit().unwrap();
    let saved = peers::saved_messages(&server).unwrap();
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].content, body);
    assert!(
        saved[0].envelope_json.contains("\"tls\": true"),
        "{}",
        saved[0].envelope_json
    );
}
