//! NUL in message content, and the smuggling policy over BDAT: both NUL
//! placements that a NUL-stripping hop reads as an end of data
//! (`\r\n\0.\r\n`, `\r\n.\0\r\n`) under each policy, with DATA and with
//! BDAT, and BINARYMIME left alone. Each transcript is replayed whole, byte
//! by byte and cut at every index.

use smtp_tests::transcript::run;

const EHLO: &str = "
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250-SIZE 10240000
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250 SMTPUTF8
E: helo ehlo client.example
";

const ENVELOPE: &str = "
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
";

const OPEN_DATA: &str = "
C: DATA
E: data-start data
A: accept
S: 354 End data with <CR><LF>.<CR><LF>
";

/// The two placements: what the client sends (escaped) after `a`, and
/// what the body holds under Reject/Accept and under Normalize.
const PLACEMENTS: [(&str, &str, &str); 2] = [
    // CRLF NUL "." CRLF: the NUL starts the line, the dot is content.
    (r"\r\n\0.\r\n", r"\r\n\x00.\r\n", r"\r\n.\r\n"),
    // CRLF "." NUL CRLF: the dot is removed as stuffing, the NUL stays.
    (r"\r\n.\0\r\n", r"\r\n\x00\r\n", r"\r\n\r\n"),
];

const SMUGGLED: &str = r"MAIL FROM:<evil@example.com>\r\n";

fn size(escaped: &str) -> usize {
    smtp_tests::transcript::unescape(&escaped.replace(r"\x00", r"\0").replace(r"\x", r"\\x")).len()
}

/// The end of a message: refused with `reply` (after a reset `reason`) or
/// accepted with its size.
fn verdict(body: &str, refused: Option<(&str, &str)>) -> String {
    match refused {
        Some((reason, reply)) => format!("E: reset {reason}\nS: {reply}\n"),
        None => format!(
            "E: message-end size={} replies=1\nA: accept\nS: 250 2.0.0 Message accepted\n",
            size(body)
        ),
    }
}

const NUL_REFUSED: (&str, &str) = ("nul", "550 5.6.0 Message refused: NUL received");
const BARE_REFUSED: (&str, &str) = (
    "bare-line-ending",
    "550 5.5.2 Message refused: bare CR or LF received",
);

fn data(policy: &str, sent: &str, body: &str, refused: Option<(&str, &str)>) {
    let body = format!("a{body}{SMUGGLED}");
    run(&format!(
        "{policy}{EHLO}{ENVELOPE}{OPEN_DATA}B: a{sent}{SMUGGLED}.\\r\\n\nE: body {body}\n{}C: NOOP\nS: 250 2.0.0 Ok\n",
        verdict(&body, refused)
    ));
}

fn bdat(policy: &str, sent: &str, body: &str, refused: Option<(&str, &str)>) {
    let chunk = format!("a{sent}{SMUGGLED}");
    let n = size(&chunk.replace(r"\0", r"\x00"));
    let body = format!("a{body}{SMUGGLED}");
    run(&format!(
        "{policy}{EHLO}{ENVELOPE}B: BDAT {n} LAST\\r\\n{chunk}\nE: data-start bdat\nA: accept\nE: body {body}\n{}C: NOOP\nS: 250 2.0.0 Ok\n",
        verdict(&body, refused)
    ));
}

#[test]
fn nul_in_data_is_refused_by_default() {
    for (sent, kept, _) in PLACEMENTS {
        data("", sent, kept, Some(NUL_REFUSED));
    }
}

#[test]
fn nul_in_data_is_dropped_under_normalize() {
    for (sent, _, normalized) in PLACEMENTS {
        data("!bare-line-ending normalize\n", sent, normalized, None);
    }
}

#[test]
fn nul_in_data_is_kept_under_accept() {
    for (sent, kept, _) in PLACEMENTS {
        data("!bare-line-ending accept\n", sent, kept, None);
    }
}

#[test]
fn nul_in_bdat_is_refused_by_default() {
    for (sent, _, _) in PLACEMENTS {
        // Nothing inside a chunk is unstuffed: the body is the chunk.
        bdat("", sent, &sent.replace(r"\0", r"\x00"), Some(NUL_REFUSED));
    }
}

#[test]
fn nul_in_bdat_is_dropped_under_normalize() {
    for (sent, _, _) in PLACEMENTS {
        bdat(
            "!bare-line-ending normalize\n",
            sent,
            &sent.replace(r"\0", ""),
            None,
        );
    }
}

#[test]
fn nul_in_bdat_is_kept_under_accept() {
    for (sent, _, _) in PLACEMENTS {
        bdat(
            "!bare-line-ending accept\n",
            sent,
            &sent.replace(r"\0", r"\x00"),
            None,
        );
    }
}

#[test]
fn bare_lf_in_bdat_is_refused_by_default_and_normalized_on_request() {
    bdat("", r"\n.\n", r"\n.\n", Some(BARE_REFUSED));
    bdat("", r"\r.\r", r"\r.\r", Some(BARE_REFUSED));
    bdat(
        "!bare-line-ending normalize\n",
        r"\n.\n",
        r"\r\n.\r\n",
        None,
    );
    bdat("!bare-line-ending accept\n", r"\n.\n", r"\n.\n", None);
}

#[test]
fn a_cr_at_a_chunk_edge_is_judged_by_the_next_chunk() {
    // CRLF split over two chunks is clean; a CR at the very end is bare.
    let open = format!("{EHLO}{ENVELOPE}");
    run(&format!(
        r"{open}B: BDAT 2\r\na\r
E: data-start bdat
A: accept
E: body a\r
S: 250 2.0.0 2 octets received
B: BDAT 2 LAST\r\n\nb
E: body \nb
E: message-end size=4 replies=1
A: accept
S: 250 2.0.0 Message accepted
B: MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 2 LAST\r\na\r
E: mail FROM:<a@example.org>
A: accept
E: rcpt TO:<b@example.org>
A: accept
E: data-start bdat
A: accept
E: body a\r
E: reset bare-line-ending
S: 250 2.1.0 Sender ok
S: 250 2.1.5 Recipient ok
S: 550 5.5.2 Message refused: bare CR or LF received
"
    ));
    // Normalize: the CR is written as CRLF at once, and its LF in the next
    // chunk is not doubled.
    run(&format!(
        r"!bare-line-ending normalize
{open}B: BDAT 2\r\na\r
E: data-start bdat
A: accept
E: body a\r\n
S: 250 2.0.0 2 octets received
B: BDAT 3 LAST\r\n\nb\0
E: body b
E: message-end size=4 replies=1
A: accept
S: 250 2.0.0 Message accepted
"
    ));
}

#[test]
fn binarymime_bodies_are_neither_checked_nor_changed() {
    let ehlo = EHLO.replace("S: 250-CHUNKING\n", "S: 250-CHUNKING\nS: 250-BINARYMIME\n");
    for policy in ["", "!bare-line-ending normalize\n"] {
        run(&format!(
            r"!offer +binarymime
{policy}{ehlo}C: MAIL FROM:<a@example.org> BODY=BINARYMIME
E: mail FROM:<a@example.org> BODY=BINARYMIME
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
B: BDAT 7 LAST\r\n\0.\r\n\n\r\0
E: data-start bdat
A: accept
E: body \x00.\r\n\n\r\x00
E: message-end size=7 replies=1
A: accept
S: 250 2.0.0 Message accepted
"
        ));
    }
}
