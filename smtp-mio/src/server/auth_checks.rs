//! SPF (RFC 7208) at `MAIL FROM` and DMARC (RFC 7489) at the end of data,
//! beside DKIM, for a receiving server: which clients are checked, what the
//! operator enforces, and the one `Authentication-Results` field (RFC 8601)
//! that records all three.
//!
//! The evaluations themselves are the core's ([`smtp_proto::spf`],
//! [`smtp_proto::dmarc`]); their DNS questions go through the
//! [`DkimService`](super::authentication::DkimService) thread's
//! non-blocking pump, so a slow DNS server holds up only the command that
//! waits for it (the `MAIL` reply, or the reply to the end of data), never
//! another connection, and never longer than the service's timeout, after
//! which what is unanswered is `temperror`.
//!
//! # What is checked
//!
//! Every client, loopback included, unless its address is in an exempt
//! network ([`AuthChecks::exempt`]): for those neither SPF nor DMARC is
//! evaluated (DKIM, when on, still is). A client that authenticated (AUTH,
//! submission) is still checked and annotated, but never refused for its
//! SPF result: it is sending as itself from wherever it is.
//!
//! # Policy
//!
//! By default the results are only recorded. [`AuthChecks::spf_reject`]
//! refuses an SPF `fail` at `MAIL FROM` with `550 5.7.23` (RFC 7372 §3.2),
//! the explanation of the sender's `exp=` in the text when it has one;
//! [`AuthChecks::dmarc_enforce`] refuses a DMARC failure whose
//! disposition is `reject` with `550 5.7.1` at the end of data (RFC 7489
//! §6.7 suggests 5.7.1) and marks one whose disposition is `quarantine`
//! with an [`X_QUARANTINE`] header field, so that the delivery agent or the
//! reader files it as junk. A DNS `temperror` is answered `451 4.7.24`
//! (SPF) or `451 4.7.0` (DMARC) only by the check being enforced: the
//! client then retries later, as RFC 7208 §8.6 and RFC 7489 §6.6.3
//! suggest; otherwise it is recorded and the message accepted.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use smtp_proto::auth_results::{AuthenticationResults, BuildError, MethodResult};
use smtp_proto::dkim::{DkimResult, Verdict as DkimVerdict, method_result_none};
use smtp_proto::dmarc::{DmarcResult, Policy, Verdict as DmarcVerdict};
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::spf::{SpfConfig, SpfResult, Verdict as SpfVerdict};

/// The header field that marks a message the sender's DMARC policy asks
/// to quarantine (with [`AuthChecks::dmarc_enforce`]): `X-Quarantine:
/// dmarc header.from=<domain>`. A field of that name in the incoming
/// message is not ours and says nothing; ours is the first of the message.
pub const X_QUARANTINE: &str = "X-Quarantine";

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`; a bare
/// address is its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A network that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a network in CIDR notation (ADDRESS/PREFIX, e.g. 192.0.2.0/24)")]
pub struct NetworkError;

impl Network {
    /// The network of `addr` with `prefix` bits.
    ///
    /// # Errors
    ///
    /// A prefix longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, NetworkError> {
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(NetworkError);
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address is the
    /// IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let shift = width - u32::from(prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, NetworkError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                // Digits only: no sign, no spaces.
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NetworkError);
                }
                (addr, Some(prefix.parse::<u8>().map_err(|_| NetworkError)?))
            }
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| NetworkError)?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        Self::new(addr, prefix.unwrap_or(full))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which checks run, for whom, and what is enforced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthChecks {
    /// Evaluate SPF at `MAIL FROM` (default on).
    pub spf: bool,
    /// Evaluate DMARC at the end of data (default on).
    pub dmarc: bool,
    /// Refuse an SPF `fail` with `550 5.7.23`, and an SPF `temperror` with
    /// `451 4.7.24`, at `MAIL FROM` (default off: annotate only).
    pub spf_reject: bool,
    /// Refuse a DMARC failure with disposition `reject` with `550 5.7.1`,
    /// mark one with disposition `quarantine` with [`X_QUARANTINE`], and
    /// answer a DMARC `temperror` with `451 4.7.0` (default off).
    pub dmarc_enforce: bool,
    /// Clients in these networks are not checked (default none: loopback
    /// is checked like any other client).
    pub exempt: Vec<Network>,
    /// The SPF evaluator's limits (RFC 7208 §4.6.4's defaults).
    pub spf_config: SpfConfig,
}

impl Default for AuthChecks {
    fn default() -> Self {
        Self {
            spf: true,
            dmarc: true,
            spf_reject: false,
            dmarc_enforce: false,
            exempt: Vec::new(),
            spf_config: SpfConfig::default(),
        }
    }
}

impl AuthChecks {
    /// SPF and DMARC on, annotating only, nobody exempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `ip` is in an exempt network.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(ip))
    }

    /// The operator's decision at `MAIL FROM` on an SPF result: `None` to
    /// go on, or the refusal. An authenticated client is never refused.
    pub fn spf_decision(&self, result: &SpfResult, authenticated: bool) -> Option<Reply<'static>> {
        if !self.spf_reject || authenticated {
            return None;
        }
        match result.verdict() {
            SpfVerdict::Fail => {
                let text = match result.explanation() {
                    Some(exp) => format!("SPF: {}", printable(exp)),
                    None => format!(
                        "SPF: {} does not authorize this client to send for {}",
                        printable(result.domain()),
                        printable(result.sender())
                    ),
                };
                Some(reply(
                    ReplyCode::MAILBOX_UNAVAILABLE,
                    EnhancedStatusCode::SPF_FAILED,
                    &text,
                ))
            }
            SpfVerdict::TempError => Some(reply(
                ReplyCode::LOCAL_ERROR,
                EnhancedStatusCode::SPF_ERROR_TEMPORARY,
                "SPF: DNS error evaluating the sender's policy, try again later",
            )),
            _ => None,
        }
    }

    /// The operator's decision at the end of data on a message's results.
    pub fn message_decision(&self, verdicts: &AuthVerdicts) -> Decision {
        let Some(dmarc) = &verdicts.dmarc else {
            return Decision::Accept;
        };
        if !self.dmarc_enforce {
            return Decision::Accept;
        }
        let from = dmarc
            .from_domain()
            .map(|d| printable(d.as_str()))
            .unwrap_or_default();
        match (dmarc.verdict(), dmarc.disposition()) {
            (DmarcVerdict::Fail, Policy::Reject) => Decision::Refuse(reply(
                ReplyCode::MAILBOX_UNAVAILABLE,
                EnhancedStatusCode::NOT_AUTHORIZED,
                &format!("DMARC: {from}'s policy rejects this message"),
            )),
            (DmarcVerdict::Fail, Policy::Quarantine) => Decision::Quarantine,
            (DmarcVerdict::TempError, _) => Decision::Refuse(reply(
                ReplyCode::LOCAL_ERROR,
                EnhancedStatusCode::SECURITY_TEMPORARY,
                "DMARC: DNS error finding the sender's policy, try again later",
            )),
            _ => Decision::Accept,
        }
    }
}

/// `code enhanced text`; a text that cannot be sent (it can: it is
/// printable) falls back to the codes alone.
fn reply(code: ReplyCode, enhanced: EnhancedStatusCode, text: &str) -> Reply<'static> {
    let text: String = text.chars().take(400).collect();
    Reply::with_enhanced(code, enhanced, text)
        .or_else(|_| Reply::with_enhanced(code, enhanced, "Refused"))
        .unwrap_or_else(|_| Reply::local_error())
}

/// `text` with everything but printable ASCII replaced by `?` (what came
/// from DNS or the client goes into a reply line or a header field).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// What to do with a message, decided from its [`AuthVerdicts`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Decision {
    /// Store it.
    Accept,
    /// Store it marked with [`X_QUARANTINE`].
    Quarantine,
    /// Refuse it with this reply (every recipient gets it); nothing is
    /// kept.
    Refuse(Reply<'static>),
}

/// Everything the checks found about one message, for the decision and
/// for `Authentication-Results`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthVerdicts {
    /// The SPF result of the transaction's `MAIL FROM` (`None`: not
    /// checked).
    pub spf: Option<SpfResult>,
    /// One DKIM result per signature (`None`: not verified).
    pub dkim: Option<Vec<DkimResult>>,
    /// The DMARC result (`None`: not checked).
    pub dmarc: Option<DmarcResult>,
    /// The client authenticated (AUTH) before the message.
    pub authenticated: bool,
}

impl AuthVerdicts {
    /// The `d=` domains of the signatures that verified, as DMARC takes
    /// them.
    pub fn dkim_pass_domains(&self) -> Vec<&str> {
        self.dkim
            .iter()
            .flatten()
            .filter(|r| r.verdict() == DkimVerdict::Pass)
            .filter_map(DkimResult::domain)
            .collect()
    }

    /// The `Authentication-Results` field of these results in the name of
    /// `authserv_id`: `spf=` (with `smtp.mailfrom` or `smtp.helo`), one
    /// `dkim=` per signature (`dkim=none` for none), `dmarc=` (with
    /// `header.from` and `policy.dmarc`), each present when checked.
    ///
    /// # Errors
    ///
    /// An `authserv_id` that cannot be written.
    pub fn results_field(&self, authserv_id: &str) -> Result<AuthenticationResults, BuildError> {
        let mut field = AuthenticationResults::new(authserv_id)?;
        if let Some(spf) = &self.spf {
            field.push(spf_method_result(spf));
        }
        if let Some(dkim) = &self.dkim {
            if dkim.is_empty() {
                field.push(method_result_none());
            }
            for r in dkim {
                field.push(r.method_result());
            }
        }
        if let Some(dmarc) = &self.dmarc {
            field.push(dmarc_method_result(dmarc));
        }
        Ok(field)
    }
}

/// `spf=…` with its property and, for an error, the reason.
fn spf_method_result(spf: &SpfResult) -> MethodResult {
    let mut out = MethodResult::new("spf", spf.method_result())
        .unwrap_or_else(|_| unreachable!("SPF results are keywords"));
    if let Some(problem) = spf.problem() {
        out = out
            .clone()
            .with_reason(&printable(&problem.to_string()))
            .unwrap_or(out);
    }
    for (name, value) in spf.properties() {
        out = with_property(out, name, &value);
    }
    out
}

/// `dmarc=…` with its properties and, for an error, the reason.
fn dmarc_method_result(dmarc: &DmarcResult) -> MethodResult {
    let mut out = MethodResult::new("dmarc", dmarc.method_result())
        .unwrap_or_else(|_| unreachable!("DMARC results are keywords"));
    if let Some(problem) = dmarc.problem() {
        out = out
            .clone()
            .with_reason(&printable(&problem.to_string()))
            .unwrap_or(out);
    }
    for (name, value) in dmarc.properties() {
        out = with_property(out, name, &value);
    }
    out
}

/// Adds `ptype.property=value` from a dotted `name`; a value that cannot
/// be written (it came from the client) is left out.
fn with_property(out: MethodResult, name: &str, value: &str) -> MethodResult {
    let Some((ptype, property)) = name.split_once('.') else {
        return out;
    };
    out.clone()
        .with_property(ptype, property, &printable(value))
        .unwrap_or(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    use smtp_proto::dns::{Name, Question};
    use smtp_proto::spf::{Evaluator, Lookup};

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = net("192.0.2.0/24");
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("203.0.113.9".parse().unwrap()));
        assert!(net("127.0.0.1").contains("127.0.0.1".parse().unwrap()));
        assert!(!net("127.0.0.1").contains("127.0.0.2".parse().unwrap()));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(net("::/0").contains("::1".parse().unwrap()));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        for bad in [
            "192.0.2.0/33",
            "::/129",
            "192.0.2.0/",
            "x/8",
            "192.0.2.0/+8",
            "",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    fn spf(record: &str) -> SpfResult {
        let mut ev = Evaluator::mail_from(
            SpfConfig::default(),
            "192.0.2.10".parse().unwrap(),
            "mx.example.org",
            "alice@example.org",
            SystemTime::UNIX_EPOCH,
        );
        let q = Question::txt(Name::parse("example.org").unwrap());
        ev.handle_lookup(&q, Lookup::Txt(vec![record.as_bytes().to_vec()]));
        ev.into_result()
    }

    #[test]
    fn spf_fail_is_refused_only_when_enforcing_and_unauthenticated() {
        let fail = spf("v=spf1 -all");
        let mut checks = AuthChecks::new();
        assert!(checks.spf_decision(&fail, false).is_none());
        checks.spf_reject = true;
        let reply = checks.spf_decision(&fail, false).unwrap();
        assert_eq!(reply.code(), ReplyCode::MAILBOX_UNAVAILABLE);
        assert_eq!(reply.enhanced_code(), Some(EnhancedStatusCode::SPF_FAILED));
        assert!(checks.spf_decision(&fail, true).is_none());
        assert!(checks.spf_decision(&spf("v=spf1 ~all"), false).is_none());
        assert!(checks.spf_decision(&spf("v=spf1 +all"), false).is_none());
    }

    #[test]
    fn the_field_names_every_check() {
        let verdicts = AuthVerdicts {
            spf: Some(spf("v=spf1 ip4:192.0.2.0/24 -all")),
            dkim: Some(Vec::new()),
            dmarc: None,
            authenticated: false,
        };
        let field = verdicts.results_field("mx.test").unwrap();
        assert_eq!(
            field.value(),
            "mx.test; spf=pass smtp.mailfrom=alice@example.org; dkim=none"
        );
    }
}
