//! Every command a client sends, parsed and encoded (RFC 5321 §4.1 and
//! extensions), with typed ESMTP parameters.
//!
//! One vocabulary for both sides: the server parses a [`Command`] from a line
//! with [`Command::parse`], the client builds the same type from validated
//! parts and writes it with [`Command::encode`]. `parse(encode(x)) == x`
//! holds for every value (the tests check it with proptest).
//!
//! ## Parsing
//!
//! [`Command::parse`] takes one line **without** its CRLF (the framer found
//! it) and borrows from it. The verb is matched by length and ASCII
//! case-folded comparison, never by building a string. Parsing does not
//! allocate for what clients send every day: paths and parameters borrow
//! from the line, the AUTH initial response is kept as its checked base64
//! ([`InitialResponse`], decoded later into the receiver's buffer). The rare
//! cases allocate: a rarely used MAIL or RCPT parameter (they are boxed
//! together in [`MailParameters::more`] / [`RcptParameters::more`] to keep a
//! [`Command`] small: it is moved several times on its way to the
//! application), a general address literal, an escaped quoted local part
//! or xtext (one `String`).
//!
//! An unknown verb is [`CommandError::UnknownVerb`] (reply 500); any other
//! error is a problem with the arguments of a known command (reply 501). Use
//! [`CommandError::reply_code`] and [`CommandError::enhanced_status`].
//!
//! Lenient-but-safe choices, each made because real clients need it and none
//! of which lets a control character or a second command through:
//!
//! - Trailing spaces at the end of a line are ignored, and runs of spaces are
//!   accepted between arguments and between parameters.
//! - `MAIL FROM: <a@b>` and `RCPT TO: <a@b>` (spaces after the colon) are
//!   accepted; many clients send them.
//! - A path **without** angle brackets (`MAIL FROM:a@b`) is refused: with
//!   parameters following it is ambiguous, RFC 821 and 5321 both require the
//!   brackets, and accepting it is what lets a sloppy client's typo become a
//!   different address.
//! - HELO/EHLO/LHLO take a [`Host`] (domain or address literal) and nothing
//!   else; domain labels may contain `_` (see [`crate::address`]).
//! - The AUTH initial response may omit base64 padding.
//!
//! ## Building commands (clients)
//!
//! ```
//! use smtp_proto::command::{Body, Command, MailParameters};
//!
//! let from = "Smith@bar.com".parse().unwrap();
//! let params = MailParameters { size: Some(1024), body: Some(Body::EightBitMime), ..Default::default() };
//! let cmd = Command::Mail { from, params };
//! let mut out = Vec::new();
//! cmd.encode(&mut out);
//! assert_eq!(out, b"MAIL FROM:<Smith@bar.com> SIZE=1024 BODY=8BITMIME\r\n");
//! assert_eq!(Command::parse(&out[..out.len() - 2]).unwrap(), cmd);
//! ```
//!
//! ## SMTPUTF8
//!
//! UTF-8 addresses parse; [`Command::needs_smtputf8`] tells the session that
//! the command uses them, so it can refuse with [`SMTPUTF8_REQUIRED`] when the
//! extension was not negotiated (RFC 6531 §3.5).

pub(crate) mod base64;
mod params;

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

pub use params::{
    AddressType, AuthParam, Body, ByMode, DateTime, DateTimeError, DeliverBy, EsmtpValue, Hold,
    MailParameters, MoreMailParameters, MoreRcptParameters, MtPriority, Notify, NotifyOn,
    OriginalRecipient, Parameter, ParameterErrorKind, RcptParameters, Ret, Rrvs, RrvsAction,
};

use crate::address::{self, AddressError, ForwardPath, Host, ReversePath};
use crate::keyword::Mechanism;
use crate::secret::Secret;

/// The reply a server should give to a command that needs SMTPUTF8 when the
/// client did not ask for it: `553 5.6.7` (RFC 6531 §3.5, RFC 5248).
pub const SMTPUTF8_REQUIRED: (u16, (u8, u16, u16)) = (553, (5, 6, 7));

/// A command from client to server.
///
/// Construct variants directly from validated parts (see the module docs);
/// every field type guarantees it can be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `HELO domain` (RFC 5321 §4.1.1.1).
    Helo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `EHLO domain` (RFC 5321 §4.1.1.1).
    Ehlo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `LHLO domain` (RFC 2033 §4.1).
    Lhlo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `MAIL FROM:<reverse-path> [params]` (RFC 5321 §4.1.1.2).
    Mail {
        /// The reverse-path.
        from: ReversePath<'a>,
        /// The ESMTP parameters.
        params: MailParameters<'a>,
    },
    /// `RCPT TO:<forward-path> [params]` (RFC 5321 §4.1.1.3).
    Rcpt {
        /// The forward-path.
        to: ForwardPath<'a>,
        /// The ESMTP parameters.
        params: RcptParameters<'a>,
    },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `VRFY string` (RFC 5321 §4.1.1.6).
    Vrfy {
        /// The user or mailbox to verify, as sent.
        target: Argument<'a>,
    },
    /// `EXPN string` (RFC 5321 §4.1.1.7).
    Expn {
        /// The mailing list to expand, as sent.
        list: Argument<'a>,
    },
    /// `HELP [string]` (RFC 5321 §4.1.1.8).
    Help {
        /// The topic, if any.
        topic: Option<Argument<'a>>,
    },
    /// `NOOP [string]` (RFC 5321 §4.1.1.9).
    Noop {
        /// The ignored argument, if any.
        text: Option<Argument<'a>>,
    },
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism<'a>,
        /// The initial response, if any (`=`, an empty response, is `Some`
        /// of an empty one).
        initial_response: Option<InitialResponse<'a>>,
    },
    /// `BDAT chunk-size [LAST]` (RFC 3030 §2).
    Bdat {
        /// Octets in the chunk that follows.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
}

/// A free-form command argument (VRFY, EXPN, HELP, NOOP): one or more
/// characters, no control characters, not starting or ending with a space.
///
/// RFC 5321 types these as `String = Atom / Quoted-string`; servers treat
/// them as opaque text, so the text is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Argument<'a>(Cow<'a, str>);

/// An [`Argument`] that cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid command argument")]
pub struct ArgumentError;

impl<'a> Argument<'a> {
    /// Validates an argument, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, ArgumentError> {
        if s.is_empty()
            || s.starts_with(' ')
            || s.ends_with(' ')
            || address::find_control(s).is_some()
        {
            return Err(ArgumentError);
        }
        Ok(Self(Cow::Borrowed(s)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the argument from the buffer it was parsed from.
    pub fn into_owned(self) -> Argument<'static> {
        Argument(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for Argument<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is not one this crate knows (reply 500).
    #[error("command not recognized")]
    UnknownVerb,
    /// The arguments are not valid UTF-8.
    #[error("command arguments are not valid UTF-8")]
    InvalidUtf8,
    /// The arguments do not follow the command's grammar.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// The HELO/EHLO/LHLO argument is not a domain or address literal.
    #[error("invalid domain: {0}")]
    InvalidHost(AddressError),
    /// The MAIL reverse-path is malformed or too long.
    #[error("invalid reverse-path: {0}")]
    InvalidReversePath(AddressError),
    /// The RCPT forward-path is malformed or too long.
    #[error("invalid forward-path: {0}")]
    InvalidForwardPath(AddressError),
    /// A MAIL or RCPT parameter is malformed, repeated or has a bad value.
    #[error("parameter {keyword}: {kind}")]
    Parameter {
        /// The keyword as sent.
        keyword: String,
        /// What is wrong with it.
        kind: ParameterErrorKind,
    },
    /// The AUTH initial response is not base64 (RFC 4954 §4).
    #[error("AUTH initial response is not valid base64")]
    InvalidBase64,
    /// The BDAT chunk size is not a number or does not fit 64 bits.
    #[error("invalid BDAT chunk size")]
    InvalidChunkSize,
}

impl CommandError {
    /// The reply code a server should answer (RFC 5321 §4.2.3): 500 for an
    /// unknown verb, 501 for bad arguments.
    ///
    /// A parameter that is well-formed but not recognized or not implemented
    /// is not a parse error (it lands in `other`): the session answers it
    /// with 555 (RFC 5321 §4.1.1.11).
    pub fn reply_code(&self) -> u16 {
        match self {
            Self::UnknownVerb => 500,
            _ => 501,
        }
    }

    /// The enhanced status code to pair with [`Self::reply_code`]
    /// (RFC 3463, RFC 5248), as `(class, subject, detail)`.
    pub fn enhanced_status(&self) -> (u8, u16, u16) {
        match self {
            // 5.5.1 Invalid command.
            Self::UnknownVerb => (5, 5, 1),
            // 5.1.7 Bad sender's mailbox address syntax.
            Self::InvalidReversePath(_) => (5, 1, 7),
            // 5.1.3 Bad destination mailbox address syntax.
            Self::InvalidForwardPath(_) => (5, 1, 3),
            // 5.5.4 Invalid command arguments.
            Self::Parameter { .. } | Self::InvalidChunkSize => (5, 5, 4),
            // 5.5.2 Syntax error.
            Self::InvalidUtf8 | Self::Syntax(_) | Self::InvalidHost(_) | Self::InvalidBase64 => {
                (5, 5, 2)
            }
        }
    }
}

/// The initial response of `AUTH` (RFC 4954 §4) in its wire form: base64,
/// checked when the command is parsed, decoded only when the receiver asks
/// for it, into a buffer the receiver owns (the server decodes PLAIN and
/// LOGIN credentials into its SASL buffer; nothing is allocated).
///
/// ```text
/// initial-response = base64 / "="   ; "=" is an empty response
/// ```
///
/// Padding is optional on input and written on output. Equality compares
/// the data: two encodings of the same bytes are equal. `Debug` is redacted
/// like [`Secret`]'s: the text is as good as the credentials.
///
/// ```
/// use smtp_proto::command::{Command, InitialResponse};
/// let ir = InitialResponse::new(b"\0tim\0tanstaaf");
/// let Command::Auth { initial_response: Some(parsed), .. } =
///     Command::parse(b"AUTH PLAIN AHRpbQB0YW5zdGFhZg").unwrap()
/// else {
///     unreachable!()
/// };
/// assert_eq!(parsed, ir);
/// let mut buf = Vec::new();
/// parsed.decode_into(&mut buf);
/// assert_eq!(buf, b"\0tim\0tanstaaf");
/// assert_eq!(format!("{parsed:?}"), "InitialResponse(<redacted>)");
/// ```
#[derive(Clone)]
pub struct InitialResponse<'a>(Cow<'a, str>);

impl<'a> InitialResponse<'a> {
    /// The response carrying `data` (empty data is sent as `=`).
    pub fn new(data: &[u8]) -> InitialResponse<'static> {
        let mut text = String::new();
        base64::encode_into(data, &mut text);
        InitialResponse(Cow::Owned(text))
    }

    /// Checks received base64 text (not `=`), borrowing it.
    fn parse(text: &'a str) -> Result<Self, CommandError> {
        match base64::unpadded(text.as_bytes()) {
            Some(_) => Ok(Self(Cow::Borrowed(text))),
            None => Err(CommandError::InvalidBase64),
        }
    }

    /// Whether the response is empty (`=`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the decoded data to `out`.
    pub fn decode_into(&self, out: &mut Vec<u8>) {
        // Checked by `parse`, or produced by the encoder: valid base64.
        let _ = base64::decode_into(self.0.as_bytes(), out);
    }

    /// The decoded data, in a new buffer.
    pub fn decode(&self) -> Secret<Vec<u8>> {
        let mut out = Vec::new();
        self.decode_into(&mut out);
        Secret::new(out)
    }

    /// The base64 text as sent, without padding (empty for `=`).
    pub(crate) fn unpadded(&self) -> &str {
        self.0.trim_end_matches('=')
    }

    /// Detaches the response from the buffer it was parsed from.
    pub fn into_owned(self) -> InitialResponse<'static> {
        InitialResponse(Cow::Owned(self.0.into_owned()))
    }
}

impl PartialEq for InitialResponse<'_> {
    fn eq(&self, other: &Self) -> bool {
        // One encoding per byte string up to padding (see `base64`).
        self.unpadded() == other.unpadded()
    }
}

impl Eq for InitialResponse<'_> {}

impl std::hash::Hash for InitialResponse<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.unpadded().hash(state);
    }
}

impl fmt::Debug for InitialResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitialResponse(<redacted>)")
    }
}

/// Lower-cases ASCII letters of a 4-byte verb in one operation. Only bytes
/// that are letters map onto lower-case letters, so comparing against an
/// all-letter verb is exact.
const fn fold4(v: [u8; 4]) -> u32 {
    u32::from_le_bytes(v) | 0x2020_2020
}

const fn verb4(v: &[u8; 4]) -> u32 {
    fold4(*v)
}

impl<'a> Command<'a> {
    /// Parses one command line, without its trailing CRLF.
    ///
    /// ```text
    /// command = verb [SP arguments]   ; per RFC 5321 §4.1.1
    /// ```
    ///
    /// ```
    /// use smtp_proto::command::{Command, CommandError};
    /// assert_eq!(Command::parse(b"quit").unwrap(), Command::Quit);
    /// assert_eq!(Command::parse(b"FOO bar"), Err(CommandError::UnknownVerb));
    /// ```
    pub fn parse(line: &'a [u8]) -> Result<Self, CommandError> {
        // Trailing spaces are ignored (module docs).
        let mut end = line.len();
        while end > 0 && line.get(end - 1) == Some(&b' ') {
            end -= 1;
        }
        let line = line.get(..end).unwrap_or_default();
        // The verb is a whole word: it ends at a space or at the end of the
        // line. Every verb has 4 letters except STARTTLS, so read the first
        // four bytes at once instead of searching for the space.
        let Some((head, rest)) = line.split_first_chunk::<4>() else {
            return Err(CommandError::UnknownVerb);
        };
        if !matches!(rest.first(), None | Some(b' ')) {
            return match line.split_first_chunk::<8>() {
                Some((verb, rest))
                    if verb.eq_ignore_ascii_case(b"STARTTLS")
                        && matches!(rest.first(), None | Some(b' ')) =>
                {
                    no_args(rest).map(|()| Self::StartTls)
                }
                _ => Err(CommandError::UnknownVerb),
            };
        }
        let v = fold4(*head);
        if v == verb4(b"mail") {
            parse_mail(utf8(rest)?)
        } else if v == verb4(b"rcpt") {
            parse_rcpt(utf8(rest)?)
        } else if v == verb4(b"ehlo") {
            parse_host(utf8(rest)?).map(|host| Self::Ehlo { host })
        } else if v == verb4(b"data") {
            no_args(rest).map(|()| Self::Data)
        } else if v == verb4(b"bdat") {
            parse_bdat(utf8(rest)?)
        } else if v == verb4(b"quit") {
            no_args(rest).map(|()| Self::Quit)
        } else if v == verb4(b"rset") {
            no_args(rest).map(|()| Self::Rset)
        } else if v == verb4(b"noop") {
            optional_arg(utf8(rest)?).map(|text| Self::Noop { text })
        } else if v == verb4(b"auth") {
            parse_auth(utf8(rest)?)
        } else if v == verb4(b"helo") {
            parse_host(utf8(rest)?).map(|host| Self::Helo { host })
        } else if v == verb4(b"lhlo") {
            parse_host(utf8(rest)?).map(|host| Self::Lhlo { host })
        } else if v == verb4(b"vrfy") {
            required_arg(utf8(rest)?).map(|target| Self::Vrfy { target })
        } else if v == verb4(b"expn") {
            required_arg(utf8(rest)?).map(|list| Self::Expn { list })
        } else if v == verb4(b"help") {
            optional_arg(utf8(rest)?).map(|topic| Self::Help { topic })
        } else {
            Err(CommandError::UnknownVerb)
        }
    }

    /// The verb, upper case (`"MAIL"`, `"STARTTLS"`, …).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Helo { .. } => "HELO",
            Self::Ehlo { .. } => "EHLO",
            Self::Lhlo { .. } => "LHLO",
            Self::Mail { .. } => "MAIL",
            Self::Rcpt { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Vrfy { .. } => "VRFY",
            Self::Expn { .. } => "EXPN",
            Self::Help { .. } => "HELP",
            Self::Noop { .. } => "NOOP",
            Self::Quit => "QUIT",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } => "AUTH",
            Self::Bdat { .. } => "BDAT",
        }
    }

    /// Whether the command carries non-ASCII text (a UTF-8 path, EHLO name,
    /// VRFY/EXPN/HELP/NOOP argument or unknown parameter value), which is
    /// only allowed once SMTPUTF8 is in use (RFC 6531 §3.2). Typed parameter
    /// values (ENVID, ORCPT, AUTH=) are always encoded as ASCII.
    pub fn needs_smtputf8(&self) -> bool {
        match self {
            Self::Helo { host } | Self::Ehlo { host } | Self::Lhlo { host } => host.is_utf8(),
            Self::Mail { from, params } => from.is_utf8() || params.is_utf8(),
            Self::Rcpt { to, params } => to.is_utf8() || params.is_utf8(),
            Self::Vrfy { target: a } | Self::Expn { list: a } => !a.as_str().is_ascii(),
            Self::Help { topic: a } | Self::Noop { text: a } => {
                a.as_ref().is_some_and(|a| !a.as_str().is_ascii())
            }
            Self::Data
            | Self::Rset
            | Self::Quit
            | Self::StartTls
            | Self::Auth { .. }
            | Self::Bdat { .. } => false,
        }
    }

    /// Appends the command and its CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.verb().as_bytes());
        match self {
            Self::Helo { host } | Self::Ehlo { host } | Self::Lhlo { host } => {
                out.push(b' ');
                host.encode(out);
            }
            Self::Mail { from, params } => {
                out.extend_from_slice(b" FROM:");
                from.encode(out);
                params.encode(out);
            }
            Self::Rcpt { to, params } => {
                out.extend_from_slice(b" TO:");
                to.encode(out);
                params.encode(out);
            }
            Self::Vrfy { target: a } | Self::Expn { list: a } => {
                out.push(b' ');
                out.extend_from_slice(a.as_str().as_bytes());
            }
            Self::Help { topic: a } | Self::Noop { text: a } => {
                if let Some(a) = a {
                    out.push(b' ');
                    out.extend_from_slice(a.as_str().as_bytes());
                }
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                out.push(b' ');
                out.extend_from_slice(mechanism.as_str().as_bytes());
                if let Some(ir) = initial_response {
                    out.push(b' ');
                    if ir.is_empty() {
                        out.push(b'=');
                    } else {
                        // Canonical: padded, whatever was received.
                        let text = ir.unpadded();
                        out.extend_from_slice(text.as_bytes());
                        // Valid base64 leaves 0, 2 or 3 characters in the
                        // last quantum, so the padding is 0, 2 or 1.
                        let pad = b"==".get(..(4 - text.len() % 4) % 4);
                        out.extend_from_slice(pad.unwrap_or_default());
                    }
                }
            }
            Self::Bdat { size, last } => {
                out.push(b' ');
                params::push_num(out, size);
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Self::Data | Self::Rset | Self::Quit | Self::StartTls => {}
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Detaches the command from the buffer it was parsed from.
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Self::Helo { host } => Command::Helo {
                host: host.into_owned(),
            },
            Self::Ehlo { host } => Command::Ehlo {
                host: host.into_owned(),
            },
            Self::Lhlo { host } => Command::Lhlo {
                host: host.into_owned(),
            },
            Self::Mail { from, params } => Command::Mail {
                from: from.into_owned(),
                params: params.into_owned(),
            },
            Self::Rcpt { to, params } => Command::Rcpt {
                to: to.into_owned(),
                params: params.into_owned(),
            },
            Self::Data => Command::Data,
            Self::Rset => Command::Rset,
            Self::Vrfy { target } => Command::Vrfy {
                target: target.into_owned(),
            },
            Self::Expn { list } => Command::Expn {
                list: list.into_owned(),
            },
            Self::Help { topic } => Command::Help {
                topic: topic.map(Argument::into_owned),
            },
            Self::Noop { text } => Command::Noop {
                text: text.map(Argument::into_owned),
            },
            Self::Quit => Command::Quit,
            Self::StartTls => Command::StartTls,
            Self::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: mechanism.into_owned(),
                initial_response: initial_response.map(InitialResponse::into_owned),
            },
            Self::Bdat { size, last } => Command::Bdat { size, last },
        }
    }
}

/// The arguments of a known verb as text (the verb itself is ASCII).
fn utf8(rest: &[u8]) -> Result<&str, CommandError> {
    std::str::from_utf8(rest).map_err(|_| CommandError::InvalidUtf8)
}

/// Strips leading spaces.
fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| b == b' ').count();
    // `n` counts ASCII bytes from the start: a char boundary.
    s.get(n..).unwrap_or_default()
}

/// The space-separated words of `s`, skipping runs of spaces (a byte scan).
fn words(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let start = rest.bytes().position(|b| b != b' ')?;
        let len = rest
            .bytes()
            .skip(start)
            .position(|b| b == b' ')
            .unwrap_or(rest.len() - start);
        // `start` and `start + len` index ASCII spaces or the end of `rest`:
        // char boundaries.
        let word = rest.get(start..start + len).unwrap_or_default();
        rest = rest.get(start + len..).unwrap_or_default();
        Some(word)
    })
}

/// Strips the spaces separating the verb from its first argument; `None` if
/// there is no argument at all.
fn args(rest: &str) -> Option<&str> {
    let a = skip_spaces(rest);
    (!a.is_empty()).then_some(a)
}

/// A verb without arguments. `rest` has no trailing spaces, so anything in it
/// is an argument. Inlined so that the command is built in the caller's
/// return slot rather than copied there.
#[inline(always)]
/// Checks that a verb without arguments has none. The caller builds the
/// command afterwards: passing a `Command` through here by value cost a
/// 248-byte copy per DATA, RSET or QUIT.
fn no_args(rest: &[u8]) -> Result<(), CommandError> {
    if rest.is_empty() {
        Ok(())
    } else {
        utf8(rest)?;
        Err(CommandError::Syntax("unexpected argument"))
    }
}

fn optional_arg(rest: &str) -> Result<Option<Argument<'_>>, CommandError> {
    args(rest)
        .map(|a| {
            Argument::new(a).map_err(|_| CommandError::Syntax("invalid character in argument"))
        })
        .transpose()
}

fn required_arg(rest: &str) -> Result<Argument<'_>, CommandError> {
    optional_arg(rest)?.ok_or(CommandError::Syntax("missing argument"))
}

/// `"EHLO" SP ( Domain / address-literal )` (and HELO, LHLO).
fn parse_host(rest: &str) -> Result<Host<'_>, CommandError> {
    let a = args(rest).ok_or(CommandError::Syntax("missing domain"))?;
    match address::finish(address::host(a)) {
        Ok(("", h)) => Ok(h),
        Ok(_) => Err(CommandError::InvalidHost(AddressError::Syntax)),
        Err(e) => Err(CommandError::InvalidHost(e)),
    }
}

/// Strips a case-insensitive ASCII prefix such as `FROM:`.
fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    // `head` equals an ASCII prefix, so its end is a char boundary.
    s.get(prefix.len()..)
}

/// What follows a path: nothing, or SP and parameters.
fn after_path(rest: &str) -> Result<&str, CommandError> {
    if rest.is_empty() || rest.starts_with(' ') {
        Ok(rest)
    } else {
        Err(CommandError::Syntax("unexpected text after path"))
    }
}

/// `"MAIL FROM:" Reverse-path [SP Mail-parameters]`
fn parse_mail(rest: &str) -> Result<Command<'_>, CommandError> {
    let a = args(rest).ok_or(CommandError::Syntax("missing FROM:"))?;
    let a = strip_prefix_ci(a, "FROM:").ok_or(CommandError::Syntax("missing FROM:"))?;
    let a = skip_spaces(a);
    let (rest, from) = match address::simple_mailbox_path(a) {
        Some((rest, mb)) => (rest, ReversePath::Mailbox(mb)),
        None => {
            address::finish(address::reverse_path(a)).map_err(CommandError::InvalidReversePath)?
        }
    };
    let params = params::parse_mail_params(after_path(rest)?)?;
    Ok(Command::Mail { from, params })
}

/// `"RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters]`
fn parse_rcpt(rest: &str) -> Result<Command<'_>, CommandError> {
    let a = args(rest).ok_or(CommandError::Syntax("missing TO:"))?;
    let a = strip_prefix_ci(a, "TO:").ok_or(CommandError::Syntax("missing TO:"))?;
    let a = skip_spaces(a);
    // `<Postmaster>` has no `@`, so the common shape never takes it.
    let (rest, to) = match address::simple_mailbox_path(a) {
        Some((rest, mb)) => (rest, ForwardPath::Mailbox(mb)),
        None => {
            address::finish(address::forward_path(a)).map_err(CommandError::InvalidForwardPath)?
        }
    };
    let params = params::parse_rcpt_params(after_path(rest)?)?;
    Ok(Command::Rcpt { to, params })
}

/// `"AUTH" SP sasl-mech [SP initial-response]`,
/// `initial-response = base64 / "="` (RFC 4954 §4).
fn parse_auth(rest: &str) -> Result<Command<'_>, CommandError> {
    let mut words = words(rest);
    let mech = words
        .next()
        .ok_or(CommandError::Syntax("missing SASL mechanism"))?;
    let mechanism =
        Mechanism::new(mech).map_err(|_| CommandError::Syntax("invalid SASL mechanism"))?;
    let initial_response = match words.next() {
        None => None,
        Some("=") => Some(InitialResponse(Cow::Borrowed(""))),
        Some(b64) => Some(InitialResponse::parse(b64)?),
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax("unexpected argument"));
    }
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

/// `"BDAT" SP chunk-size [ SP end-marker ]`, `chunk-size = 1*DIGIT`,
/// `end-marker = "LAST"` (RFC 3030 §2).
fn parse_bdat(rest: &str) -> Result<Command<'_>, CommandError> {
    let mut words = words(rest);
    let size = words
        .next()
        .ok_or(CommandError::Syntax("missing chunk size"))?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::InvalidChunkSize);
    }
    let size: u64 = size.parse().map_err(|_| CommandError::InvalidChunkSize)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax("expected LAST")),
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax("unexpected argument"));
    }
    Ok(Command::Bdat { size, last })
}
