//! DKIM without I/O: signing what we send and verifying what we receive
//! (RFC 6376, RSA and Ed25519 per RFC 8463, RFC 8301's algorithm and key
//! size rules), with results in RFC 8601's vocabulary. Feature `dkim`.
//!
//! # Signing
//!
//! A [`Signer`] is a configuration — a [`SigningKey`] (RSA 2048–4096 bits
//! from PKCS#8 or PKCS#1 PEM, or Ed25519 from PKCS#8 PEM or its 32-octet
//! seed), the domain (`d=`) and selector (`s=`), canonicalization,
//! [`HeaderList`], and optional `i=`, `t=`, `x=`. A [`MessageSigner`] signs
//! one message with one or several signers (RSA and Ed25519 together): it
//! reads the message once as it streams, keeps the header section, and
//! hashes the body as it goes by; [`MessageSigner::finish`] returns the
//! `DKIM-Signature` fields to prepend, folded to lines of at most
//! [`MAX_LINE`] (78) octets, `b=` included. A caller that produces the
//! body before its header fields are final hashes the body with a
//! [`BodyHasher`] and signs with [`Signer::sign`] later.
//!
//! Signatures over-sign by default: each field of the default list that
//! a reader or client relies on is signed once more than it occurs, so
//! that a second `From` or an added `Subject` breaks the signature. `l=`
//! is never written (RFC 6376 §8.2: it lets anyone append content).
//!
//! # Verifying
//!
//! A [`Verifier`] is the same shape as the [`dns`](crate::dns) resolver:
//!
//! ```text
//! message chunks ──update──▶ Verifier ──questions──▶ TXT lookups (the transport's resolver)
//!          finish(now) ──▶          ◀──handle_answer── answers
//!                                   ──into_results──▶ one DkimResult per signature
//! ```
//!
//! It parses the header section once it is complete, checks every
//! `DKIM-Signature` field (strict, typed: [`Signature`]), starts one body
//! hash per body canonicalization in use (with a snapshot at each `l=`),
//! and hashes the body as it streams — nothing of the body is kept. At
//! [`finish`](Verifier::finish) it checks `x=` and `t=` against the time
//! given and each body hash; a signature whose body does not match fails
//! right there, without a lookup. The rest need their key records: one
//! TXT [`Question`](crate::dns::Question) per distinct
//! `selector._domainkey.domain`. The caller asks them through its
//! resolver (whose cache is the only cache), hands back each
//! `Result<Answer, Failure>`, and calls [`into_results`](Verifier::into_results),
//! where the key records are judged ([`KeyRecord`]) and the public-key
//! operations run.
//!
//! Results are one per `DKIM-Signature` field, top to bottom:
//!
//! | [`Verdict`] | when | [`Reason`]s |
//! |---|---|---|
//! | `pass` | the signature verified | — (weak RSA keys flagged: [`DkimResult::is_weak_key`]) |
//! | `fail` | body hash or signature did not verify | `BodyHashMismatch`, `BodyShorterThanLength`, `SignatureMismatch` |
//! | `neutral` | the field is malformed or unsupported (version, `rsa-sha1`, canonicalization, `q=`, `From` unsigned, `i=` outside `d=`), or expired / from the future | `Signature(..)`, `Expired`, `FutureTimestamp` |
//! | `policy` | this verifier's bounds said no | `TooManySignatures`, `TooManySignedFields`, `HeaderSectionTooLarge`, `KeyBelowMinimum` |
//! | `temperror` | the key lookup failed | `Dns(..)`, `NoAnswer` |
//! | `permerror` | the key is missing, revoked, unusable or does not fit | `NoKey`, `KeyRevoked`, `KeyRecord(..)`, `KeyTypeMismatch`, `HashNotAllowed`, `ServiceNotEmail`, `IdentityNotExactDomain`, `KeyTooSmall`, `KeyTooLarge` |
//!
//! [`DkimResult::method_result`] gives one in the generic shape of
//! [`auth_results`](crate::auth_results), which builds the whole
//! `Authentication-Results` field; [`DkimResult::resinfo`] writes it as
//! the `dkim=` part of such a field, with `header.d`, `header.i`,
//! `header.s`, `header.a` and `header.b` (RFC 8601 §2.7.1, RFC 6008); a
//! message without signatures is [`RESINFO_NONE`].
//!
//! # Bounded work
//!
//! A hostile message must not burn a core. Every bound has a default
//! ([`VerifierConfig`]):
//!
//! | bound | default | source |
//! |---|---|---|
//! | signatures checked per message | 5 | RFC 6376 §6.1 (verifiers may limit), §8.4 |
//! | header section read | 102 400 octets | Postfix `header_size_limit` |
//! | `h=` entries per signature | 128 | twice the default signer's list, with room |
//! | RSA key size | 1024 to 8192 bits | RFC 8301 §3.2; ring's legacy verification range |
//! | clock skew for `x=`, `t=` | 300 s | OpenDKIM `ClockDrift` |
//!
//! With those, one message costs at most: one pass over the header
//! section to split it, per checked signature one pass over the header
//! section to hash it (each `h=` entry selects a distinct field instance)
//! and one public-key operation, one canonicalize-and-hash pass over the
//! body per body canonicalization (two at most: the `l=` lengths are
//! snapshots of the same running hash), and one DNS question per distinct
//! key. Tag lists are parsed in `O(n log n)` of their length (duplicates
//! found through a set). Invalid signatures cost their parse only. The
//! DNS answer is bounded by the resolver (64 KiB).
//!
//! # Why ring, and no clock or randomness inside
//!
//! The crypto is ring's: SHA-256, RSASSA-PKCS1-v1_5 signing and
//! verification (`RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY` for
//! 1024-bit keys), Ed25519. ring is already in the tree under rustls, is
//! constant-time where it matters, and is not the `rsa` crate, whose
//! signing leaks the key through timing (RUSTSEC-2023-0071). It signs with
//! RSA keys of 2048 to 4096 bits only, so this crate cannot sign with a
//! 1024-bit key (RFC 8301 §3.2 advises 2048 anyway) but verifies them. The
//! feature is off by default, like `rustls`: the codec, sessions and
//! resolver build without it.
//!
//! As in the rest of the crate, nothing here reads a clock or draws
//! random numbers: the signing time (`t=`) and the verification time (for
//! `x=` and `t=`) are arguments, and RSA signing takes the caller's
//! `&dyn SecureRandom` because ring's API asks for one (re-exported here as
//! [`SecureRandom`] and [`SystemRandom`]; PKCS#1 v1.5 signatures are
//! deterministic, Ed25519 needs none). Signing and verifying the same bytes
//! at the same time gives the same results on every run.
//!
//! # What the transports do
//!
//! **Signing, in the delivery paths** (smtp-blocking's `Settings::dkim`
//! for `Connection` and MX delivery, smtp-mio's `EngineConfig::dkim`):
//! the [`Signer`]s are built once from the configured keys
//! (`SigningKey::from_pem(&fs::read_to_string(path)?)`). Per message, a
//! [`MessageSigner`] reads the message (from memory, or in a first pass
//! over a seekable reader), then `finish(SystemTime::now(),
//! &SystemRandom::new())` gives the fields; the message is sent as the
//! fields' bytes followed by the message bytes (re-read if streamed). The
//! signature is made before the first byte of DATA/BDAT is sent, since the
//! fields come first.
//!
//! **Verification, in the mio server** (`smtp_mio::server::authentication`):
//! a [`Verifier`] per message is handed every body piece the session
//! emits, on the event loop; at the end of data it goes to a service
//! thread that calls `finish(SystemTime::now())`, asks each
//! [`Verifier::questions`] entry through its non-blocking DNS pump, hands
//! each answer to [`Verifier::handle_answer`], and when
//! [`Verifier::is_ready`] (or its deadline passes) calls
//! [`Verifier::into_results`] there, off the loops. The message's reply
//! waits meanwhile; the results become an `Authentication-Results` field
//! ([`crate::auth_results`]) prepended to the stored message.
//!
//! # Known differences from other implementations
//!
//! - `relaxed` body, last line without CRLF ending in white space: the
//!   white space is dropped before the CRLF is added (RFC 6376 §3.4.4 as
//!   Mail::DKIM and Stalwart's mail-auth read it); dkimpy keeps one SP
//!   there. Only mail whose body does not end with CRLF (BDAT) can hit it.
//! - The `b=` value is removed from just after `=` to its last character;
//!   white space after it stays (as dkimpy does). The signer writes `b=`
//!   last and never folds right after `=`, so its fields hash alike under
//!   every reading.
//!
//! # Example
//!
//! Sign with the RFC 8463 Ed25519 key, then verify, the key record
//! handed in as a DNS answer would be:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use smtp_proto::dkim::{KeyLookup, Signer, SigningKey, SystemRandom, Verdict, Verifier, VerifierConfig};
//!
//! let seed = [
//!     0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
//!     0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
//!     0x1c, 0xae, 0x7f, 0x60,
//! ];
//! let key = SigningKey::ed25519_from_seed(&seed).unwrap();
//! let record = key.dns_record();
//! let signer = Signer::new(key, "football.example.com", "brisbane").unwrap();
//! let message = b"From: Joe <joe@football.example.com>\r\nSubject: Hi\r\n\r\nHello.\r\n";
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let field = signer.sign_message(message, now, &SystemRandom::new()).unwrap();
//!
//! let mut verifier = Verifier::new(VerifierConfig::default());
//! verifier.update(field.as_bytes());
//! verifier.update(message);
//! verifier.finish(now);
//! let questions: Vec<_> = verifier.questions().collect();
//! assert_eq!(questions.len(), 1);
//! assert_eq!(questions[0].name().as_str(), "brisbane._domainkey.football.example.com");
//! verifier.handle_key(questions[0].name(), KeyLookup::Records(vec![record.into_bytes()]));
//! assert!(verifier.is_ready());
//! let results = verifier.into_results();
//! assert_eq!(results[0].verdict(), Verdict::Pass);
//! assert!(results[0].resinfo().starts_with(
//!     "dkim=pass header.d=football.example.com header.i=@football.example.com \
//!      header.s=brisbane header.a=ed25519-sha256 header.b="
//! ));
//! ```

mod canon;
mod der;
mod hash;
mod header;
mod key;
mod sign;
mod signature;
mod tag;
mod verify;

#[cfg(test)]
mod tests;

pub use canon::{Canonicalization, canonicalize_body, canonicalize_header};
pub use hash::{BodyHash, BodyHasher};
pub use key::{KeyRecord, KeyRecordError, PublicKey, RsaPublicKey};
pub use ring::rand::{SecureRandom, SystemRandom};
pub use sign::{
    DEFAULT_MAX_SIGNED_HEADER_SECTION, HeaderList, KeyError, MAX_LINE, MessageSigner, SignError,
    SignatureField, Signer, SignerError, SigningKey,
};
pub use signature::{Algorithm, Identity, KeyType, Signature, SignatureError};
pub use tag::TagListError;
pub use verify::{
    DkimResult, KeyLookup, MAX_RSA_BITS, MIN_RSA_BITS, RESINFO_NONE, Reason, Verdict, Verifier,
    VerifierConfig, WEAK_RSA_BITS, method_result_none,
};
