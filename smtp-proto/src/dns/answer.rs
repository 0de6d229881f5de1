//! Typed answers: the records found, or the negative answer (NODATA,
//! NXDOMAIN), and what each means for the caller.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;

use super::name::{Name, NameError};

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

/// What a lookup's result means for delivery: the severity scale shared by
/// answers, failures and the MX judgement ([`crate::mx::MxAnswer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Disposition {
    /// The answer is usable: go on.
    Proceed,
    /// The UDP answer was truncated: ask the same question over TCP. The
    /// [`Resolver`](super::Resolver) does this itself; only the message
    /// decoders ([`crate::mx::MxQuery::decode`]) report it.
    RetryOverTcp,
    /// Try again later; the message stays queued (SMTP 4xx semantics).
    TemporaryFailure,
    /// Give up: the message bounces (SMTP 5xx semantics).
    PermanentFailure,
}

impl Disposition {
    /// [`Severity::Temporary`] for [`TemporaryFailure`](Self::TemporaryFailure),
    /// [`Severity::Permanent`] for [`PermanentFailure`](Self::PermanentFailure),
    /// `None` when the lookup goes on.
    ///
    /// ```
    /// use smtp_proto::dns::{Failure, Severity};
    ///
    /// assert_eq!(Failure::Timeout.disposition().severity(), Some(Severity::Temporary));
    /// ```
    pub fn severity(self) -> Option<Severity> {
        match self {
            Self::TemporaryFailure => Some(Severity::Temporary),
            Self::PermanentFailure => Some(Severity::Permanent),
            Self::Proceed | Self::RetryOverTcp => None,
        }
    }
}

/// Whether a failure is worth retrying later: the one split every failure
/// of a lookup, a host or a delivery ends in (RFC 5321 §4.2.1's 4yz and
/// 5yz).
///
/// It lives here, at the bottom of the layers that use it — a DNS
/// [`Disposition`], the MX host plan and walk
/// ([`crate::mx::HostPlan`], [`crate::mx::Walk`]), re-exported as
/// `smtp_proto::mx::Severity` — so that none of them imports another for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Retry later (SMTP 4xx semantics).
    Temporary,
    /// Do not retry (SMTP 5xx semantics).
    Permanent,
}

/// A usable answer to a question: records, or a negative answer.
///
/// NODATA and NXDOMAIN stay apart (RFC 2308 §2): "this name has no record
/// of that type" and "this name does not exist" mean different things to
/// every caller — an implicit MX against a bounce, "no DMARC policy" against
/// a DKIM key that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// At least one record of the asked type.
    Records(Records),
    /// NOERROR without a record of the asked type (RFC 2308 §2.2): the name
    /// exists (at least as an alias).
    NoData(Negative),
    /// NXDOMAIN (RFC 2308 §2.1): the name does not exist. After a CNAME
    /// chain it is the last target that does not (RFC 6604 §2).
    NxDomain(Negative),
}

impl Answer {
    /// The name the answer is about: the question's name, or the end of
    /// the CNAME chain the answer followed (RFC 1034 §3.6.2).
    pub fn name(&self) -> &Name {
        match self {
            Self::Records(records) => &records.name,
            Self::NoData(negative) | Self::NxDomain(negative) => &negative.name,
        }
    }

    /// The records, if there are any.
    pub fn records(&self) -> Option<&Records> {
        match self {
            Self::Records(records) => Some(records),
            _ => None,
        }
    }

    /// How long the answer may be kept, in seconds: the smallest TTL of the
    /// records used (the CNAME chain included), or for a negative answer
    /// the SOA rule of RFC 2308 §5 (`None` without an SOA: do not cache).
    pub fn ttl(&self) -> Option<u32> {
        match self {
            Self::Records(records) => Some(records.ttl),
            Self::NoData(negative) | Self::NxDomain(negative) => negative.ttl,
        }
    }

    /// What the answer means for a delivery lookup: NXDOMAIN is permanent
    /// (the destination does not exist), anything else lets the caller go
    /// on — an empty address set or an implicit MX is the caller's to judge.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Records(_) | Self::NoData(_) => Disposition::Proceed,
            Self::NxDomain(_) => Disposition::PermanentFailure,
        }
    }

    /// The same answer with every TTL it reports lowered to `ttl` (used
    /// for answers served from the cache: the time left).
    pub(crate) fn with_ttl(mut self, ttl: u32) -> Self {
        match &mut self {
            Self::Records(records) => records.ttl = records.ttl.min(ttl),
            Self::NoData(negative) | Self::NxDomain(negative) => {
                negative.ttl = negative.ttl.map(|t| t.min(ttl));
            }
        }
        self
    }
}

/// The records that answer a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    pub(crate) name: Name,
    pub(crate) ttl: u32,
    pub(crate) data: RecordData,
}

impl Records {
    /// The owner of the records (the end of the CNAME chain).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The smallest TTL of the records and of the CNAME records that led to
    /// them, in seconds.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The records, by type.
    pub fn data(&self) -> &RecordData {
        &self.data
    }

    /// The MX records, for an MX question.
    pub fn mx(&self) -> Option<&[MxRecord]> {
        match &self.data {
            RecordData::Mx(records) => Some(records),
            _ => None,
        }
    }

    /// The addresses, for an A or AAAA question.
    pub fn addresses(&self) -> Option<&[IpAddr]> {
        match &self.data {
            RecordData::Addresses(addresses) => Some(addresses),
            _ => None,
        }
    }

    /// The TXT records, for a TXT question.
    pub fn txt(&self) -> Option<&[Txt]> {
        match &self.data {
            RecordData::Txt(records) => Some(records),
            _ => None,
        }
    }

    /// The TLSA records, for a TLSA question.
    pub fn tlsa(&self) -> Option<&[Tlsa]> {
        match &self.data {
            RecordData::Tlsa(records) => Some(records),
            _ => None,
        }
    }

    /// The names the PTR records point to, for a PTR question.
    pub fn ptr(&self) -> Option<&[Name]> {
        match &self.data {
            RecordData::Ptr(names) => Some(names),
            _ => None,
        }
    }
}

/// Records of one type, in answer order, duplicates removed. Never empty
/// inside [`Answer::Records`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// MX records, raw: the judgement (null MX, implicit MX, order) is
    /// [`crate::mx::MxAnswer::from_answer`]'s.
    Mx(Vec<MxRecord>),
    /// A or AAAA addresses.
    Addresses(Vec<IpAddr>),
    /// TXT records.
    Txt(Vec<Txt>),
    /// TLSA records.
    Tlsa(Vec<Tlsa>),
    /// PTR targets. Targets that are not a valid [`Name`] are left out.
    Ptr(Vec<Name>),
}

impl RecordData {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Mx(v) => v.is_empty(),
            Self::Addresses(v) => v.is_empty(),
            Self::Txt(v) => v.is_empty(),
            Self::Tlsa(v) => v.is_empty(),
            Self::Ptr(v) => v.is_empty(),
        }
    }
}

/// One MX record (RFC 1035 §3.3.9), with the addresses the answer offered
/// for its exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub(crate) preference: u16,
    pub(crate) exchange: Exchange,
    pub(crate) addresses: Vec<IpAddr>,
}

impl MxRecord {
    /// The preference; lower is tried first.
    pub fn preference(&self) -> u16 {
        self.preference
    }

    /// The exchange.
    pub fn exchange(&self) -> &Exchange {
        &self.exchange
    }

    /// A and AAAA records for the exchange found in the answer's answer or
    /// additional section, in answer order, at most
    /// [`MAX_HINTS_PER_HOST`](crate::mx::MAX_HINTS_PER_HOST). They save a
    /// lookup and are no more trustworthy than the MX record.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// The exchange of an MX record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Exchange {
    /// `.`: with preference 0 the RFC 7505 null MX.
    Root,
    /// A name.
    Name(Name),
    /// A name this crate refuses (see [`Name`]): kept so that the MX
    /// judgement can tell "no MX record" from "only unusable ones".
    Invalid {
        /// The name as hickory-proto prints it (escaped).
        text: String,
        /// Why it is refused.
        reason: NameError,
    },
}

/// One TXT record: its character-strings (RFC 1035 §3.3.14).
#[derive(Clone, PartialEq, Eq)]
pub struct Txt {
    strings: Vec<Box<[u8]>>,
}

impl Txt {
    pub(crate) fn new(strings: Vec<Box<[u8]>>) -> Self {
        Self { strings }
    }

    /// The character-strings, each at most 255 octets, in record order.
    pub fn strings(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.strings.iter().map(|s| &**s)
    }

    /// The character-strings concatenated without separator: the record
    /// text as SPF (RFC 7208 §3.3) and DKIM (RFC 6376 §3.6.2.2) read it, so
    /// that a long key or policy can span several strings.
    pub fn joined(&self) -> Vec<u8> {
        self.strings.concat()
    }
}

impl fmt::Debug for Txt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.strings().map(|s| String::from_utf8_lossy(s)))
            .finish()
    }
}

/// One TLSA record (RFC 6698 §2.1). The three parameters are kept as
/// numbers: DANE (RFC 7672 §3.1) decides which values it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tlsa {
    pub(crate) usage: u8,
    pub(crate) selector: u8,
    pub(crate) matching_type: u8,
    pub(crate) data: Vec<u8>,
}

impl Tlsa {
    /// Certificate usage (RFC 6698 §2.1.1): 0 PKIX-TA, 1 PKIX-EE,
    /// 2 DANE-TA, 3 DANE-EE.
    pub fn usage(&self) -> u8 {
        self.usage
    }

    /// Selector (RFC 6698 §2.1.2): 0 full certificate, 1 public key.
    pub fn selector(&self) -> u8 {
        self.selector
    }

    /// Matching type (RFC 6698 §2.1.3): 0 exact, 1 SHA-256, 2 SHA-512.
    pub fn matching_type(&self) -> u8 {
        self.matching_type
    }

    /// The certificate association data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// A negative answer: the name it is about and how long it may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negative {
    pub(crate) name: Name,
    pub(crate) ttl: Option<u32>,
}

impl Negative {
    /// The name that has no such record (NODATA) or does not exist
    /// (NXDOMAIN): the question's name or the end of its CNAME chain.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The negative-caching TTL (RFC 2308 §5): the smaller of the SOA
    /// record's TTL and its MINIMUM field, from the authority section;
    /// `None` if the answer carried no SOA (then it is not cached).
    pub fn ttl(&self) -> Option<u32> {
        self.ttl
    }
}
