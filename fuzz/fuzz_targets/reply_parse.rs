//! Arbitrary bytes into the reply parsers: no panic; whatever parses
//! re-encodes and re-parses to the same reply; the buffer parser and the
//! line-by-line assembler agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::reply::{Reply, ReplyAssembler};

#[path = "support/reply_round_trip.rs"]
mod reply_round_trip;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((reply, used))) = Reply::parse(data) else {
        return;
    };
    assert!(used <= data.len());
    let wire = reply_round_trip::encode_and_reparse(&reply);

    let mut assembler = ReplyAssembler::default();
    let mut assembled = None;
    for line in wire.split_inclusive(|&b| b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .expect("encoded lines end in CRLF");
        if let Some(r) = assembler.push_line(line).expect("encoded lines assemble") {
            assembled = Some(r);
        }
    }
    assert_eq!(assembled.as_ref(), Some(&reply.into_owned()));
});
