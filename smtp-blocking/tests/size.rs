//! `Connection::send` declares the message size (RFC 1870) when the
//! server offers SIZE, and a message over the server's declared limit is
//! refused before anything of it is sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::{Connection, Direction, Envelope, Error, Outcome, ServerUrl, Settings};
use smtp_proto::client::UsageError;
use smtp_tests::scripted::{Script, ScriptedServer};
use smtp_tests::std_server::{Options, TestServer};

/// Settings whose transcript lands in the returned list.
fn traced() -> (Settings, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut settings = Settings::default().with_timeout(Duration::from_secs(10));
    settings.helo = Some("client.test".parse().unwrap());
    settings.trace = Some(Arc::new(move |d: Direction, l: &str| {
        sink.lock().unwrap().push(format!("{} {l}", d.prefix()));
    }));
    (settings, lines)
}

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", ["b@example.net"]).unwrap()
}

/// A message of exactly `len` octets.
fn message(len: usize) -> Vec<u8> {
    let mut m = b"Subject: size\r\n\r\n".to_vec();
    while m.len() + 80 <= len {
        m.extend_from_slice(&[b'x'; 78]);
        m.extend_from_slice(b"\r\n");
    }
    m.resize(len - 2, b'y');
    m.extend_from_slice(b"\r\n");
    assert_eq!(m.len(), len);
    m
}

fn mail_lines(lines: &Mutex<Vec<String>>) -> Vec<String> {
    let lines = lines.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.starts_with("C: MAIL"))
        .cloned()
        .collect()
}

#[test]
fn send_declares_size_and_refuses_what_exceeds_the_limit_before_sending() {
    let mut config = TestServer::config(&Options::default());
    config.max_message_size = Some(65_536);
    let server = TestServer::start_with(config, Options::default());
    let (settings, lines) = traced();
    let url: ServerUrl = format!("smtp://127.0.0.1:{}?tls=off", server.port())
        .parse()
        .unwrap();
    let mut conn = Connection::open(&url, &settings).unwrap();

    let small = message(1000);
    let report = conn.send(&envelope(), &small).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    assert_eq!(
        mail_lines(&lines),
        ["C: MAIL FROM:<a@example.org> SIZE=1000"]
    );

    // 160 KB to a 64 KiB server: refused here, nothing of it on the wire.
    let sent_before = lines.lock().unwrap().len();
    let big = message(160_000);
    let err = conn.send(&envelope(), &big).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Message(UsageError::MessageTooLarge {
                size: 160_000,
                limit: 65_536
            })
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        "the message cannot be sent: message of 160000 octets exceeds the server's limit of 65536"
    );
    let after: Vec<String> = lines.lock().unwrap()[sent_before..].to_vec();
    assert!(
        after.iter().all(|l| !l.starts_with("C: ")),
        "nothing sent for the refused message: {after:?}"
    );

    // The connection carries the next message.
    assert!(conn.is_usable());
    let report = conn.send(&envelope(), &small).unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
    conn.quit().unwrap();
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().all(|d| d.body == small));
}

#[test]
fn size_is_declared_only_when_offered_and_an_explicit_size_is_kept() {
    // A server without SIZE: no parameter, and no limit to check.
    let without = ScriptedServer::start(
        "127.0.0.1",
        0,
        Script {
            extensions: vec!["PIPELINING".into(), "8BITMIME".into()],
            ..Script::accept()
        },
    );
    let (settings, lines) = traced();
    let url: ServerUrl = format!("smtp://{}?tls=off", without.addr())
        .parse()
        .unwrap();
    let mut conn = Connection::open(&url, &settings).unwrap();
    let report = conn.send(&envelope(), &message(200_000)).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    conn.quit().unwrap();
    assert_eq!(mail_lines(&lines), ["C: MAIL FROM:<a@example.org>"]);
    assert_eq!(without.delivered()[0].mail, "MAIL FROM:<a@example.org>");

    // SIZE without a limit: declared; a size the caller set is left alone.
    let with = ScriptedServer::start(
        "127.0.0.1",
        0,
        Script {
            extensions: vec!["SIZE".into()],
            ..Script::accept()
        },
    );
    let (settings, lines) = traced();
    let url: ServerUrl = format!("smtp://{}?tls=off", with.addr()).parse().unwrap();
    let mut conn = Connection::open(&url, &settings).unwrap();
    conn.send(&envelope(), &message(500)).unwrap();
    let mut declared = envelope();
    declared.params.size = Some(4096);
    conn.send(&declared, &message(500)).unwrap();
    conn.quit().unwrap();
    assert_eq!(
        mail_lines(&lines),
        [
            "C: MAIL FROM:<a@example.org> SIZE=500",
            "C: MAIL FROM:<a@example.org> SIZE=4096"
        ]
    );
}
