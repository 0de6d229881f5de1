//! One error type for everything that can go wrong while sending.
//!
//! # Why one enum, and why `is_temporary`
//!
//! A program that sends mail has one real question when something fails:
//! *try again later, or give up?* A queue retries a 421 or a timed-out
//! connection for days, and bounces a 550 at once. So every variant of
//! [`Error`](enum@Error) knows its [`Severity`], following RFC 5321's own split:
//! 4yz replies and broken connections are temporary (§4.2.1, §4.5.4.1: a
//! connection lost mid-transaction means the mail was not delivered), 5yz
//! replies and facts that retrying cannot change (NXDOMAIN, a null MX, a bad
//! URL, an untrusted certificate) are permanent.
//!
//! Negative replies to a single recipient are not errors at all: they are
//! per-recipient results. [`Error::Rejected`] is for a reply that fails the
//! whole message or session (a 5xx to MAIL, to DATA, or the greeting).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use smtp_proto::DriveError;
use smtp_proto::client::UsageError;
use smtp_proto::mx::Severity;
use smtp_proto::reply::Reply;
use thiserror::Error;

use crate::dns::DnsError;
use crate::tls::{ConfigError, TlsError};
use crate::url::UrlError;

/// What went wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection could be made: every address refused, was unreachable
    /// or did not answer in time. Holds the last address tried and its error.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why that connection failed.
        source: io::Error,
    },
    /// There was no address to try at all.
    #[error("no address to connect to for {0}")]
    NoAddress(String),
    /// The host name or the MX of the recipient domain could not be looked up.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// TLS could not be set up or broke: untrusted certificate, failed
    /// handshake, bad CA file.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A deadline passed: connect, handshake, or a reply from the server.
    #[error("timed out while {0}")]
    Timeout(Phase),
    /// The connection broke (reset, closed in the middle of a reply).
    #[error("connection lost: {0}")]
    Io(#[source] io::Error),
    /// The peer broke the SMTP protocol (an unparsable reply, an injected
    /// reply after STARTTLS): the session cannot go on.
    #[error("SMTP protocol error: {0}")]
    Protocol(String),
    /// The server refused the message or the session with this reply (a
    /// 4yz or 5yz to the greeting, EHLO, MAIL, DATA or the end of data).
    #[error("rejected by the server: {}", reply_summary(.0))]
    Rejected(Reply<'static>),
    /// The server URL is not valid.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A setting is not valid (an EHLO name that is not a host name).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// AUTH could not run: no offered mechanism fits the credentials, or
    /// the connection is not encrypted. Needs a configuration change.
    #[error("authentication impossible: {0}")]
    Auth(String),
    /// The message cannot be sent over this session: it needs an extension
    /// the server lacks (`SMTPUTF8`, `8BITMIME`, …), is over its size
    /// limit, or its body has a bare CR or LF under the refusing policy.
    #[error("the message cannot be sent: {0}")]
    Message(#[source] UsageError),
    /// Reading the message body from the caller's reader failed.
    #[error("reading the message body: {0}")]
    Body(#[source] io::Error),
    /// The message cannot be DKIM-signed with the configured keys (no
    /// `From` field, a header section over the bound): nothing was sent.
    #[error("cannot DKIM-sign the message: {0}")]
    Dkim(#[from] smtp_proto::dkim::SignError),
    /// The transport misreported a write or a TLS handshake to the session,
    /// which refused it: a bug in this crate, never the peer's doing. The
    /// connection is unusable; another may work.
    #[error("transport error: {0}")]
    Drive(#[from] DriveError),
}

/// What the client was doing when a deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Opening the TCP connection.
    Connecting,
    /// Running the TLS handshake.
    TlsHandshake,
    /// Waiting for bytes from the server.
    Reading,
    /// Writing bytes to the server.
    Writing,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connecting => "connecting",
            Self::TlsHandshake => "in the TLS handshake",
            Self::Reading => "waiting for the server",
            Self::Writing => "writing to the server",
        })
    }
}

/// `550 5.1.1 No such user`: the reply as one line for an error message,
/// continuation lines joined with a space.
fn reply_summary(reply: &Reply<'static>) -> String {
    let mut out = reply.code().to_string();
    if let Some(enhanced) = reply.enhanced_code() {
        out.push(' ');
        out.push_str(&enhanced.to_string());
    }
    for line in reply.lines() {
        out.push(' ');
        out.push_str(line);
    }
    out
}

/// RFC 5321 §4.2.1: a 4yz reply is a transient failure; anything else that
/// fails a command is permanent.
fn reply_severity(reply: &Reply<'_>) -> Severity {
    if reply.is_transient_negative() {
        Severity::Temporary
    } else {
        Severity::Permanent
    }
}

/// A TLS configuration that could not be built (PEM bytes without a
/// certificate, an invalid server name), so that `?` works on the core's
/// builder in a function returning this error.
impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Tls(TlsError::Config(error))
    }
}

impl Error {
    /// Whether trying again later may succeed (SMTP 4yz semantics).
    pub fn severity(&self) -> Severity {
        match self {
            Self::Connect { .. }
            | Self::Timeout(_)
            | Self::Io(_)
            | Self::Protocol(_)
            | Self::Body(_)
            | Self::Drive(_) => Severity::Temporary,
            Self::Dns(e) => e.severity(),
            // Certificate problems need a person to fix the server or the
            // configuration; retrying does not change them. Other handshake
            // failures (a reset, a garbled record) may be transient.
            Self::Tls(e) => match e {
                TlsError::Handshake(_) if !e.is_certificate_error() => Severity::Temporary,
                _ => Severity::Permanent,
            },
            Self::Rejected(reply) => reply_severity(reply),
            Self::NoAddress(_)
            | Self::Url(_)
            | Self::Config(_)
            | Self::Auth(_)
            | Self::Message(_)
            | Self::Dkim(_) => Severity::Permanent,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.severity() == Severity::Temporary
    }

    /// Whether trying again cannot help: the message should bounce.
    pub fn is_permanent(&self) -> bool {
        self.severity() == Severity::Permanent
    }

    /// Maps an I/O error of an established connection: a timeout becomes
    /// [`Error::Timeout`] with `phase`, a TLS failure inside rustls'
    /// `io::Error` becomes [`Error::Tls`], anything else [`Error::Io`].
    pub(crate) fn from_io(error: io::Error, phase: Phase) -> Self {
        match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::Timeout(phase),
            io::ErrorKind::InvalidData
                if error
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>()) =>
            {
                // Checked by the guard: the io::Error wraps a rustls::Error.
                let inner = error
                    .into_inner()
                    .expect("checked: the io::Error wraps an inner error");
                let tls = inner
                    .downcast::<rustls::Error>()
                    .expect("checked: the inner error is a rustls::Error");
                Self::Tls(TlsError::Handshake(*tls))
            }
            _ => Self::Io(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use smtp_proto::reply::{EnhancedStatusCode, ReplyCode};

    fn rejected(code: u16) -> Error {
        let code = ReplyCode::new(code).unwrap();
        Error::Rejected(Reply::new(code, "x").unwrap())
    }

    #[test]
    fn reply_codes_decide_severity() {
        assert!(rejected(421).is_temporary());
        assert!(rejected(452).is_temporary());
        assert!(rejected(550).is_permanent());
        assert!(rejected(554).is_permanent());
        assert!(rejected(250).is_permanent());
    }

    #[test]
    fn rejected_display_shows_code_enhanced_code_and_text() {
        let reply = Reply::with_enhanced(
            ReplyCode::MAILBOX_UNAVAILABLE,
            EnhancedStatusCode::BAD_DESTINATION_MAILBOX,
            "No such user",
        )
        .unwrap();
        let err = Error::Rejected(reply);
        assert_eq!(
            err.to_string(),
            "rejected by the server: 550 5.1.1 No such user"
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn broken_connections_are_temporary() {
        assert!(Error::Timeout(Phase::Reading).is_temporary());
        assert!(Error::Io(io::Error::from(io::ErrorKind::ConnectionReset)).is_temporary());
        assert!(Error::Protocol("injected reply".into()).is_temporary());
        let connect = Error::Connect {
            addr: "127.0.0.1:25".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(connect.is_temporary());
        assert!(connect.to_string().contains("127.0.0.1:25"));
    }

    #[test]
    fn certificate_errors_are_permanent_other_handshake_errors_not() {
        let cert = Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(cert.is_permanent());
        let garbled = Error::Tls(TlsError::Handshake(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
        assert!(garbled.is_temporary());
    }

    #[test]
    fn io_errors_map_to_timeout_tls_or_io() {
        let e = Error::from_io(io::Error::from(io::ErrorKind::WouldBlock), Phase::Reading);
        assert!(matches!(e, Error::Timeout(Phase::Reading)));
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        let e = Error::from_io(tls, Phase::TlsHandshake);
        assert!(matches!(e, Error::Tls(TlsError::Handshake(_))), "{e:?}");
        let other = io::Error::new(io::ErrorKind::InvalidData, "not rustls");
        assert!(matches!(
            Error::from_io(other, Phase::Reading),
            Error::Io(_)
        ));
    }
}
