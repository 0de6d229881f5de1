//! SPF without I/O (RFC 7208): may this client send mail for this domain?
//! Feature `spf`.
//!
//! # Parsing
//!
//! [`Record::parse`] reads a TXT record strictly into typed terms
//! ([`Directive`]s of a [`Qualifier`] and a [`Mechanism`]; the `redirect=`
//! and `exp=` modifiers). Unknown modifiers are checked for macro syntax
//! and dropped (RFC 7208 §6); any other syntax error anywhere makes the
//! record a `permerror` before any term is evaluated (§4.6). Domain
//! specifications stay [`MacroString`]s, the macro language of §7 parsed
//! once (letters, the digit and `r` transformers, delimiters, `%%`, `%_`,
//! `%-`, URL escaping for upper-case letters) and expanded against a
//! [`MacroContext`].
//!
//! # Evaluating
//!
//! An [`Evaluator`] is `check_host()` (§4) as a state machine, the shape
//! of the DKIM verifier's key lookups: it says which DNS
//! [`Question`](crate::dns::Question)s it needs (TXT, A, AAAA, MX, PTR),
//! the caller asks them through its resolver — whose cache is the only
//! cache — and hands the answers back; the evaluator goes on and may ask
//! more, until it has a [`SpfResult`]:
//!
//! ```text
//! Evaluator::mail_from(config, ip, helo, sender, now)
//!     ──questions──▶ the transport's resolver
//!     ◀──handle_answer── answers          (repeat while !is_done())
//!     ──result──▶ SpfResult { verdict, explanation, problem }
//! ```
//!
//! Both identities are checked the same way: [`Evaluator::mail_from`]
//! (the null reverse-path checks the HELO identity, §2.4) and
//! [`Evaluator::helo`].
//!
//! | [`Verdict`] | when |
//! |---|---|
//! | `none` | no SPF record, or the domain is not checkable (§4.3: malformed, one label, an address literal) |
//! | `neutral` | `?` matched, or nothing matched and no `redirect=` |
//! | `pass` / `fail` / `softfail` | a `+` / `-` / `~` mechanism matched; `fail` carries the `exp=` explanation if it could be fetched |
//! | `temperror` | a lookup failed (timeout, SERVFAIL), or answers never came ([`Evaluator::into_result`]) |
//! | `permerror` | a syntax error, several SPF records at a name, `include` or `redirect` of a domain without a record, or a limit exceeded |
//!
//! # Limits (RFC 7208 §4.6.4)
//!
//! | limit | default | on excess |
//! |---|---|---|
//! | [`SpfConfig::max_dns_terms`]: `include`, `a`, `mx`, `ptr`, `exists`, `redirect` | 10 | `permerror` |
//! | [`SpfConfig::max_void_lookups`]: answers with no records or NXDOMAIN | 2 | `permerror` |
//! | [`SpfConfig::max_names_per_lookup`]: MX exchanges per `mx` | 10 | `permerror` |
//! | the same, PTR names per `ptr` or `%{p}` | 10 | the rest ignored |
//! | [`MAX_EXPANSION`]: octets one macro string expands to | 8192 | a domain-spec names nothing (void); an explanation is dropped |
//!
//! With them, one evaluation asks at most about 11 questions per
//! DNS-querying term (an MX question and 10 address questions) plus the
//! explanation's TXT, so its memory and work are bounded whatever the
//! answers hold.
//!
//! # Choices where readings differ
//!
//! - Void lookups are counted for every lookup a term makes (the MX or
//!   PTR question and each address question behind it) and for the TXT
//!   question of `include` and `redirect` targets, as pyspf counts them;
//!   the explanation's TXT lookup does not count.
//! - An expanded name that cannot be asked about (an empty or too long
//!   label, a space from `%_`) is a void lookup with no question sent.
//! - DNS errors behind `ptr` (and `%{p}`) drop the names concerned
//!   (§5.5); elsewhere they are `temperror`.
//! - The RFC 7208 test suite allows two results in a few cases; this
//!   evaluator gives the first, preferred one in each (see the suite's
//!   test in `tests/spf_suite.rs`).
//!
//! # What a transport does
//!
//! At `MAIL FROM`: `Evaluator::mail_from(config, client_ip, helo,
//! reverse_path, SystemTime::now())`; start one resolver lookup per
//! [`Evaluator::questions`] entry through its DNS pump (asking the same
//! question twice is harmless: the evaluator takes the first answer),
//! hand each resolved lookup to [`Evaluator::handle_answer`], and look at
//! the questions again after each — an answer can make new ones. Keep the
//! `MAIL` reply pending meanwhile. When [`Evaluator::is_done`], or when
//! the transport's own deadline passes, [`Evaluator::into_result`] gives
//! the [`SpfResult`], whose [`SpfResult::method_result`] and
//! [`SpfResult::properties`] go into `Authentication-Results` and whose
//! [`SpfResult::explanation`] may go into a `550 5.7.23` reply (RFC 7372)
//! after the caller has made it safe for a reply line.
//!
//! As built: smtp-mio's server does this on its DNS service thread
//! (`smtp_mio::server::authentication`), with the operator's policy in
//! `smtp_mio::server::auth_checks` (`550 5.7.23` / `451 4.7.24` only when
//! enforcing, [`EnhancedStatusCode::SPF_FAILED`](crate::reply::EnhancedStatusCode::SPF_FAILED)).
//!
//! # Example
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::SystemTime;
//! use smtp_proto::dns::{Name, Question};
//! use smtp_proto::spf::{Evaluator, Lookup, SpfConfig, Verdict};
//!
//! let ip: IpAddr = "192.0.2.10".parse().unwrap();
//! let mut spf = Evaluator::mail_from(
//!     SpfConfig::default(), ip, "mx.example.org", "alice@example.org", SystemTime::UNIX_EPOCH);
//! let q: Vec<Question> = spf.questions().cloned().collect();
//! assert_eq!(q, [Question::txt(Name::parse("example.org").unwrap())]);
//! spf.handle_lookup(&q[0], Lookup::Txt(vec![b"v=spf1 ip4:192.0.2.0/24 -all".to_vec()]));
//! let result = spf.result().unwrap();
//! assert_eq!(result.verdict(), Verdict::Pass);
//! assert_eq!(result.properties(), [("smtp.mailfrom", "alice@example.org".to_owned())]);
//! ```

mod eval;
mod macros;
mod record;

#[cfg(test)]
mod tests;

pub(crate) use eval::Rounds;
pub use eval::{
    DEFAULT_MAX_DNS_TERMS, DEFAULT_MAX_NAMES_PER_LOOKUP, DEFAULT_MAX_VOID_LOOKUPS, Evaluator,
    Identity, Lookup, MAX_DNS_TERMS_CEILING, Problem, SpfConfig, SpfResult, Verdict,
};
pub use macros::{
    MAX_EXPANDED_DOMAIN, MAX_EXPANSION, Macro, MacroContext, MacroError, MacroLetter, MacroString,
};
pub use record::{Directive, Mechanism, Qualifier, Record, RecordError, is_spf_record};
