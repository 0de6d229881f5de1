//! What can go wrong: an answer that cannot be used ([`AnswerError`]) and a
//! lookup that found no answer ([`Failure`]).

use thiserror::Error;

use super::MAX_CNAME_CHAIN;
use super::answer::{Disposition, Rcode};
use super::name::NameError;

/// An answer message that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The message id is not the query's: a late answer to an earlier query
    /// or a spoofing attempt (RFC 5452 §4.3).
    #[error("DNS answer id {found:#06x} does not match query id {expected:#06x}")]
    IdMismatch {
        /// The id of the query.
        expected: u16,
        /// The id in the answer.
        found: u16,
    },
    /// The QR bit is clear or the OPCODE is not QUERY (RFC 1035 §4.1.1).
    #[error("DNS message is not a response to a standard query")]
    NotAResponse,
    /// The question section does not repeat the query's name, type and class
    /// (RFC 5452 §9.1).
    #[error("DNS answer is for another question")]
    QuestionMismatch,
    /// The message cannot be decoded, or breaks DNS rules in a way that
    /// leaves its meaning open (two CNAMEs for one name).
    #[error("malformed DNS answer: {0}")]
    Malformed(String),
    /// The CNAME chain in the answer loops.
    #[error("CNAME loop in DNS answer")]
    CnameLoop,
    /// The CNAME chain in the answer is longer than [`MAX_CNAME_CHAIN`].
    #[error("CNAME chain longer than {MAX_CNAME_CHAIN} in DNS answer")]
    CnameChainTooLong,
    /// A name the answer depends on is refused: the end of the CNAME chain
    /// is not a valid [`Name`](super::Name), or (for the MX judgement) no
    /// usable host remains because every MX exchange, or the canonical name
    /// of an implicit MX, is not a valid RFC 5321 domain.
    #[error("DNS answer names an invalid host {name:?}: {reason}")]
    InvalidHostName {
        /// The offending name, DNS-escaped.
        name: String,
        /// Why it is invalid.
        reason: NameError,
    },
}

impl AnswerError {
    /// Whether the message is simply not the answer to this query (wrong id,
    /// not a response, another question): over UDP, discard it and keep
    /// waiting for the real answer until the query times out, so that a
    /// spoofed datagram cannot decide the outcome (RFC 5452 §9.1). Every
    /// other error is a temporary failure of the try.
    pub fn is_unrelated(&self) -> bool {
        matches!(
            self,
            Self::IdMismatch { .. } | Self::NotAResponse | Self::QuestionMismatch
        )
    }

    /// What the error means for the lookup once no usable answer will come:
    /// always [`Disposition::TemporaryFailure`]. For an
    /// [unrelated](Self::is_unrelated) message, first keep waiting; only the
    /// query's timeout makes the failure. No answer error is ever permanent:
    /// a broken or hostile answer must not bounce mail.
    pub fn disposition(&self) -> Disposition {
        Disposition::TemporaryFailure
    }
}

/// Why a lookup ended without an [`Answer`](super::Answer), after every try
/// the [`ResolverConfig`](super::ResolverConfig) allows.
///
/// When several tries failed differently, the result is the most telling
/// one: a failure code some server answered with (SERVFAIL, REFUSED …)
/// before anything else, then the last error, then a timeout (a timeout
/// never hides an error seen earlier) — as both transports reported it
/// before the policy moved here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Failure {
    /// A server answered with this failure code (SERVFAIL, REFUSED,
    /// FORMERR, NOTIMP …), and no server did better; the last such code.
    #[error("DNS server failure ({0})")]
    ServerFailure(Rcode),
    /// No server answered before its per-try timeout.
    #[error("DNS lookup timed out")]
    Timeout,
    /// The answer could not be used (malformed, CNAME loop, invalid names,
    /// truncated over TCP, a TCP frame above the configured limit).
    #[error("unusable DNS answer: {0}")]
    Unusable(AnswerError),
    /// The transport could not reach the server: a datagram could not be
    /// sent, or the TCP stream failed or ended before the answer.
    #[error("DNS server unreachable")]
    Unreachable,
    /// An answer was truncated and every TCP stream the configuration
    /// allows ([`ResolverConfig::max_streams`](super::ResolverConfig::max_streams))
    /// was busy.
    #[error("no free TCP stream for a truncated DNS answer")]
    StreamsBusy,
    /// The configuration lists no server.
    #[error("no DNS server configured")]
    NoServer,
}

impl Failure {
    /// What the failure means for delivery — its severity: always
    /// [`Disposition::TemporaryFailure`] (`.severity()` is
    /// [`Severity::Temporary`](super::Severity::Temporary)). Only what a
    /// domain's owner published (NXDOMAIN, a null MX) may bounce mail; a
    /// server that failed, a network that lost packets or a hostile answer
    /// may not.
    pub fn disposition(&self) -> Disposition {
        Disposition::TemporaryFailure
    }

    /// The response code, for [`ServerFailure`](Self::ServerFailure).
    pub fn rcode(&self) -> Option<Rcode> {
        match self {
            Self::ServerFailure(rcode) => Some(*rcode),
            _ => None,
        }
    }
}
