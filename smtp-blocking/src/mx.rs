//! Delivery straight to the recipients' mail exchangers.
//!
//! # How a message travels
//!
//! [`deliver_mx`] groups the recipients by domain and, for each domain,
//! walks the core's [`HostPlan`](smtp_proto::mx::HostPlan) through
//! [`Resolver::host_plan`] and [`Resolver::next_target`]: MX hosts in
//! preference order (equal preferences shuffled), each host's addresses in
//! turn. What happens at each step follows RFC 5321 §5.1 and §4.5.4.1:
//!
//! - a connection that cannot be made → the next address (then the next
//!   host);
//! - a temporary failure of the session (a `4yz` greeting, EHLO or MAIL
//!   reply, a `421`, a timeout, a dropped connection, and a transaction in
//!   which every recipient failed temporarily) → the next host;
//! - a permanent answer (`5yz`) → the recipients it concerns fail for good;
//!   no other host is asked (they serve the same domain);
//! - a null MX (RFC 7505), NXDOMAIN or an invalid domain → every recipient
//!   of the domain fails permanently **without any connection**;
//! - every host tried → the recipients fail with the last error, temporary
//!   unless every attempt was refused permanently.
//!
//! TLS is opportunistic by default ([`TlsMode::Opportunistic`], RFC 7435):
//! STARTTLS whenever the host offers it. Certificates are still verified
//! against [`Settings::tls`]; a host whose handshake or certificate fails
//! is passed over for the next host, so a broken certificate on one MX
//! does not stop the mail, and there is never a fallback to plaintext on
//! the *same* connection. [`MxSettings::starttls`] set to
//! [`TlsMode::Required`] passes over hosts without STARTTLS as well; when
//! no host is left the recipients fail as the plan says (temporarily,
//! unless every host refused permanently).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use smtp_proto::address::{AddressLiteral, ForwardPath, Host};
use smtp_proto::client::{Envelope, Outcome};
use smtp_proto::mx::{PlanConfig, Severity};
use smtp_proto::reply::Reply;
use smtp_proto::{Protocol, TlsMode};

use crate::channel::Channel;
use crate::client::{Connection, Direction, SessionParams, Settings};
use crate::dns::{Resolver, Step};
use crate::error::Error;
use crate::url::SMTP_PORT;

/// How [`deliver_mx`] works.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MxSettings {
    /// The DNS resolver (the system's, or a given server).
    pub resolver: Resolver,
    /// The port on the MX hosts. Default 25; other values are for tests.
    pub port: u16,
    /// STARTTLS policy: [`TlsMode::Opportunistic`] (default),
    /// [`TlsMode::Required`] or [`TlsMode::Disabled`].
    pub starttls: TlsMode,
    /// How the plan orders hosts and addresses.
    pub plan: PlanConfig,
    /// Connection settings: TLS trust, EHLO name, timeouts, trace.
    pub settings: Settings,
}

impl MxSettings {
    /// Defaults around `resolver`: port 25, opportunistic STARTTLS.
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            port: SMTP_PORT,
            starttls: TlsMode::Opportunistic,
            plan: PlanConfig::default(),
            settings: Settings::default(),
        }
    }
}

/// What happened to one recipient of an MX delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxRecipientResult {
    /// The recipient.
    pub recipient: ForwardPath<'static>,
    /// Accepted, or failed temporarily or permanently.
    pub outcome: Outcome,
    /// The reply that decided it, if a server gave one.
    pub reply: Option<Reply<'static>>,
    /// The host that decided it, if one was reached.
    pub host: Option<String>,
    /// Why it failed when no reply says it (DNS, connection, TLS).
    pub error: Option<String>,
}

/// The result of [`deliver_mx`]: one entry per recipient, in envelope
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxReport {
    /// One result per recipient.
    pub recipients: Vec<MxRecipientResult>,
}

impl MxReport {
    /// Whether every recipient was accepted.
    pub fn all_accepted(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.outcome == Outcome::Accepted)
    }

    /// Whether some recipient failed temporarily (retry later).
    pub fn any_temporary(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| r.outcome == Outcome::TransientFailure)
    }
}

fn outcome_of(severity: Severity) -> Outcome {
    match severity {
        Severity::Temporary => Outcome::TransientFailure,
        Severity::Permanent => Outcome::PermanentFailure,
    }
}

/// Where a recipient is delivered: a domain (looked up) or an address
/// literal (connected to directly).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Domain(String),
    Literal(IpAddr),
}

fn destination(recipient: &ForwardPath<'_>) -> Option<Destination> {
    match recipient.mailbox()?.host() {
        Host::Domain(d) => Some(Destination::Domain(d.as_str().to_ascii_lowercase())),
        Host::Literal(AddressLiteral::Ipv4(ip)) => Some(Destination::Literal(IpAddr::V4(*ip))),
        Host::Literal(AddressLiteral::Ipv6(ip)) => Some(Destination::Literal(IpAddr::V6(*ip))),
        Host::Literal(_) => None,
    }
}

/// Delivers `body` to every recipient of `envelope` through the MX hosts
/// of its domain (see the [module docs](self)). Never fails as a whole:
/// every recipient gets its own result.
///
/// ```no_run
/// use smtp_blocking::{Envelope, Resolver};
/// use smtp_blocking::mx::{MxSettings, deliver_mx};
/// use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
///
/// let settings = MxSettings::new(Resolver::from_system()?);
/// let envelope = Envelope::new(
///     ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap().into_owned()),
///     vec![ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap().into_owned())],
/// );
/// let report = deliver_mx(&envelope, b"Subject: hi\r\n\r\nHello.\r\n", &settings);
/// for r in &report.recipients {
///     println!("{:?} {:?} via {:?}", r.recipient, r.outcome, r.host);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deliver_mx(envelope: &Envelope, body: &[u8], settings: &MxSettings) -> MxReport {
    let mut results: Vec<Option<MxRecipientResult>> = vec![None; envelope.recipients.len()];
    let mut groups: BTreeMap<Destination, Vec<usize>> = BTreeMap::new();
    for (i, (recipient, _)) in envelope.recipients.iter().enumerate() {
        match destination(recipient) {
            Some(d) => groups.entry(d).or_default().push(i),
            None => {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(MxRecipientResult {
                        recipient: recipient.clone(),
                        outcome: Outcome::PermanentFailure,
                        reply: None,
                        host: None,
                        error: Some(String::from("no domain to deliver to")),
                    });
                }
            }
        }
    }
    for (dest, indexes) in groups {
        let mut group = envelope.clone();
        group.recipients = indexes
            .iter()
            .filter_map(|&i| envelope.recipients.get(i).cloned())
            .collect();
        let group_results = deliver_group(&dest, &group, body, settings);
        for (i, result) in indexes.into_iter().zip(group_results) {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(result);
            }
        }
    }
    MxReport {
        recipients: results.into_iter().flatten().collect(),
    }
}

/// The result of one connection attempt.
enum Attempt {
    /// The domain is decided (all recipients have a final result).
    Done(Vec<MxRecipientResult>),
    /// Could not connect: the next address.
    ConnectFailed(Error),
    /// A temporary failure: the next host.
    Temporary(Error, Option<Reply<'static>>),
    /// A permanent failure of the session: every recipient fails.
    Permanent(Error, Option<Reply<'static>>),
}

fn all_failed(
    envelope: &Envelope,
    outcome: Outcome,
    host: Option<&str>,
    error: &Error,
    reply: Option<&Reply<'static>>,
) -> Vec<MxRecipientResult> {
    envelope
        .recipients
        .iter()
        .map(|(recipient, _)| MxRecipientResult {
            recipient: recipient.clone(),
            outcome,
            reply: reply.cloned(),
            host: host.map(str::to_owned),
            error: Some(error.to_string()),
        })
        .collect()
}

fn deliver_group(
    dest: &Destination,
    envelope: &Envelope,
    body: &[u8],
    settings: &MxSettings,
) -> Vec<MxRecipientResult> {
    let note = |line: &str| {
        if let Some(trace) = &settings.settings.trace {
            trace(Direction::Info, line);
        }
    };
    let domain = match dest {
        Destination::Literal(ip) => {
            let host = ip.to_string();
            return match attempt(&host, *ip, envelope, body, settings) {
                Attempt::Done(results) => results,
                Attempt::ConnectFailed(e) | Attempt::Temporary(e, None) => {
                    all_failed(envelope, outcome_of(e.severity()), Some(&host), &e, None)
                }
                Attempt::Temporary(e, Some(r)) => all_failed(
                    envelope,
                    Outcome::TransientFailure,
                    Some(&host),
                    &e,
                    Some(&r),
                ),
                Attempt::Permanent(e, r) => all_failed(
                    envelope,
                    Outcome::PermanentFailure,
                    Some(&host),
                    &e,
                    r.as_ref(),
                ),
            };
        }
        Destination::Domain(domain) => domain,
    };
    let mut plan = match settings.resolver.host_plan(domain, &settings.plan) {
        Ok(plan) => plan,
        Err(e) => {
            note(&format!("{domain}: {e}"));
            let e = Error::Dns(e);
            return all_failed(envelope, outcome_of(e.severity()), None, &e, None);
        }
    };
    let mut last: Option<(Error, Option<Reply<'static>>, String)> = None;
    loop {
        match settings.resolver.next_target(&mut plan) {
            Step::Connect { host, ip } => {
                note(&format!("{domain}: trying {} at {ip}", host.as_str()));
                match attempt(host.as_str(), ip, envelope, body, settings) {
                    Attempt::Done(results) => return results,
                    Attempt::ConnectFailed(e) => {
                        note(&format!("{}: {e}", host.as_str()));
                        last = Some((e, None, host.as_str().to_owned()));
                        // The plan is at a Connect step (just returned), so
                        // reporting cannot be out of order.
                        let _ = plan.on_connect_failed();
                    }
                    Attempt::Temporary(e, reply) => {
                        note(&format!("{}: {e}", host.as_str()));
                        last = Some((e, reply, host.as_str().to_owned()));
                        let _ = plan.on_temporary_failure();
                    }
                    Attempt::Permanent(e, reply) => {
                        return all_failed(
                            envelope,
                            Outcome::PermanentFailure,
                            Some(host.as_str()),
                            &e,
                            reply.as_ref(),
                        );
                    }
                }
            }
            Step::Exhausted(severity) => {
                let (error, reply, host) =
                    last.unwrap_or_else(|| (Error::NoAddress(domain.clone()), None, String::new()));
                let host = (!host.is_empty()).then_some(host);
                return all_failed(
                    envelope,
                    outcome_of(severity),
                    host.as_deref(),
                    &error,
                    reply.as_ref(),
                );
            }
        }
    }
}

/// One connection to one address of one host, and the transaction on it.
fn attempt(
    host: &str,
    ip: IpAddr,
    envelope: &Envelope,
    body: &[u8],
    settings: &MxSettings,
) -> Attempt {
    let addr = SocketAddr::new(ip, settings.port);
    let channel = match Channel::connect(&[addr], settings.settings.connect_timeout) {
        Ok(channel) => channel,
        Err(e) => return Attempt::ConnectFailed(e),
    };
    let params = SessionParams {
        protocol: Protocol::Smtp,
        tls_mode: settings.starttls,
        host,
        credentials: None,
        helo: None,
    };
    let mut conn = match Connection::establish(channel, &params, &settings.settings) {
        Ok(conn) => conn,
        Err(e) => return failed(e),
    };
    let result = conn.send(envelope, body);
    match result {
        Ok(report) => {
            let _ = conn.quit();
            let all_temporary = report
                .recipients
                .iter()
                .all(|r| r.outcome == Outcome::TransientFailure);
            if all_temporary {
                // MAIL, DATA or the final reply refused with 4yz, or every
                // RCPT: another host may do better.
                let reply = report
                    .data
                    .clone()
                    .or_else(|| report.recipients.iter().find_map(|r| r.reply.clone()))
                    .or(report.mail.clone());
                let error = match &reply {
                    Some(r) => Error::Rejected(r.clone()),
                    None => Error::Protocol(String::from("no reply to the transaction")),
                };
                return Attempt::Temporary(error, reply);
            }
            Attempt::Done(
                report
                    .recipients
                    .into_iter()
                    .map(|r| MxRecipientResult {
                        recipient: r.recipient,
                        outcome: r.outcome,
                        reply: r.reply,
                        host: Some(host.to_owned()),
                        error: None,
                    })
                    .collect(),
            )
        }
        Err(e) => failed(e),
    }
}

/// Classifies a session failure: the next host, or the end.
fn failed(error: Error) -> Attempt {
    let reply = match &error {
        Error::Rejected(r) => Some(r.clone()),
        _ => None,
    };
    // A TLS problem (no STARTTLS under the required policy, a bad
    // certificate) is this host's: another MX of the domain may do better.
    if error.is_temporary() || matches!(error, Error::Tls(_)) {
        Attempt::Temporary(error, reply)
    } else {
        Attempt::Permanent(error, reply)
    }
}
