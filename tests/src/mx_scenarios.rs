//! The MX scenario table: one list of delivery stories that every transport
//! must tell the same way.
//!
//! Each [`Scenario`] is data: the recipients (all at one destination), the
//! TLS policy, a DNS [`Zone`], how each server address behaves
//! ([`Server`]), and the verdict every recipient must end with
//! ([`Expect`]). The rules behind the verdicts are the core's
//! ([`smtp_proto::mx::Walk`]); this table is how a transport shows that it
//! follows them rather than deciding anything itself. `smtp-tests` checks
//! the table against the walk alone, with a model transport
//! (`tests/tests/mx_scenarios.rs`); each transport's own test runs the same
//! rows over real sockets, staged on loopback by [`crate::mx_stage`]:
//!
//! - **DNS**: a fake DNS server answers from [`Zone`]: the MX question as
//!   [`MxRecords`] says (a truncated UDP answer followed by the full answer
//!   over TCP for [`MxRecords::TruncatedThen`]; no answer at all for
//!   [`MxRecords::Silent`]); the A question for each host from
//!   [`Zone::hosts`] (every address mapped by [`loopback`]); the AAAA
//!   question with no records for a host with addresses, and with the
//!   same failure as A for a failing one; NXDOMAIN for a name it does not
//!   list.
//! - **Servers**: one listener per [`Server::address`], bound to its
//!   [`loopback`] address on the port the transport is told to use for MX
//!   delivery; an address without a listening server
//!   ([`Listener::Closed`], or not listed at all) refuses connections.
//!   An [`Smtp`] server answers with the replies it lists, offers STARTTLS
//!   as [`StartTls`] says, with a certificate for the host name of the MX
//!   record pointing at it: [`Certificate::Trusted`] chains to a CA the
//!   client trusts, [`Certificate::Untrusted`] is self-signed, and
//!   [`Certificate::Broken`] makes every handshake fail (the server aborts
//!   it).
//! - **Verdicts**: the transport's per-recipient result, turned into an
//!   [`Observed`], must equal the [`Expect`] row ([`Scenario::check`]).
//!
//! No two hosts of one scenario share a preference, so the verdicts do not
//! depend on the seed a transport draws to order equal preferences.

use std::net::Ipv4Addr;

use smtp_proto::TlsMode;
use smtp_proto::client::Outcome;
use smtp_proto::mx::{Reason, TlsPolicy, Verdict};

/// One delivery story.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// What it shows; unique in [`SCENARIOS`].
    pub name: &'static str,
    /// The envelope's recipients, in order, all at one destination (a
    /// domain, or an address literal such as `user@[192.0.2.9]`).
    pub recipients: &'static [&'static str],
    /// The transport's MX TLS setting.
    pub tls: TlsPolicy,
    /// What the DNS says.
    pub zone: Zone,
    /// How each address behaves; an address not listed refuses connections.
    pub servers: &'static [Server],
    /// One row per recipient, in envelope order.
    pub expect: &'static [Expect],
}

/// The DNS data of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Zone {
    /// The answer to the MX question for the recipients' domain.
    pub mx: MxRecords,
    /// The A records of host names (MX exchanges, or the domain itself for
    /// an implicit MX). A name not listed is NXDOMAIN.
    pub hosts: &'static [(&'static str, HostRecords)],
}

/// The answer to the MX question.
#[derive(Debug, Clone, Copy)]
pub enum MxRecords {
    /// These records: preference and exchange.
    Records(&'static [(u16, &'static str)]),
    /// A UDP answer with the TC bit set, then these records over TCP
    /// (RFC 7766): the transport's resolver must ask again over TCP.
    TruncatedThen(&'static [(u16, &'static str)]),
    /// NOERROR without MX records: the domain is its own MX (implicit MX).
    NoRecords,
    /// `0 .` (RFC 7505): the domain accepts no mail.
    Null,
    /// The domain does not exist.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// No answer at all: every query times out.
    Silent,
}

/// The answer to a host's A question.
#[derive(Debug, Clone, Copy)]
pub enum HostRecords {
    /// These addresses (IPv4, TEST-NET-1, see [`loopback`]).
    Addresses(&'static [&'static str]),
    /// NXDOMAIN.
    NxDomain,
    /// SERVFAIL.
    ServFail,
}

/// One server address and its behaviour.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// The address (TEST-NET-1, see [`loopback`]).
    pub address: &'static str,
    /// What is there.
    pub listener: Listener,
}

/// What listens at an address.
#[derive(Debug, Clone, Copy)]
pub enum Listener {
    /// Nothing: connections are refused.
    Closed,
    /// An SMTP server.
    Smtp(Smtp),
}

/// An SMTP server's replies. Replies are full reply lines without CRLF.
#[derive(Debug, Clone, Copy)]
pub struct Smtp {
    /// The greeting (`220 …`, or a refusal).
    pub greeting: &'static str,
    /// The reply to EHLO (its first line; a positive one lists the
    /// extensions the server needs, STARTTLS as [`Smtp::starttls`] says).
    pub ehlo: &'static str,
    /// Whether STARTTLS is offered, and how it goes.
    pub starttls: StartTls,
    /// The reply to MAIL.
    pub mail: &'static str,
    /// The reply to the RCPT of a recipient; [`RCPT_OK`] for one not listed.
    pub rcpt: &'static [(&'static str, &'static str)],
    /// The reply to DATA.
    pub data: &'static str,
    /// The reply after the content; `""`: the server closes the connection
    /// instead of replying.
    pub end: &'static str,
}

/// STARTTLS at a server.
#[derive(Debug, Clone, Copy)]
pub enum StartTls {
    /// Not in the EHLO reply.
    NotOffered,
    /// Offered, but the command gets this refusal.
    Refused(&'static str),
    /// Offered and accepted with `220`; the handshake goes as the
    /// certificate says. For implicit TLS, the server speaks TLS with it
    /// from the first byte.
    Offered(Certificate),
}

/// A server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificate {
    /// Valid for the MX host name, issued by a CA the client trusts.
    Trusted,
    /// Self-signed: the handshake succeeds only without verification.
    Untrusted,
    /// The handshake fails whatever the client verifies.
    Broken,
}

/// The default RCPT reply.
pub const RCPT_OK: &str = "250 2.1.5 ok";

/// A server that accepts everything, in plaintext.
pub const ACCEPT_ALL: Smtp = Smtp {
    greeting: "220 mx.example.net ESMTP",
    ehlo: "250 mx.example.net",
    starttls: StartTls::NotOffered,
    mail: "250 2.1.0 ok",
    rcpt: &[],
    data: "354 go ahead",
    end: "250 2.0.0 queued",
};

/// The same, offering STARTTLS with `certificate`.
pub const fn with_tls(certificate: Certificate) -> Smtp {
    Smtp {
        starttls: StartTls::Offered(certificate),
        ..ACCEPT_ALL
    }
}

/// What one recipient must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The recipient.
    pub recipient: &'static str,
    /// Accepted, or failed temporarily or permanently.
    pub outcome: Outcome,
    /// The code of the reply that decided it, if a server gave one.
    pub code: Option<u16>,
    /// The MX host (or the `[address]` of a literal) that decided it.
    pub host: Option<&'static str>,
    /// The address of the server that decided it.
    pub address: Option<&'static str>,
    /// Why, in broad terms.
    pub cause: Cause,
}

/// Why a recipient ended as it did, in terms every transport can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// A server's reply decided it.
    Reply,
    /// The domain has a null MX.
    NullMx,
    /// The domain does not exist.
    NxDomain,
    /// The MX lookup failed or went unanswered.
    Dns,
    /// No host had an address (or the host lookups failed).
    NoAddress,
    /// No connection could be made.
    Connect,
    /// TLS failed.
    Tls,
    /// STARTTLS was required but not offered, or refused.
    StartTls,
    /// The session failed otherwise (lost connection, timeout, protocol).
    Session,
    /// Anything else (invalid destination, mail loop, message refused,
    /// aborted).
    Other,
}

impl Cause {
    /// The cause of a walk's verdict.
    pub fn of(verdict: &Verdict<'_>) -> Self {
        Self::of_reason(verdict.reply().is_some(), verdict.reason())
    }

    /// The cause of a verdict a transport reported in its own type: whether
    /// a reply decided it, and the walk's reason.
    pub fn of_reason(replied: bool, reason: Option<&Reason>) -> Self {
        use smtp_proto::client::{Error, Waiting};
        if replied && !matches!(reason, Some(Reason::Session(Error::StartTlsRefused(_)))) {
            return Self::Reply;
        }
        match reason {
            Some(Reason::NullMx) => Self::NullMx,
            Some(Reason::NxDomain) => Self::NxDomain,
            Some(Reason::DnsFailure(_) | Reason::DnsUnanswered) => Self::Dns,
            Some(Reason::HostNotFound | Reason::HostLookupFailed | Reason::NoAddress) => {
                Self::NoAddress
            }
            Some(Reason::Connect) => Self::Connect,
            Some(
                Reason::Tls(_)
                | Reason::Session(Error::StartTlsInjection { .. })
                | Reason::Session(Error::Timeout(Waiting::TlsHandshake)),
            ) => Self::Tls,
            Some(Reason::Session(Error::StartTlsNotOffered | Error::StartTlsRefused(_))) => {
                Self::StartTls
            }
            Some(Reason::Session(_) | Reason::NoReply) => Self::Session,
            _ => Self::Other,
        }
    }
}

/// A transport's result for one recipient, reduced to what the table
/// compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The recipient.
    pub recipient: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// The deciding reply's code.
    pub code: Option<u16>,
    /// The host that decided it (`[address]` for a literal).
    pub host: Option<String>,
    /// The server's address, as listed in the scenario (not the loopback
    /// address it was mapped to).
    pub address: Option<String>,
    /// Why.
    pub cause: Cause,
}

impl Observed {
    /// From a walk's verdict; `address` is the scenario's name for the
    /// verdict's address (the inverse of [`loopback`] when the transport
    /// connected to loopback addresses).
    pub fn from_verdict(recipient: &str, verdict: &Verdict<'_>, address: Option<String>) -> Self {
        let host = match (verdict.host(), &address) {
            (Some(host), _) => Some(host.as_str().to_owned()),
            (None, Some(address)) if recipient.ends_with(']') => Some(format!("[{address}]")),
            _ => None,
        };
        Self {
            recipient: recipient.to_owned(),
            outcome: verdict.outcome(),
            code: verdict.reply().map(|r| r.code().as_u16()),
            host,
            address,
            cause: Cause::of(verdict),
        }
    }
}

impl Scenario {
    /// Compares a transport's results with the table; the error lists every
    /// difference.
    pub fn check(&self, observed: &[Observed]) -> Result<(), String> {
        let mut problems = Vec::new();
        if observed.len() != self.expect.len() {
            problems.push(format!(
                "{} results for {} recipients",
                observed.len(),
                self.expect.len()
            ));
        }
        for (want, got) in self.expect.iter().zip(observed) {
            let want_row = (
                want.recipient,
                want.outcome,
                want.code,
                want.host,
                want.address,
                want.cause,
            );
            let got_row = (
                got.recipient.as_str(),
                got.outcome,
                got.code,
                got.host.as_deref(),
                got.address.as_deref(),
                got.cause,
            );
            if want_row != got_row {
                problems.push(format!("expected {want_row:?}, got {got_row:?}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, problems.join("; ")))
        }
    }
}

/// Where a transport test puts a scenario address: `192.0.2.N` becomes
/// `127.0.0.N` (Linux routes all of 127.0.0.0/8 to the loopback
/// interface), so that every server of a scenario listens on the same port
/// and the MX port setting serves them all.
///
/// # Panics
///
/// On an address outside 192.0.2.1–254: the table uses no other.
pub fn loopback(address: &str) -> Ipv4Addr {
    let ip: Ipv4Addr = address.parse().expect("a scenario address is IPv4");
    let [a, b, c, n] = ip.octets();
    assert!(
        [a, b, c] == [192, 0, 2] && (1..=254).contains(&n),
        "{address} is not a scenario address"
    );
    Ipv4Addr::new(127, 0, 0, n)
}

/// The inverse of [`loopback`].
pub fn from_loopback(ip: Ipv4Addr) -> String {
    let [_, _, _, n] = ip.octets();
    format!("192.0.2.{n}")
}

// ------------------------------------------------------------------ the table

const OPP: TlsPolicy = TlsPolicy::new(TlsMode::Opportunistic);
const OPP_VERIFY: TlsPolicy = TlsPolicy::new(TlsMode::Opportunistic).with_verify(true);
const DISABLED: TlsPolicy = TlsPolicy::new(TlsMode::Disabled);
const REQUIRED: TlsPolicy = TlsPolicy::new(TlsMode::Required);
const REQUIRED_UNVERIFIED: TlsPolicy = TlsPolicy::new(TlsMode::Required).with_verify(false);

const MX1: &str = "mx1.example.net";
const MX2: &str = "mx2.example.net";
const IP1: &str = "192.0.2.1";
const IP1B: &str = "192.0.2.11";
const IP2: &str = "192.0.2.2";

const TWO_MX: &[(u16, &str)] = &[(10, MX1), (20, MX2)];
const TWO_HOSTS: &[(&str, HostRecords)] = &[
    (MX1, HostRecords::Addresses(&[IP1])),
    (MX2, HostRecords::Addresses(&[IP2])),
];
const TWO_MX_ZONE: Zone = Zone {
    mx: MxRecords::Records(TWO_MX),
    hosts: TWO_HOSTS,
};
const BOTH_ACCEPT: &[Server] = &[
    Server {
        address: IP1,
        listener: Listener::Smtp(ACCEPT_ALL),
    },
    Server {
        address: IP2,
        listener: Listener::Smtp(ACCEPT_ALL),
    },
];

const ALICE: &str = "alice@example.net";
const BOB: &str = "bob@example.net";
const TWO: &[&str] = &[ALICE, BOB];
const ONE: &[&str] = &[ALICE];

const fn accepted(recipient: &'static str, host: &'static str, address: &'static str) -> Expect {
    Expect {
        recipient,
        outcome: Outcome::Accepted,
        code: Some(250),
        host: Some(host),
        address: Some(address),
        cause: Cause::Reply,
    }
}

const fn replied(
    recipient: &'static str,
    outcome: Outcome,
    code: u16,
    host: &'static str,
    address: &'static str,
) -> Expect {
    Expect {
        recipient,
        outcome,
        code: Some(code),
        host: Some(host),
        address: Some(address),
        cause: Cause::Reply,
    }
}

const fn failed(
    recipient: &'static str,
    outcome: Outcome,
    host: Option<&'static str>,
    address: Option<&'static str>,
    cause: Cause,
) -> Expect {
    Expect {
        recipient,
        outcome,
        code: None,
        host,
        address,
        cause,
    }
}

const fn at(address: &'static str, smtp: Smtp) -> Server {
    Server {
        address,
        listener: Listener::Smtp(smtp),
    }
}

use Outcome::{PermanentFailure as PERM, TransientFailure as TEMP};

/// Every scenario.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "the first MX accepts everything",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: BOTH_ACCEPT,
        expect: &[accepted(ALICE, MX1, IP1), accepted(BOB, MX1, IP1)],
    },
    Scenario {
        name: "4xx for some recipients: just those go to the next MX",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    rcpt: &[(BOB, "450 4.2.0 greylisted")],
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX1, IP1), accepted(BOB, MX2, IP2)],
    },
    Scenario {
        name: "4xx for all recipients (to MAIL): all go to the next MX",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    mail: "451 4.3.0 try later",
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2), accepted(BOB, MX2, IP2)],
    },
    Scenario {
        name: "4xx after the content (greylisting): all go to the next MX",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    end: "451 4.7.1 greylisted, come back later",
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2), accepted(BOB, MX2, IP2)],
    },
    Scenario {
        name: "5xx for some recipients is final; no other MX is asked",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    rcpt: &[(BOB, "550 5.1.1 no such user")],
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX1, IP1), replied(BOB, PERM, 550, MX1, IP1)],
    },
    Scenario {
        name: "4xx everywhere: temporary, with the last MX's reply",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    rcpt: &[(ALICE, "450 4.2.1 mailbox busy")],
                    ..ACCEPT_ALL
                },
            ),
            at(
                IP2,
                Smtp {
                    rcpt: &[(ALICE, "452 4.2.2 over quota")],
                    ..ACCEPT_ALL
                },
            ),
        ],
        expect: &[replied(ALICE, TEMP, 452, MX2, IP2)],
    },
    Scenario {
        name: "the connection is lost after the content: the next MX",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    end: "",
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "connect refused at the first MX: the next MX",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            Server {
                address: IP1,
                listener: Listener::Closed,
            },
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2), accepted(BOB, MX2, IP2)],
    },
    Scenario {
        name: "connect refused at the first address: the same MX's next address",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Records(TWO_MX),
            hosts: &[
                (MX1, HostRecords::Addresses(&[IP1, IP1B])),
                (MX2, HostRecords::Addresses(&[IP2])),
            ],
        },
        servers: &[at(IP1B, ACCEPT_ALL), at(IP2, ACCEPT_ALL)],
        expect: &[accepted(ALICE, MX1, IP1B)],
    },
    Scenario {
        name: "connect refused everywhere: temporary",
        recipients: TWO,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[],
        expect: &[
            failed(ALICE, TEMP, Some(MX2), Some(IP2), Cause::Connect),
            failed(BOB, TEMP, Some(MX2), Some(IP2), Cause::Connect),
        ],
    },
    Scenario {
        name: "421 greeting: the next MX, not the same MX's next address",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Records(TWO_MX),
            hosts: &[
                (MX1, HostRecords::Addresses(&[IP1, IP1B])),
                (MX2, HostRecords::Addresses(&[IP2])),
            ],
        },
        servers: &[
            at(
                IP1,
                Smtp {
                    greeting: "421 4.3.2 too busy",
                    ..ACCEPT_ALL
                },
            ),
            at(IP1B, ACCEPT_ALL),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "554 greeting everywhere: permanent",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    greeting: "554 5.7.1 no SMTP service here",
                    ..ACCEPT_ALL
                },
            ),
            at(
                IP2,
                Smtp {
                    greeting: "554 5.7.1 no SMTP service here",
                    ..ACCEPT_ALL
                },
            ),
        ],
        expect: &[replied(ALICE, PERM, 554, MX2, IP2)],
    },
    Scenario {
        name: "EHLO refused: the next MX",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    ehlo: "550 5.7.1 go away",
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "TLS Disabled: a broken STARTTLS is never tried",
        recipients: ONE,
        tls: DISABLED,
        zone: TWO_MX_ZONE,
        servers: &[at(IP1, with_tls(Certificate::Broken)), at(IP2, ACCEPT_ALL)],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Opportunistic: an untrusted certificate is used, unverified",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Untrusted)),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Opportunistic: a failed handshake moves to the next MX",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Broken)),
            at(IP2, with_tls(Certificate::Untrusted)),
        ],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "Opportunistic: TLS fails everywhere, one plaintext pass delivers",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Broken)),
            at(IP2, with_tls(Certificate::Broken)),
        ],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Opportunistic: STARTTLS refused, the same session goes on in plaintext",
        recipients: ONE,
        tls: OPP,
        zone: TWO_MX_ZONE,
        servers: &[
            at(
                IP1,
                Smtp {
                    starttls: StartTls::Refused("454 4.7.0 TLS not available"),
                    ..ACCEPT_ALL
                },
            ),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Opportunistic with verify: an untrusted certificate moves to the next MX",
        recipients: ONE,
        tls: OPP_VERIFY,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Untrusted)),
            at(IP2, with_tls(Certificate::Trusted)),
        ],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "Opportunistic with verify: untrusted everywhere, one plaintext pass delivers",
        recipients: ONE,
        tls: OPP_VERIFY,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Untrusted)),
            at(IP2, with_tls(Certificate::Untrusted)),
        ],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Required: no STARTTLS at the first MX, the next MX has it",
        recipients: ONE,
        tls: REQUIRED,
        zone: TWO_MX_ZONE,
        servers: &[at(IP1, ACCEPT_ALL), at(IP2, with_tls(Certificate::Trusted))],
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "Required: untrusted certificates everywhere, temporary, never plaintext",
        recipients: ONE,
        tls: REQUIRED,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Untrusted)),
            at(IP2, with_tls(Certificate::Untrusted)),
        ],
        expect: &[failed(ALICE, TEMP, Some(MX2), Some(IP2), Cause::Tls)],
    },
    Scenario {
        name: "Required: no STARTTLS anywhere, temporary",
        recipients: ONE,
        tls: REQUIRED,
        zone: TWO_MX_ZONE,
        servers: BOTH_ACCEPT,
        expect: &[failed(ALICE, TEMP, Some(MX2), Some(IP2), Cause::StartTls)],
    },
    Scenario {
        name: "Required without verify: an untrusted certificate is enough",
        recipients: ONE,
        tls: REQUIRED_UNVERIFIED,
        zone: TWO_MX_ZONE,
        servers: &[
            at(IP1, with_tls(Certificate::Untrusted)),
            at(IP2, ACCEPT_ALL),
        ],
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "Null MX: permanent, no connection",
        recipients: TWO,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Null,
            hosts: TWO_HOSTS,
        },
        servers: BOTH_ACCEPT,
        expect: &[
            failed(ALICE, PERM, None, None, Cause::NullMx),
            failed(BOB, PERM, None, None, Cause::NullMx),
        ],
    },
    Scenario {
        name: "NXDOMAIN: permanent, no connection",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::NxDomain,
            hosts: TWO_HOSTS,
        },
        servers: BOTH_ACCEPT,
        expect: &[failed(ALICE, PERM, None, None, Cause::NxDomain)],
    },
    Scenario {
        name: "SERVFAIL: temporary, no connection",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::ServFail,
            hosts: TWO_HOSTS,
        },
        servers: BOTH_ACCEPT,
        expect: &[failed(ALICE, TEMP, None, None, Cause::Dns)],
    },
    Scenario {
        name: "a silent DNS server: temporary, no connection",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Silent,
            hosts: TWO_HOSTS,
        },
        servers: BOTH_ACCEPT,
        expect: &[failed(ALICE, TEMP, None, None, Cause::Dns)],
    },
    Scenario {
        name: "a truncated MX answer is asked again over TCP",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::TruncatedThen(TWO_MX),
            hosts: TWO_HOSTS,
        },
        servers: BOTH_ACCEPT,
        expect: &[accepted(ALICE, MX1, IP1)],
    },
    Scenario {
        name: "no MX records: the domain itself (implicit MX)",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::NoRecords,
            hosts: &[("example.net", HostRecords::Addresses(&[IP1]))],
        },
        servers: &[at(IP1, ACCEPT_ALL)],
        expect: &[accepted(ALICE, "example.net", IP1)],
    },
    Scenario {
        name: "an MX host without an address is skipped",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Records(TWO_MX),
            hosts: &[(MX2, HostRecords::Addresses(&[IP2]))],
        },
        servers: BOTH_ACCEPT,
        expect: &[accepted(ALICE, MX2, IP2)],
    },
    Scenario {
        name: "an MX host whose lookup fails is skipped; temporary if none is left",
        recipients: ONE,
        tls: OPP,
        zone: Zone {
            mx: MxRecords::Records(TWO_MX),
            hosts: &[(MX1, HostRecords::ServFail), (MX2, HostRecords::NxDomain)],
        },
        servers: BOTH_ACCEPT,
        expect: &[failed(ALICE, TEMP, Some(MX1), None, Cause::NoAddress)],
    },
    Scenario {
        name: "an address literal: straight to it, no DNS",
        recipients: &["postmaster@[192.0.2.9]"],
        tls: OPP,
        zone: Zone {
            mx: MxRecords::ServFail,
            hosts: &[],
        },
        servers: &[at("192.0.2.9", ACCEPT_ALL)],
        expect: &[Expect {
            recipient: "postmaster@[192.0.2.9]",
            outcome: Outcome::Accepted,
            code: Some(250),
            host: Some("[192.0.2.9]"),
            address: Some("192.0.2.9"),
            cause: Cause::Reply,
        }],
    },
];
