//! The shared MX scenario table (`smtp_tests::mx_scenarios`) run against the
//! mio delivery engine over loopback: for every scenario, a fake DNS server
//! serves its zone, scripted SMTP servers listen on the loopback addresses
//! it lists (`loopback` maps 192.0.2.N to 127.0.0.N, all on one port, which
//! is the engine's MX port), the engine delivers one job by MX, and the
//! per-recipient results must pass the table's own check. The engine decides
//! nothing itself (it follows `smtp_proto::mx::Walk`); this shows that it
//! follows the walk over real sockets, as the table's model transport does
//! in memory.
//!
//! Every wait is bounded: the servers' sockets have timeouts, the engine's
//! loop gives up after [`LIMIT`] per scenario, and nothing sleeps.

#[allow(dead_code)]
#[path = "../../smtp-blocking/tests/common/dns.rs"]
mod fake_dns;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use fake_dns::{Answer, FakeDns};
use hickory_proto::rr::RecordType;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use smtp_mio::delivery::{Engine, EngineConfig, Failure, Job, MxRouting, RecipientReport, Status};
use smtp_proto::TlsMode;
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::{Envelope, Outcome, Timeouts};
use smtp_proto::dns::ResolverConfig;
use smtp_proto::tls::{TlsConfig, TlsIdentity};
use smtp_tests::mx_scenarios::{
    Cause, Certificate, HostRecords, Listener, MxRecords, Observed, RCPT_OK, SCENARIOS, Scenario,
    Smtp, StartTls, from_loopback, loopback,
};

/// Upper bound on one scenario's delivery.
const LIMIT: Duration = Duration::from_secs(30);

/// The scripted servers' socket timeouts: a stuck client ends the thread.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn every_scenario_of_the_table() {
    let pki = Pki::new();
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        if let Err(problem) = run(scenario, &pki) {
            failures.push(problem);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n")
    );
}

/// Runs one scenario and checks it against the table.
fn run(scenario: &Scenario, pki: &Pki) -> Result<(), String> {
    let dns = FakeDns::start(zone(scenario));
    let (port, _servers) = start_servers(scenario, pki);
    let mut resolver = ResolverConfig::new(vec![dns.addr()]);
    resolver.timeout = Duration::from_millis(300);
    resolver.attempts = 1;
    let mut mx = MxRouting::new(resolver);
    mx.port = port;
    mx.walk.tls = scenario.tls;
    let mut config = EngineConfig::mx(mx);
    config.tls = TlsConfig::builder()
        .ca_pem(pki.ca_pem.as_bytes())
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    config.timeouts = timeouts(Duration::from_secs(5));
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    let recipients: Vec<ForwardPath<'static>> = scenario
        .recipients
        .iter()
        .map(|r| ForwardPath::Mailbox(Mailbox::parse(&on_loopback(r)).unwrap().into_owned()))
        .collect();
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("sender@example.org").unwrap().into_owned()),
        recipients,
    );
    let message = b"From: sender@example.org\r\nSubject: scenario\r\n\r\nHello.\r\n".to_vec();
    let id = engine
        .submit(Job::new(envelope, message))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let result = loop {
        if start.elapsed() > LIMIT {
            return Err(format!("{}: no result within {LIMIT:?}", scenario.name));
        }
        engine
            .poll(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        if let Some(result) = engine.next_result() {
            break result;
        }
    };
    assert_eq!(result.id, id);
    let observed: Vec<Observed> = scenario
        .recipients
        .iter()
        .zip(&result.recipients)
        .map(|(recipient, report)| observe(recipient, report))
        .collect();
    engine.shutdown();
    let start = Instant::now();
    while !engine.is_shut_down() && start.elapsed() < LIMIT {
        engine
            .poll(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
    }
    scenario.check(&observed)
}

/// A recipient as the engine is given it: a scenario address literal on
/// its loopback address.
fn on_loopback(recipient: &str) -> String {
    match recipient.split_once("@[") {
        Some((local, literal)) => {
            let address = literal.trim_end_matches(']');
            format!("{local}@[{}]", loopback(address))
        }
        None => recipient.to_owned(),
    }
}

/// The engine's result for one recipient, in the table's terms.
fn observe(recipient: &str, report: &RecipientReport) -> Observed {
    let outcome = match report.status {
        Status::Accepted => Outcome::Accepted,
        Status::PermanentFailure => Outcome::PermanentFailure,
        _ => Outcome::TransientFailure,
    };
    let address = report
        .peer
        .as_ref()
        .and_then(|p| p.addr)
        .map(|addr| match addr.ip() {
            IpAddr::V4(ip) => from_loopback(ip),
            IpAddr::V6(ip) => ip.to_string(),
        });
    let host = match (&report.peer, &address) {
        (Some(_), Some(address)) if recipient.ends_with(']') => Some(format!("[{address}]")),
        (Some(peer), _) => Some(peer.name.clone()),
        (None, _) => None,
    };
    let reason = match &report.failure {
        Some(Failure::Walk(reason)) => Some(reason),
        _ => None,
    };
    let cause = match &report.failure {
        None | Some(Failure::Walk(_)) => Cause::of_reason(report.reply.is_some(), reason),
        Some(_) => Cause::Other,
    };
    Observed {
        recipient: recipient.to_owned(),
        outcome,
        code: report.reply.as_ref().map(|r| r.code().as_u16()),
        host,
        address,
        cause,
    }
}

fn timeouts(d: Duration) -> Timeouts {
    let mut t = Timeouts::default();
    t.greeting = d;
    t.mail = d;
    t.rcpt = d;
    t.data_initiation = d;
    t.data_block = d;
    t.data_termination = d;
    t.bdat_chunk = d;
    t.other = d;
    t.tls_handshake = d;
    t
}

// ---------------------------------------------------------------- the zone

/// The fake DNS server's table for a scenario: the MX question as the
/// scenario says, A and AAAA for every host it lists (addresses on
/// loopback; AAAA without records, or the A failure), NXDOMAIN for every
/// other name the engine may ask about (exchanges without records, the
/// domain itself).
fn zone(scenario: &Scenario) -> Vec<(&'static str, RecordType, Answer)> {
    let domain = scenario
        .recipients
        .first()
        .and_then(|r| r.rsplit_once('@'))
        .map_or("example.net", |(_, d)| d);
    let domain: &'static str = Box::leak(domain.to_owned().into_boxed_str());
    let mx_records = |records: &[(u16, &str)]| {
        Answer::records(
            records
                .iter()
                .map(|&(preference, exchange)| fake_dns::mx(domain, preference, exchange))
                .collect(),
        )
    };
    let mx = match scenario.zone.mx {
        MxRecords::Records(records) => mx_records(records),
        MxRecords::TruncatedThen(records) => Answer::Truncated(Box::new(mx_records(records))),
        MxRecords::NoRecords => Answer::records(Vec::new()),
        MxRecords::Null => Answer::records(vec![fake_dns::mx(domain, 0, ".")]),
        MxRecords::NxDomain => Answer::NxDomain,
        MxRecords::ServFail => Answer::ServFail,
        MxRecords::Silent => Answer::Silent,
    };
    let mut table = vec![(domain, RecordType::MX, mx)];
    let mut names: Vec<&'static str> = vec![domain];
    if let MxRecords::Records(records) | MxRecords::TruncatedThen(records) = scenario.zone.mx {
        names.extend(records.iter().map(|&(_, exchange)| exchange));
    }
    for &(host, records) in scenario.zone.hosts {
        let (a, aaaa) = match records {
            HostRecords::Addresses(addresses) => (
                Answer::records(
                    addresses
                        .iter()
                        .map(|a| fake_dns::addr(host, &loopback(a).to_string()))
                        .collect(),
                ),
                Answer::records(Vec::new()),
            ),
            HostRecords::NxDomain => (Answer::NxDomain, Answer::NxDomain),
            HostRecords::ServFail => (Answer::ServFail, Answer::ServFail),
        };
        table.push((host, RecordType::A, a));
        table.push((host, RecordType::AAAA, aaaa));
    }
    for name in names {
        if !scenario.zone.hosts.iter().any(|&(h, _)| h == name) {
            table.push((name, RecordType::A, Answer::NxDomain));
            table.push((name, RecordType::AAAA, Answer::NxDomain));
        }
    }
    table
}

// ---------------------------------------------------------------- the PKI

/// A CA the engine trusts, and certificates made for the scenarios' hosts.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp-mio scenario CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = ca.pem();
        Self { ca, ca_pem }
    }

    /// A server configuration for `host`: signed by the CA, or self-signed.
    fn server_config(&self, host: &str, certificate: Certificate) -> Arc<ServerConfig> {
        if certificate != Certificate::Trusted {
            let identity = TlsIdentity::self_signed(host, SystemTime::now()).unwrap();
            return identity.server_config().unwrap();
        }
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![host.to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let identity =
            TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        identity.server_config().unwrap()
    }
}

// ---------------------------------------------------------------- the servers

/// The host name whose A records point at `address` (the name a certificate
/// there carries); the address itself for a literal.
fn host_at(scenario: &Scenario, address: &str) -> String {
    scenario
        .zone
        .hosts
        .iter()
        .find(|(_, records)| {
            matches!(records, HostRecords::Addresses(list) if list.contains(&address))
        })
        .map_or_else(|| address.to_owned(), |(host, _)| (*host).to_owned())
}

/// One listener per SMTP server of the scenario, all on one port (free on
/// every address used); closed addresses get none and refuse connections.
fn start_servers(scenario: &Scenario, pki: &Pki) -> (u16, Vec<ScriptedServer>) {
    'port: for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut servers = Vec::new();
        for server in scenario.servers {
            let Listener::Smtp(smtp) = server.listener else {
                continue;
            };
            let Ok(listener) = TcpListener::bind((loopback(server.address), port)) else {
                continue 'port;
            };
            let tls = match smtp.starttls {
                StartTls::Offered(certificate) => Some((
                    pki.server_config(&host_at(scenario, server.address), certificate),
                    certificate,
                )),
                _ => None,
            };
            let implicit = scenario.tls.mode() == TlsMode::Implicit;
            servers.push(ScriptedServer::start(listener, smtp, tls, implicit));
        }
        return (port, servers);
    }
    panic!("no port free on every scenario address");
}

/// A scripted SMTP server: one thread accepting, one per connection.
struct ScriptedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Tls = Option<(Arc<ServerConfig>, Certificate)>;

impl ScriptedServer {
    fn start(listener: TcpListener, smtp: Smtp, tls: Tls, implicit: bool) -> Self {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let tls = tls.clone();
                    thread::spawn(move || {
                        let _ = serve(stream, smtp, tls, implicit);
                    });
                }
            })
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The connection as a byte stream, plaintext or TLS.
trait Io: Read + Write {}
impl<T: Read + Write> Io for T {}

/// Line reading without reading ahead of what a line needs beyond the
/// buffer: STARTTLS must find nothing buffered (or it is an injection).
struct Lines {
    io: Box<dyn Io + Send>,
    buf: Vec<u8>,
}

impl Lines {
    fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..end]).into_owned()));
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn reply(&mut self, text: &str) -> io::Result<()> {
        self.io.write_all(text.as_bytes())?;
        self.io.write_all(b"\r\n")?;
        self.io.flush()
    }
}

fn tls_stream(
    tcp: TcpStream,
    config: &Arc<ServerConfig>,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Aborts a handshake: reads the client's first flight, then closes.
fn abort_handshake(mut tcp: TcpStream) -> io::Result<()> {
    let mut hello = [0u8; 1024];
    let _ = tcp.read(&mut hello)?;
    tcp.shutdown(std::net::Shutdown::Both)
}

/// One connection, as the scenario's [`Smtp`] says.
fn serve(tcp: TcpStream, smtp: Smtp, tls: Tls, implicit: bool) -> io::Result<()> {
    tcp.set_read_timeout(Some(SERVER_TIMEOUT))?;
    tcp.set_write_timeout(Some(SERVER_TIMEOUT))?;
    let mut secure = false;
    let io: Box<dyn Io + Send> = match (&tls, implicit) {
        (Some((_, Certificate::Broken)), true) => return abort_handshake(tcp),
        (Some((config, _)), true) => {
            secure = true;
            Box::new(tls_stream(tcp.try_clone()?, config)?)
        }
        _ => Box::new(tcp.try_clone()?),
    };
    let mut lines = Lines {
        io,
        buf: Vec::new(),
    };
    lines.reply(smtp.greeting)?;
    if smtp.greeting.starts_with("421") {
        return Ok(());
    }
    let greeted = smtp.greeting.starts_with('2');
    while let Some(line) = lines.line()? {
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "QUIT" => {
                lines.reply("221 2.0.0 bye")?;
                return Ok(());
            }
            _ if !greeted => lines.reply("503 5.5.1 no service here")?,
            "EHLO" | "HELO" if !smtp.ehlo.starts_with('2') => lines.reply(smtp.ehlo)?,
            "EHLO" => {
                let mut reply = format!("250-{}\r\n250-PIPELINING\r\n", &smtp.ehlo[4..]);
                if !secure && !matches!(smtp.starttls, StartTls::NotOffered) {
                    reply.push_str("250-STARTTLS\r\n");
                }
                reply.push_str("250 8BITMIME");
                lines.reply(&reply)?;
            }
            "HELO" => lines.reply(smtp.ehlo)?,
            "STARTTLS" => match (smtp.starttls, &tls) {
                (StartTls::Refused(refusal), _) => lines.reply(refusal)?,
                (StartTls::Offered(_), Some((config, certificate))) if !secure => {
                    lines.reply("220 2.0.0 go ahead")?;
                    if *certificate == Certificate::Broken {
                        return abort_handshake(tcp);
                    }
                    lines = Lines {
                        io: Box::new(tls_stream(tcp.try_clone()?, config)?),
                        buf: Vec::new(),
                    };
                    secure = true;
                }
                _ => lines.reply("502 5.5.1 not offered")?,
            },
            "MAIL" => lines.reply(smtp.mail)?,
            "RCPT" => {
                let address = line
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map_or("", |(address, _)| address);
                let reply = smtp
                    .rcpt
                    .iter()
                    .find(|(recipient, _)| *recipient == address)
                    .map_or(RCPT_OK, |(_, reply)| reply);
                lines.reply(reply)?;
            }
            "DATA" => {
                lines.reply(smtp.data)?;
                if !smtp.data.starts_with('3') {
                    continue;
                }
                while let Some(content) = lines.line()? {
                    if content == "." {
                        break;
                    }
                }
                if smtp.end.is_empty() {
                    return Ok(());
                }
                lines.reply(smtp.end)?;
            }
            "RSET" | "NOOP" => lines.reply("250 2.0.0 ok")?,
            _ => lines.reply("502 5.5.2 command not recognized")?,
        }
    }
    Ok(())
}
