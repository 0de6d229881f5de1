//! What the caller hands the engine (a [`Job`]) and what it gets back (a
//! [`JobResult`], exactly one per job).

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::address::ForwardPath;
use smtp_proto::client::{self as session, Envelope, UsageError};
use smtp_proto::reply::Reply;

use crate::dns::DnsFailure;

/// The engine's name for a submitted job, unique within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub(crate) u64);

impl JobId {
    /// The number behind the id (ids count up from 1 in submission order).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// The message content: the header and body, CRLF line endings, not
/// dot-stuffed (the session stuffs for DATA, or counts for BDAT).
pub enum Message {
    /// Bytes in memory, shared: one `Arc` can back many jobs (a newsletter).
    Bytes(Arc<[u8]>),
    /// Read when the session is ready for the body, in pieces, so a large
    /// message is never held whole. The reader runs on the engine's thread:
    /// a file is fine, a slow network stream would stall the loop.
    ///
    /// Under MX routing a job whose recipients span several domains reads
    /// the reader into memory once, since each domain gets its own copy.
    Reader(Box<dyn Read + Send>),
}

impl Message {
    /// Content read from `reader` when it is needed.
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Self::Reader(Box::new(reader))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Message::Bytes({} octets)", b.len()),
            Self::Reader(_) => f.write_str("Message::Reader(..)"),
        }
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<Arc<[u8]>> for Message {
    fn from(bytes: Arc<[u8]>) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Self::Bytes(bytes.into())
    }
}

/// One message for its recipients.
#[derive(Debug)]
#[non_exhaustive]
pub struct Job {
    /// Sender, recipients and parameters. For in-memory content the engine
    /// fills in `SIZE` (RFC 1870) and `BODY=8BITMIME` (RFC 6152) when they
    /// are not set.
    pub envelope: Envelope,
    /// The content.
    pub message: Message,
}

impl Job {
    /// A job for `envelope` with `message`.
    pub fn new(envelope: Envelope, message: impl Into<Message>) -> Self {
        Self {
            envelope,
            message: message.into(),
        }
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The server took responsibility for the message (a `2yz` after the
    /// content).
    Accepted,
    /// A `4yz`, or no final answer (connection lost, timeout, DNS failure):
    /// try again later.
    TemporaryFailure,
    /// A `5yz`, a null MX, a domain that does not exist: do not retry.
    PermanentFailure,
    /// Never sent: the job was cancelled or the engine shut down before
    /// its transaction began.
    NotAttempted,
}

/// The host that answered (or was being talked to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Peer {
    /// The relay's configured name, the MX host's name, or the address
    /// literal.
    pub name: String,
    /// The address connected to.
    pub addr: SocketAddr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.name, self.addr)
    }
}

/// Why a recipient was not accepted, when no reply says it all.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The MX lookup, or the lookup of every host's addresses, failed.
    #[error("DNS: {0}")]
    Dns(DnsFailure),
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    #[error("{0} accepts no mail (null MX, RFC 7505)")]
    NullMx(String),
    /// The domain does not exist.
    #[error("{0}: no such domain (NXDOMAIN)")]
    NxDomain(String),
    /// The recipient has no domain to route by (`<Postmaster>`, a general
    /// address literal).
    #[error("no route to {0}")]
    NoRoute(String),
    /// Every host and address was tried; the text is the last failure.
    #[error("all hosts failed; last: {0}")]
    Unreachable(String),
    /// The TCP connection or the TLS handshake failed.
    #[error("{0}")]
    Connection(String),
    /// The SMTP session failed (timeout, connection lost, invalid reply,
    /// TLS required but refused, authentication failed …).
    #[error("{0}")]
    Session(session::Error),
    /// The session refused the message before sending it (needs an
    /// extension the server lacks, too large for its SIZE).
    #[error("{0}")]
    Message(UsageError),
    /// Reading the message content failed.
    #[error("reading the message: {0}")]
    Content(String),
    /// Cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The engine shut down first.
    #[error("the engine shut down")]
    Shutdown,
}

/// The result for one recipient.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecipientReport {
    /// The recipient.
    pub recipient: ForwardPath<'static>,
    /// What happened.
    pub status: Status,
    /// The reply that decided it — MAIL's, RCPT's, DATA's, or the one
    /// after the content — in full.
    pub reply: Option<Reply<'static>>,
    /// The host that gave the reply, or the last one tried.
    pub peer: Option<Peer>,
    /// Why, when there is no reply or the reply is not the whole story.
    pub failure: Option<Failure>,
}

/// The result of one job: one report per recipient, in envelope order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobResult {
    /// The job.
    pub id: JobId,
    /// One entry per recipient of the envelope, in order.
    pub recipients: Vec<RecipientReport>,
}

impl JobResult {
    /// Whether every recipient was accepted.
    pub fn all_accepted(&self) -> bool {
        self.recipients.iter().all(|r| r.status == Status::Accepted)
    }

    /// The recipients with the given status.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &RecipientReport> {
        self.recipients.iter().filter(move |r| r.status == status)
    }
}

/// Why [`Engine::submit`](super::Engine::submit) refused a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The envelope has no recipient.
    #[error("the envelope has no recipient")]
    NoRecipients,
    /// The engine is shutting down, or gone.
    #[error("the delivery engine is shutting down")]
    ShuttingDown,
}
