//! DMARC evaluation (RFC 7489 §6.6): policy discovery as DNS questions,
//! identifier alignment, result and disposition.

use std::collections::BTreeMap;
use std::fmt;

use super::record::{Alignment, Policy, Record, RecordError, is_dmarc_record};
use crate::dns::{Answer, Failure, Name, Question, RecordType};
use crate::spf::{Lookup, SpfResult, Verdict as SpfVerdict};

/// The organizational domain of `name` (RFC 7489 §3.2): its registrable
/// domain by the Public Suffix List, or the name itself when it is a
/// public suffix or the list does not know it.
pub fn organizational_domain(name: &Name) -> Name {
    psl::domain_str(name.as_str())
        .and_then(|d| Name::parse(d).ok())
        .unwrap_or_else(|| name.clone())
}

/// Whether `authenticated` is aligned with the `From:` domain `from`
/// under `mode` (RFC 7489 §3.1): equal for strict, the same
/// organizational domain for relaxed. Case does not matter.
pub fn aligned(authenticated: &str, from: &Name, mode: Alignment) -> bool {
    let Ok(auth) = Name::parse(authenticated) else {
        return false;
    };
    match mode {
        Alignment::Strict => auth == *from,
        Alignment::Relaxed => organizational_domain(&auth) == organizational_domain(from),
    }
}

/// What the other checks authenticated, as DMARC takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authenticated {
    /// The domain SPF passed for (the MAIL FROM domain, or the HELO
    /// domain for a null reverse-path, RFC 7489 §4.1); `None` unless SPF
    /// passed.
    pub spf_domain: Option<String>,
    /// The `d=` of every DKIM signature that verified.
    pub dkim_domains: Vec<String>,
}

impl Authenticated {
    /// From the result of [`crate::spf::Evaluator::mail_from`] (its
    /// domain counts only if it passed; for a null reverse-path that
    /// evaluator checked the HELO identity, which is what DMARC then uses,
    /// RFC 7489 §4.1) and the `d=` domains of the passing DKIM signatures.
    /// A separate HELO check's result is not for this: with a non-null
    /// reverse-path, DMARC's SPF identifier is the MAIL FROM domain.
    pub fn new<'a>(spf: Option<&SpfResult>, dkim_pass: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            spf_domain: spf
                .filter(|r| r.verdict() == SpfVerdict::Pass)
                .map(|r| r.domain().to_owned()),
            dkim_domains: dkim_pass.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// The DMARC result (RFC 7489 §11.2's values for `dmarc=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// No DMARC record for the domain.
    None,
    /// An aligned identifier passed.
    Pass,
    /// No aligned identifier passed.
    Fail,
    /// A DNS error during policy discovery.
    TempError,
    /// The record (or the message's `From:`) is unusable.
    PermError,
}

impl Verdict {
    /// The result keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::TempError => "temperror",
            Self::PermError => "permerror",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a result is `temperror` or `permerror`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A TXT lookup failed.
    #[error("DNS lookup of {0} failed: {1}")]
    Dns(String, Failure),
    /// The evaluation ended before the answers came.
    #[error("no answer in time")]
    NoAnswer,
    /// The record did not parse.
    #[error("DMARC record at {0}: {1}")]
    Record(String, RecordError),
    /// The message's `From:` is unusable (see [`super::from_domain`]).
    #[error("{0}")]
    From(super::FromError),
}

/// The outcome of a DMARC check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcResult {
    verdict: Verdict,
    from: Option<Name>,
    record_domain: Option<Name>,
    record: Option<Record>,
    policy: Option<Policy>,
    disposition: Policy,
    spf_aligned: bool,
    dkim_aligned: Option<String>,
    problem: Option<Problem>,
}

impl DmarcResult {
    /// The result for a message whose `From:` domain could not be
    /// determined: `permerror`, disposition none (the receiver decides,
    /// RFC 7489 §6.6.1).
    pub fn from_error(error: super::FromError) -> Self {
        Self {
            verdict: Verdict::PermError,
            from: None,
            record_domain: None,
            record: None,
            policy: None,
            disposition: Policy::None,
            spf_aligned: false,
            dkim_aligned: None,
            problem: Some(Problem::From(error)),
        }
    }

    /// The result.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The `From:` domain checked.
    pub fn from_domain(&self) -> Option<&Name> {
        self.from.as_ref()
    }

    /// Where the record was found (`_dmarc.` and the `From:` domain or
    /// its organizational domain, without the `_dmarc.`).
    pub fn record_domain(&self) -> Option<&Name> {
        self.record_domain.as_ref()
    }

    /// The record.
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// The policy the domain asks for this message (`p`, `sp` or `np`).
    pub fn policy(&self) -> Option<Policy> {
        self.policy
    }

    /// What to do with the message: `none` unless it failed, else the
    /// policy, one step weaker when the message fell outside `pct`.
    pub fn disposition(&self) -> Policy {
        self.disposition
    }

    /// Whether SPF passed with an aligned domain.
    pub fn spf_aligned(&self) -> bool {
        self.spf_aligned
    }

    /// The first passing DKIM `d=` that is aligned.
    pub fn dkim_aligned(&self) -> Option<&str> {
        self.dkim_aligned.as_deref()
    }

    /// Why the result is `temperror` or `permerror`.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The RFC 8601 `dmarc=` result keyword.
    pub fn method_result(&self) -> &'static str {
        self.verdict.as_str()
    }

    /// The RFC 8601 properties: `header.from` (the `From:` domain) and,
    /// when a record was found, `policy.dmarc` (the disposition applied).
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(from) = &self.from {
            out.push(("header.from", from.as_str().to_owned()));
        }
        if self.record.is_some() {
            out.push(("policy.dmarc", self.disposition.as_str().to_owned()));
        }
        out
    }
}

/// Checks DMARC for one message, without I/O, in the shape of the SPF
/// evaluator: [`questions`](Self::questions) (TXT at `_dmarc.<From
/// domain>`, then at the organizational domain; A, AAAA and MX of the
/// `From:` domain when an `np=` policy may apply), answers through
/// [`handle_answer`](Self::handle_answer), then [`result`](Self::result).
pub struct Evaluator {
    from: Name,
    org: Name,
    auth: Authenticated,
    sample: u8,
    answers: BTreeMap<Question, Lookup>,
    pending: Vec<Question>,
    result: Option<DmarcResult>,
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evaluator")
            .field("from", &self.from)
            .field("pending", &self.pending)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

enum Stop {
    Pending,
    Done(Box<DmarcResult>),
}

impl Evaluator {
    /// Checks the `From:` domain `from` against what was authenticated.
    /// `sample` is a number from 0 to 99 the caller draws uniformly per
    /// message (this crate draws no random numbers): a failing message is
    /// subject to the full policy when `sample < pct` (RFC 7489 §6.6.4).
    pub fn new(from: Name, auth: Authenticated, sample: u8) -> Self {
        let org = organizational_domain(&from);
        let mut ev = Self {
            from,
            org,
            auth,
            sample,
            answers: BTreeMap::new(),
            pending: Vec::new(),
            result: None,
        };
        ev.step();
        ev
    }

    /// The questions to ask now (empty once done).
    pub fn questions(&self) -> impl Iterator<Item = &Question> + '_ {
        self.pending.iter()
    }

    /// Whether the result is known.
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// Takes the resolver's answer to one of the questions; returns
    /// whether it was wanted.
    pub fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) -> bool {
        self.handle_lookup(question, Lookup::from(result))
    }

    /// Takes what a lookup found; returns whether it was wanted.
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
    pub fn result(&self) -> Option<&DmarcResult> {
        self.result.as_ref()
    }

    /// The result; still waiting means `temperror`.
    pub fn into_result(self) -> DmarcResult {
        match self.result {
            Some(r) => r,
            None => self.done(Verdict::TempError, None, None, Some(Problem::NoAnswer)),
        }
    }

    fn done(
        &self,
        verdict: Verdict,
        record_domain: Option<Name>,
        record: Option<Record>,
        problem: Option<Problem>,
    ) -> DmarcResult {
        DmarcResult {
            verdict,
            from: Some(self.from.clone()),
            record_domain,
            record,
            policy: None,
            disposition: Policy::None,
            spf_aligned: false,
            dkim_aligned: None,
            problem,
        }
    }

    fn lookup(&self, q: Question, needed: &mut Vec<Question>) -> Option<&Lookup> {
        let found = self.answers.get(&q);
        if found.is_none() {
            needed.push(q);
        }
        found
    }

    /// The DMARC record at `_dmarc.<domain>`: `Ok(None)` when there is
    /// none (or several, RFC 7489 §6.6.3).
    fn fetch(&self, domain: &Name, needed: &mut Vec<Question>) -> Result<Option<Record>, Stop> {
        let Ok(name) = Name::parse(&format!("_dmarc.{domain}")) else {
            return Ok(None);
        };
        let Some(lookup) = self.lookup(Question::txt(name), needed) else {
            return Err(Stop::Pending);
        };
        let records: Vec<&Vec<u8>> = match lookup {
            Lookup::Failed(f) => {
                return Err(Stop::Done(Box::new(self.done(
                    Verdict::TempError,
                    Some(domain.clone()),
                    None,
                    Some(Problem::Dns(format!("_dmarc.{domain}"), f.clone())),
                ))));
            }
            Lookup::Txt(txt) => txt.iter().filter(|t| is_dmarc_record(t)).collect(),
            _ => Vec::new(),
        };
        match records.as_slice() {
            [one] => Record::parse(one).map(Some).map_err(|e| {
                Stop::Done(Box::new(self.done(
                    Verdict::PermError,
                    Some(domain.clone()),
                    None,
                    Some(Problem::Record(domain.to_string(), e)),
                )))
            }),
            _ => Ok(None),
        }
    }

    /// Whether the `From:` domain does not exist (RFC 9091 §4.1: NXDOMAIN
    /// for A, AAAA and MX).
    fn nonexistent(&self, needed: &mut Vec<Question>) -> Result<bool, Stop> {
        let mut all = true;
        let mut missing = false;
        for rt in [RecordType::A, RecordType::Aaaa, RecordType::Mx] {
            match self.lookup(Question::new(self.from.clone(), rt), needed) {
                None => missing = true,
                Some(Lookup::NxDomain) => {}
                Some(_) => all = false,
            }
        }
        if missing {
            return Err(Stop::Pending);
        }
        Ok(all)
    }

    fn evaluate(&self, needed: &mut Vec<Question>) -> Result<DmarcResult, Stop> {
        let (record, at_org) = match self.fetch(&self.from, needed)? {
            Some(r) => (r, false),
            None if self.org != self.from => match self.fetch(&self.org, needed)? {
                Some(r) => (r, true),
                None => return Ok(self.done(Verdict::None, None, None, None)),
            },
            None => return Ok(self.done(Verdict::None, None, None, None)),
        };
        let record_domain = if at_org { &self.org } else { &self.from };
        let spf_aligned = self
            .auth
            .spf_domain
            .as_deref()
            .is_some_and(|d| aligned(d, &self.from, record.aspf));
        let dkim_aligned = self
            .auth
            .dkim_domains
            .iter()
            .find(|d| aligned(d, &self.from, record.adkim))
            .cloned();
        let pass = spf_aligned || dkim_aligned.is_some();
        let policy = if !at_org {
            record.policy
        } else {
            let sub = record.subdomain_policy.unwrap_or(record.policy);
            match record.nonexistent_policy {
                Some(np) if !pass && self.nonexistent(needed)? => np,
                _ => sub,
            }
        };
        let disposition = if pass {
            Policy::None
        } else if self.sample < record.pct {
            policy
        } else {
            policy.weaker()
        };
        Ok(DmarcResult {
            verdict: if pass { Verdict::Pass } else { Verdict::Fail },
            from: Some(self.from.clone()),
            record_domain: Some(record_domain.clone()),
            policy: Some(policy),
            disposition,
            spf_aligned,
            dkim_aligned,
            record: Some(record),
            problem: None,
        })
    }

    fn step(&mut self) {
        let mut needed = Vec::new();
        match self.evaluate(&mut needed) {
            Ok(result) => self.result = Some(result),
            Err(Stop::Done(result)) => self.result = Some(*result),
            Err(Stop::Pending) => {
                needed.sort();
                needed.dedup();
                self.pending = needed;
            }
        }
    }
}
