//! Codec benchmark: our `smtp-proto` against Stalwart's `smtp-proto` 0.2 on the
//! same inputs, in the same process.
//!
//! Workloads:
//! - `commands`: a mixed client corpus (EHLO, MAIL with SIZE/BODY, RCPT with
//!   NOTIFY/ORCPT, DATA, RSET, NOOP, QUIT, AUTH PLAIN, pipelined batches), framed
//!   and parsed line by line; one op = one command.
//! - `replies`: single-line, multi-line and a 12-line EHLO reply, parsed (the
//!   EHLO one into what it offers: ours `EhloReply::parse`, whose
//!   capabilities hold each known extension as a bit and the SIZE value,
//!   the typed extension list being built only on demand; the peer's
//!   `EhloResponse`, capability bits, AUTH mechanism bits and SIZE); one op
//!   = one reply.
//! - `data_10mb`: end-of-data detection plus dot-unstuffing of a 10 MB body
//!   with a dot-stuffed line every 50 lines; one op = the whole body. Both
//!   sides do the same work: read the input slice once and write the body
//!   into a reused, cleared output `Vec` (ours: the copying
//!   `DotUnstuffer::unstuff`; peer: `DataReceiver::ingest`). A raw
//!   `memchr::memmem` scan for `\r\n.\r\n` is printed as the upper bound.
//!
//! Method: a plain `harness = false` bench. For each workload the two sides run
//! in alternating rounds (ours, peer, ours, peer, …), each round long enough to
//! be timed reliably, and the median ns/op of each side is reported. Alternating
//! rounds within one process keeps the comparison fair on a noisy machine,
//! where absolute figures drift between minutes but a ratio taken seconds apart
//! is stable. The last lines are, one per workload:
//!
//! `ratio <workload> ours=<ns per op> peer=<ns per op> speedup=<peer/ours>`
//!
//! `BENCH_ONLY=<workload>` runs one workload; `--profile <side>-<workload>
//! [n]` runs one side untimed, for callgrind. What was measured with them,
//! and what came of it: `PERFORMANCE.md` beside this file.

use std::hint::black_box;

use smtp_proto::command::Command;
use smtp_proto::data::{BareLineEnding, DotUnstuffer};
use smtp_proto::ehlo::EhloReply;
use smtp_proto::framing::{COMMAND_LINE_MAX, Frame, LineFramer};
use smtp_proto::reply::Reply;
use smtp_tests::timing::{self, Comparison, compare, median, time_per_op};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either. Honour a quick mode for smoke runs.
    let rounds = timing::rounds();

    let commands = command_corpus();
    let replies = reply_corpus();
    let body = data_body(10 * 1024 * 1024);

    // `--profile <side>-<workload> [n]`: run one side of one workload `n`
    // times and nothing else, untimed, for `valgrind --tool=callgrind`
    // (deterministic instruction counts on a loaded machine).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let what = args.get(i + 1).map(String::as_str).unwrap_or_default();
        let n: usize = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(200);
        let mut out = Vec::with_capacity(body.len() + 64);
        let mut total = 0;
        for _ in 0..n {
            total += match what {
                "ours-commands" => ours_commands(&commands),
                "peer-commands" => peer_commands(&commands),
                "ours-replies" => ours_replies(&replies),
                "peer-replies" => peer_replies(&replies),
                "ours-data" => ours_data_unstuff(&body, &mut out),
                "peer-data" => peer_data_unstuff(&body, &mut out),
                _ => panic!("--profile (ours|peer)-(commands|replies|data) [n]"),
            };
        }
        println!("{what}: {total}");
        return;
    }

    sanity_check(&commands, &replies, &body);

    let mut results = Vec::new();

    let n_cmds = count_lines(&commands) as u64;
    // `BENCH_ONLY=<workload>` runs one workload (while iterating on it).
    let only = std::env::var("BENCH_ONLY").ok();
    let run = |w: &str| only.as_deref().is_none_or(|o| o == w);
    if run("commands") {
        results.push(compare(
            "commands",
            rounds,
            n_cmds,
            || ours_commands(&commands),
            || peer_commands(&commands),
        ));
    }
    if run("replies") {
        let n_replies = replies.len() as u64;
        results.push(compare(
            "replies",
            rounds,
            n_replies,
            || ours_replies(&replies),
            || peer_replies(&replies),
        ));
    }
    if run("data_10mb") {
        let mut ours_out = Vec::with_capacity(body.len() + 64);
        let mut peer_out = Vec::with_capacity(body.len() + 64);
        let (data_ours, data_peer) = {
            let mut ours = Vec::new();
            let mut peer = Vec::new();
            for _ in 0..rounds.min(7) {
                ours.push(time_per_op(1, || ours_data_unstuff(&body, &mut ours_out)));
                peer.push(time_per_op(1, || peer_data_unstuff(&body, &mut peer_out)));
            }
            (median(&mut ours), median(&mut peer))
        };
        let mut bound = Vec::new();
        for _ in 0..rounds.min(7) {
            bound.push(time_per_op(1, || memchr_bound(&body)));
        }
        let bound = median(&mut bound);
        println!(
            "bound data_10mb memmem_scan={bound:.0}ns ({:.1} GB/s; ours {:.1} GB/s, peer {:.1} GB/s)",
            gbps(body.len(), bound),
            gbps(body.len(), data_ours),
            gbps(body.len(), data_peer)
        );
        results.push(Comparison {
            name: "data_10mb".to_owned(),
            ours: data_ours,
            peer: data_peer,
        });
    }

    println!();
    for result in results {
        println!("{}", result.ratio_line());
    }
}

fn gbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns
}

// ---------------------------------------------------------------- corpora

fn command_corpus() -> Vec<u8> {
    let session: &[&str] = &[
        "EHLO client.example.org",
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
        "MAIL FROM:<alice@example.org> SIZE=4096 BODY=8BITMIME",
        "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net",
        "RCPT TO:<carol@example.net>",
        "DATA",
        "RSET",
        "MAIL FROM:<> BODY=7BIT",
        "RCPT TO:<Postmaster>",
        "NOOP",
        "MAIL FROM:<bounce+list=example.org@lists.example.org> SIZE=123456",
        "RCPT TO:<dave@mail.example.com> NOTIFY=NEVER",
        "RCPT TO:<erin@mail.example.com>",
        "RCPT TO:<frank@mail.example.com>",
        "DATA",
        "QUIT",
    ];
    let mut out = Vec::new();
    for _ in 0..64 {
        for line in session {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn count_lines(buf: &[u8]) -> usize {
    memchr::memmem::find_iter(buf, b"\r\n").count()
}

fn reply_corpus() -> Vec<Vec<u8>> {
    let ehlo = b"250-mx.example.net Hello client.example.org [192.0.2.1]\r\n\
250-SIZE 52428800\r\n\
250-8BITMIME\r\n\
250-PIPELINING\r\n\
250-PIPE_CONNECT\r\n\
250-AUTH PLAIN LOGIN\r\n\
250-CHUNKING\r\n\
250-STARTTLS\r\n\
250-SMTPUTF8\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-DSN\r\n\
250 HELP\r\n"
        .to_vec();
    vec![
        b"220 mx.example.net ESMTP Postfix (Debian/GNU)\r\n".to_vec(),
        ehlo,
        b"250 2.1.0 Ok\r\n".to_vec(),
        b"250 2.1.5 Ok\r\n".to_vec(),
        b"354 End data with <CR><LF>.<CR><LF>\r\n".to_vec(),
        b"250 2.0.0 Ok: queued as 4Z1b2c3d4e\r\n".to_vec(),
        b"550-5.1.1 The email account that you tried to reach does not exist.\r\n\
550-5.1.1 Please try double-checking the recipient's email address for\r\n\
550 5.1.1 typos or unnecessary spaces.\r\n"
            .to_vec(),
        b"221 2.0.0 Bye\r\n".to_vec(),
    ]
}

/// A body of 78-byte lines, every 50th line starting with a stuffed dot, then
/// the terminator.
fn data_body(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 80);
    let mut i = 0u64;
    while out.len() < size {
        // Every 50th line, but not the first: Stalwart's receiver does not
        // treat the body start as a line start (it would keep "..").
        if i % 50 == 49 {
            out.extend_from_slice(b"..");
        }
        out.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet xyzzy",
        );
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out.extend_from_slice(b".\r\n");
    out
}

// ------------------------------------------------------------------- ours

fn ours_commands(buf: &[u8]) -> usize {
    let mut framer = LineFramer::new(COMMAND_LINE_MAX);
    let mut pos = 0;
    let mut n = 0;
    loop {
        let frame = framer.next(&buf[pos..]);
        let used = frame.consumed();
        match frame {
            Frame::Line(line) => {
                if let Ok(cmd) = Command::parse(line.content()) {
                    black_box(&cmd);
                    n += 1;
                }
            }
            Frame::NeedMore => break,
            Frame::TooLong { .. } | Frame::Discard { .. } => {}
        }
        pos += used;
    }
    n
}

fn ours_replies(replies: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for r in replies {
        if let Ok(Some((reply, _))) = Reply::parse(r) {
            if r.starts_with(b"250-")
                && let Ok(ehlo) = EhloReply::parse(&reply)
            {
                black_box(ehlo.capabilities().max_size());
            }
            black_box(&reply);
            n += 1;
        }
    }
    n
}

fn ours_data_unstuff(body: &[u8], out: &mut Vec<u8>) -> usize {
    // The same work as the peer's `ingest`: input slice in, body appended to
    // a cleared output Vec, one pass.
    out.clear();
    let mut unstuffer = DotUnstuffer::new(BareLineEnding::Reject);
    let r = unstuffer.unstuff(body, out);
    assert!(r.end);
    r.body_len
}

fn memchr_bound(body: &[u8]) -> usize {
    memchr::memmem::find(body, b"\r\n.\r\n").unwrap_or(0)
}

// ------------------------------------------------------------------- peer

fn peer_commands(buf: &[u8]) -> usize {
    let mut iter = buf.iter();
    let mut n = 0;
    while iter.len() > 0 {
        match stalwart_smtp_proto::Request::parse(&mut iter) {
            Ok(req) => {
                black_box(&req);
                n += 1;
            }
            Err(stalwart_smtp_proto::Error::NeedsMoreData { .. }) => break,
            Err(_) => {}
        }
    }
    n
}

fn peer_replies(replies: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for r in replies {
        let mut iter = r.iter();
        if r.starts_with(b"250-") {
            if let Ok(ehlo) = stalwart_smtp_proto::EhloResponse::parse(&mut iter) {
                black_box(ehlo.size);
                n += 1;
            }
        } else if let Ok(reply) =
            stalwart_smtp_proto::response::parser::ResponseReceiver::default().parse(&mut iter)
        {
            black_box(&reply);
            n += 1;
        }
    }
    n
}

fn peer_data_unstuff(body: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut receiver = stalwart_smtp_proto::request::receiver::DataReceiver::new();
    let done = receiver.ingest(&mut body.iter(), out);
    assert!(done);
    out.len()
}

// ---------------------------------------------------------------- checks

/// Both sides must do the same work, or the ratio means nothing.
fn sanity_check(commands: &[u8], replies: &[Vec<u8>], body: &[u8]) {
    let (o, p) = (ours_commands(commands), peer_commands(commands));
    assert_eq!(o, count_lines(commands), "ours parsed every command");
    assert_eq!(p, count_lines(commands), "peer parsed every command");
    assert_eq!(ours_replies(replies), replies.len());
    assert_eq!(peer_replies(replies), replies.len());
    let mut a = Vec::new();
    let mut b = Vec::new();
    let ol = ours_data_unstuff(body, &mut a);
    let pl = peer_data_unstuff(body, &mut b);
    // Stalwart keeps the final CRLF of the last line inside the body; we do
    // too (RFC 5321 §4.1.1.4: the CRLF before the dot belongs to the data).
    // Compare without printing 10 MB on failure.
    assert!(
        a[..ol] == b[..pl],
        "both unstuff to the same body ({ol} vs {pl} bytes)"
    );
}
