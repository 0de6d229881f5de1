//! DMARC without I/O (RFC 7489, with RFC 9091's `np`): is the domain a
//! reader sees in `From:` the one that was authenticated, and what does
//! its owner want done when it is not? Feature `dmarc`.
//!
//! # The pieces
//!
//! - [`from_domain`]: the RFC 5322 `From:` domain from the header
//!   section, with a defined outcome for no `From:`, several fields and
//!   several addresses ([`FromError`]; report it with
//!   [`DmarcResult::from_error`]).
//! - [`Record::parse`]: strict tags (`p`, `sp`, `np`, `adkim`, `aspf`,
//!   `pct`, `rua`/`ruf` with size limits, `fo`, `rf`, `ri`; unknown tags
//!   ignored, RFC 7489 §6.3); a known tag with a bad value, or a
//!   duplicate, makes the record invalid (`permerror`).
//! - [`organizational_domain`] and [`aligned`]: relaxed alignment
//!   compares organizational domains, found with the Public Suffix List
//!   compiled into the `psl` crate (no file is read at run time; a new
//!   list comes with a new crate release).
//! - [`Evaluator`]: policy discovery and the result, the same
//!   question/answer shape as [`crate::spf::Evaluator`]:
//!
//! ```text
//! Evaluator::new(from, Authenticated { spf_domain, dkim_domains }, sample)
//!     ──questions──▶ TXT _dmarc.<From domain>
//!                    then TXT _dmarc.<organizational domain> if none there
//!                    then A, AAAA, MX of the From domain if np= may apply
//!     ◀──handle_answer──
//!     ──result──▶ DmarcResult { verdict, policy, disposition, … }
//! ```
//!
//! | [`Verdict`] | when |
//! |---|---|
//! | `none` | no record at either name (several records at a name count as none, RFC 7489 §6.6.3) |
//! | `pass` | SPF passed for an aligned domain (`aspf`), or a DKIM signature with an aligned `d=` verified (`adkim`) |
//! | `fail` | a record, and neither |
//! | `temperror` | a TXT lookup failed, or no answer came |
//! | `permerror` | the record is invalid, or the `From:` is unusable |
//!
//! The policy is `p` for the `From:` domain's own record; for a record
//! found at the organizational domain it is `sp` (default `p`), or `np`
//! when the record has one and the `From:` domain does not exist
//! (NXDOMAIN for A, AAAA and MX, RFC 9091 §4.1; asked only for failing
//! mail). The disposition is `none` for passing mail, else the policy,
//! one step weaker when the caller's `sample` (0–99) is not below `pct`.
//! The crate draws no random numbers, so the sample is an argument.
//!
//! # What a transport does
//!
//! At the end of data, once DKIM and SPF have their results:
//! [`from_domain`] on the header section (on error,
//! [`DmarcResult::from_error`]), then `Evaluator::new(from,
//! Authenticated::new(Some(&spf_result), passing_dkim_domains), sample)`
//! with `sample` drawn from the transport's random source (`% 100`), and
//! the same question/answer pump as for SPF. The result's
//! [`DmarcResult::disposition`] is what an enforcing server acts on;
//! [`DmarcResult::method_result`] and [`DmarcResult::properties`] go into
//! `Authentication-Results`.
//!
//! As built: smtp-mio's server runs it after DKIM on its DNS service
//! thread, from the header section it kept while the message streamed,
//! and acts on the disposition only when the operator enforces
//! (`smtp_mio::server::auth_checks`: `reject` refused with `550 5.7.1`,
//! `quarantine` marked with an `X-Quarantine` field).
//!
//! # Example
//!
//! ```
//! use smtp_proto::dmarc::{from_domain, Authenticated, Evaluator, Policy, Verdict};
//! use smtp_proto::dns::{Name, Question};
//! use smtp_proto::spf::Lookup;
//!
//! let from = from_domain(b"From: Bob <bob@mail.example.org>\r\n\r\n").unwrap();
//! let auth = Authenticated { spf_domain: None, dkim_domains: vec!["example.org".into()] };
//! let mut dmarc = Evaluator::new(from, auth, 0);
//! let q: Vec<Question> = dmarc.questions().cloned().collect();
//! assert_eq!(q[0].name().as_str(), "_dmarc.mail.example.org");
//! dmarc.handle_lookup(&q[0], Lookup::NxDomain);
//! let q: Vec<Question> = dmarc.questions().cloned().collect();
//! assert_eq!(q[0].name().as_str(), "_dmarc.example.org");
//! dmarc.handle_lookup(&q[0], Lookup::Txt(vec![b"v=DMARC1; p=reject; sp=quarantine".to_vec()]));
//! let result = dmarc.result().unwrap();
//! assert_eq!(result.verdict(), Verdict::Pass); // relaxed DKIM alignment
//! assert_eq!(result.policy(), Some(Policy::Quarantine)); // sp= for a subdomain
//! assert_eq!(result.disposition(), Policy::None);
//! assert_eq!(result.properties()[0], ("header.from", "mail.example.org".to_owned()));
//! ```

mod eval;
mod from;
mod record;

#[cfg(test)]
mod tests;

pub use eval::{
    Authenticated, DmarcResult, Evaluator, Problem, Verdict, aligned, organizational_domain,
};
pub use from::{FromError, from_domain};
pub use record::{
    Alignment, FailureOption, Policy, Record, RecordError, ReportUri, is_dmarc_record,
};
