//! The drive loop against real sockets: an in-test server run by
//! `smtp_proto::server::Server` (STARTTLS, AUTH, PIPELINING, CHUNKING,
//! LMTP over TCP and a Unix socket) and hostile scripted servers.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::{
    Connection, Direction, Envelope, Error, Outcome, ServerUrl, Settings, TlsConfig,
};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_tests::pki::pki;
use smtp_tests::scripted::{read_until, send, serve_once};
use smtp_tests::std_server::{Options, TestServer};

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::parse(from).unwrap().into_owned()),
        to.iter()
            .map(|t| ForwardPath::Mailbox(Mailbox::parse(t).unwrap().into_owned()))
            .collect(),
    )
}

const BODY: &[u8] = b"Subject: test\r\n\r\nHello.\r\n.leading dot\r\n";

fn settings() -> Settings {
    let mut s = Settings::default().with_timeout(Duration::from_secs(5));
    s.helo = Some("client.test".parse().unwrap());
    s
}

fn trusting(ca_pem: &str) -> Settings {
    let mut s = settings();
    s.tls = TlsConfig::builder()
        .ca_pem(ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    s
}

fn url(s: &str) -> ServerUrl {
    s.parse().unwrap()
}

#[test]
fn plaintext_pipelining_chunking_and_reuse() {
    let server = TestServer::start(Options {
        refuse_rcpt: vec!["<nobody@example.net>".into()],
        ..Options::default()
    });
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut settings = settings();
    settings.trace = Some(Arc::new(move |d: Direction, l: &str| {
        sink.lock().unwrap().push(format!("{} {l}", d.prefix()));
    }));
    let mut conn = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", server.port())),
        &settings,
    )
    .unwrap();
    let report = conn
        .send(
            &envelope("a@example.org", &["b@example.net", "nobody@example.net"]),
            BODY,
        )
        .unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
    assert_eq!(report.recipients[1].outcome, Outcome::PermanentFailure);
    assert!(report.data.as_ref().unwrap().is_positive_completion());
    // Reuse: two more messages on the same connection.
    for i in 0..2 {
        let body = format!("Subject: {i}\r\n\r\nagain\r\n");
        let report = conn
            .send(
                &envelope("a@example.org", &["c@example.net"]),
                body.as_bytes(),
            )
            .unwrap();
        assert!(report.all_accepted());
    }
    conn.quit().unwrap();
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered[0].body, BODY);
    assert_eq!(delivered[0].to, ["<b@example.net>"]);
    assert_eq!(server.connections(), 1);
    let lines = lines.lock().unwrap();
    assert!(lines.iter().any(|l| l.starts_with("C: BDAT")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("S: 220")), "{lines:?}");
}

#[test]
fn data_without_chunking_or_pipelining_and_a_streamed_reader_body() {
    let server = TestServer::start(Options {
        no_chunking: true,
        no_pipelining: true,
        ..Options::default()
    });
    let mut conn = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", server.port())),
        &settings(),
    )
    .unwrap();
    // 300 KiB body from a reader that hands out odd-sized pieces.
    struct Slow {
        data: Vec<u8>,
        pos: usize,
    }
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7919).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let mut data = b"Subject: big\r\n\r\n".to_vec();
    while data.len() < 300 * 1024 {
        data.extend_from_slice(b".dot-stuffed line of the big message\r\n");
    }
    let report = conn
        .send_reader(
            &envelope("a@example.org", &["b@example.net"]),
            Slow {
                data: data.clone(),
                pos: 0,
            },
        )
        .unwrap();
    assert!(report.all_accepted());
    conn.quit().unwrap();
    assert_eq!(server.delivered()[0].body, data);
}

#[test]
fn starttls_and_auth() {
    let pki = pki();
    let server = TestServer::start(Options {
        tls: Some(pki.server_config.clone()),
        credentials: Some(("alice".into(), "s3cr3t".into())),
        ..Options::default()
    });
    let mut conn = Connection::open(
        &url(&format!("smtp://alice:s3cr3t@localhost:{}", server.port())),
        &trusting(&pki.ca_pem),
    )
    .unwrap();
    assert!(conn.session().is_tls());
    assert!(conn.session().authenticated().is_some());
    let report = conn
        .send(&envelope("alice@example.org", &["b@example.net"]), BODY)
        .unwrap();
    assert!(report.all_accepted());
    conn.quit().unwrap();
    let d = server.delivered();
    assert_eq!(d[0].auth_user.as_deref(), Some("alice"));
    assert!(d[0].tls);

    // Wrong password: a permanent rejection.
    let err = Connection::open(
        &url(&format!("smtp://alice:wrong@localhost:{}", server.port())),
        &trusting(&pki.ca_pem),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert!(err.is_permanent());

    // An untrusted certificate: a TLS error, never a plaintext fallback.
    let err = Connection::open(
        &url(&format!(
            "smtp://localhost:{}?tls=opportunistic",
            server.port()
        )),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
}

#[test]
fn required_tls_without_starttls_fails_permanently() {
    let server = TestServer::start(Options::default());
    let err = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=required", server.port())),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(err.is_permanent());
}

#[test]
fn auth_is_refused_over_plaintext() {
    let server = TestServer::start(Options {
        credentials: Some(("u".into(), "p".into())),
        ..Options::default()
    });
    let err = Connection::open(
        &url(&format!("smtp://u:p@127.0.0.1:{}?tls=off", server.port())),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
}

#[test]
fn lmtp_over_tcp_and_unix_socket() {
    let server = TestServer::start(Options {
        lmtp: true,
        refuse_rcpt: vec!["<x@example.net>".into()],
        ..Options::default()
    });
    let mut conn = Connection::open(
        &url(&format!("lmtp://127.0.0.1:{}", server.port())),
        &settings(),
    )
    .unwrap();
    let report = conn
        .send(
            &envelope(
                "a@example.org",
                &["b@example.net", "x@example.net", "c@example.net"],
            ),
            BODY,
        )
        .unwrap();
    let outcomes: Vec<_> = report.recipients.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Accepted,
            Outcome::PermanentFailure,
            Outcome::Accepted
        ]
    );
    conn.quit().unwrap();

    let path = std::env::temp_dir().join(format!("smtp-blocking-lmtp-{}.sock", std::process::id()));
    let unix = TestServer::start_unix(
        Options {
            lmtp: true,
            ..Options::default()
        },
        path.clone(),
    );
    let mut conn =
        Connection::open(&url(&format!("lmtp://{}", path.display())), &settings()).unwrap();
    let report = conn
        .send(&envelope("a@example.org", &["b@example.net"]), BODY)
        .unwrap();
    assert!(report.all_accepted());
    conn.quit().unwrap();
    assert_eq!(unix.delivered().len(), 1);
    drop(unix);
    assert!(!path.exists(), "the server removes its socket file");
}

#[test]
fn bare_lf_is_refused_by_default_and_normalized_on_request() {
    let server = TestServer::start(Options::default());
    let u = url(&format!("smtp://127.0.0.1:{}?tls=off", server.port()));
    let mut conn = Connection::open(&u, &settings()).unwrap();
    let err = conn
        .send(
            &envelope("a@example.org", &["b@example.net"]),
            b"Subject: x\n\nbare\n",
        )
        .unwrap_err();
    assert!(matches!(err, Error::Message(_)), "{err:?}");
    let mut settings = settings();
    settings.bare_line_ending = smtp_proto::data::BareLineEnding::Normalize;
    let mut conn = Connection::open(&u, &settings).unwrap();
    conn.send(
        &envelope("a@example.org", &["b@example.net"]),
        b"Subject: x\n\nbare\n",
    )
    .unwrap();
    conn.quit().unwrap();
    assert_eq!(server.delivered()[0].body, b"Subject: x\r\n\r\nbare\r\n");
}

// ---- hostile servers ---------------------------------------------------

#[test]
fn starttls_response_injection_fails_the_session() {
    let (addr, handle) = serve_once(|mut s| {
        send(&mut s, b"220 evil ESMTP\r\n")?;
        read_until(&mut s, b"\r\n")?;
        send(&mut s, b"250-evil\r\n250 STARTTLS\r\n")?;
        read_until(&mut s, b"STARTTLS\r\n")?;
        // The 220 and an injected reply in one segment.
        send(&mut s, b"220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n")?;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        Ok(rest)
    });
    let err = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}", addr.port())),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    let rest = handle.join().unwrap().unwrap();
    assert!(rest.is_empty(), "nothing (no TLS hello) follows: {rest:?}");
}

fn hostile_after_data(final_reply: &'static [u8]) -> Error {
    let (addr, handle) = serve_once(move |mut s| {
        send(&mut s, b"220 evil ESMTP\r\n")?;
        read_until(&mut s, b"\r\n")?;
        send(&mut s, b"250-evil\r\n250 PIPELINING\r\n")?;
        read_until(&mut s, b"DATA\r\n")?;
        send(&mut s, b"250 ok\r\n250 ok\r\n354 go\r\n")?;
        read_until(&mut s, b"\r\n.\r\n")?;
        send(&mut s, final_reply)?;
        if final_reply.is_empty() {
            // Silence until the client gives up.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
        s.flush()?;
        Ok(())
    });
    let mut settings = Settings::default().with_timeout(Duration::from_millis(600));
    settings.helo = Some("client.test".parse().unwrap());
    let mut conn = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", addr.port())),
        &settings,
    )
    .unwrap();
    let err = conn
        .send(&envelope("a@example.org", &["b@example.net"]), BODY)
        .unwrap_err();
    drop(conn);
    let _ = handle.join();
    err
}

#[test]
fn close_in_the_middle_of_the_final_reply_is_never_success() {
    let err = hostile_after_data(b"250 2.0.0 queu");
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(err.is_temporary());
}

#[test]
fn a_silent_server_times_out() {
    let err = hostile_after_data(b"");
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.is_temporary());
}

#[test]
fn transact_keeps_the_replies_when_the_connection_is_lost() {
    let (addr, handle) = serve_once(|mut s| {
        send(&mut s, b"220 evil ESMTP\r\n")?;
        read_until(&mut s, b"\r\n")?;
        send(&mut s, b"250-evil\r\n250 PIPELINING\r\n")?;
        read_until(&mut s, b"DATA\r\n")?;
        send(
            &mut s,
            b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n",
        )?;
        read_until(&mut s, b"\r\n.\r\n")?;
        // Gone before the final reply.
        Ok(())
    });
    let mut conn = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", addr.port())),
        &settings(),
    )
    .unwrap();
    let report = conn
        .transact(
            &envelope("a@example.org", &["b@example.net", "gone@example.net"]),
            BODY,
        )
        .unwrap();
    handle.join().unwrap().unwrap();
    assert!(
        matches!(
            report.error,
            Some(smtp_proto::client::Error::ConnectionClosed { .. })
        ),
        "{report:?}"
    );
    let outcomes: Vec<_> = report.recipients.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::TransientFailure, Outcome::PermanentFailure],
        "the 550 survives the lost connection"
    );
    assert!(!conn.is_usable());
    let err = conn
        .transact(&envelope("a@example.org", &["b@example.net"]), BODY)
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[test]
fn a_421_greeting_is_a_temporary_rejection() {
    let server = TestServer::start(Options {
        greeting: Some((421, "busy, try later")),
        ..Options::default()
    });
    let err = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", server.port())),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert!(err.is_temporary());
}

#[test]
fn a_554_greeting_is_permanent_and_the_client_still_says_quit() {
    let (addr, handle) = serve_once(|mut s| {
        send(&mut s, b"554 no SMTP service here\r\n")?;
        read_until(&mut s, b"\r\n")
    });
    let err = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", addr.port())),
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(handle.join().unwrap().unwrap(), b"QUIT\r\n");
}

#[test]
fn noop_on_an_idle_connection() {
    let server = TestServer::start(Options::default());
    let mut conn = Connection::open(
        &url(&format!("smtp://127.0.0.1:{}?tls=off", server.port())),
        &settings(),
    )
    .unwrap();
    assert!(conn.noop().unwrap().is_positive_completion());
    conn.quit().unwrap();
}

#[test]
fn every_recipient_refused_sends_no_body_and_the_connection_is_reused() {
    for no_chunking in [false, true] {
        let server = TestServer::start(Options {
            refuse_rcpt: vec!["<x@example.net>".into(), "<y@example.net>".into()],
            no_chunking,
            ..Options::default()
        });
        let mut conn = Connection::open(
            &url(&format!("smtp://127.0.0.1:{}?tls=off", server.port())),
            &settings(),
        )
        .unwrap();
        let report = conn
            .send(
                &envelope("a@example.org", &["x@example.net", "y@example.net"]),
                BODY,
            )
            .unwrap();
        assert!(
            report
                .recipients
                .iter()
                .all(|r| r.outcome == Outcome::PermanentFailure),
            "{report:?}"
        );
        let report = conn
            .send(&envelope("a@example.org", &["ok@example.net"]), BODY)
            .unwrap();
        assert!(report.all_accepted(), "{report:?}");
        conn.quit().unwrap();
        let delivered = server.delivered();
        assert_eq!(delivered.len(), 1, "chunking={}", !no_chunking);
        assert_eq!(delivered[0].to, ["<ok@example.net>"]);
    }
}

#[test]
fn implicit_tls_with_auth() {
    let pki = pki();
    let server = TestServer::start(Options {
        tls: Some(pki.server_config.clone()),
        implicit_tls: true,
        credentials: Some(("alice".into(), "s3cr3t".into())),
        ..Options::default()
    });
    let mut conn = Connection::open(
        &url(&format!("smtps://alice:s3cr3t@localhost:{}", server.port())),
        &trusting(&pki.ca_pem),
    )
    .unwrap();
    assert!(conn.session().is_tls());
    assert!(conn.channel().tls_info().is_some());
    let report = conn
        .send(&envelope("alice@example.org", &["b@example.net"]), BODY)
        .unwrap();
    assert!(report.all_accepted());
    conn.quit().unwrap();
    let d = server.delivered();
    assert!(d[0].tls);
    assert_eq!(d[0].auth_user.as_deref(), Some("alice"));
}
