//! Tests for DATA dot-stuffing and unstuffing, the end-of-data rule (SMTP
//! smuggling) and BDAT counting.

use proptest::prelude::*;
use smtp_proto::data::{
    BareLineEnding, BdatChunk, BodyStats, DotStuffer, DotUnstuffer, LineEndingCheck, StuffError,
};

#[path = "support/bytes_strategies.rs"]
mod bytes_strategies;
use bytes_strategies::{biased_bytes, cut};

const REJECT: BareLineEnding = BareLineEnding::Reject;
const NORMALIZE: BareLineEnding = BareLineEnding::Normalize;

/// What a whole DATA stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    body: Vec<u8>,
    /// Input bytes used (up to and including the terminator if `end`).
    consumed: usize,
    end: bool,
    stats: BodyStats,
}

/// Feeds `chunks` through `unstuff_in_place` as a session does: append a
/// read to its buffer, unstuff, take the body, drain, stop at the end.
fn in_place(policy: BareLineEnding, chunks: &[&[u8]]) -> Outcome {
    let mut u = DotUnstuffer::new(policy);
    let mut buf = Vec::new();
    let mut body = Vec::new();
    let mut fed = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        let r = u.unstuff_in_place(&mut buf);
        body.extend_from_slice(&buf[..r.body_len]);
        buf.drain(..r.consumed);
        if r.end {
            break;
        }
        assert!(buf.is_empty(), "everything is consumed before the end");
    }
    Outcome {
        body,
        consumed: fed - buf.len(),
        end: u.is_done(),
        stats: *u.stats(),
    }
}

/// Feeds `chunks` through the copying `unstuff`.
fn copying(policy: BareLineEnding, chunks: &[&[u8]]) -> Outcome {
    let mut u = DotUnstuffer::new(policy);
    let mut body = vec![b'#'; 3]; // output is appended after what is there
    let mut consumed = 0;
    for chunk in chunks {
        let r = u.unstuff(chunk, &mut body);
        assert_eq!(body.len() - 3, u.stats().octets as usize);
        consumed += r.consumed;
        if r.end {
            break;
        }
        assert_eq!(r.consumed, chunk.len());
        let _ = r.body_len;
    }
    assert_eq!(&body[..3], b"###");
    Outcome {
        body: body[3..].to_vec(),
        consumed,
        end: u.is_done(),
        stats: *u.stats(),
    }
}

fn stats(bare_cr: u64, bare_lf: u64, nul: u64, octets: usize) -> BodyStats {
    let mut s = BodyStats::default();
    s.bare_cr = bare_cr;
    s.bare_lf = bare_lf;
    s.nul = nul;
    s.octets = octets as u64;
    s
}

/// Checks one input whole, through both APIs, byte by byte and split at
/// every index.
fn check(policy: BareLineEnding, input: &[u8], want: &Outcome) {
    let name = input.escape_ascii().to_string();
    assert_eq!(
        &in_place(policy, &[input]),
        want,
        "in place, whole: {name} {policy:?}"
    );
    assert_eq!(
        &copying(policy, &[input]),
        want,
        "copying, whole: {name} {policy:?}"
    );
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        &in_place(policy, &bytes),
        want,
        "in place, bytewise: {name} {policy:?}"
    );
    assert_eq!(
        &copying(policy, &bytes),
        want,
        "copying, bytewise: {name} {policy:?}"
    );
    for i in 0..=input.len() {
        let split = [&input[..i], &input[i..]];
        assert_eq!(
            &in_place(policy, &split),
            want,
            "in place, split {i}: {name} {policy:?}"
        );
        assert_eq!(
            &copying(policy, &split),
            want,
            "copying, split {i}: {name} {policy:?}"
        );
    }
}

/// One end-of-data case: the input (the stream right after `354`), where it
/// ends (`None`: it does not), the body under Reject and under Normalize, and
/// the bare CR, bare LF and NUL counts.
struct Case {
    input: &'static [u8],
    end_at: Option<usize>,
    reject_body: &'static [u8],
    normalize_body: &'static [u8],
    cr: u64,
    lf: u64,
    nul: u64,
}

const fn case(
    input: &'static [u8],
    end_at: Option<usize>,
    reject_body: &'static [u8],
    normalize_body: &'static [u8],
    (cr, lf, nul): (u64, u64, u64),
) -> Case {
    Case {
        input,
        end_at,
        reject_body,
        normalize_body,
        cr,
        lf,
        nul,
    }
}

const CLEAN: (u64, u64, u64) = (0, 0, 0);

/// The end-of-data table: every way CR, LF, `.` and NUL can meet around a
/// line start. Inputs that do not end early go on to a real terminator or
/// stop without one.
const CASES: &[Case] = &[
    // --- real ends
    // 1. A lone dot as the first line: an empty message.
    case(b".\r\n", Some(3), b"", b"", CLEAN),
    // 2. An empty line, then the end.
    case(b"\r\n.\r\n", Some(5), b"\r\n", b"\r\n", CLEAN),
    case(b"a\r\n.\r\n", Some(6), b"a\r\n", b"a\r\n", CLEAN),
    // 4. Pipelined commands after the end are left for the framer.
    case(
        b"a\r\n.\r\nMAIL FROM:<>\r\n",
        Some(6),
        b"a\r\n",
        b"a\r\n",
        CLEAN,
    ),
    // 5. Only the first terminator counts.
    case(b"a\r\n.\r\n.\r\n", Some(6), b"a\r\n", b"a\r\n", CLEAN),
    case(
        b"a\r\n\r\n.\r\n",
        Some(8),
        b"a\r\n\r\n",
        b"a\r\n\r\n",
        CLEAN,
    ),
    // 7. A bare LF before a *real* CRLF does not spoil that CRLF.
    case(
        b"a\n\r\n.\r\n",
        Some(7),
        b"a\n\r\n",
        b"a\r\n\r\n",
        (0, 1, 0),
    ),
    // 8. Normalize drops a NUL.
    case(b"a\0\r\n.\r\n", Some(7), b"a\0\r\n", b"a\r\n", (0, 0, 1)),
    // --- stuffed lines
    // 9. `..` CRLF at the start is a stuffed `.` line.
    case(b"..\r\n.\r\n", Some(7), b".\r\n", b".\r\n", CLEAN),
    case(
        b"\r\n..\r\n.\r\n",
        Some(9),
        b"\r\n.\r\n",
        b"\r\n.\r\n",
        CLEAN,
    ),
    case(
        b"a\r\n..\r\nb\r\n.\r\n",
        Some(13),
        b"a\r\n.\r\nb\r\n",
        b"a\r\n.\r\nb\r\n",
        CLEAN,
    ),
    case(b"...\r\n.\r\n", Some(8), b"..\r\n", b"..\r\n", CLEAN),
    // 13. A line-start dot before other text is removed (RFC 5321 §4.5.2).
    case(b".a\r\n.\r\n", Some(7), b"a\r\n", b"a\r\n", CLEAN),
    // --- smuggling variants that continue to a real end
    case(
        b"a\n.\nb\r\n.\r\n",
        Some(10),
        b"a\n\nb\r\n",
        b"a\r\n\r\nb\r\n",
        (0, 2, 0),
    ),
    case(
        b"a\r\n.\nb\r\n.\r\n",
        Some(11),
        b"a\r\n\nb\r\n",
        b"a\r\n\r\nb\r\n",
        (0, 1, 0),
    ),
    case(
        b"a\n.\r\nb\r\n.\r\n",
        Some(11),
        b"a\n\r\nb\r\n",
        b"a\r\n\r\nb\r\n",
        (0, 1, 0),
    ),
    case(
        b"a\r.\rb\r\n.\r\n",
        Some(10),
        b"a\r\rb\r\n",
        b"a\r\n\r\nb\r\n",
        (2, 0, 0),
    ),
    case(
        b"a\r.\r\nb\r\n.\r\n",
        Some(11),
        b"a\r\r\nb\r\n",
        b"a\r\n\r\nb\r\n",
        (1, 0, 0),
    ),
    case(
        b"a\r\n.\rb\r\n.\r\n",
        Some(11),
        b"a\r\n\rb\r\n",
        b"a\r\n\r\nb\r\n",
        (1, 0, 0),
    ),
    case(
        b"a\r\n.\r\r\nb\r\n.\r\n",
        Some(13),
        b"a\r\n\r\r\nb\r\n",
        b"a\r\n\r\n\r\nb\r\n",
        (1, 0, 0),
    ),
    case(
        b"a\r\r\n.\r\r\nb\r\n.\r\n",
        Some(14),
        b"a\r\r\n\r\r\nb\r\n",
        b"a\r\n\r\n\r\n\r\nb\r\n",
        (2, 0, 0),
    ),
    case(
        b"a\r\n\0.\r\nb\r\n.\r\n",
        Some(13),
        b"a\r\n\0.\r\nb\r\n",
        b"a\r\n.\r\nb\r\n",
        (0, 0, 1),
    ),
    case(
        b"a\r\n.\0\r\nb\r\n.\r\n",
        Some(13),
        b"a\r\n\0\r\nb\r\n",
        b"a\r\n\r\nb\r\n",
        (0, 0, 1),
    ),
    case(
        b".\rx\r\n.\r\n",
        Some(8),
        b"\rx\r\n",
        b"\r\nx\r\n",
        (1, 0, 0),
    ),
    // --- smuggling variants with no real end: the message goes on
    case(b"a\n.\n", None, b"a\n\n", b"a\r\n\r\n", (0, 2, 0)),
    case(b"a\r\n.\n", None, b"a\r\n\n", b"a\r\n\r\n", (0, 1, 0)),
    case(b"a\n.\r\n", None, b"a\n\r\n", b"a\r\n\r\n", (0, 1, 0)),
    case(b"a\r.\r\n", None, b"a\r\r\n", b"a\r\n\r\n", (1, 0, 0)),
    case(
        b"a\r\n.\r\r\n",
        None,
        b"a\r\n\r\r\n",
        b"a\r\n\r\n\r\n",
        (1, 0, 0),
    ),
    case(
        b"a\r\r\n.\r\r\n",
        None,
        b"a\r\r\n\r\r\n",
        b"a\r\n\r\n\r\n\r\n",
        (2, 0, 0),
    ),
    case(
        b"a\r\n\0.\r\n",
        None,
        b"a\r\n\0.\r\n",
        b"a\r\n.\r\n",
        (0, 0, 1),
    ),
    case(
        b"a\r\n.\0\r\n",
        None,
        b"a\r\n\0\r\n",
        b"a\r\n\r\n",
        (0, 0, 1),
    ),
    case(
        b"a\r\n.\n.\r\n",
        None,
        b"a\r\n\n\r\n",
        b"a\r\n\r\n\r\n",
        (0, 1, 0),
    ),
    case(b"\n.\r\n", None, b"\n\r\n", b"\r\n\r\n", (0, 1, 0)),
    case(b"\r.\r\n", None, b"\r\r\n", b"\r\n\r\n", (1, 0, 0)),
    case(b".\n", None, b"\n", b"\r\n", (0, 1, 0)),
    case(b"\0.\r\n", None, b"\0.\r\n", b".\r\n", (0, 0, 1)),
    case(
        b"\r\n.\r\r\n.\r\r\n",
        None,
        b"\r\n\r\r\n\r\r\n",
        b"\r\n\r\n\r\n\r\n\r\n",
        (2, 0, 0),
    ),
    // --- cut in the middle of a possible terminator: undecided, not an end
    case(b"a\r\n.\r", None, b"a\r\n", b"a\r\n", CLEAN),
    case(b"a\r\n.", None, b"a\r\n", b"a\r\n", CLEAN),
    case(b"a\r\n", None, b"a\r\n", b"a\r\n", CLEAN),
    case(b"", None, b"", b"", CLEAN),
];

#[test]
fn end_of_data_table() {
    assert!(CASES.len() >= 30);
    for c in CASES {
        let name = c.input.escape_ascii().to_string();
        assert_eq!(model_end(c.input), c.end_at, "table vs model: {name}");
        for (policy, body) in [(REJECT, c.reject_body), (NORMALIZE, c.normalize_body)] {
            let want = Outcome {
                body: body.to_vec(),
                consumed: c.end_at.unwrap_or(c.input.len()),
                end: c.end_at.is_some(),
                stats: stats(c.cr, c.lf, c.nul, body.len()),
            };
            check(policy, c.input, &want);
        }
    }
}

#[test]
fn after_the_end_nothing_more_is_taken_and_reset_starts_over() {
    let mut u = DotUnstuffer::default();
    assert_eq!(u.policy(), REJECT);
    let mut buf = b"x\r\n.\r\nQUIT\r\n".to_vec();
    let r = u.unstuff_in_place(&mut buf);
    assert!(r.end);
    assert_eq!((r.body_len, r.consumed), (3, 6));
    buf.drain(..r.consumed);
    assert_eq!(buf, b"QUIT\r\n");
    let again = u.unstuff_in_place(&mut buf);
    assert_eq!((again.body_len, again.consumed, again.end), (0, 0, true));
    assert_eq!(buf, b"QUIT\r\n");
    u.reset();
    assert!(!u.is_done());
    assert_eq!(u.stats(), &BodyStats::default());
    let mut buf = b".\r\n".to_vec();
    assert!(u.unstuff_in_place(&mut buf).end);
}

#[test]
fn normalize_in_place_grows_the_buffer_when_it_must() {
    // Every byte a bare LF: the body is twice the input.
    let mut u = DotUnstuffer::new(NORMALIZE);
    let mut buf = vec![b'\n'; 1000];
    let r = u.unstuff_in_place(&mut buf);
    assert_eq!(r.body_len, 2000);
    assert!(!r.end);
    assert!(buf[..r.body_len].chunks(2).all(|p| p == b"\r\n"));
    assert_eq!(u.stats().bare_lf, 1000);
    buf.drain(..r.consumed);
    assert!(buf.is_empty());
    // The buffer grows at most to twice its input plus a little.
    let mut buf = vec![b'\n'; 1000];
    buf.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let len = buf.len();
    let r = u.unstuff_in_place(&mut buf);
    assert!(r.end);
    assert!(buf.len() <= 2 * len + 2);
    buf.drain(..r.consumed);
    assert_eq!(buf, b"QUIT\r\n");
}

#[test]
fn reject_in_place_with_a_dot_cr_cut_between_reads() {
    // `.` CR at the end of one read, a non-LF at the start of the next: the
    // held CR is written although this read consumed nothing for it.
    let mut u = DotUnstuffer::new(REJECT);
    let mut buf = b"a\r\n.\r".to_vec();
    let r = u.unstuff_in_place(&mut buf);
    assert_eq!(&buf[..r.body_len], b"a\r\n");
    buf.drain(..r.consumed);
    assert!(buf.is_empty());
    buf.extend_from_slice(b"x\r\n.\r\nNOOP\r\n");
    let r = u.unstuff_in_place(&mut buf);
    assert!(r.end);
    assert_eq!(&buf[..r.body_len], b"\rx\r\n");
    buf.drain(..r.consumed);
    assert_eq!(buf, b"NOOP\r\n");
    assert_eq!(u.stats().bare_cr, 1);
}

// ---------------------------------------------------------------- stuffer

fn stuff_chunks(policy: BareLineEnding, chunks: &[&[u8]]) -> Result<Vec<u8>, StuffError> {
    let mut s = DotStuffer::new(policy);
    let mut out = Vec::new();
    for c in chunks {
        s.stuff(c, &mut out)?;
    }
    s.finish(&mut out)?;
    Ok(out)
}

fn stuff_all_ways(policy: BareLineEnding, body: &[u8]) -> Result<Vec<u8>, StuffError> {
    let whole = stuff_chunks(policy, &[body]);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(
        stuff_chunks(policy, &bytes),
        whole,
        "bytewise {:?}",
        body.escape_ascii().to_string()
    );
    for i in 0..=body.len() {
        assert_eq!(
            stuff_chunks(policy, &[&body[..i], &body[i..]]),
            whole,
            "split {i}"
        );
    }
    whole
}

#[test]
fn stuffer_known_answers() {
    #[allow(clippy::type_complexity)]
    let table: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"\r\n", b"\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"..", b"...\r\n.\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        // lettre RUSTSEC-2021-0069: a dot after a double CRLF.
        (b"a\r\n\r\n.\r\n", b"a\r\n\r\n..\r\n.\r\n"),
        (b"a.b\r\n.c", b"a.b\r\n..c\r\n.\r\n"),
    ];
    for (body, wire) in table {
        for policy in [REJECT, NORMALIZE] {
            assert_eq!(
                stuff_all_ways(policy, body).as_deref(),
                Ok(*wire),
                "{policy:?}"
            );
        }
        // The inverse: the server gets the body back.
        let o = in_place(REJECT, &[wire]);
        assert!(o.end);
        assert_eq!(o.consumed, wire.len());
        let mut expect = body.to_vec();
        if !expect.is_empty() && !expect.ends_with(b"\r\n") {
            expect.extend_from_slice(b"\r\n");
        }
        assert_eq!(o.body, expect);
    }
    // NUL: refused under Reject, dropped otherwise, the line start kept.
    for (body, offset, wire) in [
        (&b"\0\r\n"[..], 0, &b"\r\n.\r\n"[..]),
        (b"a\r\n\0.\r\n", 3, b"a\r\n..\r\n.\r\n"),
        (b"a\r\n.\0\r\n", 4, b"a\r\n..\r\n.\r\n"),
    ] {
        assert_eq!(
            stuff_all_ways(REJECT, body),
            Err(StuffError::Nul { offset })
        );
        assert_eq!(stuff_all_ways(NORMALIZE, body).as_deref(), Ok(wire));
    }
}

#[test]
fn stuffer_bare_line_endings() {
    #[allow(clippy::type_complexity)]
    let table: &[(&[u8], StuffError, &[u8])] = &[
        (
            b"a\nb",
            StuffError::BareLf { offset: 1 },
            b"a\r\nb\r\n.\r\n",
        ),
        (
            b"a\rb",
            StuffError::BareCr { offset: 1 },
            b"a\r\nb\r\n.\r\n",
        ),
        (b"\n", StuffError::BareLf { offset: 0 }, b"\r\n.\r\n"),
        (b"\r", StuffError::BareCr { offset: 0 }, b"\r\n.\r\n"),
        (b"a\r", StuffError::BareCr { offset: 1 }, b"a\r\n.\r\n"),
        (
            b"a\r\r\n",
            StuffError::BareCr { offset: 1 },
            b"a\r\n\r\n.\r\n",
        ),
        (
            b"a\n\r\n",
            StuffError::BareLf { offset: 1 },
            b"a\r\n\r\n.\r\n",
        ),
        // lettre RUSTSEC-2026-0561: a dot after a bare LF must be stuffed.
        (
            b"a\n.\n",
            StuffError::BareLf { offset: 1 },
            b"a\r\n..\r\n.\r\n",
        ),
        (
            b"a\n.\r\nMAIL",
            StuffError::BareLf { offset: 1 },
            b"a\r\n..\r\nMAIL\r\n.\r\n",
        ),
        (
            b"a\r.\r",
            StuffError::BareCr { offset: 1 },
            b"a\r\n..\r\n.\r\n",
        ),
        (
            b"ok\r\nok\r\nx\ny",
            StuffError::BareLf { offset: 9 },
            b"ok\r\nok\r\nx\r\ny\r\n.\r\n",
        ),
    ];
    for (body, err, normalized) in table {
        assert_eq!(
            stuff_all_ways(REJECT, body),
            Err(*err),
            "{:?}",
            body.escape_ascii().to_string()
        );
        assert_eq!(stuff_all_ways(NORMALIZE, body).as_deref(), Ok(*normalized));
    }
}

#[test]
fn stuffer_error_sticks_and_writes_nothing_invalid() {
    let mut s = DotStuffer::default();
    let mut out = Vec::new();
    s.stuff(b"hello\r\nwor", &mut out).unwrap(); // clean input: no error possible
    s.stuff(b"ld\r", &mut out).unwrap(); // a trailing CR is held, not yet judged
    assert_eq!(s.taken(), 13);
    let err = s.stuff(b".\r\n", &mut out).unwrap_err();
    assert_eq!(err, StuffError::BareCr { offset: 12 });
    assert_eq!(out, b"hello\r\nworld");
    assert_eq!(s.stuff(b"more", &mut out), Err(err));
    assert_eq!(s.finish(&mut out), Err(err));
    assert_eq!(out, b"hello\r\nworld", "no terminator after an error");
    assert_eq!(err.to_string(), "bare CR at body offset 12");
}

#[test]
fn stuffer_is_reusable_after_finish() {
    let mut s = DotStuffer::new(REJECT);
    let mut out = Vec::new();
    s.stuff(b"one", &mut out).unwrap(); // clean input
    s.finish(&mut out).unwrap(); // clean input ends in text
    s.stuff(b".two\r\n", &mut out).unwrap(); // clean input
    s.finish(&mut out).unwrap(); // ends with CRLF
    assert_eq!(out, b"one\r\n.\r\n..two\r\n.\r\n");
    assert_eq!(s.policy(), REJECT);
}

// ---------------------------------------------------------------- BDAT

#[test]
fn bdat_takes_exactly_n_octets() {
    let mut c = BdatChunk::new(5);
    assert_eq!(c.remaining(), 5);
    assert_eq!(c.take(b"ab"), b"ab");
    assert_eq!(c.remaining(), 3);
    assert!(!c.is_complete());
    assert_eq!(c.take(b""), b"");
    assert_eq!(c.take(b"cdeQUIT\r\n"), b"cde");
    assert!(c.is_complete());
    assert_eq!(c.take(b"QUIT\r\n"), b"");
    let mut zero = BdatChunk::new(0);
    assert!(zero.is_complete());
    assert_eq!(zero.take(b"RSET\r\n"), b"");
}

#[test]
fn bdat_chunk_may_contain_the_dot_terminator_at_every_split() {
    let chunk: &[u8] = b"a\r\n.\r\nMAIL FROM:<evil@x>\r\n\n.\n";
    let mut stream = chunk.to_vec();
    stream.extend_from_slice(b"BDAT 0 LAST\r\n");
    for i in 0..=stream.len() {
        let mut c = BdatChunk::new(chunk.len() as u64);
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for part in [&stream[..i], &stream[i..]] {
            buf.extend_from_slice(part);
            let taken = c.take(&buf);
            let n = taken.len();
            got.extend_from_slice(taken);
            buf.drain(..n);
        }
        assert_eq!(got, chunk, "split {i}");
        assert!(c.is_complete());
        assert_eq!(buf, b"BDAT 0 LAST\r\n");
    }
}

#[test]
fn bdat_huge_size_does_not_overflow() {
    let mut c = BdatChunk::new(u64::MAX);
    assert_eq!(c.take(b"abc"), b"abc");
    assert_eq!(c.remaining(), u64::MAX - 3);
}

#[test]
fn line_ending_check_known_answers() {
    #[allow(clippy::type_complexity)]
    let table: &[(&[u8], (u64, u64, u64))] = &[
        (b"", (0, 0, 0)),
        (b"a\r\nb\r\n", (0, 0, 0)),
        (b"a\nb", (0, 1, 0)),
        (b"a\rb", (1, 0, 0)),
        (b"a\r", (1, 0, 0)),
        (b"\r\r\n\n\0", (1, 1, 1)),
        (b"\r\n.\r\n", (0, 0, 0)),
        (b"\n\r", (1, 1, 0)),
    ];
    for (body, (cr, lf, nul)) in table {
        let want = stats(*cr, *lf, *nul, body.len());
        for i in 0..=body.len() {
            let mut c = LineEndingCheck::new();
            c.scan(&body[..i]);
            c.scan(&body[i..]);
            assert_eq!(
                c.finish(),
                &want,
                "{:?} split {i}",
                body.escape_ascii().to_string()
            );
        }
        let mut c = LineEndingCheck::new();
        for b in body.chunks(1) {
            c.scan(b);
            c.scan(b"");
        }
        assert_eq!(c.finish(), &want);
        assert_eq!(c.stats(), &want);
    }
}

// ---------------------------------------------------------------- properties

/// Bodies whose line endings are all CRLF, rich in dots, without NUL (7bit
/// and 8bit data hold none).
fn clean_body() -> impl Strategy<Value = Vec<u8>> {
    let line = proptest::collection::vec(
        prop_oneof![4 => Just(b'a'), 3 => Just(b'.'), 1 => Just(0xffu8)],
        0..6,
    );
    (proptest::collection::vec(line, 0..12), proptest::bool::ANY).prop_map(|(lines, trailing)| {
        let mut body = lines.join(&b"\r\n"[..]);
        if trailing && !lines.is_empty() {
            body.extend_from_slice(b"\r\n");
        }
        body
    })
}

/// Any bytes, biased towards the ones that matter.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    biased_bytes(
        &[(3, b'a'), (3, b'.'), (3, b'\r'), (3, b'\n'), (1, 0)],
        1,
        0..80,
    )
}

/// Long inputs for the bulk scan: runs of plain CRLF lines (whole 32-pair
/// blocks, at times more than one 16 KiB window) with stuffed dots, dot-CR
/// lines, terminators and arbitrary bytes between them.
fn long_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => (1usize..200, 1usize..40).prop_map(|(len, lines)| {
            let mut line = vec![b'x'; len];
            line.extend_from_slice(b"\r\n");
            line.repeat(lines)
        }),
        1 => Just(b"\r\n..".to_vec()),
        1 => Just(b"\r\n.\r".to_vec()),
        1 => Just(b"\r\n.\r\n".to_vec()),
        3 => any_body(),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn refs(chunks: &[Vec<u8>]) -> Vec<&[u8]> {
    chunks.iter().map(Vec::as_slice).collect()
}

/// Where a DATA stream really ends: the first `.` CRLF at a line start,
/// line starts being the body start and the byte after each CRLF.
fn model_end(input: &[u8]) -> Option<usize> {
    let mut p = 0;
    loop {
        if input[p..].starts_with(b".\r\n") {
            return Some(p + 3);
        }
        let i = input[p..].windows(2).position(|w| w == b"\r\n")?;
        p += i + 2;
    }
}

/// The unstuffer's state table (see `DotUnstuffer`), one byte at a time:
/// the oracle for the vectorized bulk path. Returns the outcome of feeding
/// `input` whole, and the stats as `(octets, bare_cr, bare_lf, nul)`.
fn model_unstuff(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, usize, bool, [u64; 4]) {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        LineStart,
        Weak,
        Text,
        Cr,
        Dot,
        DotCr,
    }
    let normalize = policy == NORMALIZE;
    let (mut out, mut st) = (Vec::new(), S::LineStart);
    let (mut bare_cr, mut bare_lf, mut nul) = (0, 0, 0);
    let mut r = 0;
    while let Some(&b) = input.get(r) {
        match st {
            S::LineStart | S::Weak if b == b'.' => {
                r += 1;
                st = if st == S::LineStart { S::Dot } else { S::Text };
            }
            S::LineStart | S::Weak => st = S::Text,
            S::Dot if b == b'\r' => {
                r += 1;
                st = S::DotCr;
            }
            S::Dot => st = S::Text,
            S::DotCr if b == b'\n' => {
                let octets = out.len() as u64;
                return (out, r + 1, true, [octets, bare_cr, bare_lf, nul]);
            }
            S::DotCr => {
                bare_cr += 1;
                out.extend_from_slice(if normalize { b"\r\n" } else { b"\r" });
                st = S::Weak;
            }
            S::Cr if b == b'\n' => {
                r += 1;
                out.push(b'\n');
                st = S::LineStart;
            }
            S::Cr => {
                bare_cr += 1;
                if normalize {
                    out.push(b'\n');
                }
                st = S::Weak;
            }
            S::Text => {
                r += 1;
                match b {
                    b'\r' => {
                        out.push(b);
                        st = S::Cr;
                    }
                    b'\n' => {
                        bare_lf += 1;
                        out.extend_from_slice(if normalize { b"\r\n" } else { b"\n" });
                        st = S::Weak;
                    }
                    _ => {
                        nul += u64::from(b == 0);
                        if b != 0 || !normalize {
                            out.push(b);
                        }
                    }
                }
            }
        }
    }
    let octets = out.len() as u64;
    (out, r, false, [octets, bare_cr, bare_lf, nul])
}

/// Long bodies whose decision points (bare CR, bare LF, NUL, line-start
/// dots, terminators) fall at every offset of the bulk path's 64-byte
/// blocks and around its 16 KiB windows.
fn block_body() -> impl Strategy<Value = Vec<u8>> {
    let odd = prop_oneof![
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b"\0"[..]),
        Just(&b"\r\n."[..]),
        Just(&b"\n."[..]),
        Just(&b"\r."[..]),
        Just(&b"\r\n.\r"[..]),
        Just(&b"\r\n.\n"[..]),
        Just(&b"\r\n\r\n"[..]),
        Just(&b"\r\n.\r\n"[..]),
        Just(&b"."[..]),
    ];
    let piece = (0usize..300, 1usize..60, 0usize..3, odd).prop_map(|(len, lines, skip, odd)| {
        let mut p = Vec::new();
        for i in 0..lines {
            p.extend(std::iter::repeat_n(b'x', len + i % 7));
            p.extend_from_slice(b"\r\n");
        }
        p.extend(std::iter::repeat_n(b'y', skip));
        p.extend_from_slice(odd);
        p
    });
    (proptest::collection::vec(piece, 1..8), 0usize..20000).prop_map(|(pieces, lead)| {
        let mut body = vec![b'z'; lead];
        body.extend_from_slice(b"\r\n");
        body.extend(pieces.concat());
        body
    })
}

/// Bare CR / bare LF / NUL counts of the consumed input, by adjacency.
fn model_counts(consumed: &[u8]) -> (u64, u64, u64) {
    let mut cr = 0;
    let mut lf = 0;
    for (i, &b) in consumed.iter().enumerate() {
        if b == b'\r' {
            // A CR at the very end is undecided (or part of the terminator).
            if consumed.get(i + 1).is_some_and(|&n| n != b'\n') {
                cr += 1;
            }
        }
        if b == b'\n' && (i == 0 || consumed[i - 1] != b'\r') {
            lf += 1;
        }
    }
    let nul = consumed.iter().filter(|&&b| b == 0).count() as u64;
    (cr, lf, nul)
}

proptest! {
    #[test]
    fn unstuff_of_stuff_is_identity(body in clean_body(), c1 in proptest::collection::vec(0usize..200, 0..6), c2 in proptest::collection::vec(0usize..200, 0..6)) {
        let chunks = cut(&body, &c1);
        let wire = stuff_chunks(REJECT, &refs(&chunks)).expect("a clean body is accepted");
        prop_assert_eq!(&stuff_chunks(NORMALIZE, &refs(&chunks)).unwrap(), &wire);
        // Nothing before the terminator can end the data.
        let body_part = &wire[..wire.len() - 3];
        prop_assert!(!body_part.windows(5).any(|w| w == b"\r\n.\r\n"));
        prop_assert!(wire == b".\r\n" || !wire.starts_with(b".\r\n"));
        prop_assert_eq!(model_end(&wire), Some(wire.len()));
        let mut expect = body;
        if !expect.is_empty() && !expect.ends_with(b"\r\n") {
            expect.extend_from_slice(b"\r\n");
        }
        let wire_chunks = cut(&wire, &c2);
        for policy in [REJECT, NORMALIZE] {
            for o in [in_place(policy, &refs(&wire_chunks)), copying(policy, &refs(&wire_chunks))] {
                prop_assert!(o.end);
                prop_assert_eq!(o.consumed, wire.len());
                prop_assert_eq!(&o.body, &expect);
                prop_assert!(!o.stats.has_bare_line_ending());
            }
        }
    }

    #[test]
    fn normalized_stuffing_of_anything_is_clean_and_round_trips(body in any_body(), c1 in proptest::collection::vec(0usize..100, 0..6)) {
        let chunks = cut(&body, &c1);
        let wire = stuff_chunks(NORMALIZE, &refs(&chunks)).expect("normalize never fails");
        // Every CR is followed by LF and every LF preceded by CR.
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' { prop_assert_eq!(wire.get(i + 1), Some(&b'\n')); }
            if b == b'\n' { prop_assert!(i > 0 && wire[i - 1] == b'\r'); }
        }
        prop_assert_eq!(model_end(&wire), Some(wire.len()));
        // Reject agrees whenever the body was already clean.
        let clean = model_counts(&body) == (0, 0, 0) && !body.ends_with(b"\r");
        prop_assert!(!wire.contains(&0));
        prop_assert_eq!(stuff_chunks(REJECT, &refs(&chunks)).is_ok(), clean);
        let o = in_place(REJECT, &[&wire]);
        prop_assert!(o.end && o.consumed == wire.len() && !o.stats.has_bare_line_ending());
    }

    #[test]
    fn unstuffer_ends_only_at_a_real_terminator(input in any_body(), cuts in proptest::collection::vec(0usize..100, 0..8)) {
        let end = model_end(&input);
        let chunks = cut(&input, &cuts);
        for policy in [REJECT, NORMALIZE] {
            let whole = in_place(policy, &[&input]);
            prop_assert_eq!(whole.end, end.is_some());
            prop_assert_eq!(whole.consumed, end.unwrap_or(input.len()));
            let (cr, lf, nul) = model_counts(&input[..whole.consumed]);
            prop_assert_eq!((whole.stats.bare_cr, whole.stats.bare_lf, whole.stats.nul), (cr, lf, nul));
            prop_assert_eq!(whole.stats.octets, whole.body.len() as u64);
            prop_assert_eq!(&in_place(policy, &refs(&chunks)), &whole);
            prop_assert_eq!(&copying(policy, &refs(&chunks)), &whole);
            if policy == NORMALIZE && whole.end {
                let b = &whole.body;
                for (i, &x) in b.iter().enumerate() {
                    if x == b'\r' { prop_assert_eq!(b.get(i + 1), Some(&b'\n')); }
                    if x == b'\n' { prop_assert!(i > 0 && b[i - 1] == b'\r'); }
                }
            }
            if policy == REJECT {
                // Without normalization the body is the input minus removed
                // dots and the terminator: never longer.
                prop_assert!(whole.body.len() <= whole.consumed);
            }
        }
    }

    #[test]
    fn line_ending_check_matches_the_model(input in any_body(), cuts in proptest::collection::vec(0usize..100, 0..8)) {
        let mut c = LineEndingCheck::new();
        for chunk in cut(&input, &cuts) {
            c.scan(&chunk);
        }
        let s = *c.finish();
        let (cr, lf, nul) = model_counts(&input);
        let trailing_cr = u64::from(input.ends_with(b"\r"));
        prop_assert_eq!((s.bare_cr, s.bare_lf, s.nul, s.octets), (cr + trailing_cr, lf, nul, input.len() as u64));
    }

    #[test]
    fn copying_and_in_place_agree_call_by_call(
        input in prop_oneof![any_body(), long_body()],
        c1 in proptest::collection::vec(any::<usize>(), 0..8),
        c2 in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let chunks = cut(&input, &c1);
        for policy in [REJECT, NORMALIZE] {
            // The same reads through both APIs, compared after every call.
            let mut a = DotUnstuffer::new(policy);
            let mut b = DotUnstuffer::new(policy);
            let mut buf = Vec::new();
            let mut out = b"prefix".to_vec();
            for chunk in &chunks {
                buf.extend_from_slice(chunk);
                let entry = buf.len();
                let x = a.unstuff_in_place(&mut buf);
                let before = out.len();
                let y = b.unstuff(chunk, &mut out);
                prop_assert_eq!(&buf[..x.body_len], &out[before..]);
                prop_assert_eq!(x.body_len, y.body_len);
                buf.drain(..x.consumed);
                prop_assert_eq!(entry - buf.len(), y.consumed);
                prop_assert_eq!(x.end, y.end);
                prop_assert_eq!(a.stats(), b.stats());
                prop_assert_eq!(a.is_done(), b.is_done());
                if x.end {
                    // What follows the terminator is left, untouched.
                    prop_assert_eq!(&buf[..], &chunk[y.consumed..]);
                    break;
                }
                prop_assert_eq!(y.consumed, chunk.len());
            }
            prop_assert_eq!(&out[..6], b"prefix");
            // Different reads of the same input give the same outcome.
            let other = cut(&input, &c2);
            let whole = in_place(policy, &refs(&chunks));
            prop_assert_eq!(&copying(policy, &refs(&other)), &whole);
            prop_assert_eq!(&in_place(policy, &refs(&other)), &whole);
            prop_assert_eq!(&out[6..], &whole.body[..]);
        }
    }

    #[test]
    fn both_apis_match_the_state_table(
        input in prop_oneof![any_body(), long_body(), block_body()],
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        for policy in [REJECT, NORMALIZE] {
            let (body, consumed, end, stats) = model_unstuff(policy, &input);
            let chunks = cut(&input, &cuts);
            for got in [in_place(policy, &refs(&chunks)), copying(policy, &refs(&chunks))] {
                prop_assert_eq!(&got.body, &body);
                prop_assert_eq!((got.consumed, got.end), (consumed, end));
                let s = got.stats;
                prop_assert_eq!([s.octets, s.bare_cr, s.bare_lf, s.nul], stats);
            }
        }
    }
}
