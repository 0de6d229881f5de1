//! Delivery straight to the recipients' mail exchangers, following the
//! core's MX walk.
//!
//! # Who decides
//!
//! Every delivery decision is [`smtp_proto::mx::Walk`]'s: which hosts to
//! try and in which order, what a refused connection, a failed TLS
//! handshake, a `4yz` or a `5yz` means, which recipients move on to the
//! next host, when TLS falls back to plaintext, when to stop, and what each
//! recipient ends with. Its documentation holds the rules and their
//! reasons; the `smtp-mio` delivery engine follows the same walk, so the
//! same mail to the same domain gets the same result from either crate.
//!
//! [`deliver_mx`] only moves bytes for it, one connection at a time, as the
//! walk's recipe for a blocking loop says:
//!
//! 1. group the recipients by [`Destination::of_recipient`] (one walk per
//!    domain or address literal; recipients without a destination get
//!    [`Walk::unroutable`]);
//! 2. offer the live connection, if any ([`Freshness::Fresh`] the first
//!    time, [`Freshness::Reused`] after): run the [`Batch`] it returns with
//!    [`Connection::transact`] and report it
//!    ([`TransactionOutcome::from_report`], or [`Walk::message_refused`]);
//!    for no batch, QUIT;
//! 3. ask [`Walk::next_step`]: answer its MX and address lookups through
//!    the [DNS pump](crate::dns) (A and AAAA at once), or connect where
//!    [`Step::Connect`] says with the TLS it says — the session's mode, and
//!    the certificate verified against [`Settings::tls`](crate::Settings)
//!    exactly when [`TlsPolicy::verify`] is set, else the core's loudly
//!    named accept-any configuration for that connection only — and report
//!    a failure as [`ConnectionFailure::Connect`], [`ConnectionFailure::Tls`]
//!    or [`ConnectionFailure::Session`];
//! 4. at [`Step::Done`], turn [`Walk::verdicts`] into [`MxRecipientResult`]s.
//!
//! # What that means (behaviour since the walk moved to the core)
//!
//! - **Per recipient**: a `4yz` for some recipients moves just those to the
//!   next host; the accepted and the refused (`5yz`) keep their results.
//!   (This transport used to move on only when every recipient had been
//!   deferred.)
//! - **Opportunistic TLS** ([`TlsMode::Opportunistic`], the default,
//!   Postfix's `may`, RFC 7435): STARTTLS whenever offered, **without
//!   verifying the certificate** unless [`MxSettings::verify`] says so; a
//!   failed handshake moves to the next host, and when every host failed
//!   only on TLS, one plaintext pass follows. (This transport used to
//!   verify and skip hosts with bad certificates.)
//!   [`TlsMode::Required`] never sends in plaintext and verifies by
//!   default; [`TlsMode::Implicit`] always verifies.
//! - A null MX (RFC 7505), NXDOMAIN or an invalid domain fails every
//!   recipient of the domain permanently **without any connection**; a
//!   SERVFAIL or an unanswered lookup, temporarily.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use smtp_proto::address::ForwardPath;
use smtp_proto::client::{Envelope, Outcome};
use smtp_proto::dns::{Answer, Failure, Question};
use smtp_proto::mx::{
    AddressAnswer, Batch, ConnectionFailure, Destination, Freshness, HostName, Lookup, MxAnswer,
    PlanConfig, QueryType, Reason, Step, TlsFailure, TlsPolicy, TransactionOutcome, Walk,
    WalkConfig,
};
use smtp_proto::reply::Reply;
use smtp_proto::tls::TlsConfig;
use smtp_proto::{Protocol, TlsMode};

use crate::channel::Channel;
use crate::client::{Connection, Direction, SessionParams, Settings, SetupFailure};
use crate::dns::{Pump, Resolver, random_u64};
use crate::error::Error;
use crate::url::SMTP_PORT;

/// How [`deliver_mx`] works.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MxSettings {
    /// The DNS resolver (the system's, or given servers).
    pub resolver: Resolver,
    /// The port on the MX hosts. Default 25; other values are for tests.
    pub port: u16,
    /// The TLS mode: [`TlsMode::Opportunistic`] (default),
    /// [`TlsMode::Required`], [`TlsMode::Implicit`] or
    /// [`TlsMode::Disabled`] (see the [module docs](self)).
    pub tls: TlsMode,
    /// Whether to verify the MX hosts' certificates against
    /// [`Settings::tls`]. `None` (default): the mode's own default — off
    /// for opportunistic TLS, on for required TLS, always on for implicit
    /// TLS ([`TlsPolicy::new`]).
    pub verify: Option<bool>,
    /// Host order, address families, address hints, this host's own names
    /// (see [`PlanConfig`]).
    pub plan: PlanConfig,
    /// At most this many MX hosts are tried per domain (the core caps it).
    pub max_hosts: usize,
    /// At most this many recipients per transaction (RFC 5321
    /// §4.5.3.1.8: every server takes 100).
    pub max_recipients_per_transaction: usize,
    /// Connection settings: TLS trust, EHLO name, timeouts, trace.
    pub settings: Settings,
}

impl MxSettings {
    /// Defaults around `resolver`: port 25, opportunistic TLS, the walk's
    /// defaults.
    pub fn new(resolver: Resolver) -> Self {
        let walk = WalkConfig::default();
        Self {
            resolver,
            port: SMTP_PORT,
            tls: TlsMode::Opportunistic,
            verify: None,
            plan: walk.plan,
            max_hosts: walk.max_hosts,
            max_recipients_per_transaction: walk.max_recipients_per_transaction,
            settings: Settings::default(),
        }
    }

    /// The TLS rule handed to the walk: [`tls`](Self::tls) with
    /// [`verify`](Self::verify).
    pub fn tls_policy(&self) -> TlsPolicy {
        let policy = TlsPolicy::new(self.tls);
        self.verify
            .map_or(policy, |verify| policy.with_verify(verify))
    }

    /// The walk's configuration from these settings.
    pub fn walk_config(&self) -> WalkConfig {
        let mut config = WalkConfig::with_tls(self.tls_policy());
        config.plan = self.plan.clone();
        config.max_hosts = self.max_hosts;
        config.max_recipients_per_transaction = self.max_recipients_per_transaction;
        config
    }
}

/// What happened to one recipient of an MX delivery: the core walk's
/// verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxRecipientResult {
    /// The recipient.
    pub recipient: ForwardPath<'static>,
    /// Accepted, or failed temporarily or permanently.
    pub outcome: Outcome,
    /// The reply that decided it, if a server gave one.
    pub reply: Option<Reply<'static>>,
    /// The MX host that decided it (or failed last); `None` for an address
    /// literal and when no host was reached (DNS).
    pub host: Option<HostName>,
    /// The address of the server that decided it (or failed last).
    pub address: Option<IpAddr>,
    /// Why, when a reply does not tell it all (DNS, connection, TLS,
    /// session).
    pub reason: Option<Reason>,
}

impl MxRecipientResult {
    /// One line for a log or a bounce: the reply, else the reason, with the
    /// host and address.
    pub fn describe(&self) -> String {
        let mut text = match (&self.reply, &self.reason) {
            (Some(reply), _) => reply_text(reply),
            (None, Some(reason)) => reason_text(reason),
            (None, None) => String::new(),
        };
        match (&self.host, self.address) {
            (Some(host), Some(ip)) => text.push_str(&format!(" [{host} {ip}]")),
            (Some(host), None) => text.push_str(&format!(" [{host}]")),
            (None, Some(ip)) => text.push_str(&format!(" [{ip}]")),
            (None, None) => {}
        }
        text.trim().to_owned()
    }
}

fn reply_text(reply: &Reply<'_>) -> String {
    let mut text = reply.code().to_string();
    if let Some(enhanced) = reply.enhanced_code() {
        text.push_str(&format!(" {enhanced}"));
    }
    for line in reply.lines() {
        text.push(' ');
        text.push_str(line);
    }
    text
}

fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::InvalidDestination(e) => e.to_string(),
        Reason::NullMx => String::from("the domain accepts no mail (null MX)"),
        Reason::NxDomain => String::from("the domain does not exist"),
        Reason::DnsFailure(rcode) => format!("MX lookup failed ({rcode})"),
        Reason::DnsUnanswered => String::from("MX lookup got no usable answer"),
        Reason::MailLoop { preference } => {
            format!("mail loop: this host is an MX of the domain (preference {preference})")
        }
        Reason::HostNotFound => String::from("the MX host has no address"),
        Reason::HostLookupFailed => String::from("the MX host's address lookup failed"),
        Reason::NoAddress => String::from("no MX host has an address"),
        Reason::Connect => String::from("connection failed"),
        Reason::Tls(TlsFailure::Certificate) => String::from("TLS certificate rejected"),
        Reason::Tls(_) => String::from("TLS handshake failed"),
        Reason::Session(e) => e.to_string(),
        Reason::Message(e) => format!("the message cannot be sent: {e}"),
        Reason::NoReply => String::from("no reply"),
        Reason::Aborted => String::from("delivery aborted"),
        other => format!("{other:?}"),
    }
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

/// Delivers `body` to every recipient of `envelope` through the MX hosts
/// of its domains, as the core's walk says (see the [module docs](self)).
/// Never fails as a whole: every recipient gets its own result.
///
/// ```no_run
/// use smtp_blocking::{Envelope, Resolver};
/// use smtp_blocking::mx::{MxSettings, deliver_mx};
///
/// let settings = MxSettings::new(Resolver::from_system()?);
/// let envelope = Envelope::parse("alice@example.org", ["bob@example.net"])?;
/// let report = deliver_mx(&envelope, b"Subject: hi\r\n\r\nHello.\r\n", &settings);
/// for r in &report.recipients {
///     println!("{:?} {:?}: {}", r.recipient, r.outcome, r.describe());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deliver_mx(envelope: &Envelope, body: &[u8], settings: &MxSettings) -> MxReport {
    let mut results: Vec<Option<MxRecipientResult>> = vec![None; envelope.recipients.len()];
    let mut groups: BTreeMap<Destination, Vec<usize>> = BTreeMap::new();
    for (i, (recipient, _)) in envelope.recipients.iter().enumerate() {
        match Destination::of_recipient(recipient) {
            Ok(destination) => groups.entry(destination).or_default().push(i),
            Err(error) => collect(&Walk::unroutable(1, error), &[i], envelope, &mut results),
        }
    }
    let mut delivery = Delivery {
        settings,
        body,
        pump: Pump::new(settings.resolver.config().clone()),
        accept_any: None,
    };
    for (destination, indexes) in groups {
        let mut group = envelope.clone();
        group.recipients = indexes
            .iter()
            .filter_map(|&i| envelope.recipients.get(i).cloned())
            .collect();
        let walk = delivery.walk(destination, &group);
        collect(&walk, &indexes, envelope, &mut results);
    }
    MxReport {
        recipients: results.into_iter().flatten().collect(),
    }
}

/// Writes a walk's verdicts into the results; `indexes` maps the walk's
/// recipients to the envelope's. A recipient without a verdict (the walk
/// was given up) is a temporary failure.
fn collect(
    walk: &Walk,
    indexes: &[usize],
    envelope: &Envelope,
    results: &mut [Option<MxRecipientResult>],
) {
    for (k, &i) in indexes.iter().enumerate() {
        let (Some(slot), Some((recipient, _))) = (results.get_mut(i), envelope.recipients.get(i))
        else {
            continue;
        };
        let verdict = walk.verdict(k);
        *slot = Some(MxRecipientResult {
            recipient: recipient.clone(),
            outcome: verdict.map_or(Outcome::TransientFailure, |v| v.outcome()),
            reply: verdict.and_then(|v| v.reply().cloned()),
            host: verdict.and_then(|v| v.host().cloned()),
            address: verdict.and_then(|v| v.ip()),
            reason: verdict.map_or(Some(Reason::Aborted), |v| v.reason().cloned()),
        });
    }
}

/// One [`deliver_mx`] call: the DNS pump all its walks share, and the
/// accept-any TLS configuration, built when first needed.
struct Delivery<'a> {
    settings: &'a MxSettings,
    body: &'a [u8],
    pump: Pump,
    accept_any: Option<TlsConfig>,
}

/// The connection a walk is using.
struct Live {
    conn: Connection,
    host: Option<HostName>,
    ip: IpAddr,
    tls: TlsPolicy,
    carried: usize,
}

impl Delivery<'_> {
    fn note(&self, line: &str) {
        if let Some(trace) = &self.settings.settings.trace {
            trace(Direction::Info, line);
        }
    }

    /// Follows the walk for one destination to its end, one connection at
    /// a time (the walk's recipe for a blocking loop).
    fn walk(&mut self, destination: Destination, group: &Envelope) -> Walk {
        let config = self.settings.walk_config();
        let mut walk = Walk::new(destination.clone(), group.recipients.len(), &config);
        let mut live: Option<Live> = None;
        loop {
            if let Some(l) = live.as_mut() {
                let freshness = match l.carried {
                    0 => Freshness::Fresh,
                    _ => Freshness::Reused,
                };
                match walk.offer(l.host.as_ref(), l.ip, l.tls, freshness) {
                    Some(batch) => {
                        let reported = self.send(&mut walk, l, &batch, group);
                        l.carried += 1;
                        if !l.conn.is_usable() {
                            live = None;
                        }
                        if reported.is_err() {
                            walk.abort();
                        }
                        continue;
                    }
                    None => {
                        if let Some(l) = live.take() {
                            let _ = l.conn.quit();
                        }
                    }
                }
            }
            let reported = match walk.next_step() {
                Step::Done => break,
                Step::LookupMx(domain) => {
                    let domain = domain.clone();
                    self.note(&format!("{destination}: looking up MX"));
                    let lookup = self.lookup_mx(&domain);
                    walk.mx_lookup(lookup)
                }
                Step::LookupAddresses(lookup) => {
                    let host = lookup.host().clone();
                    let queries: Vec<QueryType> = lookup.queries().collect();
                    let questions: Vec<Question> =
                        queries.iter().map(|q| q.question(&host)).collect();
                    let results = self.pump.run(&questions).ok();
                    queries.iter().enumerate().try_for_each(|(i, &query)| {
                        let result = results.as_ref().and_then(|r| r.get(i));
                        walk.address_lookup(&host, query, address_lookup(result))
                    })
                }
                Step::Connect(endpoint) => {
                    let (host, ip, tls) = (endpoint.host().cloned(), endpoint.ip(), endpoint.tls());
                    match self.connect(host.as_ref(), ip, tls) {
                        Ok(conn) => {
                            live = Some(Live {
                                conn,
                                host,
                                ip,
                                tls,
                                carried: 0,
                            });
                            Ok(())
                        }
                        Err(failure) => {
                            self.note(&format!("{destination}: {ip}: {failure:?}"));
                            walk.connection_failed(host.as_ref(), ip, tls, failure)
                        }
                    }
                }
                // A one-connection loop never sees Wait (nothing is in
                // flight when it asks); a step it does not know ends the
                // walk rather than spin.
                _ => {
                    walk.abort();
                    break;
                }
            };
            if reported.is_err() {
                // The walk refused a report about its own step: give up
                // rather than ask the same step forever.
                walk.abort();
            }
        }
        if let Some(l) = live {
            let _ = l.conn.quit();
        }
        walk
    }

    /// Runs one batch on the live connection and reports it.
    fn send(
        &self,
        walk: &mut Walk,
        live: &mut Live,
        batch: &Batch,
        group: &Envelope,
    ) -> Result<(), smtp_proto::mx::WalkError> {
        let mut envelope = group.clone();
        envelope.recipients = batch
            .recipients()
            .iter()
            .filter_map(|&i| group.recipients.get(i).cloned())
            .collect();
        match live.conn.transact(&envelope, self.body) {
            Ok(report) => {
                walk.transaction_done(batch.id(), TransactionOutcome::from_report(report))
            }
            Err(Error::Message(error)) => walk.message_refused(batch.id(), error),
            // The connection was unusable before anything was sent.
            Err(e) => {
                let lost = crate::client::transport_failure(&e);
                let outcome = TransactionOutcome::new(None, Vec::new(), Some(lost));
                walk.transaction_done(batch.id(), outcome)
            }
        }
    }

    fn lookup_mx(&mut self, domain: &HostName) -> Lookup<MxAnswer> {
        let result = self.pump.run(&[Question::mx(domain)]);
        let answer = match result.ok().and_then(|r| r.into_iter().next()) {
            Some(Ok(answer)) => answer,
            Some(Err(Failure::ServerFailure(rcode))) => {
                return Lookup::Answered(MxAnswer::Temporary(rcode));
            }
            _ => return Lookup::Failed,
        };
        let Ok(seed) = random_u64() else {
            return Lookup::Failed;
        };
        match MxAnswer::from_answer(&answer, seed) {
            Ok(answer) => Lookup::Answered(answer),
            Err(_) => Lookup::Failed,
        }
    }

    /// Connects to `ip` and sets the session up under `tls`.
    fn connect(
        &mut self,
        host: Option<&HostName>,
        ip: IpAddr,
        tls: TlsPolicy,
    ) -> Result<Connection, ConnectionFailure> {
        let name = host.map_or_else(|| ip.to_string(), |h| h.as_str().to_owned());
        self.note(&format!("trying {name} at {ip} ({:?})", tls.mode()));
        let mut settings = self.settings.settings.clone();
        if !tls.verify() && tls.mode() != TlsMode::Disabled {
            settings.tls = self.accept_any()?;
        }
        let addr = SocketAddr::new(ip, self.settings.port);
        let channel = Channel::connect(&[addr], settings.connect_timeout)
            .map_err(|_| ConnectionFailure::Connect)?;
        let params = SessionParams {
            protocol: Protocol::Smtp,
            tls_mode: tls.mode(),
            host: &name,
            credentials: None,
            helo: None,
        };
        Connection::set_up(channel, &params, &settings).map_err(setup_failure)
    }

    /// The configuration that accepts any certificate, for the connections
    /// the walk does not ask to verify (and only for them).
    fn accept_any(&mut self) -> Result<TlsConfig, ConnectionFailure> {
        if let Some(config) = &self.accept_any {
            return Ok(config.clone());
        }
        let config = TlsConfig::builder()
            .dangerous_accept_any_certificate()
            .build()
            .map_err(|_| ConnectionFailure::Tls(TlsFailure::Handshake))?;
        self.accept_any = Some(config.clone());
        Ok(config)
    }
}

/// A setup failure in the walk's terms.
#[allow(clippy::boxed_local)] // the error of `Connection::set_up`, as it comes
fn setup_failure(failure: Box<SetupFailure>) -> ConnectionFailure {
    let failure = *failure;
    if failure.in_tls {
        let certificate = matches!(&failure.error, Error::Tls(e) if e.is_certificate_error());
        return ConnectionFailure::Tls(if certificate {
            TlsFailure::Certificate
        } else {
            TlsFailure::Handshake
        });
    }
    ConnectionFailure::Session(
        failure
            .session
            .unwrap_or_else(|| crate::client::transport_failure(&failure.error)),
    )
}

/// One address query's result in the walk's terms.
fn address_lookup(result: Option<&Result<Answer, Failure>>) -> Lookup<AddressAnswer> {
    match result {
        Some(Ok(answer)) => Lookup::Answered(AddressAnswer::from_answer(answer)),
        Some(Err(Failure::ServerFailure(rcode))) => {
            Lookup::Answered(AddressAnswer::Temporary(*rcode))
        }
        _ => Lookup::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_follows_the_mode_unless_set() {
        let mut s = MxSettings::new(Resolver::new(Vec::new()));
        assert!(!s.tls_policy().verify(), "opportunistic: unverified");
        s.verify = Some(true);
        assert!(s.tls_policy().verify());
        s.tls = TlsMode::Required;
        s.verify = None;
        assert!(s.tls_policy().verify(), "required: verified");
        s.verify = Some(false);
        assert!(!s.tls_policy().verify());
        s.tls = TlsMode::Implicit;
        assert!(s.tls_policy().verify(), "implicit: always verified");
        assert_eq!(s.walk_config().tls, s.tls_policy());
    }

    #[test]
    fn setup_failures_in_the_walks_terms() {
        let tls = |error, in_tls| {
            Box::new(SetupFailure {
                error,
                session: None,
                in_tls,
            })
        };
        let cert = Error::Tls(crate::tls::TlsError::Handshake(
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert_eq!(
            setup_failure(tls(cert, true)),
            ConnectionFailure::Tls(TlsFailure::Certificate)
        );
        let eof = Error::Io(std::io::ErrorKind::UnexpectedEof.into());
        assert_eq!(
            setup_failure(tls(eof, true)),
            ConnectionFailure::Tls(TlsFailure::Handshake)
        );
        let reset = Error::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(matches!(
            setup_failure(tls(reset, false)),
            ConnectionFailure::Session(smtp_proto::client::Error::ConnectionClosed { .. })
        ));
        let refused = Box::new(SetupFailure {
            error: Error::Protocol(String::new()),
            session: Some(smtp_proto::client::Error::StartTlsNotOffered),
            in_tls: false,
        });
        assert_eq!(
            setup_failure(refused),
            ConnectionFailure::Session(smtp_proto::client::Error::StartTlsNotOffered)
        );
    }

    #[test]
    fn describe_names_the_reply_or_the_reason() {
        let r = MxRecipientResult {
            recipient: ForwardPath::Postmaster,
            outcome: Outcome::PermanentFailure,
            reply: None,
            host: None,
            address: None,
            reason: Some(Reason::NullMx),
        };
        assert_eq!(r.describe(), "the domain accepts no mail (null MX)");
    }
}
