//! A fake DNS server on 127.0.0.1 (UDP and TCP on one port), answering from
//! a table, for the transports' resolvers and MX delivery.
//!
//! Each entry answers one question (a name and a record type) with an
//! [`Answer`]: records (any type hickory-proto knows: [`mx`], [`addr`] for A
//! and AAAA, [`txt`]), an error code, or a misbehaviour a resolver must
//! survive — a truncated UDP answer (the full one over TCP), silence, or
//! spoofed datagrams before the real one. A name that is not in the table
//! at all gets [`FakeDns::start`]'s NOERROR without records, or the answer
//! given to [`FakeDns::start_with`] (NXDOMAIN for a zone that lists every
//! name, as the MX scenario table does); a listed name asked for another
//! type gets NOERROR without records, as a real server answers.
//!
//! Built with hickory-proto, the core's DNS codec. The threads block on
//! their sockets and are woken when the server is dropped, so no test can
//! hang on it and none waits on a timer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_proto::rr::{Name, RData, Record};

/// The time to live of every record [`mx`], [`addr`] and [`txt`] make.
pub const TTL: u32 = 300;

/// How long a TCP client may take to send its question.
const TCP_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The pause between the two halves of a TCP answer's length prefix: the
/// answer arrives split on purpose, to exercise the client's reassembly of
/// a frame.
const SPLIT_FRAME_PAUSE: Duration = Duration::from_millis(5);

/// What the server says to a question.
#[derive(Debug, Clone)]
pub enum Answer {
    /// NOERROR with these records (answer and additional sections).
    Records {
        /// The answer section.
        answers: Vec<Record>,
        /// The additional section (e.g. address hints for MX hosts).
        additionals: Vec<Record>,
    },
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL: the server failed.
    ServFail,
    /// REFUSED: the server will not answer.
    Refused,
    /// Over UDP: the TC bit and no records. Over TCP: the inner answer.
    Truncated(Box<Self>),
    /// Never answers.
    Silent,
    /// Over UDP: first a datagram with the wrong id and one answering
    /// another question, then the inner answer (RFC 5452's spoofing
    /// attempts, which a resolver must ignore). Over TCP: the inner answer.
    SpoofedFirst(Box<Self>),
}

impl Answer {
    /// NOERROR with `answers` and no additional records.
    pub fn records(answers: Vec<Record>) -> Self {
        Self::Records {
            answers,
            additionals: Vec::new(),
        }
    }

    /// NOERROR without records ("no data").
    pub fn empty() -> Self {
        Self::records(Vec::new())
    }
}

/// A fully qualified name from `s` (without its final dot).
///
/// # Panics
///
/// When `s` is not a valid DNS name.
pub fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).expect("a valid DNS name")
}

/// An MX record of `owner`; an `exchange` of `"."` makes a null MX
/// (RFC 7505).
pub fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    let exchange = if exchange == "." {
        Name::root()
    } else {
        name(exchange)
    };
    Record::from_rdata(name(owner), TTL, RData::MX(MX::new(preference, exchange)))
}

/// An A record (for an IPv4 `ip`) or an AAAA record (for IPv6) of `owner`.
///
/// # Panics
///
/// When `ip` is not an IP address.
pub fn addr(owner: &str, ip: &str) -> Record {
    let data = match ip.parse::<IpAddr>().expect("an IP address") {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name(owner), TTL, data)
}

/// A TXT record of `owner` holding `text` (one character-string per
/// element, as SPF and DKIM records are written).
pub fn txt(owner: &str, text: &[&str]) -> Record {
    let strings = text.iter().map(|s| (*s).to_owned()).collect();
    Record::from_rdata(name(owner), TTL, RData::TXT(TXT::new(strings)))
}

/// The answers, by lower-case name and type.
#[derive(Debug)]
struct Table {
    entries: BTreeMap<(String, RecordType), Answer>,
    /// For a name with no entry at all.
    unlisted: Answer,
}

impl Table {
    fn answer(&self, name: &str, rtype: RecordType) -> Answer {
        if let Some(answer) = self.entries.get(&(name.to_owned(), rtype)) {
            return answer.clone();
        }
        if self.entries.keys().any(|(n, _)| n == name) {
            Answer::empty()
        } else {
            self.unlisted.clone()
        }
    }
}

/// The running server.
#[derive(Debug)]
pub struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
}

impl FakeDns {
    /// Starts a server answering `entries`; a name not listed gets NOERROR
    /// without records.
    pub fn start(entries: Vec<(&str, RecordType, Answer)>) -> Self {
        Self::start_with(entries, Answer::empty())
    }

    /// Starts a server answering `entries`; a name not listed gets
    /// `unlisted`.
    pub fn start_with(entries: Vec<(&str, RecordType, Answer)>, unlisted: Answer) -> Self {
        let entries = entries
            .into_iter()
            .map(|(owner, rtype, answer)| ((owner.to_ascii_lowercase(), rtype), answer))
            .collect();
        let table = Arc::new(Table { entries, unlisted });
        let (udp, tcp) = crate::net::udp_and_tcp();
        // Invariant: the socket was just bound.
        let addr = udp.local_addr().expect("bound address");
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let threads = vec![
            {
                let (table, stop, count) = (table.clone(), stop.clone(), udp_queries.clone());
                thread::spawn(move || serve_udp(&udp, &table, &stop, &count))
            },
            {
                let (table, stop, count) = (table, stop.clone(), tcp_queries.clone());
                thread::spawn(move || serve_tcp(&tcp, &table, &stop, &count))
            },
        ];
        Self {
            addr,
            stop,
            threads,
            udp_queries,
            tcp_queries,
        }
    }

    /// The server's address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Questions received over UDP so far (spoofing and truncation count
    /// once each).
    pub fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake both blocked threads: a datagram and a connection, each seen
        // after the stop flag.
        if let Ok(socket) = UdpSocket::bind("127.0.0.1:0") {
            let _ = socket.send_to(&[], self.addr);
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The response messages for one query: usually one, more when spoofing,
/// none for silence or a message that is not a query.
fn respond(table: &Table, request: &[u8], over_tcp: bool) -> Vec<Vec<u8>> {
    let Ok(request) = Message::from_vec(request) else {
        return Vec::new();
    };
    let Some(query) = request.queries.first().cloned() else {
        return Vec::new();
    };
    let name = query.name().to_ascii();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let answer = table.answer(&name, query.query_type());
    build(request.metadata.id, &query, answer, over_tcp)
}

fn build(id: u16, query: &Query, answer: Answer, over_tcp: bool) -> Vec<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Response, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.metadata.recursion_available = true;
    message.add_query(query.clone());
    match answer {
        Answer::Records {
            answers,
            additionals,
        } => {
            message.add_answers(answers);
            message.add_additionals(additionals);
        }
        Answer::NxDomain => message.metadata.response_code = ResponseCode::NXDomain,
        Answer::ServFail => message.metadata.response_code = ResponseCode::ServFail,
        Answer::Refused => message.metadata.response_code = ResponseCode::Refused,
        Answer::Truncated(inner) if over_tcp => return build(id, query, *inner, over_tcp),
        Answer::Truncated(_) => message.metadata.truncation = true,
        Answer::Silent => return Vec::new(),
        Answer::SpoofedFirst(inner) if over_tcp => return build(id, query, *inner, over_tcp),
        Answer::SpoofedFirst(inner) => {
            let mut all = build(id.wrapping_add(1), query, (*inner).clone(), over_tcp);
            let other = Query::query(name("evil.example"), query.query_type());
            all.append(&mut build(id, &other, (*inner).clone(), over_tcp));
            all.append(&mut build(id, query, *inner, over_tcp));
            return all;
        }
    }
    // Invariant: a message built from valid parts encodes.
    vec![message.to_vec().expect("an encodable message")]
}

fn serve_udp(socket: &UdpSocket, table: &Table, stop: &AtomicBool, count: &AtomicUsize) {
    let mut buf = [0u8; 4096];
    loop {
        let received = socket.recv_from(&mut buf);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((n, peer)) = received else {
            continue;
        };
        count.fetch_add(1, Ordering::SeqCst);
        for response in respond(table, buf.get(..n).unwrap_or_default(), false) {
            let _ = socket.send_to(&response, peer);
        }
    }
}

fn serve_tcp(listener: &TcpListener, table: &Table, stop: &AtomicBool, count: &AtomicUsize) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            continue;
        };
        count.fetch_add(1, Ordering::SeqCst);
        // One question per connection, answered before the next is
        // accepted: what the tests need, and bounded by the read timeout.
        let _ = serve_tcp_connection(stream, table);
    }
}

fn serve_tcp_connection(mut stream: TcpStream, table: &Table) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TCP_READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut request)?;
    for response in respond(table, &request, true) {
        let Ok(len) = u16::try_from(response.len()) else {
            continue;
        };
        let [high, low] = len.to_be_bytes();
        // The length prefix in two segments (see SPLIT_FRAME_PAUSE).
        stream.write_all(&[high])?;
        stream.flush()?;
        thread::sleep(SPLIT_FRAME_PAUSE);
        stream.write_all(&[low])?;
        stream.write_all(&response)?;
    }
    Ok(())
}
