//! The test support itself: the fake DNS server answers as its table says,
//! the scripted server says what its script says (over TLS too), and every
//! row of the MX scenario table can be staged on loopback. The transports'
//! tests rely on these; a support bug must show here, not as a puzzling
//! transport failure.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{RData, Record};
use smtp_proto::tls::rustls::{ClientConnection, StreamOwned};
use smtp_proto::tls::{TlsConfig, server_name};
use smtp_tests::fake_dns::{self, Answer, FakeDns, RecordType, addr, mx, txt};
use smtp_tests::mx_scenarios::{
    Certificate, HostRecords, Listener, MxRecords, SCENARIOS, Scenario, StartTls, loopback,
};
use smtp_tests::mx_stage::{Stage, dns_entries, domain};
use smtp_tests::pki::TestCa;
use smtp_tests::scripted::{Behaviour, Handshake, Script, ScriptedServer, Starttls};

const BOUND: Duration = Duration::from_secs(5);

// ---- a minimal DNS client ----------------------------------------------------

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(fake_dns::name(name), rtype));
    message.to_vec().unwrap()
}

/// Asks over UDP; `None` when no answer came within `wait`.
fn ask_udp(server: SocketAddr, name: &str, rtype: RecordType, wait: Duration) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(&query(name, rtype, 4711), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

fn ask_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let request = query(name, rtype, 4712);
    let len = u16::try_from(request.len()).unwrap().to_be_bytes();
    stream.write_all(&len).unwrap();
    stream.write_all(&request).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut response).unwrap();
    Message::from_vec(&response).unwrap()
}

fn answers(message: &Message) -> Vec<RData> {
    message
        .answers
        .iter()
        .map(|r: &Record| r.data.clone())
        .collect()
}

#[test]
fn fake_dns_answers_from_its_table() {
    let dns = FakeDns::start_with(
        vec![
            (
                "example.org",
                RecordType::MX,
                Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
            ),
            (
                "example.org",
                RecordType::TXT,
                Answer::records(vec![txt("example.org", &["v=spf1 -all"])]),
            ),
            (
                "mx.example.org",
                RecordType::AAAA,
                Answer::records(vec![addr("mx.example.org", "2001:db8::25")]),
            ),
            ("refusing.example", RecordType::MX, Answer::Refused),
            ("broken.example", RecordType::MX, Answer::ServFail),
        ],
        Answer::NxDomain,
    );
    let mx_answer = ask_udp(dns.addr(), "example.org", RecordType::MX, BOUND).unwrap();
    assert_eq!(mx_answer.metadata.id, 4711);
    assert_eq!(mx_answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&mx_answer).len(), 1);
    let txt_answer = ask_udp(dns.addr(), "EXAMPLE.org", RecordType::TXT, BOUND).unwrap();
    match answers(&txt_answer).as_slice() {
        [RData::TXT(t)] => assert_eq!(t.to_string(), "v=spf1 -all"),
        other => panic!("{other:?}"),
    }
    let aaaa = ask_udp(dns.addr(), "mx.example.org", RecordType::AAAA, BOUND).unwrap();
    assert!(matches!(answers(&aaaa).as_slice(), [RData::AAAA(_)]));
    // A listed name asked for another type: no data, not NXDOMAIN.
    let a = ask_udp(dns.addr(), "mx.example.org", RecordType::A, BOUND).unwrap();
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.answers.is_empty());
    // A name not listed at all: the answer for unlisted names.
    let gone = ask_udp(dns.addr(), "gone.example", RecordType::A, BOUND).unwrap();
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    let refused = ask_udp(dns.addr(), "refusing.example", RecordType::MX, BOUND).unwrap();
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let broken = ask_udp(dns.addr(), "broken.example", RecordType::MX, BOUND).unwrap();
    assert_eq!(broken.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(dns.udp_queries(), 7);
    // By default a name not listed gets no data.
    let open = FakeDns::start(Vec::new());
    let empty = ask_udp(open.addr(), "any.example", RecordType::MX, BOUND).unwrap();
    assert_eq!(empty.metadata.response_code, ResponseCode::NoError);
    assert!(empty.answers.is_empty());
}

#[test]
fn fake_dns_truncates_over_udp_spoofs_and_keeps_silent() {
    let records = Answer::records(vec![mx("big.example", 10, "mx.big.example")]);
    let dns = FakeDns::start(vec![
        (
            "big.example",
            RecordType::MX,
            Answer::Truncated(Box::new(records.clone())),
        ),
        (
            "spoofed.example",
            RecordType::MX,
            Answer::SpoofedFirst(Box::new(records)),
        ),
        ("slow.example", RecordType::MX, Answer::Silent),
    ]);
    let udp = ask_udp(dns.addr(), "big.example", RecordType::MX, BOUND).unwrap();
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = ask_tcp(dns.addr(), "big.example", RecordType::MX);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 1);
    assert_eq!(dns.tcp_queries(), 1);
    // The first datagram has the wrong id.
    let spoofed = ask_udp(dns.addr(), "spoofed.example", RecordType::MX, BOUND).unwrap();
    assert_ne!(spoofed.metadata.id, 4711);
    // Silence is silence (the wait is the bound of this check).
    let silent = ask_udp(
        dns.addr(),
        "slow.example",
        RecordType::MX,
        Duration::from_millis(200),
    );
    assert!(silent.is_none());
}

// ---- a minimal SMTP client ---------------------------------------------------

/// Reads one reply (all its lines).
fn reply(input: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).unwrap() == 0 {
            return lines;
        }
        let line = line.trim_end().to_owned();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return lines;
        }
    }
}

/// Sends `command` and reads the reply.
fn cmd<S: Read + Write>(conn: &mut BufReader<S>, command: &str) -> Vec<String> {
    conn.get_mut()
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    conn.get_mut().flush().unwrap();
    reply(conn)
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(BOUND)).unwrap();
    BufReader::new(tcp)
}

fn tls_client(ca: &TestCa, host: &str, tcp: TcpStream) -> StreamOwned<ClientConnection, TcpStream> {
    tls_client_with(&ca.client_config(), host, tcp)
}

fn tls_client_with(
    config: &TlsConfig,
    host: &str,
    tcp: TcpStream,
) -> StreamOwned<ClientConnection, TcpStream> {
    let conn = ClientConnection::new(
        Arc::clone(config.client_config()),
        server_name(host).unwrap(),
    )
    .unwrap();
    StreamOwned::new(conn, tcp)
}

#[test]
fn a_scripted_server_plays_its_script() {
    let script = Script {
        rcpt: vec![("<grey@".into(), "450 4.2.0 greylisted".into())],
        ..Script::accept()
    };
    let server = ScriptedServer::start("127.0.0.1", 0, script);
    let mut c = connect(server.addr());
    assert_eq!(reply(&mut c), ["220 fake.test ESMTP"]);
    let ehlo = cmd(&mut c, "EHLO client.test");
    assert_eq!(
        ehlo,
        [
            "250-fake.test",
            "250-PIPELINING",
            "250-8BITMIME",
            "250 SIZE 10000000"
        ]
    );
    assert_eq!(
        cmd(&mut c, "STARTTLS")[0],
        "502 5.5.1 STARTTLS not available"
    );
    assert_eq!(
        cmd(&mut c, "RCPT TO:<a@example.net>")[0],
        "503 5.5.1 MAIL first"
    );
    assert_eq!(cmd(&mut c, "MAIL FROM:<s@example.org>")[0], "250 2.1.0 ok");
    assert_eq!(
        cmd(&mut c, "RCPT TO:<grey@example.net>")[0],
        "450 4.2.0 greylisted"
    );
    assert_eq!(cmd(&mut c, "DATA")[0], "554 5.5.1 no valid recipients");
    assert_eq!(cmd(&mut c, "RCPT TO:<ok@example.net>")[0], "250 2.1.5 ok");
    assert_eq!(cmd(&mut c, "DATA")[0], "354 go ahead");
    assert_eq!(cmd(&mut c, "..dot\r\nline\r\n.")[0], "250 2.0.0 queued");
    assert_eq!(cmd(&mut c, "RSET")[0], "250 2.0.0 ok");
    assert_eq!(cmd(&mut c, "QUIT")[0], "221 2.0.0 bye");
    assert!(server.wait_until(BOUND, |s| s.open == 0));
    let stats = server.stats();
    assert_eq!(
        (stats.connections, stats.messages, stats.rsets, stats.quits),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.recipients.len(), 3);
    let message = &stats.delivered[0];
    assert_eq!(message.mail, "MAIL FROM:<s@example.org>");
    assert_eq!(message.rcpt, ["RCPT TO:<ok@example.net>"]);
    assert_eq!(message.body, b".dot\r\nline\r\n");
    assert!(!message.tls);
}

#[test]
fn a_scripted_server_refuses_as_told() {
    let busy = ScriptedServer::start("127.0.0.1", 0, Script::greeting("421 4.3.2 busy"));
    let mut c = connect(busy.addr());
    assert_eq!(reply(&mut c), ["421 4.3.2 busy"]);
    assert!(reply(&mut c).is_empty(), "closed after 421");

    let no_service = ScriptedServer::start("127.0.0.1", 0, Script::greeting("554 5.7.1 no"));
    let mut c = connect(no_service.addr());
    reply(&mut c);
    assert_eq!(
        cmd(&mut c, "EHLO client.test")[0],
        "503 5.5.1 no SMTP service here"
    );
    assert_eq!(cmd(&mut c, "QUIT")[0], "221 2.0.0 bye");

    let silent = ScriptedServer::start("127.0.0.1", 0, Behaviour::Silent);
    let mut c = connect(silent.addr());
    c.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut line = String::new();
    assert!(c.read_line(&mut line).is_err(), "no greeting: {line:?}");
    drop(c);
    assert!(silent.wait_until(BOUND, |s| s.open == 0 && s.connections == 1));
}

#[test]
fn a_scripted_server_speaks_tls_or_aborts_the_handshake() {
    let ca = TestCa::new();
    let leaf = ca.issue(&["mx.example.net"]);
    let script = Script {
        starttls: Starttls::Offered(Handshake::With(leaf.server_config())),
        ..Script::accept()
    };
    let server = ScriptedServer::start("127.0.0.1", 0, script);
    let mut c = connect(server.addr());
    reply(&mut c);
    assert!(cmd(&mut c, "EHLO client.test").contains(&"250 STARTTLS".to_owned()));
    assert_eq!(cmd(&mut c, "STARTTLS")[0], "220 2.0.0 ready to start TLS");
    let tls = tls_client(&ca, "mx.example.net", c.into_inner());
    let mut c = BufReader::new(tls);
    let ehlo = cmd(&mut c, "EHLO client.test");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    cmd(&mut c, "MAIL FROM:<s@example.org>");
    cmd(&mut c, "RCPT TO:<r@example.net>");
    cmd(&mut c, "DATA");
    assert_eq!(cmd(&mut c, "secret\r\n.")[0], "250 2.0.0 queued");
    cmd(&mut c, "QUIT");
    assert!(server.wait_until(BOUND, |s| s.open == 0));
    assert!(server.delivered()[0].tls);
    assert_eq!(server.stats().handshakes, 1);

    // Implicit TLS that the server aborts: the client's handshake fails.
    let aborting = Script {
        implicit_tls: Some(Handshake::Aborted),
        ..Script::accept()
    };
    let server = ScriptedServer::start("127.0.0.1", 0, aborting);
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(BOUND)).unwrap();
    let mut tls = tls_client(&ca, "mx.example.net", tcp);
    let mut byte = [0u8; 1];
    let error: io::Error = tls.read(&mut byte).unwrap_err();
    assert!(error.to_string().contains("HandshakeFailure"), "{error}");
}

// ---- the MX scenario table on loopback ---------------------------------------

#[test]
fn every_scenario_can_be_staged() {
    let mut certificates_checked = Vec::new();
    for scenario in SCENARIOS {
        let name = scenario.name;
        let stage = Stage::start(scenario);
        // The MX question is answered as the zone says.
        let domain = domain(scenario);
        let wait = Duration::from_millis(300);
        let literal = domain.starts_with('[');
        let answer = (!literal)
            .then(|| ask_udp(stage.dns.addr(), domain, RecordType::MX, wait))
            .flatten();
        match scenario.zone.mx {
            _ if literal => assert!(dns_entries(scenario).iter().all(|e| e.1 != RecordType::MX)),
            MxRecords::Silent => assert!(answer.is_none(), "{name}"),
            mx_records => {
                let answer = answer.unwrap_or_else(|| panic!("{name}: no MX answer"));
                let (rcode, truncated, count) = match mx_records {
                    MxRecords::Records(r) => (ResponseCode::NoError, false, r.len()),
                    MxRecords::TruncatedThen(_) => (ResponseCode::NoError, true, 0),
                    MxRecords::NoRecords => (ResponseCode::NoError, false, 0),
                    MxRecords::Null => (ResponseCode::NoError, false, 1),
                    MxRecords::NxDomain => (ResponseCode::NXDomain, false, 0),
                    MxRecords::ServFail | MxRecords::Silent => (ResponseCode::ServFail, false, 0),
                };
                assert_eq!(answer.metadata.response_code, rcode, "{name}");
                assert_eq!(answer.metadata.truncation, truncated, "{name}");
                assert_eq!(answer.answers.len(), count, "{name}");
            }
        }
        // Every host's A question carries loopback addresses.
        for (host, records) in scenario.zone.hosts {
            let a = ask_udp(stage.dns.addr(), host, RecordType::A, wait).unwrap();
            if let HostRecords::Addresses(ips) = records {
                let got: Vec<String> = answers(&a).iter().map(|d| d.to_string()).collect();
                let want: Vec<String> = ips.iter().map(|ip| loopback(ip).to_string()).collect();
                assert_eq!(got, want, "{name}: {host}");
            }
        }
        // Every SMTP server greets as listed, on the stage's port; every
        // other address refuses.
        for server in scenario.servers {
            let at = SocketAddr::from((loopback(server.address), stage.port()));
            match server.listener {
                Listener::Smtp(smtp) => {
                    assert!(stage.server(server.address).is_some(), "{name}");
                    if scenario.tls.mode() == smtp_proto::TlsMode::Implicit {
                        continue;
                    }
                    let mut c = connect(at);
                    assert_eq!(reply(&mut c), [smtp.greeting], "{name}");
                    if let StartTls::Offered(certificate) = smtp.starttls {
                        drop(c);
                        check_certificate(scenario, &stage, server.address, certificate);
                        certificates_checked.push(certificate);
                    }
                }
                Listener::Closed => assert!(TcpStream::connect(at).is_err(), "{name}"),
            }
        }
    }
    for kind in [
        Certificate::Trusted,
        Certificate::Untrusted,
        Certificate::Broken,
    ] {
        assert!(
            certificates_checked.contains(&kind),
            "no {kind:?} certificate staged"
        );
    }
}

/// STARTTLS at `address`: the handshake verifying the MX host name against
/// the stage's CA succeeds exactly for a trusted certificate, and one that
/// verifies nothing exactly for a certificate that is not broken.
fn check_certificate(scenario: &Scenario, stage: &Stage, address: &str, certificate: Certificate) {
    let host = scenario
        .zone
        .hosts
        .iter()
        .find(|(_, r)| matches!(r, HostRecords::Addresses(ips) if ips.contains(&address)))
        .map_or(address, |(host, _)| *host);
    let at = SocketAddr::from((loopback(address), stage.port()));
    let verifying = TlsConfig::builder()
        .ca_pem(stage.ca_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let any = TlsConfig::builder()
        .dangerous_accept_any_certificate()
        .build()
        .unwrap();
    let starttls = |config: &TlsConfig| -> io::Result<Vec<String>> {
        let mut c = connect(at);
        reply(&mut c);
        cmd(&mut c, "EHLO client.test");
        let ready = cmd(&mut c, "STARTTLS");
        assert!(ready[0].starts_with("220"), "{ready:?}");
        let mut tls = BufReader::new(tls_client_with(config, host, c.into_inner()));
        tls.get_mut().write_all(b"EHLO client.test\r\n")?;
        tls.get_mut().flush()?;
        let mut line = String::new();
        tls.read_line(&mut line)?;
        Ok(vec![line])
    };
    let name = scenario.name;
    let verified = starttls(&verifying);
    let unverified = starttls(&any);
    assert_eq!(
        verified.is_ok(),
        certificate == Certificate::Trusted,
        "{name}: {address} verified: {verified:?}"
    );
    assert_eq!(
        unverified.is_ok(),
        certificate != Certificate::Broken,
        "{name}: {address} unverified: {unverified:?}"
    );
}
