//! One scenario of the shared MX table (`smtp_tests::mx_scenarios`) on
//! loopback: its zone served by the fake DNS server, a scripted SMTP server
//! at each of its addresses (`192.0.2.N` mapped to `127.0.0.N`, all on one
//! port), certificates from a fresh test CA.
//!
//! The minimum the blocking transport's run of the table needs, with the
//! shape of the shared support's `smtp_tests::mx_stage::Stage`, which
//! replaces it once it lands.

use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::RecordType;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use smtp_proto::tls::TlsIdentity;
use smtp_tests::mx_scenarios::{
    Certificate, HostRecords, Listener, MxRecords, RCPT_OK, Scenario, Smtp, StartTls, loopback,
};

use super::dns::{Answer, FakeDns, addr, mx};
use super::scripted::{Handshake, Script, ScriptedServer, Starttls};

/// The recipients' domain part: what follows the `@` of the first one.
pub(crate) fn domain(scenario: &Scenario) -> &'static str {
    let first = scenario.recipients.first().copied().unwrap_or_default();
    first.rsplit_once('@').map_or(first, |(_, domain)| domain)
}

/// The zone as the table's docs say: names not listed are NXDOMAIN, a
/// host with addresses has no AAAA records, a failing host fails both.
fn dns_entries(scenario: &Scenario) -> Vec<(&'static str, RecordType, Answer)> {
    let domain = domain(scenario);
    let records = |list: &[(u16, &str)]| {
        Answer::records(list.iter().map(|(p, host)| mx(domain, *p, host)).collect())
    };
    let mx_answer = match scenario.zone.mx {
        MxRecords::Records(list) => records(list),
        MxRecords::TruncatedThen(list) => Answer::Truncated(Box::new(records(list))),
        MxRecords::NoRecords => Answer::records(Vec::new()),
        MxRecords::Null => Answer::records(vec![mx(domain, 0, ".")]),
        MxRecords::NxDomain => Answer::NxDomain,
        MxRecords::ServFail => Answer::ServFail,
        MxRecords::Silent => Answer::Silent,
    };
    let mut entries = vec![(domain, RecordType::MX, mx_answer)];
    for (host, records) in scenario.zone.hosts {
        let (a, aaaa) = match records {
            HostRecords::Addresses(ips) => (
                Answer::records(
                    ips.iter()
                        .map(|ip| addr(host, &loopback(ip).to_string()))
                        .collect(),
                ),
                Answer::records(Vec::new()),
            ),
            HostRecords::NxDomain => (Answer::NxDomain, Answer::NxDomain),
            HostRecords::ServFail => (Answer::ServFail, Answer::ServFail),
        };
        entries.push((host, RecordType::A, a));
        entries.push((host, RecordType::AAAA, aaaa));
    }
    entries
}

/// The host names whose addresses include `address`.
fn names_of(scenario: &Scenario, address: &str) -> Vec<&'static str> {
    scenario
        .zone
        .hosts
        .iter()
        .filter(|(_, r)| matches!(r, HostRecords::Addresses(ips) if ips.contains(&address)))
        .map(|(host, _)| *host)
        .collect()
}

/// A test CA that issues server certificates.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp-blocking MX test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// A server configuration with a certificate for `names` (host names
    /// or IP addresses).
    fn issue(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .unwrap()
            .server_config()
            .unwrap()
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// Listeners on one port at each of `ips`.
fn same_port_listeners(ips: &[IpAddr]) -> Vec<TcpListener> {
    'retry: for _ in 0..50 {
        let first = TcpListener::bind((ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind((*ip, port)) {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'retry,
            }
        }
        return listeners;
    }
    panic!("no port free on {ips:?}");
}

/// One scenario's DNS server and SMTP servers, running.
pub(crate) struct Stage {
    /// The DNS server for the transport's resolver.
    pub(crate) dns: FakeDns,
    port: u16,
    ca: TestCa,
    servers: Vec<(&'static str, ScriptedServer)>,
}

impl Stage {
    pub(crate) fn start(scenario: &Scenario) -> Self {
        let dns = FakeDns::start_with(dns_entries(scenario), Answer::NxDomain);
        let ca = TestCa::new();
        let smtp: Vec<(&'static str, Smtp)> = scenario
            .servers
            .iter()
            .filter_map(|s| match s.listener {
                Listener::Smtp(smtp) => Some((s.address, smtp)),
                Listener::Closed => None,
            })
            .collect();
        if smtp.is_empty() {
            // Nothing listens anywhere: a port just freed refuses.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            return Self {
                dns,
                port,
                ca,
                servers: Vec::new(),
            };
        }
        let ips: Vec<IpAddr> = smtp.iter().map(|(a, _)| IpAddr::V4(loopback(a))).collect();
        let listeners = same_port_listeners(&ips);
        let port = listeners[0].local_addr().unwrap().port();
        let servers = smtp
            .iter()
            .zip(listeners)
            .map(|((address, smtp), listener)| {
                let script = script(scenario, address, smtp, &ca);
                (*address, ScriptedServer::on(listener, script))
            })
            .collect();
        Self {
            dns,
            port,
            ca,
            servers,
        }
    }

    /// The port every server listens on: the transport's MX port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) a verifying client must trust.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Connections made to any server.
    pub(crate) fn connections(&self) -> usize {
        self.servers.iter().map(|(_, s)| s.connections()).sum()
    }
}

fn script(scenario: &Scenario, address: &str, smtp: &Smtp, ca: &TestCa) -> Script {
    let handshake = |certificate: Certificate| match certificate {
        Certificate::Trusted => {
            let loopback = loopback(address).to_string();
            let mut names = names_of(scenario, address);
            names.extend([address, loopback.as_str()]);
            Handshake::With(ca.issue(&names))
        }
        Certificate::Untrusted => {
            let host = names_of(scenario, address).first().copied();
            let identity =
                TlsIdentity::self_signed(host.unwrap_or(address), SystemTime::now()).unwrap();
            Handshake::With(identity.server_config().unwrap())
        }
        Certificate::Broken => Handshake::Aborted,
    };
    Script {
        greeting: smtp.greeting.into(),
        ehlo: smtp.ehlo.into(),
        starttls: match smtp.starttls {
            StartTls::NotOffered => Starttls::NotOffered,
            StartTls::Refused(reply) => Starttls::Refused(reply.into()),
            StartTls::Offered(certificate) => Starttls::Offered(handshake(certificate)),
        },
        mail: smtp.mail.into(),
        rcpt: smtp
            .rcpt
            .iter()
            .map(|(r, reply)| (format!("<{r}>"), (*reply).to_owned()))
            .collect(),
        rcpt_default: RCPT_OK.into(),
        data: smtp.data.into(),
        end: (!smtp.end.is_empty()).then(|| smtp.end.to_owned()),
    }
}
