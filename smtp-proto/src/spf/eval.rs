//! `check_host()` (RFC 7208 §4) as a state machine that asks DNS
//! questions and takes their answers.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;

use super::macros::{MacroContext, MacroString};
use super::record::{Mechanism, Qualifier, Record, RecordError, is_spf_record};
use crate::dns::{Answer, Failure, Name, Question, RecordData, RecordType};

/// RFC 7208 §4.6.4: at most 10 mechanisms and modifiers that query DNS.
pub const DEFAULT_MAX_DNS_TERMS: usize = 10;
/// RFC 7208 §4.6.4: at most 2 void lookups (RECOMMENDED default).
pub const DEFAULT_MAX_VOID_LOOKUPS: usize = 2;
/// RFC 7208 §4.6.4: at most 10 names per MX or PTR answer.
pub const DEFAULT_MAX_NAMES_PER_LOOKUP: usize = 10;
/// The ceiling [`SpfConfig::max_dns_terms`] is clamped to: each
/// `include` and `redirect` is one level of evaluation, and this keeps
/// the depth (and the work) bounded whatever the configuration says.
pub const MAX_DNS_TERMS_CEILING: usize = 100;

/// The evaluator's limits and the receiver's name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpfConfig {
    /// Terms that query DNS (`include`, `a`, `mx`, `ptr`, `exists`,
    /// `redirect`) per evaluation; beyond, `permerror`. Default 10 (RFC
    /// 7208 §4.6.4), clamped to [`MAX_DNS_TERMS_CEILING`].
    pub max_dns_terms: usize,
    /// Lookups that find nothing (NXDOMAIN or no records) per evaluation;
    /// beyond, `permerror`. Default 2 (RFC 7208 §4.6.4).
    pub max_void_lookups: usize,
    /// MX exchanges an `mx` mechanism may look up (more: `permerror`), and
    /// PTR names looked at (the rest ignored). Default 10 (RFC 7208 §4.6.4).
    pub max_names_per_lookup: usize,
    /// The receiving host's domain, for `%{r}` in explanations (RFC 7208
    /// §7.2: "unknown" when not given).
    pub receiver: String,
}

impl Default for SpfConfig {
    fn default() -> Self {
        Self {
            max_dns_terms: DEFAULT_MAX_DNS_TERMS,
            max_void_lookups: DEFAULT_MAX_VOID_LOOKUPS,
            max_names_per_lookup: DEFAULT_MAX_NAMES_PER_LOOKUP,
            receiver: "unknown".to_owned(),
        }
    }
}

/// The result of `check_host()` (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// No SPF record, or no checkable domain.
    None,
    /// The domain owner says nothing about the client.
    Neutral,
    /// The client is authorized.
    Pass,
    /// The client is not authorized.
    Fail,
    /// Probably not authorized (a weak fail).
    SoftFail,
    /// A transient DNS error.
    TempError,
    /// The domain's records are broken or exceeded the limits.
    PermError,
}

impl Verdict {
    /// The result's name, as RFC 7208 §2.6 and RFC 8601 §2.7.2 write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Neutral => "neutral",
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::SoftFail => "softfail",
            Self::TempError => "temperror",
            Self::PermError => "permerror",
        }
    }

    fn of(qualifier: Qualifier) -> Self {
        match qualifier {
            Qualifier::Pass => Self::Pass,
            Qualifier::Fail => Self::Fail,
            Qualifier::SoftFail => Self::SoftFail,
            Qualifier::Neutral => Self::Neutral,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which identity was checked (RFC 7208 §2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    /// The MAIL FROM reverse-path's domain.
    MailFrom,
    /// The HELO/EHLO domain (also for a null reverse-path, §2.4).
    Helo,
}

/// Why a result is `temperror` or `permerror`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Problem {
    /// A lookup failed (timeout, SERVFAIL, …): `temperror`.
    #[error("DNS lookup of {0} failed: {1}")]
    Dns(String, Failure),
    /// The evaluation ended before every answer arrived: `temperror`.
    #[error("no answer in time")]
    NoAnswer,
    /// A record did not parse: `permerror`.
    #[error("SPF record of {domain}: {error}")]
    Record {
        /// The domain whose record it is.
        domain: String,
        /// What is wrong with it.
        error: RecordError,
    },
    /// More than one SPF record at a domain (RFC 7208 §4.5).
    #[error("more than one SPF record at {0}")]
    MultipleRecords(String),
    /// Over [`SpfConfig::max_dns_terms`].
    #[error("more than {0} DNS-querying terms")]
    TooManyDnsTerms(usize),
    /// Over [`SpfConfig::max_void_lookups`].
    #[error("more than {0} void lookups")]
    TooManyVoidLookups(usize),
    /// An MX answer with more than [`SpfConfig::max_names_per_lookup`] names.
    #[error("more than {0} MX names")]
    TooManyMxNames(usize),
    /// `include:` named a domain without an SPF record (RFC 7208 §5.2).
    #[error("include:{0} has no SPF record")]
    IncludeNone(String),
    /// `redirect=` named a domain without an SPF record (RFC 7208 §6.1).
    #[error("redirect={0} has no SPF record")]
    RedirectNone(String),
}

/// What a lookup found, as the evaluator takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// TXT records, each with its strings joined.
    Txt(Vec<Vec<u8>>),
    /// A or AAAA records.
    Addresses(Vec<IpAddr>),
    /// MX exchanges (a null MX, `.`, left out).
    Mx(Vec<Name>),
    /// PTR names.
    Ptr(Vec<Name>),
    /// The name exists without records of the type (NODATA): void.
    NoData,
    /// The name does not exist (NXDOMAIN): void.
    NxDomain,
    /// The lookup failed: `temperror` (ignored where RFC 7208 says so).
    Failed(Failure),
}

impl Lookup {
    fn is_void(&self) -> bool {
        match self {
            Self::Txt(v) => v.is_empty(),
            Self::Addresses(v) => v.is_empty(),
            Self::Mx(v) | Self::Ptr(v) => v.is_empty(),
            Self::NoData | Self::NxDomain => true,
            Self::Failed(_) => false,
        }
    }
}

impl From<&Result<Answer, Failure>> for Lookup {
    fn from(result: &Result<Answer, Failure>) -> Self {
        match result {
            Ok(Answer::Records(records)) => match records.data() {
                RecordData::Txt(txt) => Self::Txt(txt.iter().map(|t| t.joined()).collect()),
                RecordData::Addresses(a) => Self::Addresses(a.clone()),
                RecordData::Mx(mx) => Self::Mx(
                    mx.iter()
                        .filter_map(|m| match m.exchange() {
                            crate::dns::Exchange::Name(n) => Some(n.clone()),
                            _ => None,
                        })
                        .collect(),
                ),
                RecordData::Ptr(p) => Self::Ptr(p.clone()),
                _ => Self::NoData,
            },
            Ok(Answer::NoData(_)) => Self::NoData,
            Ok(Answer::NxDomain(_)) => Self::NxDomain,
            Err(failure) => Self::Failed(failure.clone()),
        }
    }
}

/// The outcome of an SPF check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfResult {
    verdict: Verdict,
    identity: Identity,
    sender: String,
    helo: String,
    domain: String,
    explanation: Option<String>,
    problem: Option<Problem>,
}

impl SpfResult {
    /// The result.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Which identity was checked.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The domain checked (the MAIL FROM domain, or the HELO domain).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The sender as checked, `local-part@domain` (`postmaster@…` when
    /// the identity has no local-part, RFC 7208 §4.3).
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The explanation for a `fail` (RFC 7208 §6.2, from `exp=`), if the
    /// domain gave one that could be fetched and expanded.
    pub fn explanation(&self) -> Option<&str> {
        self.explanation.as_deref()
    }

    /// Why the result is `temperror` or `permerror`.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The RFC 8601 `spf=` result keyword (RFC 8601 §2.7.2).
    pub fn method_result(&self) -> &'static str {
        self.verdict.as_str()
    }

    /// The RFC 8601 properties: `smtp.mailfrom` (the checked sender) for
    /// the MAIL FROM identity, `smtp.helo` for the HELO identity.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        match self.identity {
            Identity::MailFrom => vec![("smtp.mailfrom", self.sender.clone())],
            Identity::Helo => vec![("smtp.helo", self.helo.clone())],
        }
    }
}

/// Evaluates one identity's SPF policy for one client, without I/O.
///
/// 1. Create it with [`mail_from`](Self::mail_from) or
///    [`helo`](Self::helo).
/// 2. While not [`is_done`](Self::is_done): ask every
///    [`questions`](Self::questions) entry through the resolver and hand
///    each answer to [`handle_answer`](Self::handle_answer) (or
///    [`handle_lookup`](Self::handle_lookup)). When the last pending
///    answer arrives the evaluation moves on and may ask more.
/// 3. [`result`](Self::result) / [`into_result`](Self::into_result)
///    (unanswered questions make it `temperror`).
///
/// Internally each step re-runs `check_host()` from the top over the
/// answers gathered so far, stopping at the first question without an
/// answer. The processing limits bound how many answers there can be
/// (at most about 11 per DNS-querying term), records are parsed once and
/// kept by name, so a replay is cheap (about 10 µs for a typical policy
/// of seven lookups, all rounds together), and
/// the evaluation is a pure function of its inputs and answers: the same
/// answers always give the same result, whatever order they came in.
pub struct Evaluator {
    config: SpfConfig,
    ip: IpAddr,
    helo: String,
    local_part: String,
    domain: String,
    identity: Identity,
    timestamp: u64,
    answers: BTreeMap<Question, Lookup>,
    /// Records parsed in earlier replays, by name (a replay re-reads the
    /// same answers; parsing them once is most of the saving).
    parsed: BTreeMap<Name, Arc<Record>>,
    pending: Vec<Question>,
    result: Option<SpfResult>,
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evaluator")
            .field("ip", &self.ip)
            .field("domain", &self.domain)
            .field("answers", &self.answers.len())
            .field("pending", &self.pending)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl Evaluator {
    /// Checks the MAIL FROM identity: `sender` is the reverse-path's
    /// address (`local-part@domain`). An empty sender (the null
    /// reverse-path) checks the HELO identity instead (RFC 7208 §2.4).
    /// `now` feeds `%{t}`.
    pub fn mail_from(
        config: SpfConfig,
        ip: IpAddr,
        helo: &str,
        sender: &str,
        now: SystemTime,
    ) -> Self {
        if sender.is_empty() {
            return Self::helo(config, ip, helo, now);
        }
        let (local, domain) = match sender.rfind('@') {
            Some(at) => (&sender[..at], &sender[at + 1..]),
            None => ("", sender),
        };
        Self::new(config, ip, helo, local, domain, Identity::MailFrom, now)
    }

    /// Checks the HELO identity (RFC 7208 §2.3): the sender is
    /// `postmaster@<helo>`.
    pub fn helo(config: SpfConfig, ip: IpAddr, helo: &str, now: SystemTime) -> Self {
        Self::new(config, ip, helo, "", helo, Identity::Helo, now)
    }

    fn new(
        mut config: SpfConfig,
        ip: IpAddr,
        helo: &str,
        local: &str,
        domain: &str,
        identity: Identity,
        now: SystemTime,
    ) -> Self {
        config.max_dns_terms = config.max_dns_terms.min(MAX_DNS_TERMS_CEILING);
        let ip = match ip {
            // An IPv4-mapped IPv6 client is the IPv4 client it maps.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let local_part = if local.is_empty() {
            "postmaster"
        } else {
            local
        };
        let mut evaluator = Self {
            config,
            ip,
            helo: helo.to_owned(),
            local_part: local_part.to_owned(),
            domain: domain.strip_suffix('.').unwrap_or(domain).to_owned(),
            identity,
            timestamp: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            answers: BTreeMap::new(),
            parsed: BTreeMap::new(),
            pending: Vec::new(),
            result: None,
        };
        evaluator.step();
        evaluator
    }

    /// The configuration in force (limits clamped).
    pub fn config(&self) -> &SpfConfig {
        &self.config
    }

    /// The questions to ask now (empty once done).
    pub fn questions(&self) -> impl Iterator<Item = &Question> + '_ {
        self.pending.iter()
    }

    /// Whether the result is known.
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// Takes the resolver's answer to one of [`questions`](Self::questions);
    /// returns whether it was wanted.
    pub fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) -> bool {
        self.handle_lookup(question, Lookup::from(result))
    }

    /// Takes what a lookup of `question` found; returns whether it was
    /// wanted. Once every pending question has its answer, the evaluation
    /// goes on.
    pub fn handle_lookup(&mut self, question: &Question, lookup: Lookup) -> bool {
        let Some(pos) = self.pending.iter().position(|q| q == question) else {
            return false;
        };
        self.pending.swap_remove(pos);
        self.answers.insert(question.clone(), lookup);
        if self.pending.is_empty() {
            self.step();
        }
        true
    }

    /// The result, once [`is_done`](Self::is_done).
    pub fn result(&self) -> Option<&SpfResult> {
        self.result.as_ref()
    }

    /// The result; an evaluation still waiting for answers is
    /// `temperror` ([`Problem::NoAnswer`]).
    pub fn into_result(self) -> SpfResult {
        match self.result {
            Some(result) => result,
            None => self.finish(Verdict::TempError, None, Some(Problem::NoAnswer)),
        }
    }

    fn finish(
        &self,
        verdict: Verdict,
        explanation: Option<String>,
        problem: Option<Problem>,
    ) -> SpfResult {
        SpfResult {
            verdict,
            identity: self.identity,
            sender: format!("{}@{}", self.local_part, self.domain),
            helo: self.helo.clone(),
            domain: self.domain.clone(),
            explanation,
            problem,
        }
    }

    /// Re-runs `check_host()` over the answers so far.
    fn step(&mut self) {
        let mut parsed = std::mem::take(&mut self.parsed);
        let mut run = Run {
            ev: self,
            parsed: &mut parsed,
            dns_terms: 0,
            voids: 0,
            needed: Vec::new(),
            validated: None,
        };
        let outcome = run.check_top();
        let mut needed = std::mem::take(&mut run.needed);
        self.parsed = parsed;
        match outcome {
            Err(Stop::Pending) => {
                needed.sort();
                needed.dedup();
                self.pending = needed;
            }
            Err(Stop::Error(verdict, problem)) => {
                self.result = Some(self.finish(verdict, None, Some(problem)));
            }
            Ok((verdict, explanation)) => {
                self.result = Some(self.finish(verdict, explanation, None));
            }
        }
    }
}

/// Why a run stopped early.
enum Stop {
    /// A question without an answer yet.
    Pending,
    /// `temperror` or `permerror`.
    Error(Verdict, Problem),
}

/// What `check_host()` of one domain found.
enum Outcome {
    /// No SPF record (or no checkable domain).
    None,
    /// A result, with the `exp=` of the record that decided a `fail`
    /// and that record's domain.
    Done(Verdict, Option<(MacroString, String)>),
}

/// One replay of the evaluation.
struct Run<'a> {
    ev: &'a Evaluator,
    parsed: &'a mut BTreeMap<Name, Arc<Record>>,
    dns_terms: usize,
    voids: usize,
    needed: Vec<Question>,
    /// `%{p}`, once expanded (the first expansion's choice holds for
    /// the whole evaluation, as in pyspf).
    validated: Option<Option<String>>,
}

fn perm(problem: Problem) -> Stop {
    Stop::Error(Verdict::PermError, problem)
}

/// A domain `check_host()` can look at (RFC 7208 §4.3): a valid name of
/// two labels or more whose last label is a top-level label (this keeps
/// out address literals and single words).
fn checkable(domain: &str) -> Option<Name> {
    let name = Name::parse(domain).ok()?;
    let (_, last) = name.as_str().rsplit_once('.')?;
    let b = last.as_bytes();
    let top = b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric);
    top.then_some(name)
}

impl<'a> Run<'a> {
    fn check_top(&mut self) -> Result<(Verdict, Option<String>), Stop> {
        let domain = self.ev.domain.clone();
        match self.check_host(&domain)? {
            Outcome::None => Ok((Verdict::None, None)),
            Outcome::Done(Verdict::Fail, Some((exp, exp_domain))) => {
                let explanation = self.explain(&exp, &exp_domain)?;
                Ok((Verdict::Fail, explanation))
            }
            Outcome::Done(verdict, _) => Ok((verdict, None)),
        }
    }

    /// The answer to `question`, or a note that it is needed.
    fn lookup(&mut self, question: Question) -> Result<&'a Lookup, Stop> {
        let ev: &'a Evaluator = self.ev;
        match ev.answers.get(&question) {
            Some(lookup) => Ok(lookup),
            None => {
                self.needed.push(question);
                Err(Stop::Pending)
            }
        }
    }

    fn count_void(&mut self, lookup_is_void: bool) -> Result<(), Stop> {
        if lookup_is_void {
            self.voids += 1;
            if self.voids > self.ev.config.max_void_lookups {
                return Err(perm(Problem::TooManyVoidLookups(
                    self.ev.config.max_void_lookups,
                )));
            }
        }
        Ok(())
    }

    fn count_term(&mut self) -> Result<(), Stop> {
        self.dns_terms += 1;
        if self.dns_terms > self.ev.config.max_dns_terms {
            return Err(perm(Problem::TooManyDnsTerms(self.ev.config.max_dns_terms)));
        }
        Ok(())
    }

    /// The SPF record of `domain`: `Ok(None)` when there is none.
    fn fetch_record(&mut self, name: &Name) -> Result<Option<Arc<Record>>, Stop> {
        let lookup = self.lookup(Question::txt(name.clone()))?;
        let records: Vec<&Vec<u8>> = match lookup {
            Lookup::Failed(f) => {
                return Err(Stop::Error(
                    Verdict::TempError,
                    Problem::Dns(name.to_string(), f.clone()),
                ));
            }
            Lookup::Txt(txt) => txt.iter().filter(|t| is_spf_record(t)).collect(),
            _ => Vec::new(),
        };
        let void = lookup.is_void();
        let result = match records.as_slice() {
            [] => None,
            [one] => match self.parsed.get(name) {
                Some(record) => Some(Arc::clone(record)),
                None => {
                    let record = Arc::new(Record::parse(one).map_err(|error| {
                        perm(Problem::Record {
                            domain: name.to_string(),
                            error,
                        })
                    })?);
                    self.parsed.insert(name.clone(), Arc::clone(&record));
                    Some(record)
                }
            },
            _ => return Err(perm(Problem::MultipleRecords(name.to_string()))),
        };
        self.count_void(void)?;
        Ok(result)
    }

    fn check_host(&mut self, domain: &str) -> Result<Outcome, Stop> {
        let Some(name) = checkable(domain) else {
            return Ok(Outcome::None);
        };
        let Some(record) = self.fetch_record(&name)? else {
            return Ok(Outcome::None);
        };
        let domain = name.as_str();
        for directive in record.directives() {
            if directive.mechanism.queries_dns() {
                self.count_term()?;
            }
            if self.matches(&directive.mechanism, domain)? {
                let verdict = Verdict::of(directive.qualifier);
                let exp = match (verdict, record.explanation()) {
                    (Verdict::Fail, Some(exp)) => Some((exp.clone(), domain.to_owned())),
                    _ => None,
                };
                return Ok(Outcome::Done(verdict, exp));
            }
        }
        if let Some(redirect) = record.redirect() {
            self.count_term()?;
            let target = self.expand_domain(redirect, domain)?;
            return match self.check_host(&target)? {
                Outcome::None => Err(perm(Problem::RedirectNone(target))),
                done => Ok(done),
            };
        }
        Ok(Outcome::Done(Verdict::Neutral, None))
    }

    fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        let ip = self.ev.ip;
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, prefix } => Ok(match ip {
                IpAddr::V4(v4) => in_prefix(&v4.octets(), &addr.octets(), *prefix),
                IpAddr::V6(_) => false,
            }),
            Mechanism::Ip6 { addr, prefix } => Ok(match ip {
                IpAddr::V6(v6) => in_prefix(&v6.octets(), &addr.octets(), *prefix),
                IpAddr::V4(_) => false,
            }),
            Mechanism::Include(spec) => {
                let target = self.expand_domain(spec, domain)?;
                match self.check_host(&target)? {
                    Outcome::None => Err(perm(Problem::IncludeNone(target))),
                    Outcome::Done(Verdict::Pass, _) => Ok(true),
                    Outcome::Done(_, _) => Ok(false),
                }
            }
            Mechanism::A {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let target = self.target(spec.as_ref(), domain)?;
                let addresses = self.addresses(&target, ip)?;
                Ok(addresses.iter().any(|a| cidr_match(ip, *a, *cidr4, *cidr6)))
            }
            Mechanism::Mx {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let target = self.target(spec.as_ref(), domain)?;
                let exchanges = match Name::parse(&target) {
                    Err(_) => {
                        self.count_void(true)?;
                        Vec::new()
                    }
                    Ok(name) => {
                        let lookup = self.lookup(Question::new(name.clone(), RecordType::Mx))?;
                        let exchanges = match lookup {
                            Lookup::Mx(names) => names.clone(),
                            Lookup::Failed(f) => {
                                return Err(Stop::Error(
                                    Verdict::TempError,
                                    Problem::Dns(name.to_string(), f.clone()),
                                ));
                            }
                            _ => Vec::new(),
                        };
                        let void = lookup.is_void();
                        self.count_void(void)?;
                        exchanges
                    }
                };
                let max = self.ev.config.max_names_per_lookup;
                if exchanges.len() > max {
                    return Err(perm(Problem::TooManyMxNames(max)));
                }
                // Ask for every exchange's addresses at once; judge them in
                // order once all are known.
                let mut missing = false;
                for exchange in &exchanges {
                    let q = address_question(exchange, ip);
                    if !self.ev.answers.contains_key(&q) {
                        self.needed.push(q);
                        missing = true;
                    }
                }
                if missing {
                    return Err(Stop::Pending);
                }
                for exchange in &exchanges {
                    let addresses = self.addresses(exchange.as_str(), ip)?;
                    if addresses.iter().any(|a| cidr_match(ip, *a, *cidr4, *cidr6)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(spec.as_ref(), domain)?;
                let validated = self.validated_names()?;
                let target = target.to_ascii_lowercase();
                Ok(validated.iter().any(|n| {
                    n.as_str() == target
                        || n.as_str()
                            .strip_suffix(target.as_str())
                            .is_some_and(|head| head.ends_with('.'))
                }))
            }
            Mechanism::Exists(spec) => {
                let target = self.expand_domain(spec, domain)?;
                // Always an A question, whatever the client's family (RFC
                // 7208 §5.7).
                let v4 = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
                Ok(!self.addresses(&target, v4)?.is_empty())
            }
        }
    }

    fn target(&mut self, spec: Option<&MacroString>, domain: &str) -> Result<String, Stop> {
        match spec {
            Some(spec) => self.expand_domain(spec, domain),
            None => Ok(domain.to_owned()),
        }
    }

    /// The A (IPv4 `family`) or AAAA records of `target`. A name that
    /// cannot be asked about counts as a void lookup.
    fn addresses(&mut self, target: &str, family: IpAddr) -> Result<Vec<IpAddr>, Stop> {
        let Ok(name) = Name::parse(target) else {
            self.count_void(true)?;
            return Ok(Vec::new());
        };
        let lookup = self.lookup(address_question(&name, family))?;
        let addresses: Vec<IpAddr> = match lookup {
            Lookup::Addresses(a) => a
                .iter()
                .copied()
                .filter(|a| a.is_ipv4() == family.is_ipv4())
                .collect(),
            Lookup::Failed(f) => {
                return Err(Stop::Error(
                    Verdict::TempError,
                    Problem::Dns(name.to_string(), f.clone()),
                ));
            }
            _ => Vec::new(),
        };
        self.count_void(addresses.is_empty())?;
        Ok(addresses)
    }

    /// The client IP's validated names (RFC 7208 §5.5): the PTR names
    /// (the first [`SpfConfig::max_names_per_lookup`]) whose addresses
    /// include the IP. DNS errors make names (or the whole list) drop
    /// out rather than fail the check. Lookups that find nothing count as
    /// void lookups.
    fn validated_names(&mut self) -> Result<Vec<Name>, Stop> {
        let ip = self.ev.ip;
        let lookup = self.lookup(Question::ptr(ip))?;
        let names = match lookup {
            Lookup::Ptr(names) => names.clone(),
            _ => Vec::new(),
        };
        let void = lookup.is_void();
        self.count_void(void)?;
        let names: Vec<Name> = names
            .into_iter()
            .take(self.ev.config.max_names_per_lookup)
            .collect();
        let mut missing = false;
        for name in &names {
            let q = address_question(name, ip);
            if !self.ev.answers.contains_key(&q) {
                self.needed.push(q);
                missing = true;
            }
        }
        if missing {
            return Err(Stop::Pending);
        }
        let mut validated = Vec::new();
        for name in names {
            let q = address_question(&name, ip);
            let found = match &self.ev.answers[&q] {
                Lookup::Addresses(a) => a.contains(&ip),
                _ => false,
            };
            let void = self.ev.answers[&q].is_void();
            self.count_void(void)?;
            if found {
                validated.push(name);
            }
        }
        Ok(validated)
    }

    /// `%{p}` for `domain` (RFC 7208 §7.3): the domain itself if
    /// validated, else a validated subdomain of it, else any validated
    /// name; `None` ("unknown") when there is none.
    fn validated_for(&mut self, domain: &str) -> Result<Option<String>, Stop> {
        if let Some(p) = &self.validated {
            return Ok(p.clone());
        }
        let names = self.validated_names()?;
        let suffix = format!(".{domain}");
        let pick = names
            .iter()
            .find(|n| n.as_str() == domain)
            .or_else(|| names.iter().find(|n| n.as_str().ends_with(&suffix)))
            .or_else(|| names.first());
        let pick = pick.map(|n| n.as_str().to_owned());
        self.validated = Some(pick.clone());
        Ok(pick)
    }

    fn context<'b>(&'b self, domain: &'b str, validated: Option<&'b str>) -> MacroContext<'b> {
        MacroContext {
            local_part: &self.ev.local_part,
            sender_domain: &self.ev.domain,
            domain,
            ip: self.ev.ip,
            validated,
            helo: &self.ev.helo,
            receiver: &self.ev.config.receiver,
            timestamp: self.ev.timestamp,
        }
    }

    fn expand_domain(&mut self, spec: &MacroString, domain: &str) -> Result<String, Stop> {
        let validated = if spec.uses_validated_name() {
            self.validated_for(domain)?
        } else {
            None
        };
        // An expansion over the bound is no name to ask about: the empty
        // string fails every name check that follows.
        Ok(spec
            .expand_domain(&self.context(domain, validated.as_deref()))
            .unwrap_or_default())
    }

    /// The explanation of a `fail` (RFC 7208 §6.2): the one TXT record at
    /// the expanded `exp=` domain, expanded in turn. Any problem (no or
    /// several records, DNS error, bad syntax, non-ASCII) means no
    /// explanation; none of these lookups count toward the limits.
    fn explain(&mut self, spec: &MacroString, domain: &str) -> Result<Option<String>, Stop> {
        let target = self.expand_domain(spec, domain)?;
        let Ok(name) = Name::parse(&target) else {
            return Ok(None);
        };
        let text = match self.lookup(Question::txt(name))? {
            Lookup::Txt(records) if records.len() == 1 => records[0].clone(),
            _ => return Ok(None),
        };
        let Some(text) = std::str::from_utf8(&text).ok().filter(|t| t.is_ascii()) else {
            return Ok(None);
        };
        let Ok(exp) = MacroString::parse_explanation(text) else {
            return Ok(None);
        };
        let validated = if exp.uses_validated_name() {
            self.validated_for(domain)?
        } else {
            None
        };
        Ok(exp.expand(&self.context(domain, validated.as_deref())))
    }
}

/// The A (IPv4 client) or AAAA (IPv6 client) question for `name`.
fn address_question(name: &Name, family: IpAddr) -> Question {
    let record_type = if family.is_ipv4() {
        RecordType::A
    } else {
        RecordType::Aaaa
    };
    Question::new(name.clone(), record_type)
}

/// Whether `ip` is in `net`/`prefix`.
fn in_prefix(ip: &[u8], net: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if ip[..full] != net[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (ip[full] & mask) == (net[full] & mask)
}

fn cidr_match(ip: IpAddr, candidate: IpAddr, cidr4: u8, cidr6: u8) -> bool {
    match (ip, candidate) {
        (IpAddr::V4(a), IpAddr::V4(b)) => in_prefix(&a.octets(), &b.octets(), cidr4),
        (IpAddr::V6(a), IpAddr::V6(b)) => in_prefix(&a.octets(), &b.octets(), cidr6),
        _ => false,
    }
}
