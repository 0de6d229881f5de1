//! DKIM signing of the engine's jobs (RFC 6376, RFC 8463), once per job,
//! before any transaction: the `DKIM-Signature` fields go in front of the
//! message, so the whole message is hashed first.
//!
//! A job submitted through a [`Handle`](super::Handle) is signed on the
//! submitting thread: an RSA-2048 signature of a 4 KiB message took about
//! 0.6 ms on this project's shared 2-core machine (Ed25519: 40 µs), which
//! the engine's loop, serving every connection, should not pay per
//! message. A job given to [`Engine::submit`](super::Engine::submit) is
//! signed there, on the loop's thread. In-memory content is hashed from
//! memory; a reader is read into memory to be signed (it could not be read
//! twice), so sign large messages from [`Message::Bytes`].

use std::io::Read;
use std::sync::Arc;
use std::time::SystemTime;

use smtp_proto::dkim::{MessageSigner, Signer, SystemRandom};

use super::job::{Job, Message};

/// Where a job is with its signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Signing {
    /// Not signed yet (or nothing to sign with).
    #[default]
    Pending,
    /// The fields are in the content.
    Done,
    /// It cannot be signed, for this reason: it is not sent.
    Failed(String),
}

/// Signs `job` with `signers` unless that was done (or failed) already.
pub(crate) fn sign(signers: &[Signer], job: &mut Job) {
    if signers.is_empty() || job.signing != Signing::Pending {
        return;
    }
    let bytes: Arc<[u8]> = match &mut job.message {
        Message::Bytes(bytes) => Arc::clone(bytes),
        Message::Reader(reader) => {
            let mut all = Vec::new();
            if let Err(e) = reader.read_to_end(&mut all) {
                job.signing = Signing::Failed(format!("reading the message: {e}"));
                return;
            }
            all.into()
        }
    };
    let mut signing = MessageSigner::new(signers);
    signing.update(&bytes);
    match signing.finish(SystemTime::now(), &SystemRandom::new()) {
        Ok(fields) => {
            let mut signed = Vec::with_capacity(
                bytes.len() + fields.iter().map(|f| f.as_bytes().len()).sum::<usize>(),
            );
            for field in &fields {
                signed.extend_from_slice(field.as_bytes());
            }
            signed.extend_from_slice(&bytes);
            job.message = Message::Bytes(signed.into());
            job.signing = Signing::Done;
        }
        Err(e) => {
            job.message = Message::Bytes(bytes);
            job.signing = Signing::Failed(e.to_string());
        }
    }
}
