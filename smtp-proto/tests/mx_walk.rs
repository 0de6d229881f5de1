//! The MX walk's rules, tested once, as a table.
//!
//! Each row is a script: what the walk must ask for next (`Want`), and what
//! the "network" answers (MX and address lookups, connection failures, ready
//! connections offered, transaction replies), then the verdict every
//! recipient must end with. The interpreter plays a transport that does
//! exactly what the walk says, so a row reads as the story of one delivery.

use std::net::IpAddr;

use smtp_proto::TlsMode;
use smtp_proto::client::{Error as SessionError, Outcome, UsageError, Waiting};
use smtp_proto::mx::{
    AddressAnswer, BatchId, ConnectionFailure, Destination, FamilyPreference, Freshness, HostName,
    Lookup, MxAnswer, MxHost, QueryType, Rcode, Reason, Step, TlsFailure, TlsPolicy,
    TransactionOutcome, Walk, WalkConfig, WalkError,
};
use smtp_proto::reply::Reply;

// ------------------------------------------------------------------ vocabulary

const OPP: TlsPolicy = TlsPolicy::new(TlsMode::Opportunistic);
const OPP_VERIFY: TlsPolicy = TlsPolicy::new(TlsMode::Opportunistic).with_verify(true);
const PLAIN: TlsPolicy = TlsPolicy::plaintext();
const REQ: TlsPolicy = TlsPolicy::new(TlsMode::Required);
const REQ_NO_VERIFY: TlsPolicy = TlsPolicy::new(TlsMode::Required).with_verify(false);
const IMPLICIT: TlsPolicy = TlsPolicy::new(TlsMode::Implicit).with_verify(false);

const DOMAIN: &str = "example.net";
const MX1: &str = "mx1.example.net";
const MX2: &str = "mx2.example.net";
const MX3: &str = "mx3.example.net";

/// An MX answer.
#[derive(Debug, Clone, Copy)]
enum Mx {
    /// Hosts in order: name, preference, address hints.
    Hosts(&'static [(&'static str, u16, &'static [&'static str])]),
    /// No MX records: the domain itself.
    Implicit,
    Null,
    NxDomain,
    Rcode(u16),
    Failed,
    Truncated,
}

/// One address query's end.
#[derive(Debug, Clone, Copy)]
enum Addr {
    Ips(&'static [&'static str]),
    NxDomain,
    ServFail,
    Failed,
    Truncated,
}

/// Why a connection failed before it was ready.
#[derive(Debug, Clone, Copy)]
enum Fail {
    Connect,
    Handshake,
    Certificate,
    HandshakeTimeout,
    Injection,
    Greeting(&'static str),
    Busy(&'static str),
    Ehlo(&'static str),
    StartTlsMissing,
    StartTlsRefused(&'static str),
    Auth(&'static str),
    AuthUnavailable,
    Closed,
    Timeout,
}

/// What `next_step` must say. Hosts are names; an address literal is
/// written `[ip]`.
#[derive(Debug, Clone, Copy)]
enum Want {
    LookupMx(&'static str),
    Lookup(&'static str, &'static [QueryType]),
    Connect(&'static str, &'static str, TlsPolicy),
    Wait,
    Done,
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Normally.
    Ok,
    /// The connection closed (no more replies).
    Closed,
    /// A reply timed out.
    Timeout,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Want(Want),
    /// Report the MX lookup; `Some(error)` if the walk must refuse it.
    Mx(Mx, Option<WalkError>),
    /// Report one address query.
    Addr(&'static str, QueryType, Addr, Option<WalkError>),
    /// The connection to the current `Connect` target failed.
    Fail(Fail),
    /// A failure report for an explicit endpoint (possibly stale).
    FailAt(&'static str, &'static str, TlsPolicy, Fail),
    /// The current `Connect` target is ready: offer it fresh; the batch
    /// it must get (empty: none).
    Ready(&'static [usize]),
    /// Offer the last offered connection again, reused.
    Reuse(&'static [usize]),
    /// Offer a connection of our choosing.
    Offer(
        &'static str,
        &'static str,
        TlsPolicy,
        Freshness,
        &'static [usize],
    ),
    /// The last batch's transaction: MAIL's reply ("" for none), each
    /// recipient's deciding reply ("" for none), how it ended.
    Txn(&'static str, &'static [&'static str], End),
    /// The same for the batch made `n` offers ago (0 = the last).
    TxnOf(usize, &'static str, &'static [&'static str], End),
    /// The client refused the message for the last batch.
    Refused,
    Abort,
}

/// A verdict's reason, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    None,
    Invalid,
    NullMx,
    NxDomain,
    DnsFailure,
    DnsUnanswered,
    MailLoop,
    HostNotFound,
    HostLookupFailed,
    NoAddress,
    Connect,
    Tls,
    Session,
    Message,
    NoReply,
    Aborted,
}

fn why(reason: Option<&Reason>) -> Why {
    match reason {
        None => Why::None,
        Some(Reason::InvalidDestination(_)) => Why::Invalid,
        Some(Reason::NullMx) => Why::NullMx,
        Some(Reason::NxDomain) => Why::NxDomain,
        Some(Reason::DnsFailure(_)) => Why::DnsFailure,
        Some(Reason::DnsUnanswered) => Why::DnsUnanswered,
        Some(Reason::MailLoop { .. }) => Why::MailLoop,
        Some(Reason::HostNotFound) => Why::HostNotFound,
        Some(Reason::HostLookupFailed) => Why::HostLookupFailed,
        Some(Reason::NoAddress) => Why::NoAddress,
        Some(Reason::Connect) => Why::Connect,
        Some(Reason::Tls(_)) => Why::Tls,
        Some(Reason::Session(_)) => Why::Session,
        Some(Reason::Message(_)) => Why::Message,
        Some(Reason::NoReply) => Why::NoReply,
        Some(Reason::Aborted) => Why::Aborted,
        Some(other) => panic!("a reason this table does not know: {other:?}"),
    }
}

use Outcome::{Accepted as OK, PermanentFailure as PERM, TransientFailure as TEMP};

/// A recipient's expected verdict: outcome, reply code (0: none), host
/// ("" none, `[ip]` for a literal), address ("" none), reason.
type Expect = (Outcome, u16, &'static str, &'static str, Why);

struct Case {
    name: &'static str,
    destination: &'static str,
    recipients: usize,
    config: fn() -> WalkConfig,
    script: &'static [Op],
    expect: &'static [Expect],
}

fn default_config() -> WalkConfig {
    WalkConfig::default()
}

// ------------------------------------------------------------------ helpers

fn name(s: &str) -> HostName {
    HostName::parse(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn reply(text: &str) -> Reply<'static> {
    let line = format!("{text}\r\n");
    let (reply, _) = Reply::parse(line.as_bytes())
        .unwrap()
        .unwrap_or_else(|| panic!("incomplete reply {text:?}"));
    reply.into_owned()
}

fn opt_reply(text: &str) -> Option<Reply<'static>> {
    (!text.is_empty()).then(|| reply(text))
}

/// `[ip]` is an address literal (no host name).
fn host_of(s: &str) -> Option<HostName> {
    (!s.starts_with('[')).then(|| name(s))
}

fn mx_answer(mx: Mx) -> Lookup<MxAnswer> {
    Lookup::Answered(match mx {
        Mx::Hosts(hosts) => MxAnswer::Hosts(
            hosts
                .iter()
                .map(|(n, p, hints)| {
                    MxHost::new(name(n), *p).with_hints(hints.iter().map(|s| ip(s)))
                })
                .collect(),
        ),
        Mx::Implicit => MxAnswer::Implicit(MxHost::new(name(DOMAIN), 0)),
        Mx::Null => MxAnswer::NullMx,
        Mx::NxDomain => MxAnswer::NxDomain,
        Mx::Rcode(code) => MxAnswer::Temporary(Rcode(code)),
        Mx::Truncated => MxAnswer::Truncated,
        Mx::Failed => return Lookup::Failed,
    })
}

fn address_answer(addr: Addr) -> Lookup<AddressAnswer> {
    Lookup::Answered(match addr {
        Addr::Ips(ips) => AddressAnswer::Addresses(ips.iter().map(|s| ip(s)).collect()),
        Addr::NxDomain => AddressAnswer::NxDomain,
        Addr::ServFail => AddressAnswer::Temporary(Rcode::SERVFAIL),
        Addr::Truncated => AddressAnswer::Truncated,
        Addr::Failed => return Lookup::Failed,
    })
}

fn failure(fail: Fail) -> ConnectionFailure {
    use ConnectionFailure::Session;
    match fail {
        Fail::Connect => ConnectionFailure::Connect,
        Fail::Handshake => ConnectionFailure::Tls(TlsFailure::Handshake),
        Fail::Certificate => ConnectionFailure::Tls(TlsFailure::Certificate),
        Fail::HandshakeTimeout => Session(SessionError::Timeout(Waiting::TlsHandshake)),
        Fail::Injection => Session(SessionError::StartTlsInjection { bytes: 12 }),
        Fail::Greeting(text) => Session(SessionError::GreetingRejected(reply(text))),
        Fail::Busy(text) => Session(SessionError::ServiceNotAvailable(reply(text))),
        Fail::Ehlo(text) => Session(SessionError::HelloRejected(reply(text))),
        Fail::StartTlsMissing => Session(SessionError::StartTlsNotOffered),
        Fail::StartTlsRefused(text) => Session(SessionError::StartTlsRefused(reply(text))),
        Fail::Auth(text) => Session(SessionError::AuthFailed(reply(text))),
        Fail::AuthUnavailable => Session(SessionError::AuthNotAvailable),
        Fail::Closed => Session(SessionError::ConnectionClosed {
            partial_reply: false,
        }),
        Fail::Timeout => Session(SessionError::Timeout(Waiting::Reply(
            smtp_proto::client::ReplyTo::Greeting,
        ))),
    }
}

fn destination(s: &str) -> Destination {
    match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(literal) => Destination::Literal(ip(literal.strip_prefix("IPv6:").unwrap_or(literal))),
        None => Destination::Domain(name(s)),
    }
}

/// The current step, as owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    LookupMx(String),
    Lookup(String, Vec<QueryType>),
    Connect(Option<HostName>, IpAddr, TlsPolicy),
    Wait,
    Done,
}

fn seen(walk: &Walk) -> Seen {
    match walk.next_step() {
        Step::LookupMx(d) => Seen::LookupMx(d.as_str().to_owned()),
        Step::LookupAddresses(l) => {
            Seen::Lookup(l.host().as_str().to_owned(), l.queries().collect())
        }
        Step::Connect(at) => Seen::Connect(at.host().cloned(), at.ip(), at.tls()),
        Step::Wait => Seen::Wait,
        Step::Done => Seen::Done,
        other => panic!("a step this table does not know: {other:?}"),
    }
}

fn wanted(want: Want) -> Seen {
    match want {
        Want::LookupMx(d) => Seen::LookupMx(d.to_owned()),
        Want::Lookup(h, q) => Seen::Lookup(h.to_owned(), q.to_vec()),
        Want::Connect(h, i, tls) => Seen::Connect(host_of(h), ip(i), tls),
        Want::Wait => Seen::Wait,
        Want::Done => Seen::Done,
    }
}

fn outcome(mail: &str, replies: &[&str], end: End) -> TransactionOutcome {
    let error = match end {
        End::Ok => None,
        End::Closed => Some(SessionError::ConnectionClosed {
            partial_reply: false,
        }),
        End::Timeout => Some(SessionError::Timeout(Waiting::Reply(
            smtp_proto::client::ReplyTo::Data,
        ))),
    };
    TransactionOutcome::new(
        opt_reply(mail),
        replies.iter().map(|r| opt_reply(r)).collect(),
        error,
    )
}

/// Runs a case; panics with the case's name and step on the first
/// difference.
fn run(case: &Case) {
    let config = (case.config)();
    let mut walk = Walk::new(destination(case.destination), case.recipients, &config);
    let mut batches: Vec<BatchId> = Vec::new();
    let mut last_conn: Option<(Option<HostName>, IpAddr, TlsPolicy)> = None;
    for (n, op) in case.script.iter().enumerate() {
        let at = format!("{} (op {n}: {op:?})", case.name);
        let current = || match seen(&walk) {
            Seen::Connect(h, i, t) => (h, i, t),
            other => panic!("{at}: no connection target, the walk says {other:?}"),
        };
        match *op {
            Op::Want(want) => assert_eq!(seen(&walk), wanted(want), "{at}"),
            Op::Mx(mx, error) => {
                let before = walk.clone();
                let result = walk.mx_lookup(mx_answer(mx));
                assert_eq!(result.err(), error, "{at}");
                if error.is_some() {
                    assert_eq!(walk, before, "{at}: a refused report changed the walk");
                }
            }
            Op::Addr(host, query, addr, error) => {
                let before = walk.clone();
                let result = walk.address_lookup(&name(host), query, address_answer(addr));
                assert_eq!(result.err(), error, "{at}");
                if error.is_some() {
                    assert_eq!(walk, before, "{at}: a refused report changed the walk");
                }
            }
            Op::Fail(fail) => {
                let (h, i, t) = current();
                walk.connection_failed(h.as_ref(), i, t, failure(fail))
                    .unwrap();
            }
            Op::FailAt(h, i, t, fail) => {
                walk.connection_failed(host_of(h).as_ref(), ip(i), t, failure(fail))
                    .unwrap();
            }
            Op::Ready(expected) => {
                let (h, i, t) = current();
                let batch = walk.offer(h.as_ref(), i, t, Freshness::Fresh);
                check_batch(&at, batch, expected, &mut batches);
                last_conn = Some((h, i, t));
            }
            Op::Reuse(expected) => {
                let (h, i, t) = last_conn.clone().expect("a connection was offered before");
                let batch = walk.offer(h.as_ref(), i, t, Freshness::Reused);
                check_batch(&at, batch, expected, &mut batches);
            }
            Op::Offer(h, i, t, freshness, expected) => {
                let host = host_of(h);
                let batch = walk.offer(host.as_ref(), ip(i), t, freshness);
                check_batch(&at, batch, expected, &mut batches);
                last_conn = Some((host, ip(i), t));
            }
            Op::Txn(mail, replies, end) => {
                let id = *batches.last().expect("a batch");
                walk.transaction_done(id, outcome(mail, replies, end))
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Op::TxnOf(back, mail, replies, end) => {
                let id = batches[batches.len() - 1 - back];
                walk.transaction_done(id, outcome(mail, replies, end))
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Op::Refused => {
                let id = *batches.last().expect("a batch");
                walk.message_refused(id, UsageError::ExtensionNotOffered("SMTPUTF8"))
                    .unwrap();
            }
            Op::Abort => walk.abort(),
        }
    }
    assert_eq!(seen(&walk), Seen::Done, "{}: not done", case.name);
    assert!(walk.is_done());
    let got: Vec<(Outcome, u16, String, String, Why)> = walk
        .verdicts()
        .map(|(_, v)| {
            (
                v.outcome(),
                v.reply().map_or(0, |r| r.code().as_u16()),
                match (v.host(), v.ip()) {
                    (Some(h), _) => h.as_str().to_owned(),
                    (None, Some(ip)) if case.destination.starts_with('[') => format!("[{ip}]"),
                    _ => String::new(),
                },
                v.ip().map(|ip| ip.to_string()).unwrap_or_default(),
                why(v.reason()),
            )
        })
        .collect();
    let want: Vec<(Outcome, u16, String, String, Why)> = case
        .expect
        .iter()
        .map(|(o, c, h, i, w)| (*o, *c, (*h).to_owned(), (*i).to_owned(), *w))
        .collect();
    assert_eq!(got, want, "{}: verdicts", case.name);
    // Done is final: nothing more is taken.
    assert_eq!(
        walk.mx_lookup(Lookup::Failed).err(),
        Some(WalkError::NotWaiting)
    );
}

fn check_batch(
    at: &str,
    batch: Option<smtp_proto::mx::Batch>,
    expected: &[usize],
    ids: &mut Vec<BatchId>,
) {
    match batch {
        Some(batch) => {
            assert_eq!(batch.recipients(), expected, "{at}: batch");
            ids.push(batch.id());
        }
        None => assert!(expected.is_empty(), "{at}: no batch, expected {expected:?}"),
    }
}

// ------------------------------------------------------------------ the table

use Op::{Fail as F, Ready as R, Txn as T, Want as W};
use QueryType::{A, Aaaa};

const TWO_MX: Mx = Mx::Hosts(&[(MX1, 10, &["192.0.2.1"]), (MX2, 20, &["192.0.2.2"])]);
const THREE_MX: Mx = Mx::Hosts(&[
    (MX1, 10, &["192.0.2.1"]),
    (MX2, 20, &["192.0.2.2"]),
    (MX3, 30, &["192.0.2.3"]),
]);
const TWO_ADDR_MX: Mx = Mx::Hosts(&[
    (MX1, 10, &["192.0.2.1", "192.0.2.11"]),
    (MX2, 20, &["192.0.2.2"]),
]);

const ACCEPT: &str = "250 2.0.0 ok";
const MAIL_OK: &str = "250 2.1.0 ok";

static CASES: &[Case] = &[
    // ---------------------------------------------------------- baseline
    Case {
        name: "everything accepted at the first MX",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            W(Want::LookupMx(DOMAIN)),
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            R(&[0, 1]),
            W(Want::Wait),
            T(MAIL_OK, &[ACCEPT, ACCEPT], End::Ok),
            Op::Reuse(&[]),
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    // ---------------------------------------------------------- per recipient
    Case {
        name: "4xx for some recipients: just those go on, to the next host",
        destination: DOMAIN,
        recipients: 3,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1, 2]),
            T(MAIL_OK, &[ACCEPT, "450 4.2.0 greylisted", ACCEPT], End::Ok),
            // mx1 deferred the only pending recipient: it gets nothing more.
            Op::Reuse(&[]),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[1]),
            T(MAIL_OK, &["250 2.0.0 queued at mx2"], End::Ok),
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "4xx to MAIL: every recipient goes on",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(
                "451 4.3.0 try later",
                &["451 4.3.0 try later", "451 4.3.0 try later"],
                End::Ok,
            ),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0, 1]),
            T(MAIL_OK, &[ACCEPT, ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (OK, 250, MX2, "192.0.2.2", Why::None),
        ],
    },
    Case {
        name: "4xx after the content (greylisting at end of data): every recipient goes on",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(
                MAIL_OK,
                &["451 4.7.1 greylisted", "451 4.7.1 greylisted"],
                End::Ok,
            ),
            Op::Reuse(&[]),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0, 1]),
            T(MAIL_OK, &[ACCEPT, "550 5.1.1 no such user"], End::Ok),
        ],
        expect: &[
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (PERM, 550, MX2, "192.0.2.2", Why::None),
        ],
    },
    Case {
        name: "5xx for some recipients is final; the others are accepted, no other host asked",
        destination: DOMAIN,
        recipients: 3,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1, 2]),
            T(
                MAIL_OK,
                &["550 5.1.1 no such user", ACCEPT, "553 5.1.3 bad address"],
                End::Ok,
            ),
            W(Want::Done),
        ],
        expect: &[
            (PERM, 550, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (PERM, 553, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "5xx to MAIL: permanent for everybody, no other host",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(
                "550 5.7.1 sender rejected",
                &["550 5.7.1 sender rejected", "550 5.7.1 sender rejected"],
                End::Ok,
            ),
        ],
        expect: &[
            (PERM, 550, MX1, "192.0.2.1", Why::None),
            (PERM, 550, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "4xx everywhere: exhausted with the last deferral, temporary",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(MAIL_OK, &[ACCEPT, "450 4.2.1 mailbox busy"], End::Ok),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[1]),
            T(MAIL_OK, &["452 4.2.2 over quota"], End::Ok),
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (TEMP, 452, MX2, "192.0.2.2", Why::None),
        ],
    },
    Case {
        name: "a recipient never goes back to a host that deferred it",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(THREE_MX, None),
            R(&[0, 1]),
            T(MAIL_OK, &["450 4.2.0 greylisted", ACCEPT], End::Ok),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &["421 4.3.2 shutting down"], End::Closed),
            // mx1 and mx2 both deferred recipient 0: mx3.
            W(Want::Connect(MX3, "192.0.2.3", OPP)),
            // A connection to mx1 (for another walk) is no use to it.
            Op::Offer(MX1, "192.0.2.1", OPP, Freshness::Reused, &[]),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX3, "192.0.2.3", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "recipients deferred by different hosts travel in parallel, each past its own",
        destination: DOMAIN,
        recipients: 3,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1, 2]),
            T(MAIL_OK, &["450 4.2.0 later", ACCEPT, ACCEPT], End::Ok),
            // Recipient 0 waits for mx2; meanwhile a reused connection to
            // mx2 carries recipient 0, and one to mx1 has nothing to carry.
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Reused, &[0]),
            W(Want::Wait),
            Op::Offer(MX1, "192.0.2.1", OPP, Freshness::Reused, &[]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "two batches in flight at once (deferred by different hosts)",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            // Recipient 0 is deferred by mx1, recipient 1 by mx2 (two
            // connections of an engine, reused from other walks).
            Op::Offer(MX1, "192.0.2.1", OPP, Freshness::Fresh, &[0, 1]),
            T(MAIL_OK, &["450 4.2.0 later", ACCEPT], End::Ok),
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Fresh, &[0]),
            W(Want::Wait),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    // ---------------------------------------------------------- lost transactions
    Case {
        name: "connection lost mid-transaction: the recipients without a reply go on",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            // RCPT 1 refused, then the connection dies before the final reply.
            T(MAIL_OK, &["", "550 5.1.1 unknown"], End::Closed),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (PERM, 550, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "a timeout for the final reply everywhere: temporary, the session error as reason",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0]),
            T(MAIL_OK, &[""], End::Timeout),
            R(&[0]),
            T(MAIL_OK, &[""], End::Timeout),
        ],
        expect: &[(TEMP, 0, MX2, "192.0.2.2", Why::Session)],
    },
    Case {
        name: "a reused connection dead before any reply: the recipients go back, once",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(MAIL_OK, &[ACCEPT, "450 4.2.0 later"], End::Ok),
            // Recipient 1, on a reused connection to mx2 that the server
            // had closed: not mx2's failure.
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Reused, &[1]),
            T("", &[""], End::Closed),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            // The same again: now it counts, and no host is left.
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Reused, &[1]),
            T("", &[""], End::Closed),
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            // Its own last deferral with a reply (mx1's 450) wins over mx2's
            // lost connection.
            (TEMP, 450, MX1, "192.0.2.1", Why::None),
        ],
    },
    Case {
        name: "a fresh connection dead before any reply is the host's failure",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0]),
            T("", &[""], End::Closed),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX2, "192.0.2.2", Why::None)],
    },
    Case {
        name: "the client refuses the message (no SMTPUTF8): permanent, no other host",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[Op::Mx(TWO_MX, None), R(&[0, 1]), Op::Refused],
        expect: &[
            (PERM, 0, MX1, "192.0.2.1", Why::Message),
            (PERM, 0, MX1, "192.0.2.1", Why::Message),
        ],
    },
    // ---------------------------------------------------------- connections
    Case {
        name: "connect refused: the next address, then the next host",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            F(Fail::Connect),
            W(Want::Connect(MX1, "192.0.2.11", OPP)),
            F(Fail::Timeout),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX2, "192.0.2.2", Why::None)],
    },
    Case {
        name: "connect refused everywhere: temporary, the last failure",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            F(Fail::Connect),
            F(Fail::Closed),
            F(Fail::Connect),
            W(Want::Done),
        ],
        expect: &[
            (TEMP, 0, MX2, "192.0.2.2", Why::Connect),
            (TEMP, 0, MX2, "192.0.2.2", Why::Connect),
        ],
    },
    Case {
        name: "421 greeting: the next host, not the next address",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            F(Fail::Busy("421 4.3.2 too busy")),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            F(Fail::Connect),
        ],
        // The walk's failure with a reply beats the later one without.
        expect: &[(TEMP, 421, MX1, "192.0.2.1", Why::Session)],
    },
    Case {
        name: "554 greeting everywhere: permanent",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            F(Fail::Greeting("554 5.7.1 no SMTP service here")),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            F(Fail::Greeting("554 5.7.1 go away")),
        ],
        expect: &[(PERM, 554, MX2, "192.0.2.2", Why::Session)],
    },
    Case {
        name: "a 5xx refusal and a 4xx one: temporary",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            F(Fail::Ehlo("550 5.7.1 bad HELO")),
            F(Fail::Ehlo("451 4.3.0 try later")),
        ],
        expect: &[(TEMP, 451, MX2, "192.0.2.2", Why::Session)],
    },
    Case {
        name: "refused AUTH, and AUTH impossible: the next host each time",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(THREE_MX, None),
            F(Fail::Auth("535 5.7.8 bad credentials")),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            F(Fail::AuthUnavailable),
            W(Want::Connect(MX3, "192.0.2.3", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX3, "192.0.2.3", Why::None)],
    },
    Case {
        name: "a session closed during setup without a refusal: the next address",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            F(Fail::Closed),
            W(Want::Connect(MX1, "192.0.2.11", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.11", Why::None)],
    },
    Case {
        name: "stale reports change nothing",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            // Not the current address of mx1.
            Op::FailAt(MX1, "192.0.2.11", OPP, Fail::Connect),
            // Another TLS policy than mx1's.
            Op::FailAt(MX1, "192.0.2.1", PLAIN, Fail::Greeting("554 no")),
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            F(Fail::Greeting("554 5.0.0 no")),
            // mx1 is out: further reports about it change nothing.
            Op::FailAt(MX1, "192.0.2.1", OPP, Fail::Busy("421 4.0.0 busy")),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX2, "192.0.2.2", Why::None)],
    },
    // ---------------------------------------------------------- TLS
    Case {
        name: "Disabled: connections ask for no TLS, and a TLS failure is a plain host failure",
        destination: DOMAIN,
        recipients: 1,
        config: || WalkConfig::with_tls(TlsPolicy::new(TlsMode::Disabled)),
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", PLAIN)),
            F(Fail::Handshake),
            W(Want::Connect(MX2, "192.0.2.2", PLAIN)),
            F(Fail::Handshake),
            // No plaintext pass: there was no TLS to fall back from.
            W(Want::Done),
        ],
        expect: &[(TEMP, 0, MX2, "192.0.2.2", Why::Tls)],
    },
    Case {
        name: "Opportunistic: unverified by default; a failed handshake moves to the next host",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            F(Fail::Handshake),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX2, "192.0.2.2", Why::None)],
    },
    Case {
        name: "Opportunistic: TLS fails on every host: one plaintext pass over them",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_ADDR_MX, None),
            // mx1: first address refused, second fails TLS.
            F(Fail::Connect),
            W(Want::Connect(MX1, "192.0.2.11", OPP)),
            F(Fail::Injection),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            F(Fail::HandshakeTimeout),
            // The plaintext pass, from the address that failed on TLS.
            W(Want::Connect(MX1, "192.0.2.11", PLAIN)),
            // An encrypted connection covers plaintext: taken.
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Reused, &[0]),
            T(MAIL_OK, &["451 4.3.0 later"], End::Ok),
            W(Want::Connect(MX1, "192.0.2.11", PLAIN)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.11", Why::None)],
    },
    Case {
        name: "Opportunistic: the plaintext pass happens once",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            F(Fail::Handshake),
            F(Fail::Handshake),
            W(Want::Connect(MX1, "192.0.2.1", PLAIN)),
            F(Fail::Busy("421 4.3.2 busy")),
            W(Want::Connect(MX2, "192.0.2.2", PLAIN)),
            // A TLS failure reported under plaintext (a confused server):
            // the pass is over, no third round.
            F(Fail::Handshake),
            W(Want::Done),
        ],
        expect: &[(TEMP, 421, MX1, "192.0.2.1", Why::Session)],
    },
    Case {
        name: "Opportunistic: the plaintext pass revisits only the hosts that failed on TLS",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(THREE_MX, None),
            F(Fail::Handshake),
            F(Fail::Connect),
            F(Fail::Greeting("554 5.7.1 no")),
            W(Want::Connect(MX1, "192.0.2.1", PLAIN)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.1", Why::None)],
    },
    Case {
        name: "Opportunistic: a plaintext connection does not cover an encrypted need",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            Op::Offer(MX1, "192.0.2.1", PLAIN, Freshness::Reused, &[]),
            Op::Offer(MX1, "192.0.2.1", OPP_VERIFY, Freshness::Reused, &[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.1", Why::None)],
    },
    Case {
        name: "Opportunistic with verify: a rejected certificate moves on; plaintext pass at the end",
        destination: DOMAIN,
        recipients: 1,
        config: || WalkConfig::with_tls(OPP_VERIFY),
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", OPP_VERIFY)),
            // An unverified connection does not cover a verified need.
            Op::Offer(MX1, "192.0.2.1", OPP, Freshness::Reused, &[]),
            F(Fail::Certificate),
            W(Want::Connect(MX2, "192.0.2.2", OPP_VERIFY)),
            F(Fail::Certificate),
            W(Want::Connect(MX1, "192.0.2.1", PLAIN)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.1", Why::None)],
    },
    Case {
        name: "Required: verified by default; no STARTTLS or bad TLS moves on; never plaintext",
        destination: DOMAIN,
        recipients: 1,
        config: || WalkConfig::with_tls(REQ),
        script: &[
            Op::Mx(THREE_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", REQ)),
            F(Fail::StartTlsMissing),
            W(Want::Connect(MX2, "192.0.2.2", REQ)),
            F(Fail::Certificate),
            W(Want::Connect(MX3, "192.0.2.3", REQ)),
            F(Fail::StartTlsRefused("502 5.5.1 not implemented")),
            W(Want::Done),
        ],
        // Our policy is not the host's verdict: temporary, even after a 5xx.
        expect: &[(TEMP, 502, MX3, "192.0.2.3", Why::Session)],
    },
    Case {
        name: "Required without verify: an unverified encrypted connection is enough",
        destination: DOMAIN,
        recipients: 1,
        config: || WalkConfig::with_tls(REQ_NO_VERIFY),
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", REQ_NO_VERIFY)),
            // Opportunistic connections are not enough for it.
            Op::Offer(MX1, "192.0.2.1", OPP_VERIFY, Freshness::Reused, &[]),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "192.0.2.1", Why::None)],
    },
    Case {
        name: "Implicit TLS is always verified; a TLS failure moves on, no plaintext",
        destination: DOMAIN,
        recipients: 1,
        config: || WalkConfig::with_tls(IMPLICIT),
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(
                MX1,
                "192.0.2.1",
                TlsPolicy::new(TlsMode::Implicit),
            )),
            F(Fail::Handshake),
            F(Fail::Certificate),
            W(Want::Done),
        ],
        expect: &[(TEMP, 0, MX2, "192.0.2.2", Why::Tls)],
    },
    // ---------------------------------------------------------- DNS
    Case {
        name: "null MX: permanent, no connection",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            W(Want::LookupMx(DOMAIN)),
            Op::Mx(Mx::Null, None),
            W(Want::Done),
        ],
        expect: &[
            (PERM, 0, "", "", Why::NullMx),
            (PERM, 0, "", "", Why::NullMx),
        ],
    },
    Case {
        name: "NXDOMAIN: permanent, no connection",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[Op::Mx(Mx::NxDomain, None), W(Want::Done)],
        expect: &[(PERM, 0, "", "", Why::NxDomain)],
    },
    Case {
        name: "SERVFAIL: temporary, no connection",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[Op::Mx(Mx::Rcode(2), None), W(Want::Done)],
        expect: &[(TEMP, 0, "", "", Why::DnsFailure)],
    },
    Case {
        name: "no usable MX answer (timeouts): temporary",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[Op::Mx(Mx::Failed, None)],
        expect: &[(TEMP, 0, "", "", Why::DnsUnanswered)],
    },
    Case {
        name: "truncation is handled upstream: a truncated answer is refused and changes nothing",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(Mx::Truncated, Some(WalkError::Truncated)),
            W(Want::LookupMx(DOMAIN)),
            Op::Mx(Mx::Hosts(&[(MX1, 10, &[])]), None),
            W(Want::Lookup(MX1, &[A, Aaaa])),
            Op::Addr(MX1, A, Addr::Truncated, Some(WalkError::Truncated)),
            W(Want::Lookup(MX1, &[A, Aaaa])),
            Op::Addr(MX1, A, Addr::Ips(&["192.0.2.1"]), None),
            W(Want::Lookup(MX1, &[Aaaa])),
            Op::Addr(MX1, Aaaa, Addr::Ips(&["2001:db8::1"]), None),
            // IPv4 first by default.
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            F(Fail::Connect),
            W(Want::Connect(MX1, "2001:db8::1", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX1, "2001:db8::1", Why::None)],
    },
    Case {
        name: "implicit MX: the domain itself",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(Mx::Implicit, None),
            W(Want::Lookup(DOMAIN, &[A, Aaaa])),
            Op::Addr(DOMAIN, Aaaa, Addr::NxDomain, None),
            Op::Addr(DOMAIN, A, Addr::Ips(&["192.0.2.7"]), None),
            W(Want::Connect(DOMAIN, "192.0.2.7", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, DOMAIN, "192.0.2.7", Why::None)],
    },
    Case {
        name: "implicit MX without any address: permanent",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(Mx::Implicit, None),
            Op::Addr(DOMAIN, A, Addr::Ips(&[]), None),
            Op::Addr(DOMAIN, Aaaa, Addr::Ips(&[]), None),
        ],
        expect: &[(PERM, 0, DOMAIN, "", Why::HostNotFound)],
    },
    Case {
        name: "host lookups: looked up lazily; a failed one is skipped; one family failing is no failure",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(
                Mx::Hosts(&[(MX1, 10, &[]), (MX2, 20, &[]), (MX3, 30, &[])]),
                None,
            ),
            W(Want::Lookup(MX1, &[A, Aaaa])),
            // An answer for a host the walk has not reached yet is kept.
            Op::Addr(MX3, Aaaa, Addr::ServFail, None),
            Op::Addr(MX1, A, Addr::NxDomain, None),
            Op::Addr(MX1, Aaaa, Addr::NxDomain, None),
            W(Want::Lookup(MX2, &[A, Aaaa])),
            Op::Addr(MX2, A, Addr::Failed, None),
            Op::Addr(MX2, Aaaa, Addr::ServFail, None),
            W(Want::Lookup(MX3, &[A])),
            // Answers the walk no longer waits for are refused.
            Op::Addr(MX3, Aaaa, Addr::Ips(&[]), Some(WalkError::NotWaiting)),
            Op::Addr(MX1, A, Addr::Ips(&[]), Some(WalkError::NotWaiting)),
            Op::Addr(
                "other.example",
                A,
                Addr::Ips(&[]),
                Some(WalkError::UnknownHost),
            ),
            Op::Addr(MX3, A, Addr::Ips(&["192.0.2.3"]), None),
            W(Want::Connect(MX3, "192.0.2.3", OPP)),
            R(&[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX3, "192.0.2.3", Why::None)],
    },
    Case {
        name: "every host unknown: permanent; one lookup failing temporarily makes it temporary",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(Mx::Hosts(&[(MX1, 10, &[]), (MX2, 20, &[])]), None),
            Op::Addr(MX1, A, Addr::ServFail, None),
            Op::Addr(MX1, Aaaa, Addr::NxDomain, None),
            Op::Addr(MX2, A, Addr::NxDomain, None),
            Op::Addr(MX2, Aaaa, Addr::NxDomain, None),
        ],
        // The failure that made it temporary is the one reported.
        expect: &[(TEMP, 0, MX1, "", Why::HostLookupFailed)],
    },
    Case {
        name: "every host unknown: permanent",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(Mx::Hosts(&[(MX1, 10, &[]), (MX2, 20, &[])]), None),
            Op::Addr(MX1, A, Addr::NxDomain, None),
            Op::Addr(MX1, Aaaa, Addr::Ips(&[]), None),
            Op::Addr(MX2, A, Addr::NxDomain, None),
            Op::Addr(MX2, Aaaa, Addr::NxDomain, None),
        ],
        expect: &[(PERM, 0, MX2, "", Why::HostNotFound)],
    },
    Case {
        name: "hints ignored when use_hints is off; IPv6 only asks AAAA",
        destination: DOMAIN,
        recipients: 1,
        config: || {
            let mut c = WalkConfig::default();
            c.plan.use_hints = false;
            c.plan.family = FamilyPreference::Ipv6Only;
            c
        },
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Lookup(MX1, &[Aaaa])),
            Op::Addr(
                MX1,
                A,
                Addr::Ips(&["192.0.2.1"]),
                Some(WalkError::NotWaiting),
            ),
            Op::Addr(MX1, Aaaa, Addr::Ips(&["2001:db8::1", "192.0.2.1"]), None),
            W(Want::Connect(MX1, "2001:db8::1", OPP)),
            F(Fail::Connect),
            W(Want::Lookup(MX2, &[Aaaa])),
            Op::Addr(MX2, Aaaa, Addr::Ips(&["ff02::1"]), None),
        ],
        // Multicast is never a destination: mx2 has no usable address.
        expect: &[(TEMP, 0, MX1, "2001:db8::1", Why::Connect)],
    },
    Case {
        name: "this client is the best MX: mail loop, permanent",
        destination: DOMAIN,
        recipients: 1,
        config: || {
            let mut c = WalkConfig::default();
            c.plan.local_names = vec![name(MX1)];
            c
        },
        script: &[Op::Mx(TWO_MX, None), W(Want::Done)],
        expect: &[(PERM, 0, "", "", Why::MailLoop)],
    },
    Case {
        name: "a backup MX hands mail only to hosts it outranks",
        destination: DOMAIN,
        recipients: 1,
        config: || {
            let mut c = WalkConfig::default();
            c.plan.local_names = vec![name(MX2)];
            c
        },
        script: &[Op::Mx(THREE_MX, None), F(Fail::Connect)],
        expect: &[(TEMP, 0, MX1, "192.0.2.1", Why::Connect)],
    },
    // ---------------------------------------------------------- literals
    Case {
        name: "an address literal: straight to it, no DNS",
        destination: "[192.0.2.9]",
        recipients: 1,
        config: default_config,
        script: &[
            W(Want::Connect("[192.0.2.9]", "192.0.2.9", OPP)),
            Op::Offer("[192.0.2.10]", "192.0.2.10", OPP, Freshness::Fresh, &[]),
            Op::Mx(TWO_MX, Some(WalkError::NotWaiting)),
            R(&[0]),
            T(MAIL_OK, &["451 4.3.0 later"], End::Ok),
        ],
        expect: &[(TEMP, 451, "[192.0.2.9]", "192.0.2.9", Why::None)],
    },
    Case {
        name: "an IPv6 literal refused: temporary",
        destination: "[IPv6:2001:db8::9]",
        recipients: 1,
        config: default_config,
        script: &[
            W(Want::Connect("[2001:db8::9]", "2001:db8::9", OPP)),
            F(Fail::Connect),
        ],
        expect: &[(TEMP, 0, "[2001:db8::9]", "2001:db8::9", Why::Connect)],
    },
    Case {
        name: "a literal of an excluded family or an unusable address: permanent",
        destination: "[0.0.0.0]",
        recipients: 1,
        config: default_config,
        script: &[W(Want::Done)],
        expect: &[(PERM, 0, "", "", Why::NoAddress)],
    },
    // ---------------------------------------------------------- bounds
    Case {
        name: "at most max_hosts hosts",
        destination: DOMAIN,
        recipients: 1,
        config: || {
            let mut c = WalkConfig::default();
            c.max_hosts = 2;
            c
        },
        script: &[
            Op::Mx(THREE_MX, None),
            F(Fail::Connect),
            F(Fail::Connect),
            Op::Offer(MX3, "192.0.2.3", OPP, Freshness::Fresh, &[]),
        ],
        expect: &[(TEMP, 0, MX2, "192.0.2.2", Why::Connect)],
    },
    Case {
        name: "at most max_recipients_per_transaction per batch, in envelope order",
        destination: DOMAIN,
        recipients: 5,
        config: || {
            let mut c = WalkConfig::default();
            c.max_recipients_per_transaction = 2;
            c
        },
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            // The rest still wants mx1: a second connection may carry it.
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            R(&[2, 3]),
            Op::TxnOf(1, MAIL_OK, &[ACCEPT, ACCEPT], End::Ok),
            Op::Reuse(&[4]),
            W(Want::Wait),
            Op::TxnOf(1, MAIL_OK, &[ACCEPT, "450 4.2.0 later"], End::Ok),
            T(MAIL_OK, &[ACCEPT], End::Ok),
            W(Want::Connect(MX2, "192.0.2.2", OPP)),
            R(&[3]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (OK, 250, MX2, "192.0.2.2", Why::None),
            (OK, 250, MX1, "192.0.2.1", Why::None),
        ],
    },
    // ---------------------------------------------------------- reuse and abort
    Case {
        name: "a ready connection to a less preferred host is taken (skips a silent best MX)",
        destination: DOMAIN,
        recipients: 1,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            W(Want::Connect(MX1, "192.0.2.1", OPP)),
            Op::Offer(MX2, "192.0.2.2", OPP, Freshness::Reused, &[0]),
            T(MAIL_OK, &[ACCEPT], End::Ok),
        ],
        expect: &[(OK, 250, MX2, "192.0.2.2", Why::None)],
    },
    Case {
        name: "abort: everything open fails temporarily",
        destination: DOMAIN,
        recipients: 2,
        config: default_config,
        script: &[
            Op::Mx(TWO_MX, None),
            R(&[0, 1]),
            T(MAIL_OK, &[ACCEPT, "450 later"], End::Ok),
            Op::Abort,
        ],
        expect: &[
            (OK, 250, MX1, "192.0.2.1", Why::None),
            (TEMP, 0, "", "", Why::Aborted),
        ],
    },
];

#[test]
fn the_rule_table() {
    let mut names = std::collections::BTreeSet::new();
    for case in CASES {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        run(case);
    }
}

// ------------------------------------------------------------------ outside the table

#[test]
fn invalid_destinations_fail_permanently_without_a_step() {
    use smtp_proto::address::Host;
    let config = WalkConfig::default();
    for host in ["[tag:content]", "ex_ample.org"] {
        let host = Host::parse(host).unwrap();
        let walk = Walk::for_host(&host, 2, &config);
        assert!(matches!(walk.next_step(), Step::Done), "{host:?}");
        assert_eq!(walk.destination(), None);
        let verdicts: Vec<_> = walk.verdicts().collect();
        assert_eq!(verdicts.len(), 2);
        for (_, v) in verdicts {
            assert_eq!(v.outcome(), PERM);
            assert!(
                matches!(v.reason(), Some(Reason::InvalidDestination(_))),
                "{v:?}"
            );
        }
    }
    let postmaster = Destination::of_recipient(&smtp_proto::address::ForwardPath::Postmaster);
    assert_eq!(postmaster, Err(smtp_proto::mx::DestinationError::NoDomain));
    let walk = Walk::unroutable(3, postmaster.unwrap_err());
    assert!(walk.is_done());
    assert_eq!(walk.verdicts().count(), 3);
    assert!(
        walk.verdicts()
            .all(|(_, v)| v.outcome() == PERM && v.host().is_none())
    );
    let mailbox = smtp_proto::address::Mailbox::parse("bob@[192.0.2.1]").unwrap();
    assert_eq!(
        Destination::of_recipient(&smtp_proto::address::ForwardPath::Mailbox(mailbox)),
        Ok(Destination::Literal(ip("192.0.2.1")))
    );
    let host = Host::parse("Example.NET").unwrap();
    let walk = Walk::for_host(&host, 1, &config);
    assert_eq!(walk.destination(), Some(&Destination::Domain(name(DOMAIN))));
    assert_eq!(walk.destination().unwrap().to_string(), DOMAIN);
    let literal = Walk::for_host(&Host::parse("[IPv6:2001:db8::1]").unwrap(), 1, &config);
    assert_eq!(
        literal.destination().unwrap().to_string(),
        "[IPv6:2001:db8::1]"
    );
}

#[test]
fn reports_the_walk_cannot_take() {
    let mut walk = Walk::new(destination(DOMAIN), 1, &WalkConfig::default());
    // Nothing offered before the MX answer.
    assert!(
        walk.offer(Some(&name(MX1)), ip("192.0.2.1"), OPP, Freshness::Fresh)
            .is_none()
    );
    walk.mx_lookup(mx_answer(TWO_MX)).unwrap();
    assert_eq!(
        walk.mx_lookup(mx_answer(TWO_MX)),
        Err(WalkError::NotWaiting)
    );
    assert_eq!(
        walk.connection_failed(
            Some(&name("other.example")),
            ip("192.0.2.1"),
            OPP,
            ConnectionFailure::Connect
        ),
        Err(WalkError::UnknownHost)
    );
    assert_eq!(
        walk.connection_failed(None, ip("192.0.2.1"), OPP, ConnectionFailure::Connect),
        Err(WalkError::UnknownHost)
    );
    let batch = walk
        .offer(Some(&name(MX1)), ip("192.0.2.1"), OPP, Freshness::Fresh)
        .unwrap();
    let stale = batch.id();
    walk.transaction_done(batch.id(), outcome(MAIL_OK, &[ACCEPT], End::Ok))
        .unwrap();
    let before = walk.clone();
    assert_eq!(
        walk.transaction_done(stale, outcome(MAIL_OK, &[ACCEPT], End::Ok)),
        Err(WalkError::UnknownBatch)
    );
    assert_eq!(
        walk.message_refused(stale, UsageError::NoRecipients),
        Err(WalkError::UnknownBatch)
    );
    assert_eq!(walk, before);
}

#[test]
fn tls_policy_rules() {
    assert!(!OPP.verify());
    assert!(REQ.verify());
    assert!(
        TlsPolicy::new(TlsMode::Implicit)
            .with_verify(false)
            .verify()
    );
    assert!(!PLAIN.with_verify(true).verify());
    assert_eq!(TlsPolicy::default(), OPP);
    assert_eq!(WalkConfig::default().tls, OPP);
    // Strictness of the mode, then verification: a partial order.
    let all = [
        (PLAIN, 0, false),
        (OPP, 1, false),
        (OPP_VERIFY, 1, true),
        (REQ_NO_VERIFY, 2, false),
        (REQ, 2, true),
        (IMPLICIT, 3, true),
    ];
    for (have, have_rank, have_verify) in all {
        for (need, need_rank, need_verify) in all {
            let covers = have_rank >= need_rank && (have_verify || !need_verify);
            assert_eq!(have.covers(need), covers, "{have:?} covers {need:?}");
        }
    }
    assert!(!REQ_NO_VERIFY.covers(OPP_VERIFY));
    assert!(OPP_VERIFY.covers(OPP));
}

#[test]
fn the_report_of_a_real_session_is_read_alike() {
    use smtp_proto::Output;
    use smtp_proto::address::{ForwardPath, Host, Mailbox, ReversePath};
    use smtp_proto::client::{Client, Config, Envelope, Event, MailTransaction};
    use std::time::Instant;

    let mut config = Config::new(Host::parse("client.example").unwrap());
    config.tls = TlsMode::Disabled;
    let now = Instant::now();
    let mut client = Client::new(config, now);
    let rcpt = |s: &str| ForwardPath::Mailbox(Mailbox::parse(s).unwrap().into_owned());
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap().into_owned()),
        vec![
            rcpt("b@example.net"),
            rcpt("c@example.net"),
            rcpt("d@example.net"),
        ],
    );
    let mut server = [
        &b"250-mx1.example.net\r\n250 PIPELINING\r\n"[..],
        b"250 ok\r\n250 ok\r\n450 4.2.0 greylisted\r\n550 5.1.1 unknown\r\n354 go\r\n",
        b"250 2.0.0 queued\r\n",
    ]
    .into_iter();
    let greeting = b"220 mx1.example.net ESMTP\r\n";
    assert_eq!(client.handle_input(now, greeting), greeting.len());
    let mut delivery = None;
    let report = loop {
        match client.poll(now) {
            Output::Event(Event::Ready) => {
                delivery = Some(MailTransaction::start(&mut client, envelope.clone()).unwrap());
            }
            Output::Event(Event::ReadyForBody) => {
                client.write_body(b"Subject: x\r\n\r\nx\r\n").unwrap();
                client.finish_body().unwrap();
            }
            Output::Event(event) => {
                if let Some(r) = delivery
                    .as_mut()
                    .and_then(|d| d.handle_event(&mut client, &event))
                {
                    break r;
                }
            }
            Output::Transmit(bytes) => {
                let n = bytes.len();
                client.advance_transmit(now, n).unwrap();
                if let Some(reply) = server.next() {
                    assert_eq!(client.handle_input(now, reply), reply.len());
                }
            }
            other => panic!("{other:?}"),
        }
    };
    let mut walk = Walk::new(destination(DOMAIN), 3, &WalkConfig::default());
    walk.mx_lookup(mx_answer(TWO_MX)).unwrap();
    let batch = walk
        .offer(Some(&name(MX1)), ip("192.0.2.1"), OPP, Freshness::Fresh)
        .unwrap();
    walk.transaction_done(batch.id(), TransactionOutcome::from(report))
        .unwrap();
    assert_eq!(
        walk.verdicts()
            .map(|(i, v)| (i, v.outcome()))
            .collect::<Vec<_>>(),
        [(0, OK), (2, PERM)]
    );
    assert!(matches!(walk.next_step(), Step::Connect(at) if at.host() == Some(&name(MX2))));
}

#[test]
fn determinism_with_seeds() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::MX};
    use smtp_proto::mx::MxQuery;

    let query = MxQuery::new(7, DOMAIN).unwrap();
    let answer = {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii("example.net.").unwrap();
        m.add_query(Query::query(owner.clone(), RecordType::MX));
        for host in ["a.example.net.", "b.example.net.", "c.example.net."] {
            let mx = MX::new(10, Name::from_ascii(host).unwrap());
            m.add_answer(Record::from_rdata(owner.clone(), 300, RData::MX(mx)));
        }
        m.to_vec().unwrap()
    };
    // The order of connection attempts, every host refusing.
    let order = |seed: u64| -> Vec<String> {
        let mut walk = Walk::new(destination(DOMAIN), 1, &WalkConfig::default());
        walk.mx_lookup(Lookup::Answered(query.decode(&answer, seed).unwrap()))
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let host = match walk.next_step() {
                Step::LookupAddresses(l) => l.host().clone(),
                Step::Done => return seen,
                other => panic!("{other:?}"),
            };
            seen.push(host.as_str().to_owned());
            for q in [A, Aaaa] {
                walk.address_lookup(&host, q, Lookup::Answered(AddressAnswer::NxDomain))
                    .unwrap();
            }
        }
    };
    let orders: std::collections::BTreeSet<Vec<String>> = (0..64).map(order).collect();
    for seed in 0..64 {
        assert_eq!(order(seed), order(seed), "seed {seed}");
    }
    // Equal preferences are spread by the seed: every order shows up.
    assert_eq!(orders.len(), 6, "{orders:?}");
}

// ------------------------------------------------------------------ properties

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// What the network does at one decision point, drawn by proptest.
    fn reply_for(choice: u8) -> Option<&'static str> {
        match choice % 5 {
            0 => Some("250 2.0.0 ok"),
            1 => Some("450 4.2.0 later"),
            2 => Some("550 5.1.1 no"),
            3 => Some("421 4.3.2 closing"),
            _ => None,
        }
    }

    fn setup_failure(choice: u8) -> Option<ConnectionFailure> {
        match choice % 8 {
            0 => Some(ConnectionFailure::Connect),
            1 => Some(ConnectionFailure::Tls(TlsFailure::Handshake)),
            2 => Some(failure(Fail::Busy("421 4.3.2 busy"))),
            3 => Some(failure(Fail::Greeting("554 5.7.1 no"))),
            4 => Some(failure(Fail::Closed)),
            5 => Some(failure(Fail::StartTlsMissing)),
            _ => None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the network does, the walk ends with one verdict per
        /// recipient, never sends a recipient back to a host that deferred
        /// it, and never asks for more than a bounded number of steps.
        #[test]
        fn the_walk_always_ends(
            hosts in 1usize..5,
            addresses in 1usize..4,
            recipients in 1usize..6,
            mode in 0usize..4,
            choices in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let policy = [OPP, OPP_VERIFY, REQ, PLAIN][mode];
            let names: Vec<String> = (0..hosts).map(|h| format!("mx{h}.example.net")).collect();
            let mx: Vec<MxHost> = names
                .iter()
                .enumerate()
                .map(|(h, n)| {
                    let ips = (0..addresses).map(move |a| ip(&format!("192.0.{h}.{}", a + 1)));
                    MxHost::new(name(n), u16::try_from(h).unwrap() * 10).with_hints(ips)
                })
                .collect();
            let mut walk = Walk::new(destination(DOMAIN), recipients, &WalkConfig::with_tls(policy));
            walk.mx_lookup(Lookup::Answered(MxAnswer::Hosts(mx))).unwrap();
            let mut draw = choices.into_iter().chain(std::iter::repeat(0));
            let mut deferred: BTreeMap<usize, Vec<HostName>> = BTreeMap::new();
            let mut steps = 0;
            loop {
                steps += 1;
                prop_assert!(steps < 2_000, "the walk does not end");
                let (host, ip, tls) = match walk.next_step() {
                    Step::Done => break,
                    Step::Connect(at) => (at.host().cloned(), at.ip(), at.tls()),
                    other => panic!("unexpected {other:?}"),
                };
                // Plaintext only as the opportunistic fallback.
                let opportunistic = policy.mode() == TlsMode::Opportunistic;
                prop_assert!(tls == policy || (opportunistic && tls == PLAIN), "{tls:?}");
                if let Some(failure) = setup_failure(draw.next().unwrap()) {
                    walk.connection_failed(host.as_ref(), ip, tls, failure).unwrap();
                    continue;
                }
                let mut freshness = Freshness::Fresh;
                while let Some(batch) = walk.offer(host.as_ref(), ip, tls, freshness) {
                    let h = host.clone().unwrap();
                    for r in batch.recipients() {
                        prop_assert!(
                            !deferred.get(r).is_some_and(|d| d.contains(&h)),
                            "recipient {r} sent back to {h:?}"
                        );
                    }
                    let replies: Vec<&str> = batch
                        .recipients()
                        .iter()
                        .map(|_| reply_for(draw.next().unwrap()).unwrap_or(""))
                        .collect();
                    // Sometimes not even MAIL got a reply (a dead connection).
                    let unanswered = replies.iter().all(|r| r.is_empty())
                        && draw.next().unwrap() % 2 == 0;
                    let mail = if unanswered { "" } else { "250 ok" };
                    if !unanswered {
                        for (r, reply) in batch.recipients().iter().zip(&replies) {
                            if !reply.starts_with('2') && !reply.starts_with('5') {
                                deferred.entry(*r).or_default().push(h.clone());
                            }
                        }
                    }
                    let end = if replies.iter().any(|r| r.is_empty()) { End::Closed } else { End::Ok };
                    walk.transaction_done(batch.id(), outcome(mail, &replies, end)).unwrap();
                    if end == End::Closed || draw.next().unwrap() % 3 == 0 {
                        break;
                    }
                    freshness = Freshness::Reused;
                }
            }
            prop_assert_eq!(walk.verdicts().count(), recipients);
            for (_, v) in walk.verdicts() {
                // Accepted and refused come from a reply; a failure without
                // one says why.
                prop_assert!(v.reply().is_some() || v.reason().is_some(), "{v:?}");
            }
        }
    }
}
