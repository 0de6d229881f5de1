//! Structured replies built through the validating constructors: encode,
//! parse, and get the same reply back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};

#[path = "support/reply_round_trip.rs"]
mod reply_round_trip;

#[derive(Debug, Arbitrary)]
struct Input {
    code: u16,
    enhanced: Option<(u16, u16)>,
    lines: Vec<String>,
}

fuzz_target!(|input: Input| {
    let Ok(code) = ReplyCode::new(200 + input.code % 400) else {
        return;
    };
    let esc = input
        .enhanced
        .and_then(|(s, d)| EnhancedStatusCode::new(code.first_digit(), s % 1000, d % 1000).ok());
    if input.lines.is_empty() || input.lines.len() > 64 {
        return;
    }
    let Ok(reply) = Reply::multiline(code, esc, input.lines.iter().map(String::as_str)) else {
        return; // the constructor refused unsendable text: that is its job
    };
    reply_round_trip::encode_and_reparse(&reply);
});
