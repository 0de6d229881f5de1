//! The MX walk: every delivery decision for one destination, for every
//! transport. The rules and their reasons are in [`Walk`]'s documentation.

use core::fmt;
use core::net::IpAddr;

use thiserror::Error;

use super::answer::{AddressAnswer, MxAnswer, MxHost, Rcode, merge_address_lookups};
use super::name::{HostName, HostNameError};
use super::plan::{FamilyPreference, PlanConfig, PlanError, order, without_local};
use super::query::QueryType;
use crate::TlsMode;
use crate::address::{AddressLiteral, ForwardPath, Host};
use crate::client::{self, Outcome, TransactionReport, UsageError, Waiting};
use crate::dns::Severity;
use crate::reply::Reply;

/// The most hosts one walk tries: the width of the per-recipient record of
/// the hosts that deferred it.
///
/// RFC 5321 §5.1 allows "a configurable limit on the number of alternate
/// addresses that can be tried" as long as at least two are; the
/// configurable limit is [`WalkConfig::max_hosts`], and this is its ceiling.
pub const MAX_HOSTS: usize = 32;

/// The most addresses tried per host, whatever
/// [`PlanConfig::max_addresses_per_host`] says; the same ceiling as the
/// address hints kept per host ([`MAX_HINTS_PER_HOST`](super::MAX_HINTS_PER_HOST)).
pub const MAX_ADDRESSES_PER_HOST: usize = 16;

/// The TLS a connection uses: the session's [`TlsMode`] and whether the
/// transport verifies the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsPolicy {
    mode: TlsMode,
    verify: bool,
}

impl TlsPolicy {
    /// `mode` with its default verification: on for
    /// [`Required`](TlsMode::Required) and [`Implicit`](TlsMode::Implicit),
    /// off for [`Opportunistic`](TlsMode::Opportunistic) (see the
    /// [`Walk`] docs for why) and [`Disabled`](TlsMode::Disabled).
    pub const fn new(mode: TlsMode) -> Self {
        Self {
            mode,
            verify: matches!(mode, TlsMode::Required | TlsMode::Implicit),
        }
    }

    /// No TLS at all: the opportunistic plaintext pass.
    pub const fn plaintext() -> Self {
        Self::new(TlsMode::Disabled)
    }

    /// The same mode with verification on or off. Implicit TLS is always
    /// verified and plaintext never is, whatever is asked here.
    #[must_use]
    pub const fn with_verify(self, verify: bool) -> Self {
        Self {
            mode: self.mode,
            verify: match self.mode {
                TlsMode::Implicit => true,
                TlsMode::Disabled => false,
                _ => verify,
            },
        }
    }

    /// The session's TLS mode.
    pub const fn mode(self) -> TlsMode {
        self.mode
    }

    /// Whether the transport must verify the certificate (against the host
    /// name, or the address of an address literal).
    pub const fn verify(self) -> bool {
        self.verify
    }

    /// Whether a connection made under `self` is at least as protected as
    /// one made under `need` would be: its mode is at least as strict
    /// (disabled < opportunistic < required < implicit) and it verified the
    /// certificate if `need` would have.
    pub fn covers(self, need: Self) -> bool {
        strictness(self.mode) >= strictness(need.mode) && (self.verify || !need.verify)
    }
}

fn strictness(mode: TlsMode) -> u8 {
    match mode {
        TlsMode::Disabled => 0,
        TlsMode::Opportunistic => 1,
        TlsMode::Required => 2,
        TlsMode::Implicit => 3,
    }
}

/// Opportunistic TLS without verification: see the [`Walk`] docs.
impl Default for TlsPolicy {
    fn default() -> Self {
        Self::new(TlsMode::Opportunistic)
    }
}

/// How a [`Walk`] orders hosts, secures connections and sizes transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalkConfig {
    /// Host order, address families, address hints, local names (see
    /// [`PlanConfig`]).
    pub plan: PlanConfig,
    /// The TLS rule. Default: opportunistic, unverified (see the
    /// [`Walk`] docs).
    pub tls: TlsPolicy,
    /// At most this many MX hosts are tried (at least 1, at most
    /// [`MAX_HOSTS`]). Default 10: more than any large provider publishes
    /// (five is common), and it bounds the time one domain can take.
    pub max_hosts: usize,
    /// At most this many recipients per transaction (at least 1).
    /// Default 100: RFC 5321 §4.5.3.1.8 makes every server accept that many.
    pub max_recipients_per_transaction: usize,
}

impl Default for WalkConfig {
    fn default() -> Self {
        Self {
            plan: PlanConfig::default(),
            tls: TlsPolicy::default(),
            max_hosts: 10,
            max_recipients_per_transaction: 100,
        }
    }
}

impl WalkConfig {
    /// The defaults with `tls`.
    pub fn with_tls(tls: TlsPolicy) -> Self {
        Self {
            tls,
            ..Self::default()
        }
    }
}

/// Where a group of recipients is delivered: the domain of their addresses,
/// or the address literal they name (RFC 5321 §4.1.3).
///
/// Transports group recipients by this value, so that both group alike:
/// domains compare without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// A domain: its MX hosts, or itself (implicit MX).
    Domain(HostName),
    /// An address literal: that address, no DNS.
    Literal(IpAddr),
}

impl Destination {
    /// The destination of a recipient: its mailbox's domain part.
    /// `<Postmaster>` without a domain has none (RFC 5321 §4.1.1.3: it is
    /// for the server's own postmaster, not a relayed destination).
    /// Transports group recipients by this value, and hand each group that
    /// has none to [`Walk::unroutable`].
    pub fn of_recipient(recipient: &ForwardPath<'_>) -> Result<Self, DestinationError> {
        match recipient.mailbox() {
            Some(mailbox) => Self::of(mailbox.host()),
            None => Err(DestinationError::NoDomain),
        }
    }

    /// The destination of a mailbox's domain part.
    pub fn of(host: &Host<'_>) -> Result<Self, DestinationError> {
        match host {
            Host::Domain(domain) => HostName::parse(domain.as_str())
                .map(Self::Domain)
                .map_err(DestinationError::InvalidDomain),
            Host::Literal(AddressLiteral::Ipv4(ip)) => Ok(Self::Literal(IpAddr::V4(*ip))),
            Host::Literal(AddressLiteral::Ipv6(ip)) => Ok(Self::Literal(IpAddr::V6(*ip))),
            Host::Literal(_) => Err(DestinationError::UnsupportedLiteral),
        }
    }
}

/// The domain, or the literal in brackets (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(name) => f.write_str(name.as_str()),
            Self::Literal(IpAddr::V4(ip)) => write!(f, "[{ip}]"),
            Self::Literal(IpAddr::V6(ip)) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// Why a recipient's domain part is no destination. Permanent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// The recipient has no domain (`<Postmaster>`).
    #[error("no domain to deliver to")]
    NoDomain,
    /// The domain is not a host name the DNS can be asked about
    /// (internationalized domains must be given as A-labels).
    #[error("invalid domain: {0}")]
    InvalidDomain(HostNameError),
    /// A general address literal (`[tag:content]`): no transport to it.
    #[error("unsupported address literal")]
    UnsupportedLiteral,
}

/// The end of one DNS lookup, as the resolver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<A> {
    /// The answer (a truncated one must have been asked again over TCP).
    Answered(A),
    /// No usable answer: every server timed out, failed or sent answers
    /// that could not be used ([`AnswerError`](super::AnswerError)).
    /// Temporary.
    Failed,
}

/// What the walk wants next: see the [`Walk`] docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Step<'a> {
    /// Ask for the MX records of this domain; report with [`Walk::mx_lookup`].
    LookupMx(&'a HostName),
    /// Ask for the addresses of a host; report each query with
    /// [`Walk::address_lookup`].
    LookupAddresses(AddressLookup<'a>),
    /// Open a connection here; report with [`Walk::connection_failed`], or
    /// [`Walk::offer`] it once the session is ready.
    Connect(Endpoint<'a>),
    /// Nothing to start: the pending recipients are all in transactions.
    Wait,
    /// Every recipient has its [`Verdict`].
    Done,
}

/// The address queries a host still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLookup<'a> {
    host: &'a HostName,
    a: bool,
    aaaa: bool,
}

impl<'a> AddressLookup<'a> {
    /// The host.
    pub fn host(&self) -> &'a HostName {
        self.host
    }

    /// The queries still unanswered: [`QueryType::A`] and/or
    /// [`QueryType::Aaaa`], as [`PlanConfig::family`] wants.
    pub fn queries(&self) -> impl Iterator<Item = QueryType> + use<> {
        let a = self.a.then_some(QueryType::A);
        let aaaa = self.aaaa.then_some(QueryType::Aaaa);
        a.into_iter().chain(aaaa)
    }
}

/// Where to connect: a host (none for an address literal), one of its
/// addresses, and the TLS to use. Connect to port 25 for relaying (the port
/// is the transport's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    host: Option<&'a HostName>,
    ip: IpAddr,
    tls: TlsPolicy,
}

impl<'a> Endpoint<'a> {
    /// The MX host, `None` for an address literal. Its name is the one the
    /// certificate must carry when [`TlsPolicy::verify`] is set.
    pub fn host(&self) -> Option<&'a HostName> {
        self.host
    }

    /// The address to connect to.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The TLS to use.
    pub fn tls(&self) -> TlsPolicy {
        self.tls
    }
}

/// Whether an offered connection carried a transaction before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Just set up: its first transaction.
    Fresh,
    /// It carried at least one transaction before (connection reuse): a
    /// transaction on it that gets no reply at all is not the host's
    /// failure (see the [`Walk`] docs).
    Reused,
}

/// The name of a batch, unique within its walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(u32);

/// Recipients to send in one transaction on an offered connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Batch {
    id: BatchId,
    recipients: Vec<usize>,
}

impl Batch {
    /// Its name, for [`Walk::transaction_done`] and [`Walk::message_refused`].
    pub fn id(&self) -> BatchId {
        self.id
    }

    /// The recipients, as indices into the walk's recipients (envelope
    /// order), ascending. The transaction's RCPTs go in this order.
    pub fn recipients(&self) -> &[usize] {
        &self.recipients
    }
}

/// Why a connection ended before its session was ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionFailure {
    /// The TCP connection could not be made: refused, unreachable, timed
    /// out.
    Connect,
    /// The TLS layer failed: the handshake, or the certificate under
    /// verification.
    Tls(TlsFailure),
    /// The client session failed during setup; the walk reads the error
    /// (a refusal carries its reply).
    Session(client::Error),
}

impl ConnectionFailure {
    /// Whether this is what a server over its connection limit does to
    /// one connection too many (Postfix's
    /// `smtpd_client_connection_count_limit`, a process limit,
    /// postscreen): refuses or drops the TCP connection, greets with `421`
    /// or another `4yz`, closes unanswered, or never greets. A TLS
    /// failure, a refused hello or authentication, or a `5yz` greeting is
    /// about the host, never about how many connections it has.
    ///
    /// A client with several connections to one address reads such a
    /// failure, while others to that address are open, as "fewer
    /// connections here" and keeps the recipients for the open ones,
    /// rather than reporting it to the walk (concurrency feedback, as in
    /// Postfix's `SCHEDULER_README`); with no other connection open it is
    /// the walk's, like every failure.
    ///
    /// ```
    /// use smtp_proto::client::Error;
    /// use smtp_proto::mx::{ConnectionFailure, TlsFailure};
    /// use smtp_proto::reply::Reply;
    ///
    /// let (busy, _) = Reply::parse(b"421 4.7.0 Too many connections\r\n").unwrap().unwrap();
    /// let busy = ConnectionFailure::Session(Error::ServiceNotAvailable(busy.into_owned()));
    /// assert!(busy.may_be_connection_limit());
    /// assert!(ConnectionFailure::Connect.may_be_connection_limit());
    /// assert!(!ConnectionFailure::Tls(TlsFailure::Certificate).may_be_connection_limit());
    /// ```
    pub fn may_be_connection_limit(&self) -> bool {
        match self {
            Self::Connect => true,
            Self::Session(error) => match error {
                client::Error::ServiceNotAvailable(_) | client::Error::ConnectionClosed { .. } => {
                    true
                }
                client::Error::GreetingRejected(reply) => reply.is_transient_negative(),
                client::Error::Timeout(waiting) => !matches!(waiting, Waiting::TlsHandshake),
                _ => false,
            },
            Self::Tls(_) => false,
        }
    }
}

/// What failed in TLS, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The handshake failed (protocol, cipher suites, a broken peer).
    Handshake,
    /// The certificate was rejected (untrusted, expired, wrong name).
    Certificate,
}

/// A finished transaction as the walk reads it: the reply to MAIL, the
/// reply that decided each recipient of the batch (in batch order), and the
/// session's error if it failed. It holds what [`TransactionReport`] holds, and
/// is built from one with [`from_report`](Self::from_report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionOutcome {
    mail: Option<Reply<'static>>,
    replies: Vec<Option<Reply<'static>>>,
    error: Option<client::Error>,
}

impl TransactionOutcome {
    /// `mail`: the reply to MAIL, if one came. `replies`: per recipient of
    /// the batch, in its order, the reply that decided it — MAIL's if MAIL
    /// was refused, its RCPT's if that was not positive, else DATA's refusal
    /// or the reply after the content — or `None` if the connection ended
    /// first; missing entries count as `None`. `error`: why the session
    /// failed, if it did.
    pub fn new(
        mail: Option<Reply<'static>>,
        replies: Vec<Option<Reply<'static>>>,
        error: Option<client::Error>,
    ) -> Self {
        Self {
            mail,
            replies,
            error,
        }
    }

    /// The client's report of the transaction.
    pub fn from_report(report: TransactionReport) -> Self {
        Self {
            mail: report.mail,
            replies: report.recipients.into_iter().map(|r| r.reply).collect(),
            error: report.error,
        }
    }

    fn unanswered(&self) -> bool {
        self.mail.is_none() && self.replies.iter().all(Option::is_none)
    }
}

impl From<TransactionReport> for TransactionOutcome {
    fn from(report: TransactionReport) -> Self {
        Self::from_report(report)
    }
}

/// Why a recipient ended as it did, when a reply does not tell it all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The recipient's domain part is no destination.
    InvalidDestination(DestinationError),
    /// The domain publishes a null MX: it accepts no mail (RFC 7505;
    /// `556 5.1.10` in RFC 7505 §4.1's words).
    NullMx,
    /// The domain does not exist (NXDOMAIN).
    NxDomain,
    /// The MX lookup got this failure code (SERVFAIL, REFUSED, …).
    DnsFailure(Rcode),
    /// The MX lookup got no usable answer.
    DnsUnanswered,
    /// This client is the domain's best MX (RFC 5321 §5.1; `5.4.6`).
    MailLoop {
        /// The lowest preference among this client's names.
        preference: u16,
    },
    /// The host does not exist or has no usable address.
    HostNotFound,
    /// The host's address lookup failed temporarily.
    HostLookupFailed,
    /// No host had an address to connect to.
    NoAddress,
    /// The TCP connection could not be made.
    Connect,
    /// TLS failed.
    Tls(TlsFailure),
    /// The client session failed (a refusal during setup, STARTTLS missing
    /// under a required policy, a timeout, a lost connection, …).
    Session(client::Error),
    /// The client session refused to send the message over this connection.
    Message(UsageError),
    /// The transaction ended without a reply for the recipient, and
    /// without a session error to say why.
    NoReply,
    /// The transport gave up the walk ([`Walk::abort`]).
    Aborted,
}

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    outcome: Outcome,
    reply: Option<&'a Reply<'static>>,
    host: Option<&'a HostName>,
    ip: Option<IpAddr>,
    reason: Option<&'a Reason>,
}

impl<'a> Verdict<'a> {
    /// Accepted, or failed temporarily or permanently.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The reply that decided it, if a server gave one.
    pub fn reply(&self) -> Option<&'a Reply<'static>> {
        self.reply
    }

    /// The MX host that gave the reply (or failed), if there was one; `None`
    /// for an address literal and for DNS failures.
    pub fn host(&self) -> Option<&'a HostName> {
        self.host
    }

    /// The address of the server that gave the reply (or failed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// Why, when no reply tells it (DNS, connection, TLS, session).
    pub fn reason(&self) -> Option<&'a Reason> {
        self.reason
    }
}

/// A report the walk cannot take. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The walk does not wait for this answer (no MX lookup pending, or the
    /// host's addresses are already known): harmless when a resolver shared
    /// between walks answers every walk of a destination.
    #[error("the walk does not wait for this answer")]
    NotWaiting,
    /// A truncated DNS answer: ask again over TCP first.
    #[error("truncated DNS answer: ask again over TCP")]
    Truncated,
    /// The host or address is not one of this walk's.
    #[error("not a host of this walk")]
    UnknownHost,
    /// No transaction of this walk is in flight under that id.
    #[error("no such batch in flight")]
    UnknownBatch,
}

/// A host's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Addresses {
    /// Not known yet: the answers per family (`Some(Ok(vec![]))` for a
    /// family that is not wanted).
    Pending {
        a: Option<Result<Vec<IpAddr>, Severity>>,
        aaaa: Option<Result<Vec<IpAddr>, Severity>>,
    },
    /// Ordered, filtered, capped; never empty.
    Ready(Vec<IpAddr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// `None` for an address literal.
    name: Option<HostName>,
    addresses: Addresses,
    /// The next address to connect to.
    cursor: usize,
    /// Still in the running.
    open: bool,
    /// The TLS new connections to it use.
    tls: TlsPolicy,
    /// It failed on TLS at this address: the plaintext pass starts there.
    tls_failed_at: Option<usize>,
}

impl Slot {
    fn current(&self) -> Option<IpAddr> {
        match &self.addresses {
            Addresses::Ready(ips) => ips.get(self.cursor).copied(),
            Addresses::Pending { .. } => None,
        }
    }
}

/// One event in a recipient's (or the walk's) story.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Note {
    outcome: Outcome,
    reply: Option<Reply<'static>>,
    slot: Option<usize>,
    ip: Option<IpAddr>,
    reason: Option<Reason>,
}

impl Note {
    fn failure(outcome: Outcome, reason: Reason) -> Self {
        Self {
            outcome,
            reply: None,
            slot: None,
            ip: None,
            reason: Some(reason),
        }
    }
}

/// Keeps the more telling of two failures: a temporary one before a
/// permanent one (it is what makes the verdict temporary), then one with a
/// reply before one without, then the later one.
fn remember(slot: &mut Option<Note>, note: Note) {
    if slot.as_ref().is_none_or(|old| rank(&note) >= rank(old)) {
        *slot = Some(note);
    }
}

fn rank(note: &Note) -> (bool, bool) {
    (
        note.outcome == Outcome::TransientFailure,
        note.reply.is_some(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    InFlight(BatchId),
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Recipient {
    state: State,
    /// Bit `i`: slot `i` deferred it.
    deferred_by: u32,
    /// Already sent back once from a reused connection that died.
    returned: bool,
    /// The verdict once final; the last deferral before.
    note: Option<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    id: BatchId,
    slot: usize,
    ip: IpAddr,
    freshness: Freshness,
}

/// What a setup failure means.
enum Class {
    NextAddress(Reason),
    NextHost {
        reply: Option<Reply<'static>>,
        permanent: bool,
        reason: Reason,
    },
    Tls(Reason),
}

fn classify(failure: ConnectionFailure) -> Class {
    let error = match failure {
        ConnectionFailure::Connect => return Class::NextAddress(Reason::Connect),
        ConnectionFailure::Tls(kind) => return Class::Tls(Reason::Tls(kind)),
        ConnectionFailure::Session(error) => error,
    };
    match &error {
        client::Error::GreetingRejected(reply)
        | client::Error::ServiceNotAvailable(reply)
        | client::Error::HelloRejected(reply)
        | client::Error::AuthFailed(reply) => Class::NextHost {
            reply: Some(reply.clone()),
            permanent: reply.is_permanent_negative(),
            reason: Reason::Session(error),
        },
        // Our policy, not the host's verdict on the mail: never permanent.
        client::Error::StartTlsRefused(reply) => Class::NextHost {
            reply: Some(reply.clone()),
            permanent: false,
            reason: Reason::Session(error),
        },
        client::Error::StartTlsNotOffered
        | client::Error::AuthNotAvailable
        | client::Error::AuthRequiresTls
        | client::Error::AuthCancelled => Class::NextHost {
            reply: None,
            permanent: false,
            reason: Reason::Session(error),
        },
        client::Error::StartTlsInjection { .. } | client::Error::Timeout(Waiting::TlsHandshake) => {
            Class::Tls(Reason::Session(error))
        }
        _ => Class::NextAddress(Reason::Session(error)),
    }
}

/// The MX walk: every delivery decision for one destination, once, for
/// every transport.
///
/// A [`Walk`] takes one destination (a domain, or an address literal) and
/// the recipients a message has there, and decides everything between "here
/// are the recipients" and "here is what happened to each of them": what to
/// look up, where to connect and with which TLS, what a failed connection or
/// TLS handshake means, which recipients a reply settles and which go on to
/// another host, and when to stop. The transport owns sockets and nothing
/// else: it does what [`Walk::next_step`] says, reports what happened with
/// the `Walk` methods below, and reads the [`Verdict`]s at the end.
///
/// # Why one walk in the core
///
/// A first version left the walk to each transport. The two copies drifted
/// within days: one moved to the next host only when *every* recipient had
/// been deferred, the other moved just the deferred ones; one verified
/// certificates under opportunistic TLS and skipped hosts with bad ones, the
/// other encrypted without verifying. The same mail to the same domain got
/// different results depending on the crate that sent it. Everything here is
/// a pure function of the inputs (no clock, no randomness, no I/O: the MX
/// tie-break seed was applied when the answer was decoded), so every rule is
/// tested once, as a table, and replayed exactly.
///
/// # The flow
///
/// [`Walk::next_step`] is a question about the current state, not an
/// action: it returns the same [`Step`] until something is reported.
///
/// | [`Step`] | the transport does | then reports |
/// |---|---|---|
/// | [`Step::LookupMx`] | an MX query for the domain | [`Walk::mx_lookup`] |
/// | [`Step::LookupAddresses`] | the A and/or AAAA queries it lists | [`Walk::address_lookup`], one per query |
/// | [`Step::Connect`] | a connection to the [`Endpoint`]: TCP, greeting, EHLO, TLS as [`Endpoint::tls`] says, AUTH | [`Walk::connection_failed`], or once the session is ready [`Walk::offer`] |
/// | [`Step::Wait`] | nothing: every pending recipient is in a transaction | the transactions' ends |
/// | [`Step::Done`] | read [`Walk::verdicts`] | — |
///
/// A ready connection is *offered*: [`Walk::offer`] returns the [`Batch`] of
/// recipients to send on it (or `None`), the transport runs one mail
/// transaction for exactly those recipients, in that order, and reports it
/// with [`Walk::transaction_done`] (or [`Walk::message_refused`] when the
/// client session refused the message before sending it). Then it offers the
/// same connection again, to this walk or, under connection reuse, to
/// another walk of the same destination.
///
/// # The rules
///
/// **DNS** (RFC 5321 §5.1, RFC 7505):
/// - a null MX, NXDOMAIN for the domain, a domain that is not a valid host
///   name, or an MX list that points back at this client ([`PlanConfig::local_names`],
///   RFC 5321 §5.1 "mail loops back to myself"): every recipient fails
///   permanently, and no connection is made;
/// - a failure answer (SERVFAIL, REFUSED, …) or no usable answer at all
///   (timeouts, answers that cannot be used): every recipient fails
///   temporarily;
/// - a truncated answer is for the resolver to repeat over TCP (RFC 7766);
///   reporting one here is refused with [`WalkError::Truncated`];
/// - no MX records: the domain itself, with preference 0 (implicit MX);
/// - hosts are tried in preference order (ties in the order the seed drew
///   when the answer was decoded), at most [`WalkConfig::max_hosts`] of
///   them; a host is looked up (A and AAAA, as [`PlanConfig::family`] wants)
///   only when the walk reaches it, unless the answer carried its addresses
///   and [`PlanConfig::use_hints`] is set. A host whose lookup fails is
///   skipped: NXDOMAIN or no usable address count as permanent, a failed
///   lookup as temporary.
///
/// **Connections**:
/// - a connection that cannot be made (refused, unreachable, timed out), or
///   a session that ends during setup without refusing anything (closed or
///   timed out before or between replies, a reply that is not SMTP): the
///   next **address** of the same host, then the next host — another
///   address may reach a working machine;
/// - a refusal during setup — a `421` or any `4yz`/`5yz` greeting, a refused
///   EHLO, STARTTLS missing or refused under [`TlsMode::Required`], a
///   refused or impossible AUTH: the next **host** — the other addresses
///   reach the same server, which has just said no;
/// - a TLS failure — a failed handshake (STARTTLS or implicit), a rejected
///   certificate when verifying, a TLS handshake timeout, plaintext injected
///   after the STARTTLS reply: the next **host** (and see the TLS rule
///   below).
///
/// **Transactions**, per recipient, from the reply that decided it (MAIL's,
/// its RCPT's, DATA's or the one after the content):
/// - `2yz` (accepted) and `5yz` (refused) are final: no other host is asked,
///   since every MX host of a domain serves the same mailboxes;
/// - `4yz` — to MAIL, the RCPT, DATA or after the content (greylisting
///   answers at any of them) — moves **just that recipient** on to the next
///   host, and that recipient never goes back to a host that deferred it.
///   The other recipients of the transaction keep their results;
/// - no reply (the connection was lost or timed out in the middle of the
///   transaction): the same as a `4yz` from that host, with the session's
///   error as the [`Reason`]. RFC 5321 §6.1 accepts the duplicate this can
///   cause when the content had been taken; waiting for a later retry would
///   cause the same duplicate, later;
/// - a **reused** connection ([`Freshness::Reused`]) that ends before the
///   transaction got any reply at all — not even to MAIL — is not the host's
///   failure: a server may close an idle connection at any time (RFC 5321
///   §4.5.3.2.7 gives it a 5-minute idle timeout), and it races our MAIL.
///   Nothing was acknowledged and no content was sent, so the recipients go
///   back to pending without a mark, once each; a second time counts as a
///   lost connection at that host. The transport reports what it saw (the
///   client's report with no reply in it) on a connection it offered as
///   reused; the walk draws the conclusion;
/// - the client session refusing the message before sending anything (an
///   extension the message needs is missing, the message exceeds the
///   server's SIZE): final and permanent for the batch — the message cannot
///   go as it is (RFC 3463 `5.3.4` "message too big for system", RFC 6531's
///   `5.6.7` for a missing SMTPUTF8); Postfix bounces these too.
///
/// **Exhaustion**: a recipient for which no host is left gets its last
/// deferral, with the reply (if any) and the host and address that gave it.
/// It is temporary unless nothing temporary ever happened to it: every host
/// refused permanently (a `5yz` greeting, EHLO or AUTH) or has no address
/// (NXDOMAIN, no usable record) — [`HostPlan`]'s severity rule, extended to
/// refusals. Which failure is reported: of its own deferrals (a `4yz`, a
/// lost transaction) and the walk's host failures (connect, setup, TLS,
/// lookup), one that is temporary if the verdict is (so that the reply
/// shown agrees with the outcome), preferably one with a reply (`421 too
/// busy` says more than "connection refused" elsewhere), the latest among
/// equals, its own before the walk's.
///
/// **Connection reuse**: a ready connection to any host of the destination
/// that is still in the running (not failed in this walk) is taken for the
/// recipients that host has not deferred, provided its TLS
/// [covers](TlsPolicy::covers) what the walk would ask for now. The host
/// need not be the most preferred one: a connection exists to it because the
/// hosts before it failed for some walk; Postfix's connection cache reuses
/// sessions by destination for the same reason ("it can help Postfix to skip
/// over a non-responding server", `CONNECTION_CACHE_README`). New
/// connections always follow the preference order.
///
/// **Batches**: at most [`WalkConfig::max_recipients_per_transaction`]
/// recipients per transaction, 100 by default: RFC 5321 §4.5.3.1.8 obliges
/// a server to accept at least 100 recipients, so more may be refused with
/// `452` for a reason that has nothing to do with the recipients.
///
/// # The TLS rule
///
/// [`WalkConfig::tls`] is a [`TlsPolicy`]: a [`TlsMode`] and whether to
/// verify the certificate.
///
/// - [`TlsMode::Opportunistic`] (the default, Postfix's `may`): STARTTLS
///   whenever the host offers it, **without verifying** the certificate
///   unless `verify` is set; plaintext when the host does not offer it. A
///   failed handshake (or a rejected certificate under `verify`) moves to
///   the next host. When a recipient has no host left and some hosts failed
///   *only* on TLS, those hosts get **one plaintext pass**, each from the
///   address that failed, with [`TlsMode::Disabled`].
///
///   Why not verify: the MX host name comes from an unauthenticated DNS
///   answer, so a certificate that matches it proves little against an
///   attacker who can answer the MX query (RFC 7672 §1.3: that is why MTAs
///   do not authenticate opportunistic TLS, and why DANE and MTA-STS exist);
///   and many legitimate MX hosts present self-signed or mismatched
///   certificates. Encrypting anyway defeats passive eavesdropping, which is
///   the point of opportunistic security (RFC 7435: "use encryption even
///   when authentication is not available"). RFC 3207 §4.1 leaves the
///   decision to continue after the handshake to the client's local policy.
///
///   Why the plaintext pass: RFC 7435 §3 puts communication first — with a
///   peer that cannot be protected, opportunistic security falls back to
///   cleartext rather than not communicating; and
///   an active attacker can strip STARTTLS from the EHLO reply anyway
///   (RFC 3207 §6), so refusing cleartext after a failed handshake protects
///   nobody. Postfix retries the same address in plaintext at once
///   (`smtp_connect.c`: "When an opportunistic TLS handshake fails, try the
///   same address again, with TLS disabled"). We first give every other host
///   the chance to take the mail encrypted, and only then go back in
///   plaintext: an encrypted delivery to a less preferred host beats a
///   plaintext one to a better host.
/// - [`TlsMode::Required`] (Postfix's `verify`, or `encrypt` with `verify`
///   off): STARTTLS must be offered and must succeed, **never
///   plaintext**; the certificate is verified unless `verify` is turned off
///   ([`TlsPolicy::new`] turns it on). A host without STARTTLS, or whose TLS
///   fails, is passed over; when none is left the recipients fail
///   temporarily, as Postfix defers: the host may be fixed, and our policy
///   is no reason to bounce.
/// - [`TlsMode::Implicit`] (RFC 8314): TLS from the first byte; always
///   verified.
/// - [`TlsMode::Disabled`]: never STARTTLS.
///
/// The transport runs the TLS the [`Endpoint`] names: the session's mode
/// from [`TlsPolicy::mode`], and a certificate verifier (against the host
/// name, or the address for an address literal) exactly when
/// [`TlsPolicy::verify`] is set.
///
/// # Following the walk
///
/// **One connection at a time** (a blocking loop): keep at most one live
/// connection. Before asking for a step, offer the live connection
/// ([`Freshness::Fresh`] the first time, [`Freshness::Reused`] after):
/// for a [`Batch`], run the transaction and report it; for `None`, QUIT
/// and drop it. Then ask [`Walk::next_step`]: look up, or connect to the
/// [`Endpoint`] and either report the failure or keep the connection as the
/// live one. Such a loop never sees [`Step::Wait`] (nothing is in flight
/// when it asks); it stops at [`Step::Done`].
///
/// **Many connections** (an event loop, connection reuse across messages):
/// one walk per message and destination. Answer lookups from a cache shared
/// by the walks of a destination (an answer the walk no longer waits for is
/// refused with [`WalkError::NotWaiting`], harmlessly). For
/// [`Step::Connect`], open a connection for that walk unless one for it is
/// on its way (the step stays the same until something is reported), and
/// keep the endpoint with the connection; report a failure to the walk it
/// was opened for — and, since it is a fact about the endpoint, to the other
/// walks whose current step is that same endpoint. A ready or idle
/// connection is offered to the walk it was opened for, then to the other
/// walks of its destination in queue order; the first batch wins, and when
/// no walk has one the connection idles or closes. Recipients a host
/// deferred come back as [`Step::Connect`] to another host: a new
/// connection, or an offer of one already open. A walk is finished when it
/// says [`Step::Done`]; [`Walk::abort`] ends it early (cancel, shutdown,
/// unreadable content).
///
/// # Bounds
///
/// Hosts per walk: [`WalkConfig::max_hosts`], at most [`MAX_HOSTS`];
/// addresses per host: [`PlanConfig::max_addresses_per_host`], at most
/// [`MAX_ADDRESSES_PER_HOST`]; recipients per transaction as above. The
/// walk keeps a fixed-size record per recipient (the recipients come from
/// the caller's envelope, not from a peer) and one record per transaction
/// in flight; it allocates when the MX answer and the addresses arrive and
/// once per batch, never per step.
///
/// # Example
///
/// A blocking loop, with the network played by hand: one MX host that
/// greylists one of two recipients, a second host that takes it.
///
/// ```
/// use core::net::IpAddr;
/// use smtp_proto::client::Outcome;
/// use smtp_proto::mx::{
///     AddressAnswer, Destination, Freshness, HostName, Lookup, MxAnswer, MxHost, QueryType,
///     Step, TransactionOutcome, Walk, WalkConfig,
/// };
/// use smtp_proto::reply::Reply;
///
/// let reply = |text: &str| Reply::parse(text.as_bytes()).unwrap().unwrap().0.into_owned();
/// let name = |s: &str| HostName::parse(s).unwrap();
/// let domain = Destination::Domain(name("example.net"));
/// let mut walk = Walk::new(domain, 2, &WalkConfig::default());
///
/// assert!(matches!(walk.next_step(), Step::LookupMx(d) if d.as_str() == "example.net"));
/// let mx1 = MxHost::new(name("mx1.example.net"), 10).with_hints(["192.0.2.1".parse::<IpAddr>().unwrap()]);
/// let mx2 = MxHost::new(name("mx2.example.net"), 20);
/// walk.mx_lookup(Lookup::Answered(MxAnswer::Hosts(vec![mx1, mx2]))).unwrap();
///
/// // mx1's address came with the answer: connect.
/// let Step::Connect(at) = walk.next_step() else { panic!() };
/// assert_eq!(at.ip().to_string(), "192.0.2.1");
/// let (host, ip, tls) = (at.host().cloned(), at.ip(), at.tls());
/// // ... the connection is set up (STARTTLS without verification) ...
/// let batch = walk.offer(host.as_ref(), ip, tls, Freshness::Fresh).unwrap();
/// assert_eq!(batch.recipients(), &[0, 1]);
/// // ... MAIL, RCPT, RCPT, DATA: bob is greylisted ...
/// let ok = reply("250 2.0.0 queued\r\n");
/// let greylisted = reply("450 4.2.0 greylisted\r\n");
/// let outcome = TransactionOutcome::new(
///     Some(reply("250 2.1.0 ok\r\n")),
///     vec![Some(ok), Some(greylisted)],
///     None,
/// );
/// walk.transaction_done(batch.id(), outcome).unwrap();
/// // mx1 would take nothing more (bob's deferral came from it).
/// assert!(walk.offer(host.as_ref(), ip, tls, Freshness::Reused).is_none());
///
/// // bob goes on to mx2, looked up now.
/// let Step::LookupAddresses(lookup) = walk.next_step() else { panic!() };
/// assert_eq!(lookup.host().as_str(), "mx2.example.net");
/// let v4: IpAddr = "192.0.2.2".parse().unwrap();
/// walk.address_lookup(&name("mx2.example.net"), QueryType::A,
///     Lookup::Answered(AddressAnswer::Addresses(vec![v4]))).unwrap();
/// walk.address_lookup(&name("mx2.example.net"), QueryType::Aaaa,
///     Lookup::Answered(AddressAnswer::Addresses(vec![]))).unwrap();
/// let Step::Connect(at) = walk.next_step() else { panic!() };
/// let (host, ip, tls) = (at.host().cloned(), at.ip(), at.tls());
/// let batch = walk.offer(host.as_ref(), ip, tls, Freshness::Fresh).unwrap();
/// assert_eq!(batch.recipients(), &[1]);
/// let outcome = TransactionOutcome::new(
///     Some(reply("250 ok\r\n")),
///     vec![Some(reply("250 2.0.0 queued\r\n"))],
///     None,
/// );
/// walk.transaction_done(batch.id(), outcome).unwrap();
///
/// assert!(matches!(walk.next_step(), Step::Done));
/// let hosts: Vec<_> = walk
///     .verdicts()
///     .map(|(_, v)| (v.outcome(), v.host().unwrap().as_str().to_owned()))
///     .collect();
/// assert_eq!(hosts, [
///     (Outcome::Accepted, "mx1.example.net".to_owned()),
///     (Outcome::Accepted, "mx2.example.net".to_owned()),
/// ]);
/// ```
///
/// [`HostPlan`]: super::HostPlan
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// `None` when the domain part was no destination.
    destination: Option<Destination>,
    mx_pending: bool,
    slots: Vec<Slot>,
    recipients: Vec<Recipient>,
    /// Recipients without a final verdict.
    open: usize,
    batches: Vec<InFlight>,
    next_batch: u32,
    /// The last host failure (setup, TLS, lookup), by [`remember`].
    failure: Option<Note>,
    /// Whether anything temporary happened to a host.
    temporary: bool,
    /// The opportunistic plaintext pass has begun.
    fallback: bool,
    tls: TlsPolicy,
    plan: PlanConfig,
    max_hosts: usize,
    max_batch: usize,
}

impl Walk {
    /// A walk to `destination` for `recipients` recipients (referred to by
    /// index, 0 to `recipients - 1`, in envelope order).
    pub fn new(destination: Destination, recipients: usize, config: &WalkConfig) -> Self {
        Self::start(Some(destination), recipients, config)
    }

    /// A walk to the domain part of the recipients' addresses; one that is
    /// no destination ends at once, every recipient failing permanently
    /// with [`Reason::InvalidDestination`].
    pub fn for_host(host: &Host<'_>, recipients: usize, config: &WalkConfig) -> Self {
        match Destination::of(host) {
            Ok(destination) => Self::new(destination, recipients, config),
            Err(error) => Self::unroutable(recipients, error),
        }
    }

    /// A walk for recipients that have no destination: done at once, every
    /// recipient failing permanently with [`Reason::InvalidDestination`],
    /// without a step.
    pub fn unroutable(recipients: usize, error: DestinationError) -> Self {
        let mut walk = Self::start(None, recipients, &WalkConfig::default());
        walk.finish_all(Outcome::PermanentFailure, Reason::InvalidDestination(error));
        walk
    }

    fn start(destination: Option<Destination>, recipients: usize, config: &WalkConfig) -> Self {
        let mut walk = Self {
            mx_pending: matches!(destination, Some(Destination::Domain(_))),
            destination,
            slots: Vec::new(),
            recipients: vec![
                Recipient {
                    state: State::Pending,
                    deferred_by: 0,
                    returned: false,
                    note: None,
                };
                recipients
            ],
            open: recipients,
            batches: Vec::new(),
            next_batch: 0,
            failure: None,
            temporary: false,
            fallback: false,
            tls: config.tls,
            plan: config.plan.clone(),
            max_hosts: config.max_hosts.clamp(1, MAX_HOSTS),
            max_batch: config.max_recipients_per_transaction.max(1),
        };
        if let Some(Destination::Literal(ip)) = walk.destination {
            let ips = walk.order(&[ip]);
            walk.slots.push(Slot {
                name: None,
                open: !ips.is_empty(),
                addresses: Addresses::Ready(ips),
                cursor: 0,
                tls: walk.tls,
                tls_failed_at: None,
            });
        }
        if walk.destination.is_some() {
            walk.settle();
        }
        walk
    }

    /// The destination; `None` for a walk [made](Self::for_host) for a
    /// domain part that is no destination.
    pub fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    /// What to do next. The same answer until something is reported.
    pub fn next_step(&self) -> Step<'_> {
        if self.open == 0 {
            return Step::Done;
        }
        if self.mx_pending
            && let Some(Destination::Domain(domain)) = &self.destination
        {
            return Step::LookupMx(domain);
        }
        // A host is useful when some pending recipient has not been
        // deferred by it: when its bit is missing from the intersection of
        // the pending recipients' marks.
        let mut pending = false;
        let mut all_deferred = u32::MAX;
        for r in &self.recipients {
            if r.state == State::Pending {
                pending = true;
                all_deferred &= r.deferred_by;
            }
        }
        if !pending {
            return Step::Wait;
        }
        let useful = self
            .slots
            .iter()
            .enumerate()
            .find(|(i, slot)| slot.open && all_deferred & bit(*i) == 0);
        match useful.map(|(_, slot)| slot) {
            Some(Slot {
                name: Some(host),
                addresses: Addresses::Pending { a, aaaa },
                ..
            }) => Step::LookupAddresses(AddressLookup {
                host,
                a: a.is_none(),
                aaaa: aaaa.is_none(),
            }),
            Some(slot) => match slot.current() {
                Some(ip) => Step::Connect(Endpoint {
                    host: slot.name.as_ref(),
                    ip,
                    tls: slot.tls,
                }),
                // settle() never leaves an open slot without an address.
                None => Step::Wait,
            },
            // settle() never leaves a pending recipient without a host.
            None => Step::Wait,
        }
    }

    /// Whether every recipient has its verdict.
    pub fn is_done(&self) -> bool {
        self.open == 0
    }

    /// The verdict of recipient `index`, once final.
    pub fn verdict(&self, index: usize) -> Option<Verdict<'_>> {
        let r = self.recipients.get(index)?;
        if r.state != State::Final {
            return None;
        }
        let note = r.note.as_ref()?;
        Some(Verdict {
            outcome: note.outcome,
            reply: note.reply.as_ref(),
            host: note
                .slot
                .and_then(|i| self.slots.get(i))
                .and_then(|s| s.name.as_ref()),
            ip: note.ip,
            reason: note.reason.as_ref(),
        })
    }

    /// The final verdicts, with their recipient's index, in envelope order.
    /// When the walk is done there is one per recipient.
    pub fn verdicts(&self) -> impl Iterator<Item = (usize, Verdict<'_>)> {
        (0..self.recipients.len()).filter_map(|i| self.verdict(i).map(|v| (i, v)))
    }

    /// Reports the end of the MX lookup of [`Step::LookupMx`].
    pub fn mx_lookup(&mut self, lookup: Lookup<MxAnswer>) -> Result<(), WalkError> {
        if !self.mx_pending {
            return Err(WalkError::NotWaiting);
        }
        let (outcome, reason) = match lookup {
            Lookup::Answered(MxAnswer::Truncated) => return Err(WalkError::Truncated),
            Lookup::Answered(MxAnswer::Hosts(hosts)) => {
                self.mx_pending = false;
                self.route(hosts);
                self.settle();
                return Ok(());
            }
            Lookup::Answered(MxAnswer::Implicit(host)) => {
                self.mx_pending = false;
                self.route(vec![host]);
                self.settle();
                return Ok(());
            }
            Lookup::Answered(MxAnswer::NullMx) => (Outcome::PermanentFailure, Reason::NullMx),
            Lookup::Answered(MxAnswer::NxDomain) => (Outcome::PermanentFailure, Reason::NxDomain),
            Lookup::Answered(MxAnswer::Temporary(rcode)) => {
                (Outcome::TransientFailure, Reason::DnsFailure(rcode))
            }
            Lookup::Failed => (Outcome::TransientFailure, Reason::DnsUnanswered),
        };
        self.mx_pending = false;
        self.finish_all(outcome, reason);
        Ok(())
    }

    /// Reports the end of one address query for `host`: [`QueryType::A`]
    /// or [`QueryType::Aaaa`]. Once every query the host needs is in, its
    /// addresses are merged (one family's failure beside the other's
    /// addresses is no failure: [`merge_address_lookups`]), ordered by
    /// family and capped. An answer for a host the walk has not reached yet
    /// is kept for when it does.
    pub fn address_lookup(
        &mut self,
        host: &HostName,
        query: QueryType,
        lookup: Lookup<AddressAnswer>,
    ) -> Result<(), WalkError> {
        let result = match lookup {
            Lookup::Answered(AddressAnswer::Truncated) => return Err(WalkError::Truncated),
            Lookup::Answered(AddressAnswer::Addresses(ips)) => Ok(ips),
            Lookup::Answered(AddressAnswer::NxDomain) => Err(Severity::Permanent),
            Lookup::Answered(AddressAnswer::Temporary(_)) | Lookup::Failed => {
                Err(Severity::Temporary)
            }
        };
        let index = self
            .slots
            .iter()
            .position(|s| s.name.as_ref() == Some(host))
            .ok_or(WalkError::UnknownHost)?;
        let Some(Slot {
            addresses: Addresses::Pending { a, aaaa },
            ..
        }) = self.slots.get_mut(index)
        else {
            return Err(WalkError::NotWaiting);
        };
        let cell = match query {
            QueryType::A => &mut *a,
            QueryType::Aaaa => &mut *aaaa,
            QueryType::Mx => return Err(WalkError::NotWaiting),
        };
        if cell.is_some() {
            return Err(WalkError::NotWaiting);
        }
        *cell = Some(result);
        let (Some(a), Some(aaaa)) = (a.clone(), aaaa.clone()) else {
            return Ok(());
        };
        let merged = merge_address_lookups([a, aaaa], |s| *s);
        self.resolved(index, merged);
        self.settle();
        Ok(())
    }

    /// Offers a ready connection — to `host` (`None` for an address
    /// literal) at `ip`, set up under `tls` — and returns the recipients to
    /// send on it, or `None` if this walk has nothing for it: the host is
    /// not one of this walk's or is out of the running, it deferred every
    /// pending recipient, or its TLS does not [cover](TlsPolicy::covers)
    /// what the walk asks of that host now.
    pub fn offer(
        &mut self,
        host: Option<&HostName>,
        ip: IpAddr,
        tls: TlsPolicy,
        freshness: Freshness,
    ) -> Option<Batch> {
        if self.mx_pending {
            return None;
        }
        let index = self.slot_of(host, ip)?;
        let slot = self.slots.get(index)?;
        if !slot.open || !tls.covers(slot.tls) {
            return None;
        }
        let id = BatchId(self.next_batch);
        let mut recipients = Vec::new();
        for (i, r) in self.recipients.iter_mut().enumerate() {
            if recipients.len() >= self.max_batch {
                break;
            }
            if r.state == State::Pending && r.deferred_by & bit(index) == 0 {
                r.state = State::InFlight(id);
                recipients.push(i);
            }
        }
        if recipients.is_empty() {
            return None;
        }
        self.next_batch = self.next_batch.wrapping_add(1);
        self.batches.push(InFlight {
            id,
            slot: index,
            ip,
            freshness,
        });
        Some(Batch { id, recipients })
    }

    /// Reports that a connection made for [`Step::Connect`] ended before its
    /// session was ready. `host`, `ip` and `tls` are the endpoint's. A
    /// report about an attempt the walk has moved past (the host already
    /// failed, the address already passed, another TLS policy) changes
    /// nothing.
    pub fn connection_failed(
        &mut self,
        host: Option<&HostName>,
        ip: IpAddr,
        tls: TlsPolicy,
        failure: ConnectionFailure,
    ) -> Result<(), WalkError> {
        let index = self.slot_of(host, ip).ok_or(WalkError::UnknownHost)?;
        let opportunistic = self.tls.mode == TlsMode::Opportunistic;
        let fallback = self.fallback;
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(WalkError::UnknownHost);
        };
        if !slot.open || slot.tls != tls {
            return Ok(());
        }
        let note = match classify(failure) {
            Class::NextAddress(reason) => {
                if slot.current() != Some(ip) {
                    return Ok(());
                }
                slot.cursor += 1;
                if slot.current().is_none() {
                    slot.open = false;
                }
                self.temporary = true;
                note_at(Outcome::TransientFailure, None, index, ip, Some(reason))
            }
            Class::NextHost {
                reply,
                permanent,
                reason,
            } => {
                slot.open = false;
                let outcome = if permanent {
                    Outcome::PermanentFailure
                } else {
                    self.temporary = true;
                    Outcome::TransientFailure
                };
                note_at(outcome, reply, index, ip, Some(reason))
            }
            Class::Tls(reason) => {
                slot.open = false;
                if opportunistic && !fallback {
                    let at = match &slot.addresses {
                        Addresses::Ready(ips) => ips.iter().position(|&x| x == ip),
                        Addresses::Pending { .. } => None,
                    };
                    slot.tls_failed_at = Some(at.unwrap_or(slot.cursor));
                }
                self.temporary = true;
                note_at(Outcome::TransientFailure, None, index, ip, Some(reason))
            }
        };
        remember(&mut self.failure, note);
        self.settle();
        Ok(())
    }

    /// Reports the end of the transaction of `batch`: see the
    /// [`Walk`] docs for what each reply means.
    pub fn transaction_done(
        &mut self,
        batch: BatchId,
        outcome: TransactionOutcome,
    ) -> Result<(), WalkError> {
        let flight = self.take_batch(batch)?;
        let unanswered = outcome.unanswered();
        let reason = Some(match outcome.error {
            Some(error) => Reason::Session(error),
            None => Reason::NoReply,
        });
        let mut replies = outcome.replies.into_iter();
        let mask = bit(flight.slot);
        for r in &mut self.recipients {
            if r.state != State::InFlight(batch) {
                continue;
            }
            let reply = replies.next().flatten();
            if unanswered && flight.freshness == Freshness::Reused && !r.returned {
                r.returned = true;
                r.state = State::Pending;
                continue;
            }
            let at =
                |outcome, reply, reason| note_at(outcome, reply, flight.slot, flight.ip, reason);
            match reply {
                Some(reply) if reply.is_positive_completion() => {
                    r.state = State::Final;
                    r.note = Some(at(Outcome::Accepted, Some(reply), None));
                    self.open = self.open.saturating_sub(1);
                }
                Some(reply) if reply.is_permanent_negative() => {
                    r.state = State::Final;
                    r.note = Some(at(Outcome::PermanentFailure, Some(reply), None));
                    self.open = self.open.saturating_sub(1);
                }
                reply => {
                    r.state = State::Pending;
                    r.deferred_by |= mask;
                    let why = if reply.is_some() {
                        None
                    } else {
                        reason.clone()
                    };
                    remember(&mut r.note, at(Outcome::TransientFailure, reply, why));
                }
            }
        }
        self.settle();
        Ok(())
    }

    /// Reports that the client session refused to send the message of
    /// `batch` before anything of it went out ([`UsageError`] from starting
    /// the transaction): final and permanent for the batch's recipients.
    pub fn message_refused(&mut self, batch: BatchId, error: UsageError) -> Result<(), WalkError> {
        let flight = self.take_batch(batch)?;
        for r in &mut self.recipients {
            if r.state == State::InFlight(batch) {
                r.state = State::Final;
                r.note = Some(note_at(
                    Outcome::PermanentFailure,
                    None,
                    flight.slot,
                    flight.ip,
                    Some(Reason::Message(error.clone())),
                ));
                self.open = self.open.saturating_sub(1);
            }
        }
        self.settle();
        Ok(())
    }

    /// Gives the walk up (cancelled, shut down, the content cannot be
    /// read): every recipient without a verdict fails temporarily with
    /// [`Reason::Aborted`]; batches in flight are forgotten.
    pub fn abort(&mut self) {
        self.batches.clear();
        self.mx_pending = false;
        self.finish_all(Outcome::TransientFailure, Reason::Aborted);
    }

    fn take_batch(&mut self, batch: BatchId) -> Result<InFlight, WalkError> {
        let at = self
            .batches
            .iter()
            .position(|b| b.id == batch)
            .ok_or(WalkError::UnknownBatch)?;
        Ok(self.batches.remove(at))
    }

    fn slot_of(&self, host: Option<&HostName>, ip: IpAddr) -> Option<usize> {
        self.slots.iter().position(|s| match (&s.name, host) {
            (Some(name), Some(host)) => name == host,
            (None, None) => matches!(&s.addresses, Addresses::Ready(ips) if ips.contains(&ip)),
            _ => false,
        })
    }

    fn order(&self, ips: &[IpAddr]) -> Vec<IpAddr> {
        let max = self
            .plan
            .max_addresses_per_host
            .clamp(1, MAX_ADDRESSES_PER_HOST);
        order(ips, self.plan.family, max)
    }

    /// Builds the host slots from the MX answer's hosts.
    fn route(&mut self, hosts: Vec<MxHost>) {
        let hosts = match without_local(hosts, &self.plan.local_names) {
            Ok(hosts) => hosts,
            Err(PlanError::MailLoop { preference }) => {
                self.finish_all(Outcome::PermanentFailure, Reason::MailLoop { preference });
                return;
            }
            Err(_) => {
                self.finish_all(Outcome::PermanentFailure, Reason::NoAddress);
                return;
            }
        };
        let (a, aaaa) = match self.plan.family {
            FamilyPreference::Ipv4Only => (None, Some(Ok(Vec::new()))),
            FamilyPreference::Ipv6Only => (Some(Ok(Vec::new())), None),
            _ => (None, None),
        };
        for host in hosts.into_iter().take(self.max_hosts) {
            let hinted = if self.plan.use_hints {
                self.order(host.hints())
            } else {
                Vec::new()
            };
            let addresses = if hinted.is_empty() {
                Addresses::Pending {
                    a: a.clone(),
                    aaaa: aaaa.clone(),
                }
            } else {
                Addresses::Ready(hinted)
            };
            self.slots.push(Slot {
                name: Some(host.name().clone()),
                addresses,
                cursor: 0,
                open: true,
                tls: self.tls,
                tls_failed_at: None,
            });
        }
    }

    /// A host's lookups are all in.
    fn resolved(&mut self, index: usize, merged: Result<Vec<IpAddr>, Severity>) {
        let ips = match &merged {
            Ok(ips) => self.order(ips),
            Err(_) => Vec::new(),
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if !ips.is_empty() {
            slot.addresses = Addresses::Ready(ips);
            slot.cursor = 0;
            return;
        }
        slot.addresses = Addresses::Ready(Vec::new());
        slot.open = false;
        let note = if merged == Err(Severity::Temporary) {
            self.temporary = true;
            Note {
                slot: Some(index),
                ..Note::failure(Outcome::TransientFailure, Reason::HostLookupFailed)
            }
        } else {
            Note {
                slot: Some(index),
                ..Note::failure(Outcome::PermanentFailure, Reason::HostNotFound)
            }
        };
        remember(&mut self.failure, note);
    }

    /// Every recipient without a verdict gets this one.
    fn finish_all(&mut self, outcome: Outcome, reason: Reason) {
        for r in &mut self.recipients {
            if r.state != State::Final {
                r.state = State::Final;
                r.note = Some(Note::failure(outcome, reason.clone()));
            }
        }
        self.open = 0;
    }

    /// After every report: starts the plaintext pass when it is due, and
    /// gives every pending recipient left without a host its last
    /// deferral.
    fn settle(&mut self) {
        if self.mx_pending || self.open == 0 {
            return;
        }
        loop {
            let open = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.open)
                .fold(0u32, |mask, (i, _)| mask | bit(i));
            let stranded = |r: &Recipient| r.state == State::Pending && open & !r.deferred_by == 0;
            if !self.recipients.iter().any(stranded) {
                return;
            }
            if self.tls.mode == TlsMode::Opportunistic
                && !self.fallback
                && self.slots.iter().any(|s| s.tls_failed_at.is_some())
            {
                self.fallback = true;
                for slot in &mut self.slots {
                    if let Some(at) = slot.tls_failed_at.take() {
                        slot.open = true;
                        slot.cursor = at;
                        slot.tls = TlsPolicy::plaintext();
                    }
                }
                continue;
            }
            let walk_failure = self.failure.as_ref();
            let walk_temporary = self.temporary;
            for r in self.recipients.iter_mut().filter(|r| stranded(r)) {
                let own = r.note.take();
                let permanent = own.is_none() && !walk_temporary;
                // Its own deferral (always temporary) unless the walk's
                // failure ranks higher; its own among equals.
                let mut note = match (own, walk_failure) {
                    (Some(own), Some(walk)) if rank(walk) > rank(&own) => walk.clone(),
                    (Some(own), _) => own,
                    (None, Some(walk)) => walk.clone(),
                    (None, None) => Note::failure(Outcome::TransientFailure, Reason::NoAddress),
                };
                note.outcome = if permanent {
                    Outcome::PermanentFailure
                } else {
                    Outcome::TransientFailure
                };
                r.note = Some(note);
                r.state = State::Final;
                self.open = self.open.saturating_sub(1);
            }
            return;
        }
    }
}

fn note_at(
    outcome: Outcome,
    reply: Option<Reply<'static>>,
    slot: usize,
    ip: IpAddr,
    reason: Option<Reason>,
) -> Note {
    Note {
        outcome,
        reply,
        slot: Some(slot),
        ip: Some(ip),
        reason,
    }
}

/// The bit of a slot in a recipient's `deferred_by`. Slots are fewer than
/// [`MAX_HOSTS`] (32), so the shift never overflows; a larger index would
/// give 0 (no bit) rather than panic.
fn bit(slot: usize) -> u32 {
    u32::try_from(slot)
        .ok()
        .and_then(|shift| 1u32.checked_shl(shift))
        .unwrap_or(0)
}

#[cfg(test)]
mod connection_limit_tests {
    use super::*;
    use crate::client::{Error, ReplyTo};

    fn reply(wire: &[u8]) -> Reply<'static> {
        Reply::parse(wire).unwrap().unwrap().0.into_owned()
    }

    #[test]
    fn only_what_an_overloaded_server_does_may_be_a_connection_limit() {
        let session = ConnectionFailure::Session;
        let limit = [
            ConnectionFailure::Connect,
            session(Error::ServiceNotAvailable(reply(
                b"421 4.7.0 Too many connections\r\n",
            ))),
            session(Error::GreetingRejected(reply(b"450 busy\r\n"))),
            session(Error::ConnectionClosed {
                partial_reply: false,
            }),
            session(Error::Timeout(Waiting::Reply(ReplyTo::Greeting))),
        ];
        for failure in &limit {
            assert!(failure.may_be_connection_limit(), "{failure:?}");
        }
        let host = [
            session(Error::GreetingRejected(reply(
                b"554 No SMTP service here\r\n",
            ))),
            session(Error::HelloRejected(reply(b"550 5.7.1 go away\r\n"))),
            session(Error::StartTlsNotOffered),
            session(Error::Timeout(Waiting::TlsHandshake)),
            ConnectionFailure::Tls(TlsFailure::Certificate),
            ConnectionFailure::Tls(TlsFailure::Handshake),
        ];
        for failure in &host {
            assert!(!failure.may_be_connection_limit(), "{failure:?}");
        }
    }
}
