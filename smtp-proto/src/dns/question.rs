//! Questions: what is asked ([`Question`]: a name and a [`RecordType`]) and
//! the query message that asks it.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::RecordType as WireType;

use super::name::{HostName, Name};

/// The UDP payload size advertised with EDNS(0).
///
/// RFC 6891 §6.2.5 leaves the value to the requester; 1232 octets is the
/// DNS Flag Day 2020 value that avoids IP fragmentation on any path with a
/// 1280-octet IPv6 MTU. Larger answers come back truncated and are asked
/// again over TCP (RFC 7766).
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// The kinds of records this crate asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RecordType {
    /// Mail exchangers (RFC 1035 §3.3.9), for routing (RFC 5321 §5.1).
    Mx,
    /// IPv4 addresses (RFC 1035 §3.4.1).
    A,
    /// IPv6 addresses (RFC 3596 §2.1).
    Aaaa,
    /// Text strings (RFC 1035 §3.3.14): SPF (RFC 7208 §3), DKIM keys
    /// (RFC 6376 §3.6.2), DMARC (RFC 7489 §6.1), MTA-STS (RFC 8461 §3.1).
    Txt,
    /// TLS certificate associations (RFC 6698 §2), for DANE (RFC 7672).
    Tlsa,
    /// Domain name pointers (RFC 1035 §3.3.12): reverse lookups (SPF `ptr`,
    /// RFC 7208 §5.5).
    Ptr,
}

impl RecordType {
    /// Every record type, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Mx,
        Self::A,
        Self::Aaaa,
        Self::Txt,
        Self::Tlsa,
        Self::Ptr,
    ];

    pub(crate) fn to_wire(self) -> WireType {
        match self {
            Self::Mx => WireType::MX,
            Self::A => WireType::A,
            Self::Aaaa => WireType::AAAA,
            Self::Txt => WireType::TXT,
            Self::Tlsa => WireType::TLSA,
            Self::Ptr => WireType::PTR,
        }
    }

    /// The mnemonic (`MX`, `AAAA`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mx => "MX",
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Txt => "TXT",
            Self::Tlsa => "TLSA",
            Self::Ptr => "PTR",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A question: records of one type for one name, class IN.
///
/// It is the unit of everything the resolver does: what a lookup asks, what
/// an answer must repeat to count (RFC 5452 §9.1), what identical lookups
/// share while in flight and what the cache is keyed by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Question {
    name: Name,
    record_type: RecordType,
}

impl Question {
    /// Records of `record_type` for `name`.
    pub fn new(name: Name, record_type: RecordType) -> Self {
        Self { name, record_type }
    }

    /// The MX records of a mail domain.
    pub fn mx(domain: &HostName) -> Self {
        Self::new(domain.to_name(), RecordType::Mx)
    }

    /// The A records of a host.
    pub fn a(host: &HostName) -> Self {
        Self::new(host.to_name(), RecordType::A)
    }

    /// The AAAA records of a host.
    pub fn aaaa(host: &HostName) -> Self {
        Self::new(host.to_name(), RecordType::Aaaa)
    }

    /// The TXT records of `name`.
    pub fn txt(name: Name) -> Self {
        Self::new(name, RecordType::Txt)
    }

    /// The TLSA records of `name` (`_25._tcp.mx.example.org`).
    pub fn tlsa(name: Name) -> Self {
        Self::new(name, RecordType::Tlsa)
    }

    /// The PTR records of `ip` (see [`Name::reverse`]).
    pub fn ptr(ip: IpAddr) -> Self {
        Self::new(Name::reverse(ip), RecordType::Ptr)
    }

    /// The name asked about.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The type of records asked for.
    pub fn record_type(&self) -> RecordType {
        self.record_type
    }

    /// The query message for this question with message id `id`.
    ///
    /// RFC 1035 §4.1: one question, QR = 0, OPCODE = QUERY, RD = 1 (a stub
    /// wants its resolver to recurse), plus an EDNS(0) OPT record advertising
    /// [`EDNS_UDP_PAYLOAD`] unless `edns` is false. The id should be
    /// unpredictable (RFC 5452 §9.2); it is an argument because the core
    /// draws no random numbers.
    pub fn to_query(&self, id: u16, edns: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_query(id, edns, &mut out);
        out
    }

    /// Appends the query message to `out`.
    pub(crate) fn write_query(&self, id: u16, edns: bool, out: &mut Vec<u8>) {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(
            self.name.to_wire(),
            self.record_type.to_wire(),
        ));
        if edns {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_UDP_PAYLOAD);
            message.set_edns(edns);
        }
        // Encoding a header, one question with a validated name of at most
        // 255 octets and an OPT record cannot fail: the encoder only fails
        // on names or counts that cannot be represented.
        let bytes = message
            .to_vec()
            .expect("a one-question query always encodes");
        out.extend_from_slice(&bytes);
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)
    }
}

impl fmt::Debug for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Question({} {})", self.name, self.record_type)
    }
}
