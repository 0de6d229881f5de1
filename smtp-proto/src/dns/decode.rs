//! Judging a response message: is it ours, what does it say.
//!
//! Order: header (id, QR, OPCODE), question, TC, full decode, RCODE, then
//! the records. The question is checked before TC so that a truncated
//! answer to another question is still rejected, and TC before the full
//! decode because a truncated message may end in the middle of a record.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name as WireName, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::answer::{Answer, Exchange, MxRecord, Negative, Rcode, RecordData, Records, Tlsa, Txt};
use super::error::AnswerError;
use super::name::Name;
use super::question::{Question, RecordType};
use super::{MAX_CNAME_CHAIN, MAX_HINTS_PER_HOST};

/// What a response message says about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A usable answer: records, NODATA or NXDOMAIN.
    Answer(Answer),
    /// The TC bit is set: ask again over TCP.
    Truncated,
    /// Any other response code: ask another server.
    ServerFailure(Rcode),
}

/// Why a message was not taken as an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Nothing shows that the message answers the question: wrong id, not
    /// a response, another question, or a header or question section that
    /// cannot be read. Over UDP it is dropped like a spoofed datagram
    /// (RFC 5452 §9.1): a message must prove it answers before it may
    /// change anything.
    Unrelated(AnswerError),
    /// It answers the question, but what it says cannot be used.
    Unusable(AnswerError),
}

impl Rejected {
    fn into_error(self) -> AnswerError {
        match self {
            Self::Unrelated(e) | Self::Unusable(e) => e,
        }
    }
}

/// Decodes `bytes` as the response to `question` asked with message `id`.
pub(crate) fn decode(id: u16, question: &Question, bytes: &[u8]) -> Result<Decoded, AnswerError> {
    judge(id, question, bytes).map_err(Rejected::into_error)
}

/// [`decode`], telling unrelated messages from unusable answers.
pub(crate) fn judge(id: u16, question: &Question, bytes: &[u8]) -> Result<Decoded, Rejected> {
    let unusable = Rejected::Unusable;
    let qname = question.name().to_wire();
    let mut decoder = BinDecoder::new(bytes);
    let header = Header::read(&mut decoder)
        .map_err(|e| Rejected::Unrelated(AnswerError::Malformed(format!("header: {e}"))))?;
    let meta = header.metadata;
    if meta.id != id {
        return Err(Rejected::Unrelated(AnswerError::IdMismatch {
            expected: id,
            found: meta.id,
        }));
    }
    if meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
        return Err(Rejected::Unrelated(AnswerError::NotAResponse));
    }
    match header.counts.queries {
        1 => match Query::read(&mut decoder) {
            Ok(echo) => {
                if !echo.name().eq_ignore_root(&qname)
                    || echo.query_type() != question.record_type().to_wire()
                    || echo.query_class() != DNSClass::IN
                {
                    return Err(Rejected::Unrelated(AnswerError::QuestionMismatch));
                }
            }
            Err(_) if meta.truncation => return Ok(Decoded::Truncated),
            Err(e) => {
                return Err(Rejected::Unrelated(AnswerError::Malformed(format!(
                    "question: {e}"
                ))));
            }
        },
        // Some servers send FORMERR, SERVFAIL, NOTIMP or REFUSED without the
        // question. Such an answer can only make the try fail, so accepting
        // it gives a spoofer nothing; an answer that could decide the
        // outcome (NOERROR, NXDOMAIN) must carry the question.
        0 if !matches!(
            meta.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        ) => {}
        _ => return Err(Rejected::Unrelated(AnswerError::QuestionMismatch)),
    }
    if meta.truncation {
        return Ok(Decoded::Truncated);
    }
    let message =
        Message::from_vec(bytes).map_err(|e| unusable(AnswerError::Malformed(e.to_string())))?;
    // from_vec merges the EDNS extended RCODE bits into the header's.
    let nxdomain = match message.metadata.response_code {
        ResponseCode::NoError => false,
        ResponseCode::NXDomain => true,
        other => return Ok(Decoded::ServerFailure(Rcode(u16::from(other)))),
    };
    let chain = canonical_name(&message.answers, &qname).map_err(unusable)?;
    let name = Name::from_wire(&chain.name).map_err(|reason| {
        unusable(AnswerError::InvalidHostName {
            name: chain.name.to_ascii(),
            reason,
        })
    })?;
    if nxdomain {
        return Ok(Decoded::Answer(Answer::NxDomain(Negative {
            name,
            ttl: negative_ttl(&message),
        })));
    }
    let records: Vec<&Record> = message
        .answers
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN && r.name.eq_ignore_root(&chain.name))
        .filter(|r| r.data.record_type() == question.record_type().to_wire())
        .collect();
    let data = extract(question.record_type(), &records, &message);
    if data.is_empty() {
        return Ok(Decoded::Answer(Answer::NoData(Negative {
            name,
            ttl: negative_ttl(&message),
        })));
    }
    let ttl = records
        .iter()
        .map(|r| ttl_of(r))
        .chain([chain.ttl])
        .min()
        .unwrap_or(0);
    Ok(Decoded::Answer(Answer::Records(Records {
        name,
        ttl,
        data,
    })))
}

/// A record's TTL as a cache may use it: RFC 2181 §8 makes a value with the
/// top bit set mean zero.
fn ttl_of(record: &Record) -> u32 {
    if record.ttl > i32::MAX as u32 {
        0
    } else {
        record.ttl
    }
}

/// The negative-caching TTL of RFC 2308 §5: the smaller of the SOA record's
/// TTL and its MINIMUM field; `None` without an SOA in the authority section
/// (RFC 2308 §5: such an answer SHOULD NOT be cached).
fn negative_ttl(message: &Message) -> Option<u32> {
    message
        .authorities
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(ttl_of(r).min(soa.minimum)),
            _ => None,
        })
}

/// The end of a CNAME chain and the smallest TTL along it.
struct Chain {
    name: WireName,
    ttl: u32,
}

/// Follows the CNAME chain from `start` through the answer section (RFC 1034
/// §3.6.2, RFC 5321 §5.1: "If a CNAME record is found, the resulting name is
/// processed as if it were the initial name").
fn canonical_name(answers: &[Record], start: &WireName) -> Result<Chain, AnswerError> {
    let mut current = start.clone();
    let mut ttl = u32::MAX;
    let mut seen = vec![start.clone()];
    loop {
        let mut links = answers
            .iter()
            .filter(|r| r.dns_class == DNSClass::IN && r.name.eq_ignore_root(&current))
            .filter_map(|r| match &r.data {
                RData::CNAME(target) => Some((&target.0, ttl_of(r))),
                _ => None,
            });
        let Some((target, link_ttl)) = links.next() else {
            return Ok(Chain { name: current, ttl });
        };
        // RFC 2181 §10.1: a name has at most one CNAME. Repeats of the same
        // record are harmless; two different targets leave the answer open.
        if links.any(|(other, _)| !other.eq_ignore_root(target)) {
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
        ttl = ttl.min(link_ttl);
        current = target.clone();
        seen.push(current.clone());
    }
}

/// The typed records of `question_type` among `records` (already filtered
/// to the owner, class and type), duplicates removed.
fn extract(question_type: RecordType, records: &[&Record], message: &Message) -> RecordData {
    match question_type {
        RecordType::Mx => {
            let hints = address_hints(message);
            let mut seen = BTreeSet::new();
            let mut out: Vec<MxRecord> = Vec::new();
            for record in records {
                let RData::MX(mx) = &record.data else {
                    continue;
                };
                let exchange = if mx.exchange.is_root() {
                    Exchange::Root
                } else {
                    match Name::from_wire(&mx.exchange) {
                        Ok(name) => Exchange::Name(name),
                        Err(reason) => Exchange::Invalid {
                            text: mx.exchange.to_ascii(),
                            reason,
                        },
                    }
                };
                if !seen.insert((mx.preference, exchange.clone())) {
                    continue;
                }
                let addresses = match &exchange {
                    Exchange::Name(name) => hints.get(name).cloned().unwrap_or_default(),
                    _ => Vec::new(),
                };
                out.push(MxRecord {
                    preference: mx.preference,
                    exchange,
                    addresses,
                });
            }
            RecordData::Mx(out)
        }
        RecordType::A | RecordType::Aaaa => {
            let mut seen = BTreeSet::new();
            let addresses = records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                })
                .filter(|ip| seen.insert(*ip))
                .collect();
            RecordData::Addresses(addresses)
        }
        RecordType::Txt => {
            let mut seen = BTreeSet::new();
            let mut out: Vec<Txt> = Vec::new();
            for record in records {
                if let RData::TXT(txt) = &record.data
                    && seen.insert(&txt.txt_data)
                {
                    out.push(Txt::new(txt.txt_data.to_vec()));
                }
            }
            RecordData::Txt(out)
        }
        RecordType::Tlsa => {
            let mut seen = BTreeSet::new();
            let mut out: Vec<Tlsa> = Vec::new();
            for record in records {
                if let RData::TLSA(tlsa) = &record.data {
                    let tlsa = Tlsa {
                        usage: tlsa.cert_usage.into(),
                        selector: tlsa.selector.into(),
                        matching_type: tlsa.matching.into(),
                        data: tlsa.cert_data.clone(),
                    };
                    if seen.insert(tlsa.clone()) {
                        out.push(tlsa);
                    }
                }
            }
            RecordData::Tlsa(out)
        }
        RecordType::Ptr => {
            let mut seen = BTreeSet::new();
            let mut out: Vec<Name> = Vec::new();
            for record in records {
                if let RData::PTR(ptr) = &record.data
                    && let Ok(name) = Name::from_wire(&ptr.0)
                    && seen.insert(name.clone())
                {
                    out.push(name);
                }
            }
            RecordData::Ptr(out)
        }
    }
}

/// A and AAAA records of the answer and additional sections, by owner, at
/// most [`MAX_HINTS_PER_HOST`] per owner.
fn address_hints(message: &Message) -> BTreeMap<Name, Vec<IpAddr>> {
    let mut hints: BTreeMap<Name, Vec<IpAddr>> = BTreeMap::new();
    for record in message.answers.iter().chain(&message.additionals) {
        if record.dns_class != DNSClass::IN {
            continue;
        }
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
            _ => continue,
        };
        let Ok(owner) = Name::from_wire(&record.name) else {
            continue;
        };
        let list = hints.entry(owner).or_default();
        if list.len() < MAX_HINTS_PER_HOST && !list.contains(&ip) {
            list.push(ip);
        }
    }
    hints
}
