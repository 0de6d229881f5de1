//! Send one message to many recipients, and learn what happened to each.
//!
//! A *mail transaction* is RFC 5321 §3.3's name for MAIL, the RCPTs and the
//! message data. [`MailTransaction`] is a convenience built only on the
//! public API of [`Client`]: it enqueues MAIL, the RCPTs and the body
//! start, watches the events the application passes it, and when the
//! transaction is over produces a [`TransactionReport`] with one
//! [`RecipientResult`] per recipient. The application still drains
//! `poll(now)`, writes the body with
//! [`Client::write_body`] / [`Client::finish_body`] after
//! [`Event::ReadyForBody`], and hands every event to
//! [`MailTransaction::handle_event`].
//!
//! A recipient is [`Outcome::Accepted`] only when the server accepted its
//! RCPT **and** gave a positive reply after the body (under LMTP: its own
//! reply). A connection lost before that reply is a transient failure,
//! never a success.
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::{Output, TlsMode};
//! use smtp_proto::address::Host;
//! use smtp_proto::client::{Client, Config, Envelope, Event, MailTransaction, Outcome};
//!
//! let mut config = Config::new(Host::parse("client.example").unwrap());
//! config.tls = TlsMode::Disabled; // this scripted server has no TLS
//! let now = Instant::now();
//! let mut client = Client::new(config, now);
//! let envelope = Envelope::parse("alice@example.org", ["bob@example.net", "nobody@example.net"])
//!     .unwrap();
//! // What the server answers after each of the client's writes.
//! let mut server = [
//!     &b"250-mx.example.net\r\n250 PIPELINING\r\n"[..],
//!     b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n354 Go ahead\r\n",
//!     b"250 2.0.0 Ok: queued as 4Xk9sT3Hx7z9rJ\r\n",
//! ]
//! .into_iter();
//! let greeting = b"220 mx.example.net ESMTP\r\n";
//! assert_eq!(client.handle_input(now, greeting), greeting.len());
//!
//! let mut transaction = None;
//! let report = loop {
//!     match client.poll(now) {
//!         Output::Event(Event::Ready) => {
//!             transaction = Some(MailTransaction::start(&mut client, envelope.clone()).unwrap());
//!         }
//!         Output::Event(Event::ReadyForBody) => {
//!             client.write_body(b"Subject: hello\r\n\r\nHi Bob.\r\n").unwrap();
//!             client.finish_body().unwrap();
//!         }
//!         Output::Event(event) => {
//!             if let Some(report) = transaction.as_mut().and_then(|t| t.handle_event(&mut client, &event)) {
//!                 break report;
//!             }
//!         }
//!         Output::Transmit(bytes) => {
//!             let n = bytes.len(); // the socket took everything
//!             client.advance_transmit(now, n).unwrap();
//!             if let Some(reply) = server.next() {
//!                 // The client takes every byte while it reads.
//!                 assert_eq!(client.handle_input(now, reply), reply.len());
//!             }
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! };
//! assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
//! assert_eq!(report.recipients[1].outcome, Outcome::PermanentFailure);
//! assert_eq!(report.data.unwrap().first_line(), "Ok: queued as 4Xk9sT3Hx7z9rJ");
//! ```

use super::event::{Error, Event, ReplyTo, UsageError};
use super::{Client, TransactionPhase};
use std::str::FromStr;

use thiserror::Error;

use crate::address::{AddressError, ForwardPath, ReversePath};
use crate::command::{Command, MailParameters, RcptParameters};
use crate::reply::Reply;

/// A message's envelope: who sends it, to whom, with which parameters.
///
/// Built from addresses typed as text with [`Envelope::parse`], or from
/// paths already parsed with [`Envelope::new`]:
///
/// ```
/// use smtp_proto::client::Envelope;
///
/// let envelope = Envelope::parse("alice@example.org", ["bob@example.net", "<carol@example.net>"])?;
/// assert_eq!(envelope.from.to_string(), "<alice@example.org>");
/// assert_eq!(envelope.recipients.len(), 2);
///
/// // The same from values of the address types (`FromStr`).
/// let same = Envelope::new(
///     "alice@example.org".parse()?,
///     vec!["bob@example.net".parse()?, "carol@example.net".parse()?],
/// );
/// assert_eq!(same.recipients, envelope.recipients);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Envelope {
    /// The reverse-path (`<>` for bounces).
    pub from: ReversePath<'static>,
    /// The recipients and their RCPT parameters.
    pub recipients: Vec<(ForwardPath<'static>, RcptParameters<'static>)>,
    /// MAIL parameters. `size`: the message size if known, sent only when
    /// the server offers SIZE (and checked against its limit); `body`:
    /// `8BITMIME` when the content has 8-bit octets (refused by the server's
    /// lack of 8BITMIME, never silently sent); `smtputf8` is set
    /// automatically when an address needs it.
    pub params: MailParameters<'static>,
}

/// Which address of an envelope given as text was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The sender (reverse-path).
    #[error("sender {text:?}: {error}")]
    Sender {
        /// The text as given.
        text: String,
        /// Why it is not a reverse-path.
        error: AddressError,
    },
    /// A recipient (forward-path).
    #[error("recipient {index} {text:?}: {error}")]
    Recipient {
        /// Its position in the list, from 0.
        index: usize,
        /// The text as given.
        text: String,
        /// Why it is not a forward-path.
        error: AddressError,
    },
}

impl Envelope {
    /// An envelope without parameters, from paths already parsed (a
    /// [`Mailbox`](crate::address::Mailbox) converts with `.into()`).
    pub fn new(from: ReversePath<'static>, recipients: Vec<ForwardPath<'static>>) -> Self {
        Self {
            from,
            recipients: recipients
                .into_iter()
                .map(|r| (r, RcptParameters::default()))
                .collect(),
            params: MailParameters::default(),
        }
    }

    /// An envelope without parameters, from addresses as text: the sender
    /// as a reverse-path (`a@b`, `<a@b>`, or `<>` for a bounce), each
    /// recipient as a forward-path (`a@b`, `<a@b>` or `Postmaster`); see
    /// the `FromStr` conversions of [`crate::address`].
    ///
    /// # Errors
    ///
    /// The first address that does not parse, with its place and text.
    pub fn parse<S: AsRef<str>>(
        from: &str,
        recipients: impl IntoIterator<Item = S>,
    ) -> Result<Self, EnvelopeError> {
        let sender = ReversePath::from_str(from).map_err(|error| EnvelopeError::Sender {
            text: from.to_owned(),
            error,
        })?;
        let recipients = recipients
            .into_iter()
            .enumerate()
            .map(|(index, text)| {
                let text = text.as_ref();
                ForwardPath::from_str(text).map_err(|error| EnvelopeError::Recipient {
                    index,
                    text: text.to_owned(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(sender, recipients))
    }

    /// Declares the body type the content needs (`params.body`): nothing
    /// for 7-bit text, `BODY=8BITMIME` (RFC 6152) when an octet is above
    /// 127. Content with a NUL, bare CR or bare LF is not 8BITMIME either;
    /// such content needs normalizing or `BINARYMIME` (BDAT), which is the
    /// caller's choice.
    pub fn declare_body(&mut self, content: &[u8]) {
        if !content.is_ascii() {
            self.params.body = Some(crate::command::Body::EightBitMime);
        }
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The server took responsibility for the message for this recipient.
    Accepted,
    /// A `4yz` reply, or no final reply at all (connection lost, timeout):
    /// try again later.
    TransientFailure,
    /// A `5yz` reply: do not try again.
    PermanentFailure,
}

impl Outcome {
    fn of(reply: &Reply<'_>) -> Self {
        if reply.is_positive_completion() {
            Self::Accepted
        } else if reply.is_permanent_negative() {
            Self::PermanentFailure
        } else {
            Self::TransientFailure
        }
    }
}

/// The result for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecipientResult {
    /// The recipient.
    pub recipient: ForwardPath<'static>,
    /// What happened.
    pub outcome: Outcome,
    /// The reply that decided it (MAIL's, RCPT's, DATA's or the final
    /// one); `None` if the connection ended first.
    pub reply: Option<Reply<'static>>,
}

/// The result of a [`MailTransaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionReport {
    /// The reply to MAIL, if it arrived.
    pub mail: Option<Reply<'static>>,
    /// One result per recipient, in envelope order.
    pub recipients: Vec<RecipientResult>,
    /// Under SMTP: the reply after the body (its text usually carries the
    /// queue id), or the refusal of DATA or of a BDAT chunk.
    pub data: Option<Reply<'static>>,
    /// The session error, if the session failed during the transaction.
    pub error: Option<Error>,
}

impl TransactionReport {
    /// The recipients the message was accepted for.
    pub fn accepted(&self) -> impl Iterator<Item = &RecipientResult> {
        self.recipients
            .iter()
            .filter(|r| r.outcome == Outcome::Accepted)
    }

    /// Whether every recipient was accepted.
    pub fn all_accepted(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.outcome == Outcome::Accepted)
    }
}

/// Drives one mail transaction over a [`Client`]: see the
/// [`client`](super) module docs for the layering.
///
/// The application passes every event from `client.poll(now)` to
/// [`MailTransaction::handle_event`], writes the body after
/// [`Event::ReadyForBody`], and gets the [`TransactionReport`] when the
/// transaction is over.
#[derive(Debug, Clone)]
pub struct MailTransaction {
    recipients: Vec<ForwardPath<'static>>,
    mail: Option<Reply<'static>>,
    rcpt: Vec<Option<Reply<'static>>>,
    /// LMTP per-recipient final replies, by RCPT index.
    finals: Vec<Option<Reply<'static>>>,
    /// SMTP final reply, or the refusal of DATA / a BDAT chunk.
    data: Option<Reply<'static>>,
    error: Option<Error>,
    done: bool,
}

impl MailTransaction {
    /// Starts a transaction for `envelope` on a ready `client`: MAIL, every
    /// RCPT, and the body start (DATA or BDAT), pipelined when the server
    /// allows. Write the body after [`Event::ReadyForBody`].
    ///
    /// # Errors
    ///
    /// The [`UsageError`] of the first command the client refused: no
    /// recipient, an extension the message needs and the server lacks
    /// (`8BITMIME`, `SMTPUTF8`, `DSN`, …), a size over the server's limit.
    /// If MAIL was already enqueued when a RCPT is refused, an RSET is
    /// enqueued to undo it.
    pub fn start(client: &mut Client, envelope: Envelope) -> Result<Self, UsageError> {
        if envelope.recipients.is_empty() {
            return Err(UsageError::NoRecipients);
        }
        let Envelope {
            from,
            recipients,
            mut params,
        } = envelope;
        let ext = client.extensions();
        if params.size.is_some() && !ext.is_some_and(|e| e.supports_size()) {
            // SIZE is advisory (RFC 1870): without the extension, omit it.
            params.size = None;
        }
        if from.is_utf8() || recipients.iter().any(|(r, _)| r.is_utf8()) {
            params.smtputf8 = true;
        }
        client.enqueue(Command::Mail { from, params })?;
        let mut paths = Vec::with_capacity(recipients.len());
        for (to, params) in recipients {
            paths.push(to.clone());
            if let Err(e) = client.enqueue(Command::Rcpt { to, params }) {
                let _ = client.enqueue(Command::Rset);
                return Err(e);
            }
        }
        if let Err(e) = client.start_body() {
            let _ = client.enqueue(Command::Rset);
            return Err(e);
        }
        let n = paths.len();
        Ok(Self {
            recipients: paths,
            mail: None,
            rcpt: vec![None; n],
            finals: vec![None; n],
            data: None,
            error: None,
            done: false,
        })
    }

    /// Takes note of an event from `client.poll(now)`. Returns the report once
    /// the transaction is over (then this value is finished and later
    /// events are ignored). If the transaction is left open on the server
    /// (a refused DATA or chunk, no accepted recipient), an RSET is
    /// enqueued so the connection can carry the next message.
    pub fn handle_event(
        &mut self,
        client: &mut Client,
        event: &Event,
    ) -> Option<TransactionReport> {
        if self.done {
            return None;
        }
        match event {
            Event::Reply { to, reply } => match *to {
                ReplyTo::Mail => self.mail = Some(reply.clone()),
                ReplyTo::Rcpt { index } => {
                    if let Some(slot) = self.rcpt.get_mut(index) {
                        *slot = Some(reply.clone());
                    }
                }
                ReplyTo::Data | ReplyTo::Bdat if !reply.is_positive() => {
                    if self.data.is_none() {
                        self.data = Some(reply.clone());
                    }
                }
                ReplyTo::EndOfData { recipient: None } => {
                    if self.data.is_none() {
                        self.data = Some(reply.clone());
                    }
                }
                ReplyTo::EndOfData {
                    recipient: Some(index),
                } => {
                    if let Some(slot) = self.finals.get_mut(index) {
                        *slot = Some(reply.clone());
                    }
                }
                _ => return None,
            },
            Event::Error(e) => self.error = Some(e.clone()),
            Event::TransactionEnded | Event::Closed => {}
            _ => return None,
        }
        let over = matches!(event, Event::TransactionEnded | Event::Closed) || self.error.is_some();
        if !over {
            return None;
        }
        self.done = true;
        if client.transaction_phase() == TransactionPhase::Open {
            let _ = client.enqueue(Command::Rset);
        }
        Some(self.report())
    }

    /// Whether the transaction has produced its report.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn report(&self) -> TransactionReport {
        let mail_refused = self.mail.as_ref().filter(|m| !m.is_positive_completion());
        let recipients = self
            .recipients
            .iter()
            .enumerate()
            .map(|(i, recipient)| {
                let rcpt = self.rcpt.get(i).and_then(Option::as_ref);
                let decided = match (mail_refused, rcpt) {
                    (Some(mail), _) => Some(mail),
                    (None, Some(r)) if !r.is_positive_completion() => Some(r),
                    (None, Some(_)) => self
                        .finals
                        .get(i)
                        .and_then(Option::as_ref)
                        .or(self.data.as_ref()),
                    (None, None) => None,
                };
                RecipientResult {
                    recipient: recipient.clone(),
                    outcome: decided.map_or(Outcome::TransientFailure, Outcome::of),
                    reply: decided.cloned(),
                }
            })
            .collect();
        TransactionReport {
            mail: self.mail.clone(),
            recipients,
            data: self.data.clone(),
            error: self.error.clone(),
        }
    }
}

#[cfg(test)]
mod envelope_tests {
    use super::*;

    #[test]
    fn parse_builds_the_same_envelope_as_new() {
        let parsed = Envelope::parse("<>", ["Postmaster", "b@example.net"]).unwrap();
        let built = Envelope::new(
            ReversePath::Null,
            vec![ForwardPath::Postmaster, "<b@example.net>".parse().unwrap()],
        );
        assert_eq!(parsed.from, built.from);
        assert_eq!(parsed.recipients, built.recipients);
        assert_eq!(parsed.params, MailParameters::default());
    }

    #[test]
    fn parse_names_the_refused_address() {
        assert_eq!(
            Envelope::parse("alice", ["b@example.net"]).unwrap_err(),
            EnvelopeError::Sender {
                text: "alice".into(),
                error: AddressError::MissingAt
            }
        );
        let err = Envelope::parse("a@example.org", ["b@example.net", "<>"]).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::Recipient {
                index: 1,
                text: "<>".into(),
                error: AddressError::NullPath
            }
        );
        assert_eq!(
            err.to_string(),
            "recipient 1 \"<>\": the null path <> is only valid as a sender (reverse-path)"
        );
        // A control character is shown escaped, never written raw.
        let err = Envelope::parse("a@example.org\r\nRSET", ["b@example.net"]).unwrap_err();
        assert!(!err.to_string().contains('\r'), "{err}");
    }
}
