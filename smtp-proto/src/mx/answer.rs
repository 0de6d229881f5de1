//! Judging answers for delivery: the MX rules (null MX, implicit MX, host
//! order) and the address answer, on top of [`crate::dns`]'s typed answers.

use core::net::IpAddr;

use crate::dns::rng::SplitMix64;
use crate::dns::{Answer, Decoded, Exchange, MxRecord, Question, Severity, decode};
pub use crate::dns::{AnswerError, Disposition, MAX_HINTS_PER_HOST, Rcode};

use super::name::HostName;

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
    /// Judges a resolved answer to an MX question ([`crate::dns::Resolver`]
    /// did the asking): NXDOMAIN, an implicit MX for NODATA (the canonical
    /// name, RFC 5321 §5.1), a null MX (RFC 7505), or the hosts ordered by
    /// preference with ties shuffled by `seed`.
    ///
    /// Never returns [`Truncated`](Self::Truncated) or
    /// [`Temporary`](Self::Temporary): those are tries, which the resolver
    /// handles (a lookup that found only failure codes ends in
    /// [`Failure::ServerFailure`](crate::dns::Failure::ServerFailure)).
    pub fn from_answer(answer: &Answer, seed: u64) -> Result<Self, AnswerError> {
        match answer {
            Answer::NxDomain(_) => Ok(Self::NxDomain),
            Answer::NoData(negative) => {
                let name = negative.name();
                let host =
                    HostName::from_name(name).map_err(|reason| AnswerError::InvalidHostName {
                        name: name.to_string(),
                        reason,
                    })?;
                Ok(Self::Implicit(MxHost::new(host, 0)))
            }
            Answer::Records(records) => match records.mx() {
                Some(mx) => judge_mx(mx, seed),
                None => Err(AnswerError::Malformed(String::from(
                    "records of another type for an MX question",
                ))),
            },
        }
    }

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
    /// A resolved answer to an A or AAAA question: its addresses (none for
    /// NODATA), or NXDOMAIN.
    pub fn from_answer(answer: &Answer) -> Self {
        match answer {
            Answer::NxDomain(_) => Self::NxDomain,
            Answer::NoData(_) => Self::Addresses(Vec::new()),
            Answer::Records(records) => {
                Self::Addresses(records.addresses().unwrap_or_default().to_vec())
            }
        }
    }

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

/// Decodes an MX answer message; see [`MxAnswer`] for the outcomes.
pub(crate) fn decode_mx(
    id: u16,
    question: &Question,
    bytes: &[u8],
    seed: u64,
) -> Result<MxAnswer, AnswerError> {
    match decode(id, question, bytes)? {
        Decoded::Truncated => Ok(MxAnswer::Truncated),
        Decoded::ServerFailure(rcode) => Ok(MxAnswer::Temporary(rcode)),
        Decoded::Answer(answer) => MxAnswer::from_answer(&answer, seed),
    }
}

/// Decodes an A or AAAA answer message; see [`AddressAnswer`].
pub(crate) fn decode_addresses(
    id: u16,
    question: &Question,
    bytes: &[u8],
) -> Result<AddressAnswer, AnswerError> {
    match decode(id, question, bytes)? {
        Decoded::Truncated => Ok(AddressAnswer::Truncated),
        Decoded::ServerFailure(rcode) => Ok(AddressAnswer::Temporary(rcode)),
        Decoded::Answer(answer) => Ok(AddressAnswer::from_answer(&answer)),
    }
}

/// The MX rules over a non-empty set of MX records.
fn judge_mx(records: &[MxRecord], seed: u64) -> Result<MxAnswer, AnswerError> {
    let mut first_invalid = None;
    let mut hosts: Vec<(HostName, u16, &[IpAddr])> = Vec::new();
    for record in records {
        match record.exchange() {
            // RFC 7505 §3: a null MX beside other records is still "no
            // mail"; `.` at another preference is no host either.
            Exchange::Root => return Ok(MxAnswer::NullMx),
            Exchange::Name(name) => match HostName::from_name(name) {
                Ok(host) => hosts.push((host, record.preference(), record.addresses())),
                Err(reason) => {
                    first_invalid.get_or_insert_with(|| AnswerError::InvalidHostName {
                        name: name.to_string(),
                        reason,
                    });
                }
            },
            Exchange::Invalid { text, reason } => {
                first_invalid.get_or_insert_with(|| AnswerError::InvalidHostName {
                    name: text.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }
    if hosts.is_empty() {
        return Err(first_invalid.unwrap_or(AnswerError::Malformed("no usable MX".into())));
    }

    // One entry per host, at its lowest preference (RFC 5321 §5.1 lists hosts,
    // not records). Sorting by name first makes the result independent of the
    // order the server put the records in (resolvers rotate RRsets), so the
    // seed alone decides the order among equal preferences.
    hosts.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    hosts.dedup_by(|later, first| later.0 == first.0);
    hosts.sort_by_key(|(_, preference, _)| *preference);
    let mut rng = SplitMix64::new(seed);
    for group in hosts.chunk_by_mut(|a, b| a.1 == b.1) {
        rng.shuffle(group);
    }
    Ok(MxAnswer::Hosts(
        hosts
            .into_iter()
            .map(|(name, preference, hints)| MxHost {
                name,
                preference,
                hints: hints.to_vec(),
            })
            .collect(),
    ))
}
