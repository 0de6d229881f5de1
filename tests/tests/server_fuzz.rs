//! Property tests: arbitrary input in arbitrary chunks never panics, never
//! grows a buffer past its limit, and everything the server transmits parses
//! as well-formed replies with the codec's reply parser.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::{Config, Server};
use smtp_proto::{InjectionPolicy, Output, Protocol, TlsInfo, TlsMode};

const FRAGMENTS: &[&[u8]] = &[
    b"EHLO c.example\r\n",
    b"HELO c.example\r\n",
    b"LHLO c.example\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"MAIL FROM:<a@example.org> SIZE=99999999999 BODY=8BITMIME\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 3 LAST\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"..x\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN\r\n",
    b"AUTH XOAUTH2 =\r\n",
    b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
    b"*\r\n",
    b"dGVzdA==\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"QUIT\r\n",
    b"\r\n",
    b"\0\xff\xfe",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..40),
            1 => (0usize..3000).prop_map(|n| vec![b'A'; n]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn config(kind: u8) -> Config {
    let mut c = Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    c.errors.delay = Duration::ZERO;
    c.errors.hard = 1000;
    c.max_message_size = Some(200);
    c.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN, Mechanism::XOAUTH2];
    c.auth.require_tls = kind.is_multiple_of(2);
    c.tls = if kind.is_multiple_of(7) {
        TlsMode::Required
    } else {
        TlsMode::Opportunistic
    };
    c.on_injection = if kind.is_multiple_of(3) {
        InjectionPolicy::Discard
    } else {
        InjectionPolicy::Close
    };
    if kind.is_multiple_of(5) {
        c.protocol = Protocol::Lmtp;
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_is_handled_safely(
        data in input(),
        cuts in prop::collection::vec(1usize..64, 1..32),
        answers in prop::collection::vec(0u8..6, 64),
        kind in 0u8..30,
    ) {
        let c = config(kind);
        let limit = c.limits.input_buffer.max(12_289);
        let mut now = Instant::now();
        let mut server = Server::new(c, now);
        let mut wire = Vec::new();
        let mut answer = answers.iter().cycle();
        let mut rest: &[u8] = &data;
        let mut cut = cuts.iter().cycle();
        let mut idle_rounds = 0;
        while !server.is_closed() && idle_rounds < 3 {
            // Drain.
            for _ in 0..100_000 {
                match server.poll(now) {
                    Output::Transmit(b) => {
                        let n = b.len();
                        wire.extend_from_slice(b);
                        server.advance_transmit(now, n).unwrap();
                    }
                    Output::Event(e) => {
                        if e.needs_answer() {
                            let _ = match answer.next() {
                                Some(0) => server.reply(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no").unwrap()),
                                Some(1) => server.auth_challenge(b"challenge"),
                                Some(2) => server.reply(Reply::new(ReplyCode::LOCAL_ERROR, "later").unwrap()),
                                _ => server.accept(),
                            };
                            // Whatever the answer, one that fits must exist.
                            let _ = server.accept();
                        }
                    }
                    Output::StartTls => {
                        server.handle_tls_established(now, TlsInfo::default()).unwrap();
                    }
                    Output::Wait { .. } => break,
                    _ => break,
                }
            }
            prop_assert!(server.buffered_input() <= limit + 2);
            if rest.is_empty() {
                idle_rounds += 1;
                now += Duration::from_secs(400);
                server.handle_timeout(now);
                continue;
            }
            let n = (*cut.next().unwrap()).min(rest.len());
            let taken = server.handle_input(now, &rest[..n]);
            rest = &rest[taken..];
            if taken == 0 && server.wants_read() {
                prop_assert!(false, "wants_read but took nothing");
            }
            if taken == 0 {
                // Full and waiting: time passes, the idle timer is off while
                // a question is open, so answer it.
                let _ = server.accept();
                idle_rounds += 1;
            } else {
                idle_rounds = 0;
            }
        }
        // Every transmitted byte is part of a well-formed reply.
        let mut buf: &[u8] = &wire;
        while !buf.is_empty() {
            match Reply::parse(buf) {
                Ok(Some((_, used))) => buf = &buf[used..],
                other => prop_assert!(false, "bad reply bytes {:?}: {:?}", buf.escape_ascii().to_string(), other),
            }
        }
    }
}
