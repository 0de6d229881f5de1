//! DKIM signing of what this crate sends (RFC 6376, RFC 8463): the
//! configured [`Signer`]s ([`Settings::dkim`](crate::Settings::dkim)) sign
//! each message once, before its first byte goes out, since the
//! `DKIM-Signature` fields come first in the message.
//!
//! [`Connection::send`](crate::Connection::send) and
//! [`transact`](crate::Connection::transact) have the whole message in
//! memory: its body hash is computed from it, then the fields and the
//! message go out together. [`deliver_mx`](crate::deliver_mx) signs once
//! for all its destinations. A streamed message
//! ([`Connection::send_reader`](crate::Connection::send_reader)) would have
//! to be read twice; use [`Connection::send_seekable`](crate::Connection::send_seekable),
//! which hashes it in a first pass and streams it in the second.
//!
//! Several signers sign together (RSA and Ed25519 for the same domain, as
//! RFC 8463 §4 suggests during the move to Ed25519): one field each, in
//! the order given.

use std::io::{self, Read};
use std::time::SystemTime;

use smtp_proto::dkim::{MessageSigner, SystemRandom};
pub use smtp_proto::dkim::{SignError, Signer, SigningKey};

/// The `DKIM-Signature` fields of `message` by each of `signers`, in
/// order, ready to be sent in front of it. Empty without signers.
///
/// # Errors
///
/// The message has no `From` field, or a header section larger than the
/// signer's bound ([`SignError`]).
pub fn signature_fields(signers: &[Signer], message: &[u8]) -> Result<Vec<u8>, SignError> {
    if signers.is_empty() {
        return Ok(Vec::new());
    }
    let mut signing = MessageSigner::new(signers);
    signing.update(message);
    fields(signing)
}

/// Like [`signature_fields`] for a message read from `reader` in pieces
/// (never held whole).
///
/// # Errors
///
/// `Err(Ok(e))` when reading failed, `Err(Err(e))` when signing did.
pub(crate) fn signature_fields_from(
    signers: &[Signer],
    mut reader: impl Read,
) -> Result<Vec<u8>, Result<io::Error, SignError>> {
    let mut signing = MessageSigner::new(signers);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => signing.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Ok(e)),
        }
    }
    fields(signing).map_err(Err)
}

fn fields(signing: MessageSigner) -> Result<Vec<u8>, SignError> {
    let fields = signing.finish(SystemTime::now(), &SystemRandom::new())?;
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.as_bytes().len()).sum());
    for field in &fields {
        out.extend_from_slice(field.as_bytes());
    }
    Ok(out)
}
