//! The start of every answer the DNS and MX tests build with hickory-proto
//! (included by `#[path]`, like the other files of `support/`).

use hickory_proto::op::{Message, MessageType, OpCode};

/// The start of an answer to `query`: same id and question, QR set, RD
/// copied, RA set.
pub(crate) fn respond(query: &[u8]) -> Message {
    let q = Message::from_vec(query).expect("our query decodes");
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries);
    r
}
