//! The MX scenario table on real sockets: a [`Stage`] is one
//! [`Scenario`]'s DNS and servers, running on loopback, for a transport's
//! test to deliver against.
//!
//! [`Stage::start`] sets up what the [table's docs](crate::mx_scenarios)
//! promise:
//!
//! - a [`FakeDns`] answering from the scenario's [`Zone`](crate::mx_scenarios::Zone)
//!   ([`dns_entries`]), every name it does not list being NXDOMAIN;
//! - one [`ScriptedServer`] per [`Listener::Smtp`] address, bound to its
//!   [`loopback`] address, all on one port ([`Stage::port`], the transport's
//!   MX port setting); an address with nothing listening refuses
//!   connections;
//! - certificates from a fresh [`TestCa`] the client is told to trust
//!   ([`Stage::ca_pem`]): [`Certificate::Trusted`] is issued for the names of
//!   the MX hosts pointing at the address (and the address, scenario and
//!   loopback form), [`Certificate::Untrusted`] is self-signed,
//!   [`Certificate::Broken`] aborts every handshake. Under an implicit-TLS
//!   policy a server that offers TLS speaks it from the first byte, and one
//!   that does not speaks plaintext (which a TLS client cannot read).
//!
//! The transport then runs its delivery for [`Scenario::recipients`] with
//! [`Scenario::tls`], maps each result's address back with
//! [`from_loopback`](crate::mx_scenarios::from_loopback), and compares with
//! [`Scenario::check`].

use std::net::IpAddr;

use crate::fake_dns::{Answer, FakeDns, RecordType, addr, mx};
use crate::mx_scenarios::{
    Certificate, HostRecords, Listener, MxRecords, RCPT_OK, Scenario, Smtp, StartTls, loopback,
};
use crate::net::same_port_listeners;
use crate::pki::{TestCa, self_signed};
use crate::scripted::{Handshake, Script, ScriptedServer, Starttls};
use smtp_proto::TlsMode;

/// The extensions a scripted MX host offers in a positive EHLO reply.
pub const EXTENSIONS: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

/// The recipients' domain of `scenario`: what follows the `@` of its first
/// recipient (`[192.0.2.9]` for an address literal).
pub fn domain(scenario: &Scenario) -> &'static str {
    let first = scenario.recipients.first().copied().unwrap_or_default();
    first.rsplit_once('@').map_or(first, |(_, domain)| domain)
}

/// The fake DNS table of `scenario`, as its zone says (see the
/// [table's docs](crate::mx_scenarios)); names not listed are NXDOMAIN. An
/// address literal has no MX question: its zone's MX answer is left out.
pub fn dns_entries(scenario: &Scenario) -> Vec<(&'static str, RecordType, Answer)> {
    let domain = domain(scenario);
    let mut entries = Vec::new();
    let mx_records = |records: &[(u16, &str)]| {
        Answer::records(
            records
                .iter()
                .map(|(preference, host)| mx(domain, *preference, host))
                .collect(),
        )
    };
    let mx_answer = || match scenario.zone.mx {
        MxRecords::Records(records) => mx_records(records),
        MxRecords::TruncatedThen(records) => Answer::Truncated(Box::new(mx_records(records))),
        MxRecords::NoRecords => Answer::empty(),
        MxRecords::Null => Answer::records(vec![mx(domain, 0, ".")]),
        MxRecords::NxDomain => Answer::NxDomain,
        MxRecords::ServFail => Answer::ServFail,
        MxRecords::Silent => Answer::Silent,
    };
    if !domain.starts_with('[') {
        entries.push((domain, RecordType::MX, mx_answer()));
    }
    for (host, records) in scenario.zone.hosts {
        let (a, aaaa) = match records {
            HostRecords::Addresses(ips) => (
                Answer::records(
                    ips.iter()
                        .map(|ip| addr(host, &loopback(ip).to_string()))
                        .collect(),
                ),
                Answer::empty(),
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
        .filter(
            |(_, records)| matches!(records, HostRecords::Addresses(ips) if ips.contains(&address)),
        )
        .map(|(host, _)| *host)
        .collect()
}

/// One scenario's DNS server and SMTP servers, running.
#[derive(Debug)]
pub struct Stage {
    /// The DNS server for the transport's resolver.
    pub dns: FakeDns,
    port: u16,
    ca: TestCa,
    servers: Vec<(&'static str, ScriptedServer)>,
}

impl Stage {
    /// Starts `scenario`'s DNS and servers.
    pub fn start(scenario: &Scenario) -> Self {
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
        let (port, servers) = if smtp.is_empty() {
            // Nothing listens anywhere: any port refuses.
            let free = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_or(0, |a| a.port());
            (free, Vec::new())
        } else {
            let ips: Vec<IpAddr> = smtp
                .iter()
                .map(|(address, _)| IpAddr::V4(loopback(address)))
                .collect();
            let listeners = same_port_listeners(&ips);
            let port = listeners
                .first()
                .and_then(|l| l.local_addr().ok())
                .map_or(0, |a| a.port());
            let servers = smtp
                .iter()
                .zip(listeners)
                .map(|((address, smtp), listener)| {
                    let script = script(scenario, address, smtp, &ca);
                    (*address, ScriptedServer::on(listener, script))
                })
                .collect();
            (port, servers)
        };
        Self {
            dns,
            port,
            ca,
            servers,
        }
    }

    /// The port every server listens on: the transport's MX port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) a verifying client must trust.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The server at a scenario address (`192.0.2.N`), if one listens.
    pub fn server(&self, address: &str) -> Option<&ScriptedServer> {
        self.servers
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, server)| server)
    }
}

/// The script of the server at `address`.
fn script(scenario: &Scenario, address: &str, smtp: &Smtp, ca: &TestCa) -> Script {
    let handshake = |certificate: Certificate| match certificate {
        Certificate::Trusted => {
            let loopback = loopback(address).to_string();
            let mut names = names_of(scenario, address);
            names.extend([address, loopback.as_str()]);
            Handshake::With(ca.issue(&names).server_config())
        }
        Certificate::Untrusted => {
            let host = names_of(scenario, address).first().copied();
            Handshake::With(self_signed(host.unwrap_or(address)))
        }
        Certificate::Broken => Handshake::Aborted,
    };
    let (implicit_tls, starttls) = match (scenario.tls.mode(), smtp.starttls) {
        (TlsMode::Implicit, StartTls::Offered(certificate)) => {
            (Some(handshake(certificate)), Starttls::NotOffered)
        }
        (TlsMode::Implicit, _) | (_, StartTls::NotOffered) => (None, Starttls::NotOffered),
        (_, StartTls::Refused(reply)) => (None, Starttls::Refused(reply.into())),
        (_, StartTls::Offered(certificate)) => (None, Starttls::Offered(handshake(certificate))),
    };
    Script {
        implicit_tls,
        greeting: smtp.greeting.into(),
        ehlo: smtp.ehlo.into(),
        extensions: EXTENSIONS.iter().map(|e| (*e).to_owned()).collect(),
        starttls,
        mail: smtp.mail.into(),
        rcpt: smtp
            .rcpt
            .iter()
            .map(|(recipient, reply)| (format!("<{recipient}>"), (*reply).to_owned()))
            .collect(),
        rcpt_default: RCPT_OK.into(),
        data: smtp.data.into(),
        end: (!smtp.end.is_empty()).then(|| smtp.end.to_owned()),
        close_mid_data: false,
        messages_per_connection: None,
        answer_quit: true,
    }
}
