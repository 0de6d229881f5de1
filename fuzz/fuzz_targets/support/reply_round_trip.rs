//! The reply round trip both reply targets check (included by `#[path]`).

use smtp_proto::reply::Reply;

/// Encodes `reply` and parses the encoding back: it must parse, be
/// complete, use every byte and give the same reply. Returns the encoding.
pub fn encode_and_reparse(reply: &Reply<'_>) -> Vec<u8> {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    let (again, used) = Reply::parse(&wire)
        .expect("an encoded reply parses")
        .expect("an encoded reply is complete");
    assert_eq!(used, wire.len());
    assert_eq!(&again, reply);
    wire
}
