//! Judging DNS answers: is it ours, what does it say, and what follows.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use thiserror::Error;

use super::MAX_CNAME_CHAIN;
use super::name::{HostName, HostNameError};
use super::plan::Severity;
use super::query::{QueryType, Question};
use super::rng::SplitMix64;

/// The most address hints kept per MX host from one answer. A hostile answer
/// could list thousands; a real one lists a few.
pub const MAX_HINTS_PER_HOST: usize = 16;

/// A DNS response code (RFC 1035 §4.1.1, extended to 12 bits by RFC 6891
/// §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rcode(pub u16);

impl Rcode {
    /// No error. RFC 1035 §4.1.1.
    pub const NOERROR: Self = Self(0);
    /// The server could not interpret the query. RFC 1035 §4.1.1.
    pub const FORMERR: Self = Self(1);
    /// The server failed. RFC 1035 §4.1.1.
    pub const SERVFAIL: Self = Self(2);
    /// The name does not exist. RFC 1035 §4.1.1 ("Name Error").
    pub const NXDOMAIN: Self = Self(3);
    /// The server does not implement the query kind. RFC 1035 §4.1.1.
    pub const NOTIMP: Self = Self(4);
    /// The server refuses to answer. RFC 1035 §4.1.1.
    pub const REFUSED: Self = Self(5);
}

/// Shows the RFC 1035 mnemonic (`SERVFAIL`) for the classic codes, the
/// number and IANA description for the others.
impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mnemonic = match *self {
            Self::NOERROR => "NOERROR",
            Self::FORMERR => "FORMERR",
            Self::SERVFAIL => "SERVFAIL",
            Self::NXDOMAIN => "NXDOMAIN",
            Self::NOTIMP => "NOTIMP",
            Self::REFUSED => "REFUSED",
            Self(code) => {
                let description = <ResponseCode as From<u16>>::from(code).to_str();
                return write!(f, "RCODE {code} ({description})");
            }
        };
        f.write_str(mnemonic)
    }
}

/// What a transport does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Disposition {
    /// The answer is usable: go on with delivery.
    Proceed,
    /// The UDP answer was truncated: ask the same question over TCP.
    RetryOverTcp,
    /// Try again later; the message stays queued (SMTP 4xx semantics).
    TemporaryFailure,
    /// Give up: the message bounces (SMTP 5xx semantics).
    PermanentFailure,
}

/// One mail exchanger: its name, its preference and any addresses the
/// answer's additional section offered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    name: HostName,
    preference: u16,
    hints: Vec<IpAddr>,
}

impl MxHost {
    /// A host with no address hints.
    pub fn new(name: HostName, preference: u16) -> Self {
        Self {
            name,
            preference,
            hints: Vec::new(),
        }
    }

    /// The same host with address hints (at most [`MAX_HINTS_PER_HOST`] kept).
    #[must_use]
    pub fn with_hints(mut self, hints: impl IntoIterator<Item = IpAddr>) -> Self {
        self.hints = hints.into_iter().take(MAX_HINTS_PER_HOST).collect();
        self
    }

    /// The exchange's host name.
    pub fn name(&self) -> &HostName {
        &self.name
    }

    /// The MX preference; lower is tried first. An implicit MX has 0.
    pub fn preference(&self) -> u16 {
        self.preference
    }

    /// A and AAAA records for this host found in the answer (additional
    /// section), in answer order. Hints save a lookup; they are no more
    /// trustworthy than the MX records that came with them.
    pub fn hints(&self) -> &[IpAddr] {
        &self.hints
    }
}

/// The meaning of an answer to an [`MxQuery`](super::MxQuery).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MxAnswer {
    /// The domain's mail exchangers in the order to try them: preference
    /// ascending, equal preferences in an order drawn from the seed. Never
    /// empty; each host appears once, with its lowest preference.
    Hosts(Vec<MxHost>),
    /// The domain has no MX records (NOERROR, no data): RFC 5321 §5.1 treats
    /// it as an implicit MX of preference 0 pointing at the domain itself —
    /// or at its canonical name if the domain is an alias.
    Implicit(MxHost),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    /// Permanent failure, no connection is made (RFC 7505 §4.1, reply code
    /// 556 with 5.1.10).
    ///
    /// Also reported when a null MX sits beside other MX records, which RFC
    /// 7505 §3 forbids ("MUST NOT advertise any other MX RR"): the domain
    /// said it takes no mail, and a contradictory record set is not a
    /// reason to deliver anyway. Also reported for an exchange of `.` at a
    /// preference other than 0: the root is never a host.
    NullMx,
    /// NXDOMAIN: the domain does not exist. Permanent failure.
    NxDomain,
    /// The server answered with a failure code (SERVFAIL, REFUSED, FORMERR,
    /// NOTIMP, …): try again later.
    Temporary(Rcode),
    /// The TC bit is set: ask again over TCP.
    Truncated,
}

impl MxAnswer {
    /// What to do next.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Hosts(_) | Self::Implicit(_) => Disposition::Proceed,
            Self::NullMx | Self::NxDomain => Disposition::PermanentFailure,
            Self::Temporary(_) => Disposition::TemporaryFailure,
            Self::Truncated => Disposition::RetryOverTcp,
        }
    }

    /// Whether delivery to this domain must fail for good.
    pub fn is_permanent_failure(&self) -> bool {
        self.disposition() == Disposition::PermanentFailure
    }

    /// Whether delivery should be tried again later.
    pub fn is_temporary_failure(&self) -> bool {
        self.disposition() == Disposition::TemporaryFailure
    }

    /// The hosts to try, for [`Hosts`](Self::Hosts) and
    /// [`Implicit`](Self::Implicit); `None` otherwise.
    pub fn into_hosts(self) -> Option<Vec<MxHost>> {
        match self {
            Self::Hosts(hosts) => Some(hosts),
            Self::Implicit(host) => Some(vec![host]),
            _ => None,
        }
    }
}

/// The meaning of an answer to an [`AddressQuery`](super::AddressQuery).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressAnswer {
    /// The addresses of the host (after following CNAMEs), in answer order,
    /// duplicates removed. Empty when the name exists but has no record of
    /// the asked type (NODATA).
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the host does not exist.
    NxDomain,
    /// The server answered with a failure code: try again later.
    Temporary(Rcode),
    /// The TC bit is set: ask again over TCP.
    Truncated,
}

impl AddressAnswer {
    /// What to do next. [`PermanentFailure`](Disposition::PermanentFailure)
    /// here concerns this one host; whether the delivery fails is the plan's
    /// call.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Addresses(_) => Disposition::Proceed,
            Self::NxDomain => Disposition::PermanentFailure,
            Self::Temporary(_) => Disposition::TemporaryFailure,
            Self::Truncated => Disposition::RetryOverTcp,
        }
    }
}

/// Merges the outcomes of a host's address lookups (A, then AAAA) into
/// the host's addresses, in the order given.
///
/// A host is unreachable only if no lookup found an address: one family's
/// failure next to the other's addresses is no failure. When all failed,
/// a temporary failure wins over a permanent one — one family's NXDOMAIN
/// next to the other's SERVFAIL is not proof that the host is gone: the
/// first temporary failure, else the last failure.
///
/// ```
/// use core::net::IpAddr;
/// use smtp_proto::mx::{Severity, merge_address_lookups};
///
/// let v4: IpAddr = "192.0.2.1".parse().unwrap();
/// let sev = |e: &Severity| *e;
/// assert_eq!(merge_address_lookups([Ok(vec![v4]), Err(Severity::Temporary)], sev), Ok(vec![v4]));
/// assert_eq!(
///     merge_address_lookups([Err(Severity::Permanent), Err(Severity::Temporary)], sev),
///     Err(Severity::Temporary)
/// );
/// ```
pub fn merge_address_lookups<E>(
    lookups: impl IntoIterator<Item = Result<Vec<IpAddr>, E>>,
    severity: impl Fn(&E) -> Severity,
) -> Result<Vec<IpAddr>, E> {
    let mut addresses = Vec::new();
    let mut failure: Option<E> = None;
    for lookup in lookups {
        match lookup {
            Ok(found) => addresses.extend(found),
            Err(e) => {
                if failure
                    .as_ref()
                    .is_none_or(|f| severity(f) == Severity::Permanent)
                {
                    failure = Some(e);
                }
            }
        }
    }
    match failure {
        Some(e) if addresses.is_empty() => Err(e),
        _ => Ok(addresses),
    }
}

/// An answer that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The message id is not the query's: a late answer to an earlier query
    /// or a spoofing attempt (RFC 5452 §4.3).
    #[error("DNS answer id {found:#06x} does not match query id {expected:#06x}")]
    IdMismatch {
        /// The id of the query.
        expected: u16,
        /// The id in the answer.
        found: u16,
    },
    /// The QR bit is clear or the OPCODE is not QUERY (RFC 1035 §4.1.1).
    #[error("DNS message is not a response to a standard query")]
    NotAResponse,
    /// The question section does not repeat the query's name, type and class
    /// (RFC 5452 §9.1).
    #[error("DNS answer is for another question")]
    QuestionMismatch,
    /// The message cannot be decoded, or breaks DNS rules in a way that
    /// leaves its meaning open (two CNAMEs for one name).
    #[error("malformed DNS answer: {0}")]
    Malformed(String),
    /// The CNAME chain in the answer loops.
    #[error("CNAME loop in DNS answer")]
    CnameLoop,
    /// The CNAME chain in the answer is longer than
    /// [`MAX_CNAME_CHAIN`](super::MAX_CNAME_CHAIN).
    #[error("CNAME chain longer than {MAX_CNAME_CHAIN} in DNS answer")]
    CnameChainTooLong,
    /// No usable host remains: every MX exchange (or the canonical name of
    /// an implicit MX) is not a valid RFC 5321 domain.
    #[error("DNS answer names an invalid mail host {name:?}: {reason}")]
    InvalidHostName {
        /// The offending name, DNS-escaped.
        name: String,
        /// Why it is invalid.
        reason: HostNameError,
    },
}

impl AnswerError {
    /// Whether the message is simply not the answer to this query (wrong id,
    /// not a response, another question): over UDP, discard it and keep
    /// waiting for the real answer until the query times out, so that a
    /// spoofed datagram cannot decide the outcome. Every other error is a
    /// temporary failure of the lookup.
    pub fn is_unrelated(&self) -> bool {
        matches!(
            self,
            Self::IdMismatch { .. } | Self::NotAResponse | Self::QuestionMismatch
        )
    }

    /// What the error means for the lookup once no usable answer will come:
    /// always [`Disposition::TemporaryFailure`]. For an
    /// [unrelated](Self::is_unrelated) message, first keep waiting; only the
    /// query's timeout makes the failure. No answer error is ever permanent:
    /// a broken or hostile answer must not bounce mail.
    pub fn disposition(&self) -> Disposition {
        Disposition::TemporaryFailure
    }
}

/// What the header and question say before the records are looked at.
enum Verdict {
    Records(Message),
    Truncated,
    NxDomain,
    Temporary(Rcode),
}

/// Checks that `bytes` answer `question`, then classifies it.
///
/// Order: header (id, QR, OPCODE), question, TC, full decode, RCODE. The TC
/// check comes after the question so that a truncated answer to another
/// question is still rejected, but before the full decode because a
/// truncated message may end in the middle of a record.
fn judge(question: &Question, bytes: &[u8]) -> Result<Verdict, AnswerError> {
    let mut decoder = BinDecoder::new(bytes);
    let header =
        Header::read(&mut decoder).map_err(|e| AnswerError::Malformed(format!("header: {e}")))?;
    let meta = header.metadata;
    if meta.id != question.id {
        return Err(AnswerError::IdMismatch {
            expected: question.id,
            found: meta.id,
        });
    }
    if meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
        return Err(AnswerError::NotAResponse);
    }
    let low_rcode = meta.response_code;
    match header.counts.queries {
        1 => match Query::read(&mut decoder) {
            Ok(echo) => {
                if !echo.name().eq_ignore_root(&question.name)
                    || echo.query_type() != question.query_type.record_type()
                    || echo.query_class() != DNSClass::IN
                {
                    return Err(AnswerError::QuestionMismatch);
                }
            }
            Err(_) if meta.truncation => return Ok(Verdict::Truncated),
            Err(e) => return Err(AnswerError::Malformed(format!("question: {e}"))),
        },
        // Some servers send FORMERR, SERVFAIL, NOTIMP or REFUSED without the
        // question. Such an answer can only make the lookup fail temporarily,
        // so accepting it gives a spoofer nothing; an answer that could
        // decide the outcome (NOERROR, NXDOMAIN) must carry the question.
        0 if !matches!(low_rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {}
        _ => return Err(AnswerError::QuestionMismatch),
    }
    if meta.truncation {
        return Ok(Verdict::Truncated);
    }
    let message = Message::from_vec(bytes).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    // from_vec merges the EDNS extended RCODE bits into the header's.
    match message.metadata.response_code {
        ResponseCode::NoError => Ok(Verdict::Records(message)),
        ResponseCode::NXDomain => Ok(Verdict::NxDomain),
        other => Ok(Verdict::Temporary(Rcode(u16::from(other)))),
    }
}

/// Follows the CNAME chain from `start` through the answer section and
/// returns the canonical name (RFC 1034 §3.6.2, RFC 5321 §5.1: "If a CNAME
/// record is found, the resulting name is processed as if it were the
/// initial name").
fn canonical_name(answers: &[Record], start: &Name) -> Result<Name, AnswerError> {
    let mut current = start.clone();
    let mut seen = vec![start.clone()];
    loop {
        let mut targets = answers
            .iter()
            .filter(|r| r.dns_class == DNSClass::IN && r.name.eq_ignore_root(&current))
            .filter_map(|r| match &r.data {
                RData::CNAME(target) => Some(&target.0),
                _ => None,
            });
        let Some(target) = targets.next() else {
            return Ok(current);
        };
        // RFC 2181 §10.1: a name has at most one CNAME. Repeats of the same
        // record are harmless; two different targets leave the answer open.
        if targets.any(|other| !other.eq_ignore_root(target)) {
            return Err(AnswerError::Malformed(format!(
                "several CNAME records for {current}"
            )));
        }
        if seen.iter().any(|name| name.eq_ignore_root(target)) {
            return Err(AnswerError::CnameLoop);
        }
        if seen.len() > MAX_CNAME_CHAIN {
            return Err(AnswerError::CnameChainTooLong);
        }
        current = target.clone();
        seen.push(current.clone());
    }
}

fn invalid_host(name: &Name, reason: HostNameError) -> AnswerError {
    AnswerError::InvalidHostName {
        name: name.to_ascii(),
        reason,
    }
}

/// Decodes an MX answer; see [`MxAnswer`] for the outcomes.
pub(crate) fn decode_mx(
    question: &Question,
    bytes: &[u8],
    seed: u64,
) -> Result<MxAnswer, AnswerError> {
    let message = match judge(question, bytes)? {
        Verdict::Records(message) => message,
        Verdict::Truncated => return Ok(MxAnswer::Truncated),
        Verdict::NxDomain => return Ok(MxAnswer::NxDomain),
        Verdict::Temporary(rcode) => return Ok(MxAnswer::Temporary(rcode)),
    };
    let owner = canonical_name(&message.answers, &question.name)?;

    let mut null_mx = false;
    let mut any_mx = false;
    let mut first_invalid = None;
    let mut hosts: Vec<(HostName, u16)> = Vec::new();
    for record in &message.answers {
        let RData::MX(mx) = &record.data else {
            continue;
        };
        if record.dns_class != DNSClass::IN || !record.name.eq_ignore_root(&owner) {
            continue;
        }
        any_mx = true;
        if mx.exchange.is_root() {
            null_mx = true;
            continue;
        }
        match HostName::from_dns(&mx.exchange) {
            Ok(host) => hosts.push((host, mx.preference)),
            Err(reason) => {
                first_invalid.get_or_insert_with(|| invalid_host(&mx.exchange, reason));
            }
        }
    }
    if null_mx {
        return Ok(MxAnswer::NullMx);
    }
    if !any_mx {
        let host = HostName::from_dns(&owner).map_err(|reason| invalid_host(&owner, reason))?;
        return Ok(MxAnswer::Implicit(MxHost::new(host, 0)));
    }
    if hosts.is_empty() {
        // any_mx and no host: every exchange was invalid, so one was recorded.
        return Err(first_invalid.unwrap_or(AnswerError::Malformed("no usable MX".into())));
    }

    // One entry per host, at its lowest preference (RFC 5321 §5.1 lists hosts,
    // not records). Sorting by name first makes the result independent of the
    // order the server put the records in (resolvers rotate RRsets), so the
    // seed alone decides the order among equal preferences.
    hosts.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    hosts.dedup_by(|later, first| later.0 == first.0);
    hosts.sort_by_key(|(_, preference)| *preference);
    let mut rng = SplitMix64::new(seed);
    for group in hosts.chunk_by_mut(|a, b| a.1 == b.1) {
        rng.shuffle(group);
    }

    let hints = collect_hints(&message);
    Ok(MxAnswer::Hosts(
        hosts
            .into_iter()
            .map(|(name, preference)| {
                let host_hints = hints.get(&name).cloned().unwrap_or_default();
                MxHost {
                    name,
                    preference,
                    hints: host_hints,
                }
            })
            .collect(),
    ))
}

/// A and AAAA records of the answer and additional sections, by owner.
fn collect_hints(message: &Message) -> BTreeMap<HostName, Vec<IpAddr>> {
    let mut hints: BTreeMap<HostName, Vec<IpAddr>> = BTreeMap::new();
    for record in message.answers.iter().chain(&message.additionals) {
        if record.dns_class != DNSClass::IN {
            continue;
        }
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
            _ => continue,
        };
        let Ok(owner) = HostName::from_dns(&record.name) else {
            continue;
        };
        let list = hints.entry(owner).or_default();
        if list.len() < MAX_HINTS_PER_HOST && !list.contains(&ip) {
            list.push(ip);
        }
    }
    hints
}

/// Decodes an A or AAAA answer; see [`AddressAnswer`].
pub(crate) fn decode_addresses(
    question: &Question,
    bytes: &[u8],
) -> Result<AddressAnswer, AnswerError> {
    let message = match judge(question, bytes)? {
        Verdict::Records(message) => message,
        Verdict::Truncated => return Ok(AddressAnswer::Truncated),
        Verdict::NxDomain => return Ok(AddressAnswer::NxDomain),
        Verdict::Temporary(rcode) => return Ok(AddressAnswer::Temporary(rcode)),
    };
    let owner = canonical_name(&message.answers, &question.name)?;
    let mut seen = BTreeSet::new();
    let addresses = message
        .answers
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN && r.name.eq_ignore_root(&owner))
        .filter_map(|r| match (&r.data, question.query_type) {
            (RData::A(a), QueryType::A) => Some(IpAddr::V4(a.0)),
            (RData::AAAA(aaaa), QueryType::Aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .filter(|ip| seen.insert(*ip))
        .collect();
    Ok(AddressAnswer::Addresses(addresses))
}
