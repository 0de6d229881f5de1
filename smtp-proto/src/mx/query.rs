//! DNS questions: building the query bytes, and DNS-over-TCP framing.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use thiserror::Error;

use super::answer::{self, AddressAnswer, AnswerError, MxAnswer};
use super::name::{HostName, HostNameError};

/// The UDP payload size advertised with EDNS(0).
///
/// RFC 6891 §6.2.5 leaves the value to the requester; 1232 octets is the
/// DNS Flag Day 2020 value that avoids IP fragmentation on any path with a
/// 1280-octet IPv6 MTU. Larger answers come back truncated and are asked
/// again over TCP (RFC 7766).
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// The kind of records a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryType {
    /// Mail exchangers (RFC 1035 §3.3.9).
    Mx,
    /// IPv4 addresses (RFC 1035 §3.4.1).
    A,
    /// IPv6 addresses (RFC 3596 §2.1).
    Aaaa,
}

impl QueryType {
    pub(crate) fn record_type(self) -> RecordType {
        match self {
            Self::Mx => RecordType::MX,
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
        }
    }
}

/// What both query kinds share: the id, the question, and the header flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub(crate) id: u16,
    pub(crate) host: HostName,
    pub(crate) name: Name,
    pub(crate) query_type: QueryType,
    pub(crate) edns: bool,
}

impl Question {
    fn new(id: u16, host: HostName, query_type: QueryType) -> Self {
        let name = host.to_dns();
        Self {
            id,
            host,
            name,
            query_type,
            edns: true,
        }
    }

    /// RFC 1035 §4.1: one question, QR = 0, OPCODE = QUERY, RD = 1 (we are a
    /// stub and want the resolver to recurse), plus an EDNS(0) OPT record
    /// unless disabled.
    fn to_bytes(&self) -> Vec<u8> {
        let mut message = Message::new(self.id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(
            self.name.clone(),
            self.query_type.record_type(),
        ));
        if self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_UDP_PAYLOAD);
            message.set_edns(edns);
        }
        // Encoding a header, one question with a validated name of at most
        // 255 octets and an OPT record into a growable Vec cannot fail: the
        // encoder only fails on names or counts that cannot be represented.
        message
            .to_vec()
            .expect("a one-question query always encodes")
    }

    fn to_tcp_bytes(&self) -> Vec<u8> {
        let message = self.to_bytes();
        let mut out = Vec::with_capacity(message.len() + 2);
        // A one-question query is far below 65535 octets.
        write_tcp_frame(&message, &mut out).expect("a query fits in a TCP frame");
        out
    }
}

/// An MX query for a domain (RFC 5321 §5.1), and the judge of its answer.
///
/// Keep it until the answer arrives: [`MxQuery::decode`] checks the answer
/// against this id and question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxQuery(Question);

impl MxQuery {
    /// An MX query for `domain` with the caller's message `id`.
    ///
    /// The id should be unpredictable (RFC 5452 §9.2); it is an argument
    /// because the core draws no random numbers.
    pub fn new(id: u16, domain: &str) -> Result<Self, HostNameError> {
        Ok(Self::for_host(id, HostName::parse(domain)?))
    }

    /// An MX query for an already validated domain.
    pub fn for_host(id: u16, domain: HostName) -> Self {
        Self(Question::new(id, domain, QueryType::Mx))
    }

    /// Leaves out the EDNS(0) OPT record, for a server that answers FORMERR
    /// to it (RFC 6891 §7). Answers over UDP are then limited to 512 octets.
    #[must_use]
    pub fn without_edns(mut self) -> Self {
        self.0.edns = false;
        self
    }

    /// The message id.
    pub fn id(&self) -> u16 {
        self.0.id
    }

    /// The domain asked about.
    pub fn domain(&self) -> &HostName {
        &self.0.host
    }

    /// The query as one DNS message, for a UDP datagram.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// The query with its two-octet length prefix, for DNS over TCP
    /// (RFC 1035 §4.2.2).
    pub fn to_tcp_bytes(&self) -> Vec<u8> {
        self.0.to_tcp_bytes()
    }

    /// Judges an answer message (without TCP length prefix).
    ///
    /// `seed` orders MX records of equal preference (RFC 5321 §5.1); the same
    /// answer and seed always give the same order. See [`MxAnswer`] for the
    /// outcomes and [`AnswerError`] for answers that cannot be used.
    pub fn decode(&self, answer: &[u8], seed: u64) -> Result<MxAnswer, AnswerError> {
        answer::decode_mx(&self.0, answer, seed)
    }
}

/// An A or AAAA query for one host, and the judge of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressQuery(Question);

impl AddressQuery {
    /// An A (IPv4) query for `host` with the caller's message `id`.
    pub fn a(id: u16, host: &str) -> Result<Self, HostNameError> {
        Ok(Self::for_host(id, HostName::parse(host)?, QueryType::A))
    }

    /// An AAAA (IPv6) query for `host` with the caller's message `id`.
    pub fn aaaa(id: u16, host: &str) -> Result<Self, HostNameError> {
        Ok(Self::for_host(id, HostName::parse(host)?, QueryType::Aaaa))
    }

    /// An address query for a validated host; `query_type` must be
    /// [`QueryType::A`] or [`QueryType::Aaaa`], anything else asks for A.
    pub fn for_host(id: u16, host: HostName, query_type: QueryType) -> Self {
        let query_type = match query_type {
            QueryType::Aaaa => QueryType::Aaaa,
            _ => QueryType::A,
        };
        Self(Question::new(id, host, query_type))
    }

    /// Leaves out the EDNS(0) OPT record (see [`MxQuery::without_edns`]).
    #[must_use]
    pub fn without_edns(mut self) -> Self {
        self.0.edns = false;
        self
    }

    /// The message id.
    pub fn id(&self) -> u16 {
        self.0.id
    }

    /// The host asked about.
    pub fn host(&self) -> &HostName {
        &self.0.host
    }

    /// [`QueryType::A`] or [`QueryType::Aaaa`].
    pub fn query_type(&self) -> QueryType {
        self.0.query_type
    }

    /// The query as one DNS message, for a UDP datagram.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// The query with its two-octet length prefix, for DNS over TCP.
    pub fn to_tcp_bytes(&self) -> Vec<u8> {
        self.0.to_tcp_bytes()
    }

    /// Judges an answer message (without TCP length prefix).
    pub fn decode(&self, answer: &[u8]) -> Result<AddressAnswer, AnswerError> {
        answer::decode_addresses(&self.0, answer)
    }
}

/// A message too long for the two-octet length of a TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("DNS message of {0} octets exceeds the 65535-octet TCP frame limit")]
pub struct FrameTooLong(pub usize);

/// Appends `message` to `out` with its two-octet big-endian length prefix
/// (RFC 1035 §4.2.2, RFC 7766 §8).
pub fn write_tcp_frame(message: &[u8], out: &mut Vec<u8>) -> Result<(), FrameTooLong> {
    let len = u16::try_from(message.len()).map_err(|_| FrameTooLong(message.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// The result of looking for one DNS message at the start of a TCP stream
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TcpFrame<'a> {
    /// A whole message is buffered.
    Complete {
        /// The message, without its length prefix.
        message: &'a [u8],
        /// Octets to drop from the front of the buffer (prefix + message).
        consumed: usize,
    },
    /// The frame is not complete yet.
    Incomplete {
        /// The buffer must hold at least this many octets in all before
        /// the frame is complete (2 while the prefix itself is incomplete).
        needed: usize,
    },
}

/// Finds the first length-prefixed message in a TCP receive buffer
/// (RFC 1035 §4.2.2). The frame can never exceed 65537 octets, so a reader
/// that buffers only up to `needed` is bounded.
pub fn parse_tcp_frame(buf: &[u8]) -> TcpFrame<'_> {
    let Some((prefix, rest)) = buf.split_first_chunk::<2>() else {
        return TcpFrame::Incomplete { needed: 2 };
    };
    let len = usize::from(u16::from_be_bytes(*prefix));
    match rest.get(..len) {
        Some(message) => TcpFrame::Complete {
            message,
            consumed: len + 2,
        },
        None => TcpFrame::Incomplete { needed: len + 2 },
    }
}
