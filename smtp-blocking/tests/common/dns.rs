//! A fake DNS server on 127.0.0.1 (UDP and TCP on one port), answering from
//! a table, built with hickory-proto. Every socket has a short timeout and
//! the threads stop when the server is dropped, so no test can hang on it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smtp_blocking::Resolver;

/// What the server says to a question.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// NOERROR with these records (answer and additional sections).
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// NXDOMAIN.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// Over UDP: the TC bit and no records. Over TCP: the inner answer.
    Truncated(Box<Self>),
    /// Never answers.
    Silent,
    /// Over UDP: first a datagram with the wrong id and one answering
    /// another question, then the inner answer.
    SpoofedFirst(Box<Self>),
}

impl Answer {
    pub(crate) fn records(answers: Vec<Record>) -> Self {
        Self::Records {
            answers,
            additionals: Vec::new(),
        }
    }
}

pub(crate) fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).unwrap()
}

pub(crate) fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    let exchange = if exchange == "." {
        Name::root()
    } else {
        name(exchange)
    };
    Record::from_rdata(name(owner), 300, RData::MX(MX::new(preference, exchange)))
}

pub(crate) fn addr(owner: &str, ip: &str) -> Record {
    let data = match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name(owner), 300, data)
}

struct Table {
    entries: HashMap<(String, RecordType), Answer>,
    /// The answer to a question not in `entries`.
    default: Answer,
}

/// The running server.
pub(crate) struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
}

impl FakeDns {
    /// Starts a server answering `entries`; other questions get NOERROR
    /// with no records.
    pub(crate) fn start(entries: Vec<(&str, RecordType, Answer)>) -> Self {
        Self::start_with(entries, Answer::records(Vec::new()))
    }

    /// Starts a server answering `entries`, and `default` to other
    /// questions.
    pub(crate) fn start_with(entries: Vec<(&str, RecordType, Answer)>, default: Answer) -> Self {
        let entries = entries
            .into_iter()
            .map(|(owner, rtype, answer)| ((owner.to_ascii_lowercase(), rtype), answer))
            .collect();
        let table = Arc::new(Table { entries, default });
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let threads = vec![
            {
                let (table, stop, count) = (table.clone(), stop.clone(), udp_queries.clone());
                thread::spawn(move || serve_udp(udp, &table, &stop, &count))
            },
            {
                let (table, stop, count) = (table, stop.clone(), tcp_queries.clone());
                thread::spawn(move || serve_tcp(tcp, &table, &stop, &count))
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

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A resolver asking only this server, with short timeouts.
    pub(crate) fn resolver(&self) -> Resolver {
        Resolver::new(vec![self.addr])
            .timeout(Duration::from_millis(300))
            .attempts(1)
    }

    pub(crate) fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    pub(crate) fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no free port for both UDP and TCP");
}

/// The response messages for one query: usually one, more when spoofing.
fn respond(table: &Table, request: &[u8], over_tcp: bool) -> Vec<Vec<u8>> {
    let Ok(request) = Message::from_vec(request) else {
        return Vec::new();
    };
    let Some(query) = request.queries.first().cloned() else {
        return Vec::new();
    };
    let id = request.metadata.id;
    let key = (
        query
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        query.query_type(),
    );
    let answer = table
        .entries
        .get(&key)
        .cloned()
        .unwrap_or_else(|| table.default.clone());
    build(id, &query, answer, over_tcp)
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
        Answer::Truncated(inner) if over_tcp => return build(id, query, *inner, over_tcp),
        Answer::Truncated(_) => message.metadata.truncation = true,
        Answer::Silent => return Vec::new(),
        Answer::SpoofedFirst(inner) => {
            let mut wrong_id = build(id.wrapping_add(1), query, (*inner).clone(), over_tcp);
            let other = Query::query(name("evil.example"), query.query_type());
            let mut wrong_question = build(id, &other, (*inner).clone(), over_tcp);
            let mut real = build(id, query, *inner, over_tcp);
            if over_tcp {
                return real;
            }
            wrong_id.append(&mut wrong_question);
            wrong_id.append(&mut real);
            return wrong_id;
        }
    }
    vec![message.to_vec().unwrap()]
}

fn serve_udp(socket: UdpSocket, table: &Table, stop: &AtomicBool, count: &AtomicUsize) {
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        count.fetch_add(1, Ordering::SeqCst);
        for response in respond(table, &buf[..n], false) {
            let _ = socket.send_to(&response, peer);
        }
    }
}

fn serve_tcp(listener: TcpListener, table: &Table, stop: &AtomicBool, count: &AtomicUsize) {
    listener.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let Ok((stream, _)) = listener.accept() else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        count.fetch_add(1, Ordering::SeqCst);
        let _ = serve_tcp_connection(stream, table);
    }
}

fn serve_tcp_connection(mut stream: TcpStream, table: &Table) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut request)?;
    for response in respond(table, &request, true) {
        let len = u16::try_from(response.len()).unwrap().to_be_bytes();
        // Split the frame to exercise the client's reassembly.
        stream.write_all(&len[..1])?;
        stream.flush()?;
        thread::sleep(Duration::from_millis(5));
        stream.write_all(&len[1..])?;
        stream.write_all(&response)?;
    }
    Ok(())
}
