//! The application's side of the server: a [`Backend`] makes a [`Session`]
//! per connection, and the session answers the questions of SMTP.
//!
//! The shape follows go-smtp's `Backend`/`Session`, adapted to an event loop
//! that must never block: every question comes with a [`Responder`], which
//! the session may answer inside the callback or move to another thread
//! and answer later (after a database lookup, a queue write). Until it is
//! answered the connection reads no further command, and the loop serves
//! everyone else. Facts (greeting, TLS, body chunks, resets, the end of the
//! connection) need no answer.
//!
//! Every method has a default, so a session implements only what it cares
//! about. The defaults accept mail (`250`), accept the body, refuse
//! authentication (`535 5.7.8`: a server that offers AUTH must implement
//! it) and answer `VRFY`/`EXPN` with `252` (RFC 5321 §3.5.3: "cannot verify,
//! but will accept").
//!
//! Body chunks arrive through [`Session::data`] as the client sends them,
//! already unstuffed: a session streams them to storage and never needs the
//! whole message in memory. A storage failure in the middle is remembered
//! by the session and answered at [`Session::data_end`] (`451`), because
//! SMTP has no way to interrupt a client mid-message.
//!
//! A session need not track the transaction: [`Session::mail`] and
//! [`Session::rcpt`] decide about one command each, and the
//! [`Envelope`] — the reverse-path, the MAIL parameters and the recipients
//! that were accepted, with their parameters — comes with every callback
//! that ends or starts the message: [`Session::data_start`],
//! [`Session::data_end`] and [`Session::reset`]. It is the protocol
//! session's own record, borrowed for the call, so it is right whatever
//! was refused, reset or pipelined, and nothing needs forgetting after
//! `RSET`.

use std::fmt;
use std::net::SocketAddr;

use smtp_proto::address::{ForwardPath, Host, ReversePath};
use smtp_proto::command::{Argument, MailParameters, RcptParameters};
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::Reply;
use smtp_proto::secret::Secret;
use smtp_proto::server::{CloseReason, Envelope, HeloKind, ResetReason};
use smtp_proto::{BodyMode, TlsInfo};

use super::completion::Responder;

/// A connection's identity in logs and trace headers: its event loop and
/// its number in that loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    /// The event loop's index.
    pub event_loop: usize,
    /// The connection's number in its loop (never reused).
    pub number: u64,
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}C{}", self.event_loop, self.number)
    }
}

/// What the server knows about a new connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address it connected to.
    pub local: SocketAddr,
    /// The TLS parameters, for an implicit-TLS connection (known once its
    /// handshake is done, before the session starts).
    pub tls: Option<TlsInfo>,
    /// The trusted proxy the connection came through, when its listener
    /// reads the PROXY protocol ([`Options::proxy_protocol`](super::Options::proxy_protocol)):
    /// `peer` and `local` are then the endpoints its header named.
    pub proxy: Option<SocketAddr>,
}

/// Makes a [`Session`] for each connection. Shared by all event loops.
pub trait Backend: Send + Sync + 'static {
    /// The per-connection handler.
    type Session: Session;

    /// A session for a new connection, or the reply to refuse it with: a
    /// `554` (no service; the client may only `QUIT`) or a `421` (closed at
    /// once), RFC 5321 §3.1.
    fn connect(&self, info: &ConnectionInfo) -> Result<Self::Session, Reply<'static>>;
}

/// One connection's handler. It lives on its event loop's thread; move a
/// [`Responder`] (which is `Send`) to answer elsewhere.
#[allow(unused_variables)]
pub trait Session: 'static {
    /// The client greeted (`EHLO`, `HELO`, `LHLO`); any transaction was
    /// reset.
    fn helo(&mut self, kind: HeloKind, host: &Host<'_>) {}

    /// TLS was established (after STARTTLS); the client must greet again.
    fn tls_established(&mut self, info: &TlsInfo) {}

    /// `MAIL FROM`: accept the sender or refuse it — by policy with
    /// [`Reply::delivery_not_authorized`] (`554 5.7.1`), for now with
    /// [`Reply::mailbox_busy`] (`450 4.2.0`, greylisting).
    fn mail(&mut self, from: &ReversePath<'_>, params: &MailParameters<'_>, answer: Responder) {
        answer.accept();
    }

    /// `RCPT TO`: accept the recipient or refuse it: an unknown mailbox
    /// with [`Reply::mailbox_unavailable`] (`550 5.1.1`), relaying with
    /// [`Reply::delivery_not_authorized`] (`554 5.7.1`), a full mailbox
    /// with [`Reply::mailbox_full`] (`552 5.2.2`); [`Reply::with_text`]
    /// words any of them differently.
    fn rcpt(&mut self, to: &ForwardPath<'_>, params: &RcptParameters<'_>, answer: Responder) {
        answer.accept();
    }

    /// The client wants to send the message of `envelope` (`DATA`, or a
    /// transaction's first `BDAT`): accept to receive it, or refuse.
    fn data_start(&mut self, envelope: &Envelope<'_>, mode: BodyMode, answer: Responder) {
        answer.accept();
    }

    /// A piece of the message, in order, unstuffed.
    fn data(&mut self, chunk: &[u8]) {}

    /// The message of `envelope` is complete (`size` octets). Give one
    /// answer per responder, in order: one in SMTP, one per accepted
    /// recipient in LMTP, in the order of `envelope.recipients()` (RFC 2033
    /// §4.2). `250` only once the message is safe; a failure to store it
    /// is [`Reply::local_error`] (`451 4.3.0`) or
    /// [`Reply::insufficient_storage`] (`452 4.3.1`), which the client
    /// retries.
    fn data_end(&mut self, envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
        for answer in answers {
            answer.accept();
        }
    }

    /// The transaction of `envelope` ended without a final answer (RSET, a
    /// new greeting, an oversized or smuggling-suspect message refused by
    /// the session). Discard what was stored of it.
    fn reset(&mut self, envelope: &Envelope<'_>, reason: ResetReason) {}

    /// `AUTH PLAIN` credentials: `answer.auth_success()` or a `535`.
    fn auth_plain(
        &mut self,
        authzid: Option<&str>,
        authcid: &str,
        password: Secret<&str>,
        answer: Responder,
    ) {
        answer.reply(auth_refused());
    }

    /// `AUTH LOGIN` credentials: `answer.auth_success()` or a `535`.
    fn auth_login(&mut self, username: &str, password: Secret<&str>, answer: Responder) {
        answer.reply(auth_refused());
    }

    /// `AUTH` with another offered mechanism: send a challenge, succeed or
    /// refuse.
    fn auth(
        &mut self,
        mechanism: &Mechanism<'_>,
        initial_response: Option<Secret<Vec<u8>>>,
        answer: Responder,
    ) {
        answer.reply(auth_refused());
    }

    /// The client's answer to a challenge sent from [`Session::auth`].
    fn auth_response(&mut self, response: Secret<&[u8]>, answer: Responder) {
        answer.reply(auth_refused());
    }

    /// `VRFY`: the default answers `252` without disclosing anything.
    fn vrfy(&mut self, target: &Argument<'_>, answer: Responder) {
        answer.accept();
    }

    /// `EXPN`: the default answers `252` without disclosing anything.
    fn expn(&mut self, list: &Argument<'_>, answer: Responder) {
        answer.accept();
    }

    /// The connection ended; the session is dropped next.
    fn closed(&mut self, reason: CloseReason) {}
}

/// `535 5.7.8 Authentication credentials invalid` (RFC 4954 §6):
/// [`Reply::authentication_credentials_invalid`], the default answer to
/// `AUTH`.
pub fn auth_refused() -> Reply<'static> {
    Reply::authentication_credentials_invalid()
}

/// `451 4.3.0 Local error in processing`: a temporary local failure
/// (storage, a handler that gave no answer); the client keeps the message
/// and retries (RFC 5321 §4.2.5, RFC 3463 §3.4). [`Reply::local_error`].
pub fn local_error() -> Reply<'static> {
    Reply::local_error()
}
