//! Body hashes computed as the body streams through: one running SHA-256
//! per canonicalization, and a snapshot of it at every body length a
//! verifier needs (`l=`), so that a body is canonicalized and hashed once
//! per canonicalization however many signatures cover it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest;

use super::canon::{BodyCanonicalizer, Canonicalization, Sink};

/// A SHA-256 digest.
pub(crate) type Digest = [u8; 32];

fn finish(ctx: digest::Context) -> Digest {
    let mut out = [0u8; 32];
    // SHA-256 digests are 32 octets.
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Canonical bytes are gathered up to this many before they go to SHA-256:
/// relaxed canonicalization writes many short pieces (a run, one SP, a
/// CRLF), and each call into the hash costs more than copying them.
const HASH_BUFFER: usize = 512;

/// A running SHA-256 over canonical body bytes, with snapshots at given
/// lengths.
#[derive(Clone)]
pub(crate) struct HashSink {
    ctx: digest::Context,
    /// Bytes written but not yet hashed (inline: no allocation per
    /// message).
    buf: [u8; HASH_BUFFER],
    buffered: usize,
    written: u64,
    /// Snapshot lengths, ascending, each with its digest once reached.
    targets: Vec<(u64, Option<Digest>)>,
    /// The first target not yet reached.
    next: usize,
    /// Whether the digest of the whole body is wanted too; without it,
    /// hashing stops once every target is reached.
    whole: bool,
}

impl HashSink {
    fn new() -> Self {
        Self {
            ctx: digest::Context::new(&digest::SHA256),
            buf: [0; HASH_BUFFER],
            buffered: 0,
            written: 0,
            targets: Vec::new(),
            next: 0,
            whole: false,
        }
    }

    fn want(&mut self, length: Option<u64>) {
        match length {
            None => self.whole = true,
            Some(l) => {
                if let Err(at) = self.targets.binary_search_by_key(&l, |t| t.0) {
                    self.targets.insert(at, (l, None));
                }
            }
        }
    }

    fn done(&self) -> bool {
        !self.whole && self.next == self.targets.len()
    }

    /// Hashes `bytes` (through the buffer).
    fn hash(&mut self, bytes: &[u8]) {
        if self.buffered + bytes.len() <= HASH_BUFFER {
            self.buf[self.buffered..self.buffered + bytes.len()].copy_from_slice(bytes);
            self.buffered += bytes.len();
            return;
        }
        self.flush();
        if bytes.len() >= HASH_BUFFER {
            self.ctx.update(bytes);
        } else {
            self.buf[..bytes.len()].copy_from_slice(bytes);
            self.buffered = bytes.len();
        }
    }

    fn flush(&mut self) {
        if self.buffered > 0 {
            self.ctx.update(&self.buf[..self.buffered]);
            self.buffered = 0;
        }
    }

    /// The digest of everything written so far.
    fn digest_now(&mut self) -> Digest {
        self.flush();
        finish(self.ctx.clone())
    }

    /// Takes the snapshots at the end of the body: the targets equal to the
    /// body length (an `l=0` on an empty body included); longer ones stay
    /// unreached.
    fn close(&mut self) {
        while let Some(&(length, _)) = self.targets.get(self.next) {
            if length != self.written {
                break;
            }
            self.targets[self.next].1 = Some(self.digest_now());
            self.next += 1;
        }
    }

    fn digest_at(&self, length: u64) -> Option<Digest> {
        let at = self.targets.binary_search_by_key(&length, |t| t.0).ok()?;
        self.targets[at].1
    }
}

impl Sink for HashSink {
    fn write(&mut self, mut bytes: &[u8]) {
        if self.done() {
            self.written += bytes.len() as u64;
            return;
        }
        while let Some(&(length, _)) = self.targets.get(self.next) {
            // Targets below `written` were taken; `length >= written`.
            let remaining = length - self.written;
            if (bytes.len() as u64) < remaining {
                break;
            }
            // `remaining` is at most `bytes.len()`, a usize.
            let (head, tail) = bytes.split_at(remaining as usize);
            self.hash(head);
            self.written += head.len() as u64;
            self.targets[self.next].1 = Some(self.digest_now());
            self.next += 1;
            bytes = tail;
        }
        if self.done() {
            self.written += bytes.len() as u64;
            return;
        }
        self.hash(bytes);
        self.written += bytes.len() as u64;
    }
}

/// The body hash of one canonicalization, computed as the body streams
/// through ([`update`](Self::update) with each piece, then
/// [`finish`](Self::finish)). Pieces may be cut anywhere: the result is the
/// same as for the whole body at once.
///
/// This is the first half of signing with [`Signer::sign`](super::Signer::sign):
/// the body can be fed before the header fields are final.
///
/// ```
/// use smtp_proto::dkim::{BodyHasher, Canonicalization};
///
/// let mut hasher = BodyHasher::new(Canonicalization::Relaxed);
/// hasher.update(b"Hi.\r\n\r\nWe lost the game.  Are");
/// hasher.update(b" you hungry yet?\r\n\r\nJoe.\r\n\r\n\r\n");
/// let hash = hasher.finish();
/// // RFC 6376 Appendix A / RFC 8463 Appendix A.3.
/// assert_eq!(hash.to_base64(), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
/// ```
#[derive(Clone)]
pub struct BodyHasher {
    canon: BodyCanonicalizer,
    sink: HashSink,
    canonicalization: Canonicalization,
}

impl BodyHasher {
    /// A hasher for the body canonicalized with `canonicalization`.
    pub fn new(canonicalization: Canonicalization) -> Self {
        let mut sink = HashSink::new();
        sink.want(None);
        Self {
            canon: BodyCanonicalizer::new(canonicalization),
            sink,
            canonicalization,
        }
    }

    /// Hashes the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.canon.update(chunk, &mut self.sink);
    }

    /// The hash of the whole body.
    pub fn finish(mut self) -> BodyHash {
        self.canon.finish(&mut self.sink);
        BodyHash {
            canonicalization: self.canonicalization,
            length: self.sink.written,
            digest: self.sink.digest_now(),
        }
    }
}

impl std::fmt::Debug for BodyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyHasher")
            .field("canonicalization", &self.canonicalization)
            .field("hashed", &self.sink.written)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a canonical body: what `bh=` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyHash {
    canonicalization: Canonicalization,
    length: u64,
    digest: Digest,
}

impl BodyHash {
    /// The body canonicalization it was computed with.
    pub fn canonicalization(&self) -> Canonicalization {
        self.canonicalization
    }

    /// The length of the canonical body, in octets.
    pub fn canonical_length(&self) -> u64 {
        self.length
    }

    /// The digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest in base64, as `bh=` writes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.digest)
    }
}

/// The body hashes a verifier needs: per body canonicalization one
/// canonicalizer and one running hash, with snapshots at each `l=`.
#[derive(Clone, Default)]
pub(crate) struct BodyHashes {
    hashers: Vec<(Canonicalization, BodyCanonicalizer, HashSink)>,
}

impl BodyHashes {
    /// Asks for the hash of the body canonicalized with `c`, cut at
    /// `length` canonical octets if given.
    pub(crate) fn want(&mut self, c: Canonicalization, length: Option<u64>) {
        let at = match self.hashers.iter().position(|h| h.0 == c) {
            Some(at) => at,
            None => {
                self.hashers
                    .push((c, BodyCanonicalizer::new(c), HashSink::new()));
                self.hashers.len() - 1
            }
        };
        self.hashers[at].2.want(length);
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) {
        for (_, canon, sink) in &mut self.hashers {
            if !sink.done() {
                canon.update(chunk, sink);
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        for (_, canon, sink) in &mut self.hashers {
            canon.finish(sink);
            sink.close();
            sink.flush();
        }
    }

    /// After [`finish`](Self::finish): the digest for `c` and `length`
    /// (`None` when the canonical body is shorter than `length`), and the
    /// canonical body length.
    pub(crate) fn result(&self, c: Canonicalization, length: Option<u64>) -> (Option<Digest>, u64) {
        let Some((_, _, sink)) = self.hashers.iter().find(|h| h.0 == c) else {
            return (None, 0);
        };
        let digest = match length {
            None => sink.whole.then(|| finish(sink.ctx.clone())),
            Some(l) => sink.digest_at(l),
        };
        (digest, sink.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::canon::canonicalize_body;

    fn sha(bytes: &[u8]) -> Digest {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(bytes);
        finish(ctx)
    }

    #[test]
    fn empty_body_hashes() {
        // RFC 6376 §3.4.3 / §3.4.4: SHA-256 of CRLF and of nothing.
        assert_eq!(
            BodyHasher::new(Canonicalization::Simple)
                .finish()
                .to_base64(),
            "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="
        );
        assert_eq!(
            BodyHasher::new(Canonicalization::Relaxed)
                .finish()
                .to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn snapshots_at_lengths() {
        let body = b"Hello  world \r\n\r\nsecond line\r\n\r\n";
        for c in [Canonicalization::Simple, Canonicalization::Relaxed] {
            let canonical = canonicalize_body(c, body);
            let n = canonical.len() as u64;
            let lengths = [0, 1, 5, n - 1, n, n + 1];
            let mut hashes = BodyHashes::default();
            for l in lengths {
                hashes.want(c, Some(l));
            }
            hashes.want(c, None);
            for piece in body.chunks(3) {
                hashes.update(piece);
            }
            hashes.finish();
            for l in lengths {
                let (digest, total) = hashes.result(c, Some(l));
                assert_eq!(total, n);
                if l <= n {
                    // `l` is at most the canonical length here.
                    assert_eq!(digest, Some(sha(&canonical[..l as usize])), "{c} l={l}");
                } else {
                    assert_eq!(digest, None);
                }
            }
            assert_eq!(hashes.result(c, None).0, Some(sha(&canonical)));
        }
    }

    #[test]
    fn only_lengths_stop_early() {
        let mut hashes = BodyHashes::default();
        hashes.want(Canonicalization::Simple, Some(3));
        hashes.update(b"abcdef\r\n");
        hashes.finish();
        assert_eq!(
            hashes.result(Canonicalization::Simple, Some(3)).0,
            Some(sha(b"abc"))
        );
        // An empty relaxed body and l=0.
        let mut hashes = BodyHashes::default();
        hashes.want(Canonicalization::Relaxed, Some(0));
        hashes.finish();
        assert_eq!(
            hashes.result(Canonicalization::Relaxed, Some(0)).0,
            Some(sha(b""))
        );
    }
}
