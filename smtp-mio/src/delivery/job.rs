//! What the caller hands the engine (a [`Job`]) and what it gets back (a
//! [`JobResult`], exactly one per job).

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::address::ForwardPath;
use smtp_proto::client::Envelope;
use smtp_proto::mx::{Reason, TlsFailure};
use smtp_proto::reply::Reply;

use super::dkim::Signing;

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
    /// A reader is read once. When one transaction cannot carry the job —
    /// recipients at several destinations, or more than one transaction's
    /// worth of recipients — it is read into memory at submission. When the
    /// walk asks for another transaction after some of it was read (a host
    /// deferred some recipients, a connection was lost mid-message), the
    /// recipients left fail temporarily with [`Failure::Content`]: use
    /// [`Message::Bytes`] where deferrals are common (MX routing).
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
    /// Whether the content was DKIM-signed yet.
    pub(crate) signing: Signing,
}

impl Job {
    /// A job for `envelope` with `message`.
    pub fn new(envelope: Envelope, message: impl Into<Message>) -> Self {
        Self {
            envelope,
            message: message.into(),
            signing: Signing::Pending,
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
    /// Never sent: the job was cancelled, the engine shut down, or its
    /// content could not be read, before any transaction carried the
    /// recipient.
    NotAttempted,
}

/// The host that answered (or was being talked to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Peer {
    /// The relay's configured name, the MX host's name, or the address
    /// literal.
    pub name: String,
    /// The address connected to (or tried); `None` when the host failed
    /// before an address was reached (its address lookup).
    pub addr: Option<SocketAddr>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(addr) => write!(f, "{} [{addr}]", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Why a recipient was not accepted, when no reply says it all.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// What the walk recorded ([`smtp_proto::mx::Walk`], the one set of
    /// delivery rules): a null MX, NXDOMAIN, a DNS failure, no address, a
    /// connection or TLS failure, the session's error, a lost transaction.
    #[error("{}", describe(.0))]
    Walk(Reason),
    /// Reading the message content failed, or the content was needed again
    /// after a reader had been read (see [`Message::Reader`]).
    #[error("reading the message: {0}")]
    Content(String),
    /// The message cannot be signed with the configured DKIM keys (no
    /// `From` field, a header section over the bound): it was not sent.
    #[error("cannot DKIM-sign the message: {0}")]
    Dkim(String),
    /// Cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The engine shut down first.
    #[error("the engine shut down")]
    Shutdown,
}

/// A walk's reason in words.
fn describe(reason: &Reason) -> String {
    match reason {
        Reason::InvalidDestination(e) => format!("no route: {e}"),
        Reason::NullMx => String::from("the domain accepts no mail (null MX, RFC 7505)"),
        Reason::NxDomain => String::from("no such domain (NXDOMAIN)"),
        Reason::DnsFailure(rcode) => format!("DNS: the MX lookup failed ({rcode})"),
        Reason::DnsUnanswered => String::from("DNS: no usable answer to the MX lookup"),
        Reason::MailLoop { preference } => {
            format!("mail loop: this host is an MX of the domain (preference {preference})")
        }
        Reason::HostNotFound => String::from("the MX host does not exist or has no address"),
        Reason::HostLookupFailed => String::from("DNS: the MX host lookup failed"),
        Reason::NoAddress => String::from("no host has an address"),
        Reason::Connect => String::from("the connection could not be made"),
        Reason::Tls(TlsFailure::Certificate) => String::from("TLS: the certificate was rejected"),
        Reason::Tls(_) => String::from("TLS: the handshake failed"),
        Reason::Session(e) => e.to_string(),
        Reason::Message(e) => format!("the session refused the message: {e}"),
        Reason::NoReply => String::from("the transaction ended without a reply"),
        Reason::Aborted => String::from("given up"),
        other => format!("{other:?}"),
    }
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
    /// The host that gave the reply (or failed): the relay's configured
    /// name, the MX host's name, or the address literal in brackets.
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
