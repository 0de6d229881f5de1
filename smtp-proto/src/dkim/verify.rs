//! Verification (RFC 6376 §6): a sans-IO verifier that reads the message
//! as it streams, asks for the key records it needs as DNS questions,
//! takes the answers, and returns one result per signature in RFC 8601
//! terms.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use ring::signature::{
    ED25519, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use thiserror::Error;

use super::canon::{self, Canonicalization};
use super::hash::{BodyHashes, Digest};
use super::header::{Fed, HeaderIndex, Splitter};
use super::key::{KeyRecord, KeyRecordError, PublicKey};
use super::signature::{Algorithm, Signature, SignatureError};
use super::tag::{self, TagSpec};
use crate::auth_results::MethodResult;
use crate::dns::{Answer, Failure, Name, Question, RecordType};

/// RSA keys below this size are never valid (RFC 8301 §3.2: "Verifiers
/// MUST NOT consider signatures using RSA keys of less than 1024 bits as
/// valid signatures").
pub const MIN_RSA_BITS: u32 = 1024;

/// RSA keys below this size pass but are reported weak (RFC 8301 §3.2:
/// signers "SHOULD use RSA keys of at least 2048 bits").
pub const WEAK_RSA_BITS: u32 = 2048;

/// The largest RSA key ring verifies (its `RSA_PKCS1_1024_8192_*`
/// algorithms); RFC 8301 §3.2 asks verifiers to handle at least 4096.
pub const MAX_RSA_BITS: u32 = 8192;

/// Bounds on the work one message may cause, with the reason for each
/// default. The fields are public; out-of-range values are clamped when
/// the verifier is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Signatures checked per message: each may cost a DNS lookup, a body
    /// hash (shared per canonicalization) and a public-key operation.
    /// Further valid signatures get [`Verdict::Policy`] with
    /// [`Reason::TooManySignatures`]. Default 5: RFC 6376 §6.1 lets
    /// verifiers limit the signatures they check and §8.4 names this
    /// attack; mail rarely carries more than three (author, list,
    /// forwarder).
    pub max_signatures: usize,
    /// The largest header section read, in octets. Larger sections are not
    /// verified: every signature found in the first part gets
    /// [`Verdict::Policy`] with [`Reason::HeaderSectionTooLarge`]. Default
    /// 102 400: Postfix's `header_size_limit`.
    pub max_header_section: usize,
    /// The most `h=` entries a signature may list; more gets
    /// [`Verdict::Policy`] with [`Reason::TooManySignedFields`]. Each entry
    /// selects a distinct field instance, so header hashing stays within
    /// the header section per signature whatever this is; the bound caps
    /// the list itself. Default 128: over-signing every field of a long
    /// list (the default signer's 29 entries, twice) stays far below.
    pub max_signed_fields: usize,
    /// RSA keys below this size (but at least [`MIN_RSA_BITS`]) get
    /// [`Verdict::Policy`] with [`Reason::KeyBelowMinimum`]. Default
    /// [`MIN_RSA_BITS`] (1024): such keys pass and are reported weak
    /// ([`DkimResult::is_weak_key`]). Raise it to 2048 to refuse them.
    pub min_rsa_bits: u32,
    /// RSA keys above this size get [`Verdict::PermError`] with
    /// [`Reason::KeyTooLarge`], before any arithmetic: the cost of an RSA
    /// verification grows with the square of the modulus. Default and
    /// ceiling [`MAX_RSA_BITS`] (8192).
    pub max_rsa_bits: u32,
    /// Clock difference tolerated for `x=` (expired only this long after
    /// it) and `t=` (in the future only beyond it). Default 300 s:
    /// OpenDKIM's `ClockDrift`.
    pub clock_skew: Duration,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_signatures: 5,
            max_header_section: 102_400,
            max_signed_fields: 128,
            min_rsa_bits: MIN_RSA_BITS,
            max_rsa_bits: MAX_RSA_BITS,
            clock_skew: Duration::from_secs(300),
        }
    }
}

/// A result in RFC 8601 §2.7.1's vocabulary for the `dkim` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// The signature verified.
    Pass,
    /// The signature or the body hash did not verify: the message was
    /// changed, or the signature forged.
    Fail,
    /// The signature field is malformed, uses what this verifier does not
    /// support, or has expired: it could not be processed (RFC 8601: "the
    /// signature or signatures contained syntax errors or were not
    /// otherwise able to be processed").
    Neutral,
    /// The signature was not checked, or its key not accepted, because of
    /// this verifier's limits ([`VerifierConfig`]).
    Policy,
    /// The key could not be fetched now (DNS failure); a later attempt may
    /// succeed.
    TempError,
    /// The key record is missing, revoked, unusable or does not fit the
    /// signature; a later attempt will not do better.
    PermError,
}

impl Verdict {
    /// The result keyword (`pass`, `fail`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Neutral => "neutral",
            Self::Policy => "policy",
            Self::TempError => "temperror",
            Self::PermError => "permerror",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signature did not pass, typed. The [`Verdict`] each reason comes
/// with is in [`Reason::verdict`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Reason {
    /// Neutral: the field cannot be used (RFC 6376 §6.1.1).
    #[error("{0}")]
    Signature(SignatureError),
    /// Neutral: `x=` has passed (RFC 6376 §3.5).
    #[error("signature expired")]
    Expired {
        /// `x=`.
        expiration: u64,
    },
    /// Neutral: `t=` is in the future (RFC 6376 §3.5 lets verifiers
    /// ignore such signatures).
    #[error("signature timestamp in the future")]
    FutureTimestamp {
        /// `t=`.
        timestamp: u64,
    },
    /// Fail: the body hash does not match `bh=` (RFC 6376 §6.1.3).
    #[error("body hash did not verify")]
    BodyHashMismatch,
    /// Fail: `l=` is longer than the canonical body.
    #[error("body shorter than l=")]
    BodyShorterThanLength {
        /// The canonical body length.
        body: u64,
        /// `l=`.
        length: u64,
    },
    /// Fail: the signature does not verify with the key (RFC 6376
    /// §6.1.3).
    #[error("signature did not verify")]
    SignatureMismatch,
    /// Permerror: no key record (NXDOMAIN or no TXT record, RFC 6376
    /// §6.1.2).
    #[error("no key for signature")]
    NoKey,
    /// Permerror: the key record has an empty `p=` (RFC 6376 §3.6.1).
    #[error("key revoked")]
    KeyRevoked,
    /// Permerror: no TXT record at the key's name is a usable key record.
    #[error("{0}")]
    KeyRecord(KeyRecordError),
    /// Permerror: the key's `k=` does not fit `a=` (RFC 6376 §6.1.2).
    #[error("key type does not match the signature algorithm")]
    KeyTypeMismatch,
    /// Permerror: the key's `h=` does not allow SHA-256.
    #[error("key does not allow sha256")]
    HashNotAllowed,
    /// Permerror: the key's `s=` does not include email.
    #[error("key not for email")]
    ServiceNotEmail,
    /// Permerror: the key has `t=s` and the domain of `i=` is not exactly
    /// `d=` (RFC 6376 §3.6.1).
    #[error("identity domain is not exactly d= (t=s)")]
    IdentityNotExactDomain,
    /// Permerror: the RSA key is below 1024 bits (RFC 8301 §3.2).
    #[error("RSA key of {bits} bits too small")]
    KeyTooSmall {
        /// Its size.
        bits: u32,
    },
    /// Permerror: the RSA key is above [`VerifierConfig::max_rsa_bits`].
    #[error("RSA key of {bits} bits too large")]
    KeyTooLarge {
        /// Its size.
        bits: u32,
    },
    /// Temperror: the DNS lookup failed.
    #[error("key lookup failed: {0}")]
    Dns(Failure),
    /// Temperror: no answer was handed in for the key's question.
    #[error("no answer for the key lookup")]
    NoAnswer,
    /// Policy: more valid signatures than [`VerifierConfig::max_signatures`].
    #[error("more than {limit} signatures")]
    TooManySignatures {
        /// The bound.
        limit: usize,
    },
    /// Policy: `h=` longer than [`VerifierConfig::max_signed_fields`].
    #[error("h= lists more than {limit} fields")]
    TooManySignedFields {
        /// The bound.
        limit: usize,
    },
    /// Policy: the header section is larger than
    /// [`VerifierConfig::max_header_section`].
    #[error("header section larger than {limit} octets")]
    HeaderSectionTooLarge {
        /// The bound.
        limit: usize,
    },
    /// Policy: the RSA key is below [`VerifierConfig::min_rsa_bits`].
    #[error("RSA key of {bits} bits below the minimum of {minimum}")]
    KeyBelowMinimum {
        /// Its size.
        bits: u32,
        /// The configured minimum.
        minimum: u32,
    },
}

impl Reason {
    /// The verdict this reason comes with.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Signature(_) | Self::Expired { .. } | Self::FutureTimestamp { .. } => {
                Verdict::Neutral
            }
            Self::BodyHashMismatch
            | Self::BodyShorterThanLength { .. }
            | Self::SignatureMismatch => Verdict::Fail,
            Self::NoKey
            | Self::KeyRevoked
            | Self::KeyRecord(_)
            | Self::KeyTypeMismatch
            | Self::HashNotAllowed
            | Self::ServiceNotEmail
            | Self::IdentityNotExactDomain
            | Self::KeyTooSmall { .. }
            | Self::KeyTooLarge { .. } => Verdict::PermError,
            Self::Dns(_) | Self::NoAnswer => Verdict::TempError,
            Self::TooManySignatures { .. }
            | Self::TooManySignedFields { .. }
            | Self::HeaderSectionTooLarge { .. }
            | Self::KeyBelowMinimum { .. } => Verdict::Policy,
        }
    }
}

/// The outcome of one signature, with what `Authentication-Results`
/// reports about it (RFC 8601 §2.7.1, RFC 6008).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimResult {
    verdict: Verdict,
    reason: Option<Reason>,
    domain: Option<String>,
    identity: Option<String>,
    selector: Option<String>,
    algorithm: Option<String>,
    b_prefix: Option<String>,
    body_length: Option<u64>,
    unsigned_body: Option<u64>,
    key_bits: Option<u32>,
    testing: bool,
}

impl DkimResult {
    fn new(info: Info, reason: Option<Reason>) -> Self {
        Self {
            verdict: reason.as_ref().map_or(Verdict::Pass, Reason::verdict),
            reason,
            domain: info.domain,
            identity: info.identity,
            selector: info.selector,
            algorithm: info.algorithm,
            b_prefix: info.b_prefix,
            body_length: info.body_length,
            unsigned_body: None,
            key_bits: None,
            testing: false,
        }
    }

    /// The result.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Why it is not `pass`.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_ref()
    }

    /// `header.d`: the signing domain (`d=`), when it could be read.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// `header.i`: the identity (`i=`, or `@` and `d=` when absent).
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// `header.s`: the selector.
    pub fn selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }

    /// `header.a`: the algorithm as written in `a=`.
    pub fn algorithm(&self) -> Option<&str> {
        self.algorithm.as_deref()
    }

    /// `header.b`: the first eight characters of `b=` (RFC 6008), which
    /// tell two signatures of one domain apart.
    pub fn b_prefix(&self) -> Option<&str> {
        self.b_prefix.as_deref()
    }

    /// `l=`: the signature covers only this many octets of the canonical
    /// body. Honoured, and worth a look: content after it is unsigned
    /// (RFC 6376 §8.2).
    pub fn body_length(&self) -> Option<u64> {
        self.body_length
    }

    /// With `l=`, how many canonical body octets follow the signed part
    /// (known once the body hash was checked).
    pub fn unsigned_body_octets(&self) -> Option<u64> {
        self.unsigned_body
    }

    /// The RSA key size (256 for Ed25519), once the key was read.
    pub fn key_bits(&self) -> Option<u32> {
        self.key_bits
    }

    /// Whether the key is RSA below [`WEAK_RSA_BITS`] (RFC 8301 §3.2).
    pub fn is_weak_key(&self) -> bool {
        self.algorithm.as_deref() == Some(Algorithm::RsaSha256.as_str())
            && self.key_bits.is_some_and(|b| b < WEAK_RSA_BITS)
    }

    /// Whether the key record has `t=y`: the domain is testing DKIM, and
    /// the result must not make the message fare differently from an
    /// unsigned one (RFC 6376 §3.6.1).
    pub fn is_testing(&self) -> bool {
        self.testing
    }

    /// This result as the `dkim` resinfo of an `Authentication-Results`
    /// field (RFC 8601 §2.2): `dkim=pass (2048-bit key) header.d=example.com
    /// header.i=@example.com header.s=sel header.a=rsa-sha256
    /// header.b=AbCdEfGh`, with `reason="…"` unless it passed. Values that
    /// are not RFC 2045 tokens are quoted. A message without signatures
    /// reports `dkim=none` ([`RESINFO_NONE`]).
    pub fn resinfo(&self) -> String {
        self.method_result().to_string()
    }

    /// This result in the generic shape of
    /// [`auth_results`](crate::auth_results), to go into an
    /// [`AuthenticationResults`](crate::auth_results::AuthenticationResults)
    /// field beside other methods' results. Control characters a hostile
    /// signature may carry in its tags are dropped from the values.
    pub fn method_result(&self) -> MethodResult {
        // Verdicts are keywords, so this cannot fail.
        let mut out = MethodResult::new("dkim", self.verdict.as_str())
            .unwrap_or_else(|_| unreachable!("verdicts are keywords"));
        let mut comments = Vec::new();
        if let Some(bits) = self.key_bits
            && self.algorithm.as_deref() == Some(Algorithm::RsaSha256.as_str())
        {
            comments.push(format!("{bits}-bit key"));
        }
        if self.is_weak_key() {
            comments.push("weak key".to_owned());
        }
        if self.testing {
            comments.push("testing".to_owned());
        }
        if let Some(l) = self.body_length {
            comments.push(format!("l={l}"));
        }
        if !comments.is_empty() {
            out = out
                .clone()
                .with_comment(&comments.join("; "))
                .unwrap_or(out);
        }
        if let Some(reason) = &self.reason {
            out = out
                .clone()
                .with_reason(&printable(&reason.to_string()))
                .unwrap_or(out);
        }
        let props = [
            ("d", &self.domain),
            ("i", &self.identity),
            ("s", &self.selector),
            ("a", &self.algorithm),
            ("b", &self.b_prefix),
        ];
        for (name, value) in props {
            if let Some(value) = value {
                out = out
                    .clone()
                    .with_property("header", name, &printable(value))
                    .unwrap_or(out);
            }
        }
        out
    }
}

/// The `dkim` resinfo for a message without signatures (RFC 8601 §2.7.1).
pub const RESINFO_NONE: &str = "dkim=none";

/// The `dkim=none` result of a message without signatures, in the generic
/// shape of [`auth_results`](crate::auth_results).
pub fn method_result_none() -> MethodResult {
    MethodResult::new("dkim", "none").unwrap_or_else(|_| unreachable!("keywords"))
}

/// Text without control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// What a result reports about its signature, gathered before any check.
#[derive(Debug, Clone, Default)]
struct Info {
    domain: Option<String>,
    identity: Option<String>,
    selector: Option<String>,
    algorithm: Option<String>,
    b_prefix: Option<String>,
    body_length: Option<u64>,
}

impl Info {
    fn of(sig: &Signature) -> Self {
        Self {
            domain: Some(sig.domain().to_string()),
            identity: Some(match sig.identity() {
                Some(i) => i.to_string(),
                None => format!("@{}", sig.domain()),
            }),
            selector: Some(sig.selector().to_owned()),
            algorithm: Some(sig.algorithm().as_str().to_owned()),
            b_prefix: Some(sig.b_prefix().to_owned()),
            body_length: sig.body_length(),
        }
    }

    /// What a field that failed to parse still tells: the raw `d=`, `s=`,
    /// `a=`, `i=` (bounded), for the report.
    fn of_tags(tags: &[TagSpec<'_>]) -> Self {
        let get = |name: &[u8]| {
            tags.iter().find(|t| t.name == name).map(|t| {
                let v = tag::strip_fws(t.value);
                String::from_utf8_lossy(&v[..v.len().min(255)]).into_owned()
            })
        };
        Self {
            domain: get(b"d").map(|d| d.to_ascii_lowercase()),
            identity: get(b"i"),
            selector: get(b"s"),
            algorithm: get(b"a"),
            b_prefix: get(b"b").map(|b| b.chars().take(8).collect()),
            body_length: None,
        }
    }
}

/// Where one signature stands.
enum Entry {
    /// Decided without a key.
    Done(Info, Reason),
    /// Valid so far; its body hash is being computed.
    Hashing {
        info: Info,
        sig: Box<Signature>,
        data: Vec<u8>,
    },
    /// Body hash matched; waiting for (or holding) its key.
    Keyed {
        info: Info,
        sig: Box<Signature>,
        data: Vec<u8>,
        name: Name,
        unsigned_body: Option<u64>,
    },
}

/// What a key lookup found, as the verifier takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyLookup {
    /// The TXT records at the key's name, each with its strings joined
    /// ([`Txt::joined`](crate::dns::Txt::joined)).
    Records(Vec<Vec<u8>>),
    /// NXDOMAIN, or the name has no TXT record (NODATA): no key
    /// (permerror).
    NotFound,
    /// The lookup failed (timeout, SERVFAIL, …): temperror.
    Failed(Failure),
}

impl From<&Result<Answer, Failure>> for KeyLookup {
    fn from(result: &Result<Answer, Failure>) -> Self {
        match result {
            Ok(Answer::Records(records)) => match records.txt() {
                Some(txt) => Self::Records(txt.iter().map(|t| t.joined()).collect()),
                None => Self::NotFound,
            },
            Ok(_) => Self::NotFound,
            Err(failure) => Self::Failed(failure.clone()),
        }
    }
}

/// A key lookup's outcome once judged.
enum KeyState {
    Pending,
    Found(Box<KeyRecord>),
    Missing,
    Unusable(KeyRecordError),
    Failed(Failure),
}

/// Verifies the DKIM signatures of one message, without I/O.
///
/// 1. [`update`](Self::update) with the message as it arrives (after
///    dot-unstuffing), cut anywhere; [`finish`](Self::finish) at its end,
///    with the current time.
/// 2. [`questions`](Self::questions): the TXT lookups the signatures need
///    (one per distinct key name; none when no signature got this far).
///    Ask them through the [`dns`](crate::dns) resolver, and hand each
///    answer to [`handle_answer`](Self::handle_answer) (or, for other
///    sources, [`handle_key`](Self::handle_key)).
/// 3. [`into_results`](Self::into_results) once
///    [`is_ready`](Self::is_ready) (or earlier: unanswered lookups become
///    temperror): one [`DkimResult`] per `DKIM-Signature` field, top to
///    bottom. The public-key operations happen here, so a caller that
///    wants the crypto off its event loop sends the verifier to a worker
///    (it is `Send`) and calls this there.
///
/// Body hashes are computed as the body streams (one canonicalizer and
/// SHA-256 per body canonicalization, with snapshots at each `l=`); the
/// body is never held. A signature whose body hash does not match fails
/// without a lookup. Key records are not cached here: the resolver's cache
/// does that.
pub struct Verifier {
    config: VerifierConfig,
    splitter: Splitter,
    hashes: BodyHashes,
    entries: Vec<Entry>,
    keys: BTreeMap<Name, KeyState>,
    header_done: bool,
    finished: bool,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("signatures", &self.entries.len())
            .field("keys", &self.keys.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with `config`'s bounds.
    pub fn new(mut config: VerifierConfig) -> Self {
        config.max_rsa_bits = config.max_rsa_bits.clamp(MIN_RSA_BITS, MAX_RSA_BITS);
        config.min_rsa_bits = config.min_rsa_bits.clamp(MIN_RSA_BITS, config.max_rsa_bits);
        Self {
            splitter: Splitter::new(config.max_header_section),
            config,
            hashes: BodyHashes::default(),
            entries: Vec::new(),
            keys: BTreeMap::new(),
            header_done: false,
            finished: false,
        }
    }

    /// Takes the next piece of the message. Ignored after
    /// [`finish`](Self::finish).
    pub fn update(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        match self.splitter.feed(chunk) {
            Fed::Header | Fed::Overflow => {}
            Fed::HeaderDone { body } => {
                self.read_header();
                self.hashes.update(body);
            }
            Fed::Body(body) => self.hashes.update(body),
        }
    }

    /// Ends the message. `now` is checked against `x=` and `t=`. Calling it
    /// twice changes nothing.
    pub fn finish(&mut self, now: SystemTime) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.splitter.overflowed() {
            return;
        }
        if !self.header_done {
            // A message without an empty line is all header.
            self.read_header();
        }
        self.hashes.finish();
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let skew = self.config.clock_skew.as_secs();
        let entries = std::mem::take(&mut self.entries);
        for entry in entries {
            let entry = match entry {
                Entry::Hashing { info, sig, data } => {
                    match check_hash(&sig, &self.hashes, now, skew) {
                        Err(reason) => Entry::Done(info, reason),
                        Ok(unsigned_body) => {
                            let name = sig.key_name().clone();
                            if !self.keys.contains_key(&name) {
                                self.keys.insert(name.clone(), KeyState::Pending);
                            }
                            Entry::Keyed {
                                info,
                                sig,
                                data,
                                name,
                                unsigned_body,
                            }
                        }
                    }
                }
                other => other,
            };
            self.entries.push(entry);
        }
    }

    /// The TXT questions still unanswered (after [`finish`](Self::finish)),
    /// in name order.
    pub fn questions(&self) -> impl Iterator<Item = Question> + '_ {
        self.keys
            .iter()
            .filter(|(_, state)| matches!(state, KeyState::Pending))
            .map(|(name, _)| Question::txt(name.clone()))
    }

    /// Whether every question has its answer (always, after
    /// [`finish`](Self::finish), for a message that needs none).
    pub fn is_ready(&self) -> bool {
        self.finished && self.questions().next().is_none()
    }

    /// Takes the resolver's answer to one of [`questions`](Self::questions);
    /// returns whether it was wanted (answers to other questions, or a
    /// second answer, are ignored).
    pub fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) -> bool {
        question.record_type() == RecordType::Txt
            && self.handle_key(question.name(), KeyLookup::from(result))
    }

    /// Takes what a lookup of the key at `name` found; returns whether it
    /// was wanted.
    pub fn handle_key(&mut self, name: &Name, lookup: KeyLookup) -> bool {
        let Some(state) = self.keys.get_mut(name) else {
            return false;
        };
        if !matches!(state, KeyState::Pending) {
            return false;
        }
        *state = match lookup {
            KeyLookup::NotFound => KeyState::Missing,
            KeyLookup::Failed(failure) => KeyState::Failed(failure),
            KeyLookup::Records(records) => {
                // RFC 6376 §6.1.2 lets the verifier pick among several
                // records: the first that is a key record, else the first
                // record's error.
                let mut first_error = None;
                let mut found = None;
                for record in &records {
                    match KeyRecord::parse(record) {
                        Ok(key) => {
                            found = Some(key);
                            break;
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match (found, first_error) {
                    (Some(key), _) => KeyState::Found(Box::new(key)),
                    (None, Some(e)) => KeyState::Unusable(e),
                    (None, None) => KeyState::Missing,
                }
            }
        };
        true
    }

    /// The results, one per `DKIM-Signature` field, top to bottom; empty
    /// for an unsigned message (report [`RESINFO_NONE`]). Runs the
    /// public-key operations. Call after [`finish`](Self::finish) (before
    /// it, the message is taken as ended now, at the Unix epoch).
    pub fn into_results(mut self) -> Vec<DkimResult> {
        if !self.finished {
            self.finish(SystemTime::UNIX_EPOCH);
        }
        if self.splitter.overflowed() {
            return self.overflow_results();
        }
        let mut out = Vec::with_capacity(self.entries.len());
        for entry in self.entries {
            out.push(match entry {
                Entry::Done(info, reason) => DkimResult::new(info, Some(reason)),
                Entry::Hashing { info, .. } => {
                    // finish() moved every hashing entry on.
                    DkimResult::new(info, Some(Reason::NoAnswer))
                }
                Entry::Keyed {
                    info,
                    sig,
                    data,
                    name,
                    unsigned_body,
                } => {
                    let state = self.keys.get(&name).unwrap_or(&KeyState::Pending);
                    let mut result = check_key(&self.config, &sig, &data, state, info);
                    result.unsigned_body = unsigned_body;
                    result
                }
            });
        }
        out
    }

    /// Reads the header section: each `DKIM-Signature` field becomes an
    /// entry, and each valid one asks for its body hash.
    fn read_header(&mut self) {
        self.header_done = true;
        let section = self.splitter.section();
        let index = HeaderIndex::new(section);
        let mut valid = 0;
        for i in 0..index.fields.len() {
            if !index.name(i).eq_ignore_ascii_case(b"dkim-signature") {
                continue;
            }
            let field = index.fields[i];
            let raw = &section[field.start..field.end];
            let value_at = field.name_end - field.start;
            // The colon follows the name and any white space.
            let colon = value_at + raw[value_at..].iter().position(|&b| b == b':').unwrap_or(0);
            let value = &raw[colon + 1..];
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            let tags = match tag::parse_tag_list(value) {
                Ok(tags) => tags,
                Err(e) => {
                    self.entries.push(Entry::Done(
                        Info::default(),
                        Reason::Signature(SignatureError::Syntax(e)),
                    ));
                    continue;
                }
            };
            let sig = match Signature::from_tags(&tags) {
                Ok(sig) => sig,
                Err(e) => {
                    self.entries
                        .push(Entry::Done(Info::of_tags(&tags), Reason::Signature(e)));
                    continue;
                }
            };
            let info = Info::of(&sig);
            if valid == self.config.max_signatures {
                self.entries.push(Entry::Done(
                    info,
                    Reason::TooManySignatures {
                        limit: self.config.max_signatures,
                    },
                ));
                continue;
            }
            if sig.signed_headers().len() > self.config.max_signed_fields {
                self.entries.push(Entry::Done(
                    info,
                    Reason::TooManySignedFields {
                        limit: self.config.max_signed_fields,
                    },
                ));
                continue;
            }
            valid += 1;
            // `b` is a required tag: from_tags succeeded.
            let b = tags
                .iter()
                .find(|t| t.name == b"b")
                .expect("a parsed signature has b=");
            let data = header_data(section, &index, &sig, raw, colon + 1, b);
            self.hashes
                .want(sig.body_canonicalization(), sig.body_length());
            self.entries.push(Entry::Hashing {
                info,
                sig: Box::new(sig),
                data,
            });
        }
    }

    /// Results for a header section over the bound: one policy result per
    /// `DKIM-Signature` field complete within the part that was kept.
    fn overflow_results(&self) -> Vec<DkimResult> {
        let reason = Reason::HeaderSectionTooLarge {
            limit: self.config.max_header_section,
        };
        let kept = self.splitter.section();
        let index = HeaderIndex::new(kept);
        let mut out = Vec::new();
        for (i, field) in index.fields.iter().enumerate() {
            // The last field may be cut.
            if i + 1 == index.fields.len() || !index.name(i).eq_ignore_ascii_case(b"dkim-signature")
            {
                continue;
            }
            let raw = &kept[field.name_end..field.end];
            let value = raw
                .iter()
                .position(|&b| b == b':')
                .map_or(&raw[..0], |c| &raw[c + 1..]);
            let info = tag::parse_tag_list(value.strip_suffix(b"\r\n").unwrap_or(value))
                .map(|tags| Info::of_tags(&tags))
                .unwrap_or_default();
            out.push(DkimResult::new(info, Some(reason.clone())));
        }
        if out.is_empty() {
            // No field could be read: one result says why nothing was
            // verified (the section may well hold signatures).
            out.push(DkimResult::new(Info::default(), Some(reason)));
        }
        out
    }
}

/// The data the signature signs (RFC 6376 §3.7): the fields `h=` selects,
/// canonicalized, then the signature field itself with the `b=` value
/// removed and without its final CRLF.
///
/// `raw` is the whole field, `value_at` where its value starts in it, `b`
/// the `b=` tag (offsets relative to the value). The value is removed from
/// just after `=` to its last character, folding inside it included: the
/// white space after it is kept (as dkimpy and OpenDKIM do).
pub(super) fn header_data(
    section: &[u8],
    index: &HeaderIndex<'_>,
    sig: &Signature,
    raw: &[u8],
    value_at: usize,
    b: &TagSpec<'_>,
) -> Vec<u8> {
    let c = sig.header_canonicalization();
    let mut data = Vec::with_capacity(section.len() + raw.len());
    for i in index.select(sig.signed_headers().iter().map(|n| n.as_bytes())) {
        let f = index.fields[i];
        canon::write_header(c, &section[f.start..f.end], &mut data);
    }
    let mut stripped = Vec::with_capacity(raw.len());
    stripped.extend_from_slice(&raw[..value_at + b.equals + 1]);
    stripped.extend_from_slice(&raw[value_at + b.value_end..]);
    match c {
        Canonicalization::Simple => {
            let field = stripped.strip_suffix(b"\r\n").unwrap_or(&stripped);
            data.extend_from_slice(field);
        }
        Canonicalization::Relaxed => {
            canon::write_header(c, &stripped, &mut data);
            // write_header ends the field with CRLF.
            data.truncate(data.len() - 2);
        }
    }
    data
}

/// Time and body-hash checks; on success, the unsigned body length (with
/// `l=`).
fn check_hash(
    sig: &Signature,
    hashes: &BodyHashes,
    now: u64,
    skew: u64,
) -> Result<Option<u64>, Reason> {
    if let Some(x) = sig.expiration()
        && x.saturating_add(skew) < now
    {
        return Err(Reason::Expired { expiration: x });
    }
    if let Some(t) = sig.timestamp()
        && t > now.saturating_add(skew)
    {
        return Err(Reason::FutureTimestamp { timestamp: t });
    }
    let (digest, total): (Option<Digest>, u64) =
        hashes.result(sig.body_canonicalization(), sig.body_length());
    let Some(digest) = digest else {
        return Err(Reason::BodyShorterThanLength {
            body: total,
            length: sig.body_length().unwrap_or(0),
        });
    };
    if digest[..] != *sig.body_hash() {
        return Err(Reason::BodyHashMismatch);
    }
    Ok(sig.body_length().map(|l| total - l))
}

/// The key checks of RFC 6376 §6.1.2 and the signature check of §6.1.3.
fn check_key(
    config: &VerifierConfig,
    sig: &Signature,
    data: &[u8],
    state: &KeyState,
    info: Info,
) -> DkimResult {
    let key = match state {
        KeyState::Pending => return DkimResult::new(info, Some(Reason::NoAnswer)),
        KeyState::Missing => return DkimResult::new(info, Some(Reason::NoKey)),
        KeyState::Failed(f) => return DkimResult::new(info, Some(Reason::Dns(f.clone()))),
        KeyState::Unusable(e) => return DkimResult::new(info, Some(Reason::KeyRecord(e.clone()))),
        KeyState::Found(key) => key,
    };
    let mut result = DkimResult::new(info, None);
    result.testing = key.is_testing();
    let reason = verify_with(config, sig, data, key, &mut result.key_bits);
    result.verdict = reason.as_ref().map_or(Verdict::Pass, Reason::verdict);
    result.reason = reason;
    result
}

fn verify_with(
    config: &VerifierConfig,
    sig: &Signature,
    data: &[u8],
    key: &KeyRecord,
    bits: &mut Option<u32>,
) -> Option<Reason> {
    if matches!(key.public_key(), PublicKey::Revoked) {
        return Some(Reason::KeyRevoked);
    }
    if key.key_type() != sig.algorithm().key_type() {
        return Some(Reason::KeyTypeMismatch);
    }
    if !key.allows_sha256() {
        return Some(Reason::HashNotAllowed);
    }
    if !key.allows_email() {
        return Some(Reason::ServiceNotEmail);
    }
    if key.is_strict_identity() && sig.identity().is_some_and(|i| i.domain() != sig.domain()) {
        return Some(Reason::IdentityNotExactDomain);
    }
    let ok = match key.public_key() {
        PublicKey::Rsa(rsa) => {
            let n = rsa.bits();
            *bits = Some(n);
            if n < MIN_RSA_BITS {
                return Some(Reason::KeyTooSmall { bits: n });
            }
            if n > config.max_rsa_bits {
                return Some(Reason::KeyTooLarge { bits: n });
            }
            if n < config.min_rsa_bits {
                return Some(Reason::KeyBelowMinimum {
                    bits: n,
                    minimum: config.min_rsa_bits,
                });
            }
            let components = RsaPublicKeyComponents {
                n: rsa.modulus(),
                e: rsa.exponent(),
            };
            components
                .verify(
                    &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                    data,
                    sig.signature(),
                )
                .is_ok()
        }
        PublicKey::Ed25519(public) => {
            *bits = Some(256);
            let hash = ring::digest::digest(&ring::digest::SHA256, data);
            UnparsedPublicKey::new(&ED25519, public)
                .verify(hash.as_ref(), sig.signature())
                .is_ok()
        }
        PublicKey::Revoked => false,
    };
    (!ok).then_some(Reason::SignatureMismatch)
}
