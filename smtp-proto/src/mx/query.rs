//! MX and address queries for one delivery: a message id and a question,
//! encoded and judged through [`crate::dns`].

pub use crate::dns::{EDNS_UDP_PAYLOAD, FrameTooLong, TcpFrame, parse_tcp_frame, write_tcp_frame};
use crate::dns::{Question, RecordType};

use super::answer::{self, AddressAnswer, AnswerError, MxAnswer};
use super::name::{HostName, HostNameError};

/// The kind of records a delivery query asks for: the three that routing
/// needs. Other questions (TXT, TLSA, PTR) are [`crate::dns::RecordType`]s.
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
    /// The DNS record type asked for.
    pub fn record_type(self) -> RecordType {
        match self {
            Self::Mx => RecordType::Mx,
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::Aaaa,
        }
    }

    /// The question for `host`.
    pub fn question(self, host: &HostName) -> Question {
        Question::new(host.to_name(), self.record_type())
    }
}

impl From<QueryType> for RecordType {
    fn from(query_type: QueryType) -> Self {
        query_type.record_type()
    }
}

/// The TCP form of a query message: the two-octet length first.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    // A one-question query is far below 65535 octets.
    write_tcp_frame(message, &mut out).expect("a query fits in a TCP frame");
    out
}

/// An MX query for a domain (RFC 5321 §5.1), and the judge of its answer.
///
/// Keep it until the answer arrives: [`MxQuery::decode`] checks the answer
/// against this id and question. A transport that lets
/// [`crate::dns::Resolver`] do the asking needs only
/// [`MxAnswer::from_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxQuery {
    id: u16,
    domain: HostName,
    edns: bool,
}

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
        Self {
            id,
            domain,
            edns: true,
        }
    }

    /// Leaves out the EDNS(0) OPT record, for a server that answers FORMERR
    /// to it (RFC 6891 §7). Answers over UDP are then limited to 512 octets.
    #[must_use]
    pub fn without_edns(mut self) -> Self {
        self.edns = false;
        self
    }

    /// The message id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The domain asked about.
    pub fn domain(&self) -> &HostName {
        &self.domain
    }

    /// The question asked.
    pub fn question(&self) -> Question {
        QueryType::Mx.question(&self.domain)
    }

    /// The query as one DNS message, for a UDP datagram.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.question().to_query(self.id, self.edns)
    }

    /// The query with its two-octet length prefix, for DNS over TCP
    /// (RFC 1035 §4.2.2).
    pub fn to_tcp_bytes(&self) -> Vec<u8> {
        framed(&self.to_bytes())
    }

    /// Judges an answer message (without TCP length prefix).
    ///
    /// `seed` orders MX records of equal preference (RFC 5321 §5.1); the same
    /// answer and seed always give the same order. See [`MxAnswer`] for the
    /// outcomes and [`AnswerError`] for answers that cannot be used.
    pub fn decode(&self, answer: &[u8], seed: u64) -> Result<MxAnswer, AnswerError> {
        answer::decode_mx(self.id, &self.question(), answer, seed)
    }
}

/// An A or AAAA query for one host, and the judge of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressQuery {
    id: u16,
    host: HostName,
    query_type: QueryType,
    edns: bool,
}

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
        Self {
            id,
            host,
            query_type,
            edns: true,
        }
    }

    /// Leaves out the EDNS(0) OPT record (see [`MxQuery::without_edns`]).
    #[must_use]
    pub fn without_edns(mut self) -> Self {
        self.edns = false;
        self
    }

    /// The message id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The host asked about.
    pub fn host(&self) -> &HostName {
        &self.host
    }

    /// [`QueryType::A`] or [`QueryType::Aaaa`].
    pub fn query_type(&self) -> QueryType {
        self.query_type
    }

    /// The question asked.
    pub fn question(&self) -> Question {
        self.query_type.question(&self.host)
    }

    /// The query as one DNS message, for a UDP datagram.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.question().to_query(self.id, self.edns)
    }

    /// The query with its two-octet length prefix, for DNS over TCP.
    pub fn to_tcp_bytes(&self) -> Vec<u8> {
        framed(&self.to_bytes())
    }

    /// Judges an answer message (without TCP length prefix).
    pub fn decode(&self, answer: &[u8]) -> Result<AddressAnswer, AnswerError> {
        answer::decode_addresses(self.id, &self.question(), answer)
    }
}
