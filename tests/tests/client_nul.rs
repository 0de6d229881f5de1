//! The sending side never puts a NUL on the wire in a 7bit or 8bit body:
//! the client session refuses the chunk (under every policy) and the
//! `DotStuffer` refuses or drops it, stuffing a dot that follows a dropped
//! NUL at a line start, so that not even a hop that strips NULs can find
//! `CRLF . CRLF` before the real end.

use smtp_proto::address::{ForwardPath, Host, Mailbox, ReversePath};
use smtp_proto::client::{Config, UsageError};
use smtp_proto::command::{Body, Command, MailParameters, RcptParameters};
use smtp_proto::data::{BareLineEnding, DotStuffer, DotUnstuffer, StuffError};
use smtp_proto::{BodyMode, TlsMode};
use smtp_tests::pair::ClientDriver;

const GREETING: &[u8] = b"220 mx.example.com ESMTP\r\n";
const EHLO_PIPE: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const EHLO_BINARY: &[u8] =
    b"250-mx.example.com\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n";

fn config(policy: BareLineEnding) -> Config {
    let mut c = Config::new(Host::parse("client.example").unwrap());
    c.tls = TlsMode::Disabled;
    c.bare_line_ending = policy;
    c
}

fn mail(body: Option<Body>) -> Command<'static> {
    Command::Mail {
        from: ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap().into_owned()),
        params: MailParameters {
            body,
            ..Default::default()
        },
    }
}

fn rcpt() -> Command<'static> {
    Command::Rcpt {
        to: ForwardPath::Mailbox(Mailbox::parse("b@example.net").unwrap().into_owned()),
        params: RcptParameters::default(),
    }
}

fn ready(policy: BareLineEnding, ehlo: &[u8]) -> ClientDriver {
    let mut d = ClientDriver::new(config(policy));
    d.feed(GREETING);
    d.feed(ehlo);
    d.take_sent();
    d.take_events();
    d
}

#[test]
fn the_client_refuses_a_nul_in_a_data_body_under_every_policy() {
    for policy in [
        BareLineEnding::Reject,
        BareLineEnding::Normalize,
        BareLineEnding::Accept,
    ] {
        let mut d = ready(policy, EHLO_PIPE);
        d.client.enqueue(mail(None)).unwrap();
        d.client.enqueue(rcpt()).unwrap();
        assert_eq!(d.client.start_body().unwrap(), BodyMode::Data);
        d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
        d.take_sent();
        for (chunk, offset) in [(&b"a\r\n\0.\r\n"[..], 3), (b"a\r\n.\0\r\n", 4)] {
            assert_eq!(
                d.client.write_body(chunk),
                Err(UsageError::NulOctet { offset }),
                "{policy:?}"
            );
        }
        // Nothing of the refused chunks went out; a clean one still does.
        assert!(d.take_sent().is_empty());
        assert_eq!(d.client.write_body(b"ok\r\n"), Ok(4));
        d.client.finish_body().unwrap();
        d.drain();
        assert_eq!(d.take_sent_text(), "ok\r\n.\r\n");
    }
}

#[test]
fn the_client_refuses_a_nul_in_a_7bit_bdat_body_but_sends_it_in_binarymime() {
    let mut d = ready(BareLineEnding::Reject, EHLO_BINARY);
    d.client.enqueue(mail(None)).unwrap();
    d.client.enqueue(rcpt()).unwrap();
    assert_eq!(d.client.start_body().unwrap(), BodyMode::Bdat);
    assert_eq!(
        d.client.write_body(b"x\0"),
        Err(UsageError::NulOctet { offset: 1 })
    );

    let mut d = ready(BareLineEnding::Reject, EHLO_BINARY);
    d.client.enqueue(mail(Some(Body::BinaryMime))).unwrap();
    d.client.enqueue(rcpt()).unwrap();
    assert_eq!(d.client.start_body().unwrap(), BodyMode::Bdat);
    assert_eq!(d.client.write_body(b"\r\n\0.\r\n"), Ok(6));
    d.client.finish_body().unwrap();
    d.drain();
    d.feed(b"250 ok\r\n250 ok\r\n");
    assert!(d.take_sent_text().ends_with("BDAT 6 LAST\r\n\r\n\0.\r\n"));
}

/// Stuffs `body` under `policy` in one call (or returns the error).
fn stuffed(policy: BareLineEnding, body: &[u8]) -> Result<Vec<u8>, StuffError> {
    let mut s = DotStuffer::new(policy);
    let mut out = Vec::new();
    s.stuff(body, &mut out)?;
    s.finish(&mut out)?;
    Ok(out)
}

#[test]
fn the_stuffer_refuses_or_drops_nul() {
    assert_eq!(
        stuffed(BareLineEnding::Reject, b"a\r\n\0.\r\nb"),
        Err(StuffError::Nul { offset: 3 })
    );
    assert_eq!(
        stuffed(BareLineEnding::Reject, b"a\r\n.\0\r\nb"),
        Err(StuffError::Nul { offset: 4 })
    );
    for policy in [BareLineEnding::Normalize, BareLineEnding::Accept] {
        // The dot after a dropped NUL is still at the line start: stuffed.
        assert_eq!(
            stuffed(policy, b"a\r\n\0.\r\nb").unwrap(),
            b"a\r\n..\r\nb\r\n.\r\n"
        );
        assert_eq!(
            stuffed(policy, b"a\r\n.\0\r\nb").unwrap(),
            b"a\r\n..\r\nb\r\n.\r\n"
        );
        assert_eq!(stuffed(policy, b"\0\0.x\0y").unwrap(), b"..xy\r\n.\r\n");
    }
}

#[test]
fn stuffed_output_never_ends_early_even_with_nuls_stripped() {
    // Every body of NUL, CR, LF and dots up to length 6, split everywhere:
    // the wire (with any NUL removed, as a stripping hop would) ends the
    // data only at the terminator.
    let alphabet = [0u8, b'\r', b'\n', b'.', b'x'];
    let mut body = Vec::new();
    for len in 0..=6u32 {
        for mut code in 0..alphabet.len().pow(len) {
            body.clear();
            for _ in 0..len {
                body.push(alphabet[code % alphabet.len()]);
                code /= alphabet.len();
            }
            for split in 0..=body.len() {
                let mut s = DotStuffer::new(BareLineEnding::Normalize);
                let mut wire = Vec::new();
                s.stuff(&body[..split], &mut wire).unwrap();
                s.stuff(&body[split..], &mut wire).unwrap();
                s.finish(&mut wire).unwrap();
                assert!(!wire.contains(&0), "{:?}", body.escape_ascii());
                let mut u = DotUnstuffer::new(BareLineEnding::Reject);
                let mut out = Vec::new();
                let r = u.unstuff(&wire, &mut out);
                assert!(
                    r.end && r.consumed == wire.len(),
                    "{:?}",
                    body.escape_ascii()
                );
                assert!(!u.stats().has_bare_line_ending() && !u.stats().has_nul());
            }
        }
    }
}
