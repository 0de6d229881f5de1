//! A NUL in message content over real sockets: refused at the real end of
//! data under the default policy (DATA and BDAT), nothing stored, and the
//! connection goes on.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use smtp_mio::server::store::Credentials;

mod common;
use common::{TIMEOUT, start_store};

/// Sends `batch` and returns the last line of each of the next `n` replies.
fn exchange(
    stream: &mut TcpStream,
    replies: &mut BufReader<TcpStream>,
    batch: &[u8],
    n: usize,
) -> Vec<String> {
    stream.write_all(batch).unwrap();
    (0..n)
        .map(|_| {
            loop {
                let mut line = String::new();
                assert!(replies.read_line(&mut line).unwrap() > 0, "closed");
                if line.as_bytes().get(3) != Some(&b'-') {
                    break line.trim_end().to_owned();
                }
            }
        })
        .collect()
}

#[test]
fn a_nul_is_refused_and_nothing_is_stored() {
    let server = start_store(Credentials::new(), |_| {});
    let mut stream = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut replies = BufReader::new(stream.try_clone().unwrap());
    let s = &mut stream;
    let r = &mut replies;
    assert!(exchange(s, r, b"", 1)[0].starts_with("220 "));
    assert!(exchange(s, r, b"EHLO client.test\r\n", 1)[0].starts_with("250 "));
    let envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n";
    for content in [&b"a\r\n\0.\r\nb\r\n"[..], b"a\r\n.\0\r\nb\r\n"] {
        let got = exchange(s, r, &[&envelope[..], b"DATA\r\n"].concat(), 3);
        assert_eq!(got[2], "354 End data with <CR><LF>.<CR><LF>");
        let got = exchange(s, r, &[content, b".\r\n"].concat(), 1);
        assert_eq!(got, ["550 5.6.0 Message refused: NUL received"]);
        // The same content in one BDAT chunk of a 7bit body.
        let bdat = format!("BDAT {} LAST\r\n", content.len());
        let got = exchange(s, r, &[&envelope[..], bdat.as_bytes(), content].concat(), 3);
        assert_eq!(got[2], "550 5.6.0 Message refused: NUL received");
    }
    // A bare LF in a 7bit BDAT body: refused too (stored as sent only under
    // the accept policy).
    let got = exchange(s, r, &[&envelope[..], b"BDAT 9\r\nSubject:\n"].concat(), 3);
    assert!(got[2].starts_with("250 "), "{got:?}");
    let got = exchange(s, r, b"BDAT 6 LAST\r\n.\r\nx\r\n", 1);
    assert_eq!(got, ["550 5.5.2 Message refused: bare CR or LF received"]);
    // A clean message still goes through on the same connection.
    exchange(s, r, &[&envelope[..], b"DATA\r\n"].concat(), 3);
    let got = exchange(s, r, b"clean\r\n.\r\n", 1);
    assert!(got[0].starts_with("250 2.0.0 Ok: queued as "), "{got:?}");
    assert_eq!(exchange(s, r, b"QUIT\r\n", 1)[0].get(..3), Some("221"));
    server.wait_sessions_ended(1);
    assert_eq!(server.files("new").len(), 1);
    assert!(server.files("tmp").is_empty());
}
