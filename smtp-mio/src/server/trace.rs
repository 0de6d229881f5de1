//! The `Received:` trace header a server prepends to each message it accepts
//! (RFC 5321 §4.4), the RFC 5322 date it ends with, and the log lines an
//! operator reads: one per message and one per connection.
//!
//! Every SMTP server that accepts a message MUST insert a trace record at
//! the top of its content (RFC 5321 §4.4). It tells a reader where the
//! message entered the system: the name the client greeted with, the address
//! the connection really came from, which server took it, over which
//! protocol (`with ESMTPSA` = ESMTP over TLS after AUTH, RFC 3848), under
//! which id, and when. The layout follows what Postfix writes, which mail
//! readers and spam filters know:
//!
//! ```text
//! Received: from client.example.org (client.example.org [192.0.2.7])
//!     (using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)
//!     by mx.example.com with ESMTPS id 1764391761.M12P3Q4.mx
//!     for <alice@example.com>; Sun, 29 Nov 2026 04:49:21 +0000
//! ```
//!
//! Most of those values come from the peer (the greeting name) or from
//! places the server does not control (reverse DNS). The header is a place
//! where an attacker would like to inject a line of their own, so every
//! value is filtered on the way out: control characters, white space and the
//! characters that would end a comment or the stamp (`( ) ; \ " < >`) become
//! `?`, and each value is cut at 255 bytes, so the header is always a fixed
//! set of lines, each under RFC 5322's 998-byte limit.
//!
//! ## Log lines
//!
//! [`ConnectionLog`] and [`MessageLog`] write the lines an operator greps
//! for, at `INFO` through `tracing`, in the spirit of Postfix's: one line
//! per message, when its reply is given (Postfix's `cleanup`/`qmgr`
//! lines), and one per connection, when it ends (Postfix's `disconnect
//! from` summary). The end of a connection is where everything about it is
//! known — the TLS parameters and the AUTH user are negotiated after it
//! opened — so one line carries it all and the number of lines is the
//! number of connections; a message line carries the connection's id,
//! peer and AUTH user, so a message can be traced while its connection is
//! still open.
//!
//! ```text
//! INFO smtp_mio::server::trace: message accepted id=L0C1 peer=127.0.0.1:41234 queue_id="1764391761.M12P3Q4.mx" from=<me@example.org> nrcpt=1 to=<you@example.org> size=412 user="alice" reply="250 2.0.0 Ok: queued as 1764391761.M12P3Q4.mx"
//! INFO smtp_mio::server::trace: connection closed id=L0C1 peer=127.0.0.1:41234 helo="client.example" tls_version="TLSv1.3" tls_cipher="TLS13_AES_256_GCM_SHA384" user="alice" messages=1 reason="Quit" duration_ms=14
//! ```
//!
//! The lines are self-contained (they name the connection themselves, on
//! whatever thread the reply is given) and hold no secret: no password,
//! no AUTH exchange, no message content, and no user name of a *failed*
//! AUTH (people type passwords into the user field); failures are counted
//! (`auth_failures=`). Values a client chose are either validated by the
//! session (greeting, addresses) or written escaped, so no line can be
//! forged into the log.
//! [`StoreBackend`](super::store::StoreBackend) writes them; a backend of
//! its own keeps a [`ConnectionLog`] in its session the same way.

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use smtp_proto::TlsInfo;
use smtp_proto::address::ForwardPath;
use smtp_proto::reply::Reply;
use smtp_proto::server::{CloseReason, Envelope, ResetReason};

use super::backend::{ConnectionId, ConnectionInfo};

/// The greeting family of a session, the base of its `with` protocol type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolBase {
    /// The client greeted with `HELO`: plain SMTP (RFC 5321).
    Smtp,
    /// The client greeted with `EHLO`: extended SMTP (RFC 5321 §2.2).
    Esmtp,
    /// The client greeted with `LHLO`: LMTP (RFC 2033).
    Lmtp,
}

/// The `with` clause of a `Received:` header: the protocol type registered
/// by RFC 3848 (`ESMTPS`, `ESMTPSA`, `LMTPA`, …) and RFC 6531 §3.7.3
/// (`UTF8SMTP…` when the transaction used SMTPUTF8).
///
/// Built from the session's facts, so the name is always one of the
/// registered ones:
///
/// ```
/// use smtp_mio::server::trace::{ProtocolBase, WithProtocol};
/// let with = WithProtocol::new(ProtocolBase::Esmtp).tls(true).authenticated(true);
/// assert_eq!(with.as_str(), "ESMTPSA");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithProtocol {
    base: ProtocolBase,
    tls: bool,
    authenticated: bool,
    utf8: bool,
}

impl WithProtocol {
    /// The plain protocol type of `base` (`SMTP`, `ESMTP`, `LMTP`).
    pub const fn new(base: ProtocolBase) -> Self {
        Self {
            base,
            tls: false,
            authenticated: false,
            utf8: false,
        }
    }

    /// Whether the message came over TLS (STARTTLS or implicit TLS): the
    /// `S` suffix of RFC 3848.
    pub const fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Whether the client authenticated (AUTH, RFC 4954): the `A` suffix of
    /// RFC 3848.
    pub const fn authenticated(mut self, authenticated: bool) -> Self {
        self.authenticated = authenticated;
        self
    }

    /// Whether the transaction used SMTPUTF8: the `UTF8` forms of
    /// RFC 6531 §3.7.3.
    pub const fn utf8(mut self, utf8: bool) -> Self {
        self.utf8 = utf8;
        self
    }

    /// The registered name. `HELO` sessions are always `SMTP`: neither TLS
    /// nor AUTH has a registered suffix without extended SMTP.
    pub const fn as_str(&self) -> &'static str {
        match (self.base, self.utf8, self.tls, self.authenticated) {
            (ProtocolBase::Smtp, ..) => "SMTP",
            (ProtocolBase::Esmtp, false, false, false) => "ESMTP",
            (ProtocolBase::Esmtp, false, false, true) => "ESMTPA",
            (ProtocolBase::Esmtp, false, true, false) => "ESMTPS",
            (ProtocolBase::Esmtp, false, true, true) => "ESMTPSA",
            (ProtocolBase::Esmtp, true, false, false) => "UTF8SMTP",
            (ProtocolBase::Esmtp, true, false, true) => "UTF8SMTPA",
            (ProtocolBase::Esmtp, true, true, false) => "UTF8SMTPS",
            (ProtocolBase::Esmtp, true, true, true) => "UTF8SMTPSA",
            (ProtocolBase::Lmtp, false, false, false) => "LMTP",
            (ProtocolBase::Lmtp, false, false, true) => "LMTPA",
            (ProtocolBase::Lmtp, false, true, false) => "LMTPS",
            (ProtocolBase::Lmtp, false, true, true) => "LMTPSA",
            (ProtocolBase::Lmtp, true, false, false) => "UTF8LMTP",
            (ProtocolBase::Lmtp, true, false, true) => "UTF8LMTPA",
            (ProtocolBase::Lmtp, true, true, false) => "UTF8LMTPS",
            (ProtocolBase::Lmtp, true, true, true) => "UTF8LMTPSA",
        }
    }
}

impl std::fmt::Display for WithProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `Received:` trace record (RFC 5321 §4.4).
///
/// ```text
/// Stamp          = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
/// From-domain    = "FROM" FWS Extended-Domain
/// By-domain      = CFWS "BY" FWS Extended-Domain
/// Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" ) /
///                   ( address-literal FWS "(" TCP-info ")" )
/// TCP-info       = address-literal / ( Domain FWS address-literal )
/// Opt-info       = [Via] [With] [ID] [For] [Additional-Registered-Clauses]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received<'a> {
    /// The name the client gave in `EHLO`/`HELO`/`LHLO`.
    pub helo: &'a str,
    /// The address the connection came from.
    pub peer_ip: IpAddr,
    /// The peer's name from (forward-confirmed) reverse DNS, if known.
    pub peer_name: Option<&'a str>,
    /// This server's name.
    pub by: &'a str,
    /// The protocol type of the `with` clause.
    pub protocol: WithProtocol,
    /// The id under which this server keeps the message.
    pub id: Option<&'a str>,
    /// The TLS parameters, written as a comment (what Postfix writes).
    pub tls: Option<&'a TlsInfo>,
    /// The one recipient of the `for` clause. Give it only when the
    /// transaction has exactly one recipient: listing one of several
    /// would disclose blind copies.
    pub recipient: Option<&'a str>,
    /// When the message was received.
    pub date: SystemTime,
}

/// Longest value written for any one field (a domain's limit, RFC 5321
/// §4.5.3.1.2), so every header line stays far below 998 bytes.
const FIELD_MAX: usize = 255;

impl<'a> Received<'a> {
    /// A record with the required fields; the optional ones are set with the
    /// `with_*` methods.
    pub fn new(
        helo: &'a str,
        peer_ip: IpAddr,
        by: &'a str,
        protocol: WithProtocol,
        date: SystemTime,
    ) -> Self {
        Self {
            helo,
            peer_ip,
            peer_name: None,
            by,
            protocol,
            id: None,
            tls: None,
            recipient: None,
            date,
        }
    }

    /// Sets the reverse-DNS name of the peer.
    pub fn with_peer_name(mut self, name: &'a str) -> Self {
        self.peer_name = Some(name);
        self
    }

    /// Sets the message id.
    pub fn with_id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the TLS parameters.
    pub fn with_tls(mut self, tls: &'a TlsInfo) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the single recipient of the `for` clause.
    pub fn with_recipient(mut self, recipient: &'a str) -> Self {
        self.recipient = Some(recipient);
        self
    }

    /// Appends the header, folded over several lines, each ending in CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Received: from ");
        push_field(out, self.helo);
        out.extend_from_slice(b" (");
        if let Some(name) = self.peer_name {
            push_field(out, name);
            out.push(b' ');
        }
        push_address_literal(out, self.peer_ip);
        out.extend_from_slice(b")\r\n");
        if let Some(tls) = self.tls {
            out.extend_from_slice(b"\t(using ");
            push_field(out, tls.protocol.as_deref().unwrap_or("TLS"));
            if let Some(cipher) = &tls.cipher {
                out.extend_from_slice(b" with cipher ");
                push_field(out, cipher);
            }
            out.extend_from_slice(b")\r\n");
        }
        out.extend_from_slice(b"\tby ");
        push_field(out, self.by);
        out.extend_from_slice(b" with ");
        out.extend_from_slice(self.protocol.as_str().as_bytes());
        if let Some(id) = self.id {
            out.extend_from_slice(b" id ");
            push_field(out, id);
        }
        out.extend_from_slice(b"\r\n\t");
        if let Some(recipient) = self.recipient {
            out.extend_from_slice(b"for <");
            push_field(out, recipient);
            out.extend_from_slice(b">");
        }
        out.extend_from_slice(b"; ");
        out.extend_from_slice(rfc5322_date(self.date).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `value` with every character that could break the header's
/// structure replaced by `?`, cut at [`FIELD_MAX`] bytes; an empty value is
/// written as `unknown` so the clause keeps its shape.
fn push_field(out: &mut Vec<u8>, value: &str) {
    if value.is_empty() {
        out.extend_from_slice(b"unknown");
        return;
    }
    let mut used = 0;
    for c in value.chars() {
        used += c.len_utf8();
        if used > FIELD_MAX {
            break;
        }
        let safe = !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '(' | ')' | ';' | '\\' | '"' | '<' | '>'));
        let mut buf = [0u8; 4];
        out.extend_from_slice(if safe {
            c.encode_utf8(&mut buf).as_bytes()
        } else {
            b"?"
        });
    }
}

/// RFC 5321 §4.1.3 address literal: `[192.0.2.7]`, `[IPv6:2001:db8::7]`.
/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
/// peer) is written as the IPv4 address it is.
fn push_address_literal(out: &mut Vec<u8>, ip: IpAddr) {
    let literal = match ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    out.extend_from_slice(literal.as_bytes());
}

/// Formats `time` as an RFC 5322 §3.3 date-time in UTC, e.g.
/// `Sun, 29 Nov 2026 04:49:21 +0000`. Times before 1970 (a clock set
/// wrong) are written as the epoch.
pub fn rfc5322_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let weekday = DAYS[((days + 4) % 7) as usize];
    // `month` is 1..=12 by construction of `civil_from_days`.
    let month = MONTHS[(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`,
/// shifted so the year starts in March and leap days come last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// At most this many recipients are listed in a message line; the rest are
/// counted (`nrcpt` is always the full count).
const LOGGED_RECIPIENTS: usize = 10;

/// The log line of one connection, written when it ends (see the module
/// docs): at [`ConnectionLog::closed`], or when it is dropped without that.
#[derive(Debug)]
pub struct ConnectionLog {
    id: ConnectionId,
    peer: SocketAddr,
    started: Instant,
    helo: Option<String>,
    tls: Option<TlsInfo>,
    user: Option<String>,
    auth_failures: u32,
    messages: u64,
    written: bool,
}

impl ConnectionLog {
    /// The log of a new connection.
    pub fn new(info: &ConnectionInfo) -> Self {
        Self {
            id: info.id,
            peer: info.peer,
            started: Instant::now(),
            helo: None,
            tls: info.tls.clone(),
            user: None,
            auth_failures: 0,
            messages: 0,
            written: false,
        }
    }

    /// The client greeted with `host` (as validated by the session).
    pub fn helo(&mut self, host: &str) {
        self.helo = Some(host.to_owned());
    }

    /// TLS was established. What was learned before is forgotten, as by the
    /// session (RFC 3207 §4.2).
    pub fn tls(&mut self, info: &TlsInfo) {
        self.tls = Some(info.clone());
        self.user = None;
        self.helo = None;
    }

    /// The client authenticated as `user` (a configured user name).
    pub fn authenticated(&mut self, user: &str) {
        self.user = Some(user.to_owned());
    }

    /// An AUTH attempt failed: counted, and logged without the name tried.
    pub fn auth_failed(&mut self, mechanism: &str) {
        self.auth_failures += 1;
        tracing::info!(
            parent: None,
            id = %self.id,
            peer = %self.peer,
            mechanism,
            "authentication failed"
        );
    }

    /// The AUTH user, if the client authenticated.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// A message of this connection was received in full: its line, to
    /// write when its reply is known ([`MessageLog::replied`]).
    pub fn message(&mut self, envelope: &Envelope<'_>, size: u64) -> MessageLog {
        self.message_log(envelope, Some(size))
    }

    /// The session refused a message itself and gave the reply (too big, a
    /// bare line ending, a refused chunk): writes its line with why.
    pub fn refused_by_session(&mut self, envelope: &Envelope<'_>, reason: ResetReason) {
        self.message_log(envelope, None)
            .write("refused", None, None, Some(reason));
    }

    fn message_log(&mut self, envelope: &Envelope<'_>, size: Option<u64>) -> MessageLog {
        self.messages += 1;
        MessageLog {
            id: self.id,
            peer: self.peer,
            from: envelope.from().to_string(),
            recipients: envelope
                .recipients()
                .map(|(to, _)| unbracketed(&to))
                .collect(),
            size,
            user: self.user.clone(),
        }
    }

    /// The connection ended: writes its line.
    pub fn closed(&mut self, reason: CloseReason) {
        self.write(&format!("{reason:?}"));
    }

    fn write(&mut self, reason: &str) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let tls = self.tls.as_ref();
        tracing::info!(
            parent: None,
            id = %self.id,
            peer = %self.peer,
            helo = self.helo.as_deref(),
            tls_version = tls.and_then(|t| t.protocol.as_deref()).map(escaped),
            tls_cipher = tls.and_then(|t| t.cipher.as_deref()).map(escaped),
            user = self.user.as_deref(),
            auth_failures = (self.auth_failures > 0).then_some(self.auth_failures),
            messages = self.messages,
            reason,
            duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "connection closed"
        );
    }
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        // A connection dropped without its end reported still gets its line.
        self.write("Dropped");
    }
}

/// The log line of one message (see the module docs), made by
/// [`ConnectionLog::message`]; it can be sent to the thread that gives the
/// reply.
#[derive(Debug, Clone)]
pub struct MessageLog {
    id: ConnectionId,
    peer: SocketAddr,
    from: String,
    recipients: Vec<String>,
    /// `None` when the body was not taken in full.
    size: Option<u64>,
    user: Option<String>,
}

impl MessageLog {
    /// Writes the line for the reply given to the message: `accepted`
    /// (2xx), `deferred` (4xx) or `refused` (5xx), with the id it was
    /// stored under, if any.
    pub fn replied(&self, queue_id: Option<&str>, reply: &Reply<'_>) {
        let status = match reply.code().first_digit() {
            2 => "accepted",
            4 => "deferred",
            _ => "refused",
        };
        self.write(status, queue_id, Some(&reply_text(reply)), None);
    }

    fn write(
        &self,
        status: &str,
        queue_id: Option<&str>,
        reply: Option<&str>,
        reason: Option<ResetReason>,
    ) {
        tracing::info!(
            parent: None,
            id = %self.id,
            peer = %self.peer,
            queue_id,
            from = %self.from,
            nrcpt = self.recipients.len(),
            to = %recipient_list(&self.recipients),
            size = self.size,
            user = self.user.as_deref(),
            reply,
            reason = reason.map(|r| format!("{r:?}")),
            "message {status}"
        );
    }
}

/// A forward-path without its angle brackets (`Postmaster`,
/// `alice@example.org`), as the log lines and the `for` clause of
/// [`Received`], which add them, take it.
pub(crate) fn unbracketed(path: &ForwardPath<'_>) -> String {
    match path {
        ForwardPath::Mailbox(mailbox) => mailbox.to_string(),
        _ => "Postmaster".to_owned(),
    }
}

/// `<a@x>,<b@y>`, the first [`LOGGED_RECIPIENTS`] of them and a count of
/// the rest.
fn recipient_list(recipients: &[String]) -> String {
    let mut out = String::new();
    for (i, r) in recipients.iter().take(LOGGED_RECIPIENTS).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('<');
        out.push_str(r);
        out.push('>');
    }
    if recipients.len() > LOGGED_RECIPIENTS {
        out.push_str(&format!(",+{}", recipients.len() - LOGGED_RECIPIENTS));
    }
    out
}

/// A reply on one line: `250 2.0.0 Ok`, the lines of a multi-line reply
/// joined by ` / `.
fn reply_text(reply: &Reply<'_>) -> String {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    String::from_utf8_lossy(&wire)
        .trim_end()
        .replace("\r\n", " / ")
}

/// A value from the TLS library (the peer influences it only through what
/// was negotiated), with anything that is not visible ASCII replaced.
fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates_known_answers() {
        for (secs, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_000_000_000, "Sun, 09 Sep 2001 01:46:40 +0000"),
            (1_709_164_799, "Wed, 28 Feb 2024 23:59:59 +0000"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 +0000"),
            (1_796_791_761, "Wed, 09 Dec 2026 04:49:21 +0000"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 +0000"),
        ] {
            assert_eq!(rfc5322_date(at(secs)), text, "{secs}");
        }
        assert_eq!(
            rfc5322_date(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
    }

    /// Walks 500 years day by day: every date follows the previous one, and
    /// month lengths and leap years come out of the Gregorian rules.
    #[test]
    fn calendar_walk_is_contiguous() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..(500 * 366) {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let month_len = match pm {
                2 if leap(py) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if pd < month_len {
                assert_eq!((y, m, d), (py, pm, pd + 1));
            } else if pm < 12 {
                assert_eq!((y, m, d), (py, pm + 1, 1));
            } else {
                assert_eq!((y, m, d), (py + 1, 1, 1));
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn protocol_names_per_rfc3848_and_rfc6531() {
        use ProtocolBase::*;
        let w = WithProtocol::new;
        assert_eq!(w(Smtp).as_str(), "SMTP");
        assert_eq!(w(Smtp).tls(true).authenticated(true).as_str(), "SMTP");
        assert_eq!(w(Esmtp).as_str(), "ESMTP");
        assert_eq!(w(Esmtp).authenticated(true).as_str(), "ESMTPA");
        assert_eq!(w(Esmtp).tls(true).as_str(), "ESMTPS");
        assert_eq!(w(Esmtp).tls(true).authenticated(true).as_str(), "ESMTPSA");
        assert_eq!(w(Esmtp).utf8(true).tls(true).as_str(), "UTF8SMTPS");
        assert_eq!(w(Lmtp).as_str(), "LMTP");
        assert_eq!(w(Lmtp).tls(true).authenticated(true).as_str(), "LMTPSA");
        assert_eq!(w(Lmtp).utf8(true).authenticated(true).as_str(), "UTF8LMTPA");
        assert_eq!(w(Esmtp).tls(true).to_string(), "ESMTPS");
    }

    #[test]
    fn full_header_known_answer() {
        let tls = TlsInfo::new(
            Some("TLSv1.3".into()),
            Some("TLS13_AES_256_GCM_SHA384".into()),
            None,
        );
        let r = Received::new(
            "client.example.org",
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            "mx.example.com",
            WithProtocol::new(ProtocolBase::Esmtp).tls(true),
            at(1_000_000_000),
        )
        .with_peer_name("client.example.org")
        .with_tls(&tls)
        .with_id("ABC123")
        .with_recipient("alice@example.com");
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from client.example.org (client.example.org [192.0.2.7])\r\n\
             \t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\
             \tby mx.example.com with ESMTPS id ABC123\r\n\
             \tfor <alice@example.com>; Sun, 09 Sep 2001 01:46:40 +0000\r\n"
        );
    }

    #[test]
    fn minimal_header_and_ipv6_literals() {
        let mut out = Vec::new();
        Received::new(
            "[IPv6:2001:db8::1]",
            IpAddr::V6("2001:db8::1".parse().unwrap()),
            "mx",
            WithProtocol::new(ProtocolBase::Smtp),
            at(0),
        )
        .encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n\
             \tby mx with SMTP\r\n\
             \t; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
        let mut out = Vec::new();
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped());
        Received::new(
            "",
            mapped,
            "mx",
            WithProtocol::new(ProtocolBase::Lmtp),
            at(0),
        )
        .encode(&mut out);
        assert!(out.starts_with(b"Received: from unknown ([198.51.100.1])\r\n"));
        assert_ne!(Ipv6Addr::LOCALHOST.to_canonical(), Ipv6Addr::UNSPECIFIED);
    }

    /// Whatever the peer sends as its name, the header keeps its lines: no
    /// CR, LF or other control character gets through, comments stay
    /// balanced, and every line stays short.
    #[test]
    fn hostile_values_cannot_add_lines() {
        let evil = "evil\r\nX-Injected: yes (\u{0}\t;\u{7f}\"<>\\) ".repeat(40);
        let tls = TlsInfo::new(Some(evil.clone()), Some(evil.clone()), None);
        let mut out = Vec::new();
        Received::new(
            &evil,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &evil,
            WithProtocol::new(ProtocolBase::Esmtp),
            at(0),
        )
        .with_peer_name(&evil)
        .with_id(&evil)
        .with_tls(&tls)
        .with_recipient(&evil)
        .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "{text}"); // 4 lines + the empty tail
        for line in &lines {
            assert!(line.len() < 998);
            assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\0'));
        }
        assert!(!text.contains("\r\nX-Injected"));
        assert_eq!(text.matches('(').count(), text.matches(')').count());
        assert_eq!(text.matches(';').count(), 1);
    }

    #[test]
    fn fields_are_cut_on_char_boundaries() {
        let long = "é".repeat(300); // 600 bytes
        let mut out = Vec::new();
        push_field(&mut out, &long);
        assert_eq!(out.len(), 254);
        assert!(String::from_utf8(out).is_ok());
    }

    /// Runs `f` with a subscriber that writes every event into a string.
    fn captured(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// `f` of the envelope of a session (in memory) that accepted `from`
    /// and `to`.
    fn with_envelope<T>(from: &str, to: &[String], f: impl FnOnce(&Envelope<'_>) -> T) -> T {
        use smtp_proto::Output;
        use smtp_proto::address::Domain;
        use smtp_proto::server::{Config, Event, Server};

        let now = Instant::now();
        let mut config = Config::new(Domain::new("mx.example").unwrap());
        // EHLO and the envelope in one read (pipelined behind EHLO).
        config.forbid_unauth_pipelining = false;
        let mut server = Server::new(config, now);
        let mut input = format!("EHLO c.example\r\nMAIL FROM:{from}\r\n");
        for to in to {
            input.push_str(&format!("RCPT TO:<{to}>\r\n"));
        }
        input.push_str("DATA\r\n");
        assert_eq!(server.handle_input(now, input.as_bytes()), input.len());
        loop {
            let answer = match server.poll(now) {
                Output::Event(Event::DataStart { envelope, .. }) => return f(&envelope),
                Output::Event(event) => event.needs_answer(),
                Output::Transmit(bytes) => {
                    let n = bytes.len();
                    server.advance_transmit(now, n).unwrap();
                    false
                }
                other => panic!("no DataStart but {other:?}"),
            };
            if answer {
                server.accept().unwrap();
            }
        }
    }

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            id: ConnectionId {
                event_loop: 1,
                number: 7,
            },
            peer: "192.0.2.7:41234".parse().unwrap(),
            local: "192.0.2.1:25".parse().unwrap(),
            tls: None,
            proxy: None,
        }
    }

    #[test]
    fn one_connection_line_with_tls_and_user_written_once() {
        let out = captured(|| {
            let mut log = ConnectionLog::new(&info());
            log.helo("before.tls");
            log.tls(&TlsInfo::new(
                Some("TLSv1.3".into()),
                Some("TLS13_AES_256_GCM_SHA384".into()),
                Some("sni.example".into()),
            ));
            log.helo("client.example");
            log.auth_failed("PLAIN");
            log.authenticated("alice");
            assert_eq!(log.user(), Some("alice"));
            with_envelope("<a@example.org>", &["b@example.net".into()], |envelope| {
                let _ = log.message(envelope, 10);
            });
            log.closed(CloseReason::Quit);
            drop(log);
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0]
                .contains("authentication failed id=L1C7 peer=192.0.2.7:41234 mechanism=\"PLAIN\""),
            "{out}"
        );
        let line = lines[1];
        assert!(line.contains(" INFO "), "{line}");
        for part in [
            "connection closed id=L1C7 peer=192.0.2.7:41234 helo=\"client.example\"",
            "tls_version=\"TLSv1.3\" tls_cipher=\"TLS13_AES_256_GCM_SHA384\"",
            "user=\"alice\" auth_failures=1 messages=1 reason=\"Quit\" duration_ms=",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        assert!(!line.contains("before.tls"), "{line}");
    }

    #[test]
    fn a_connection_dropped_without_its_end_still_gets_its_line() {
        let out = captured(|| drop(ConnectionLog::new(&info())));
        assert!(
            out.contains(
                "connection closed id=L1C7 peer=192.0.2.7:41234 messages=0 reason=\"Dropped\""
            ),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
    }

    #[test]
    fn message_lines_carry_envelope_size_id_and_reply() {
        let recipients: Vec<String> = (0..12).map(|i| format!("r{i}@example.net")).collect();
        let out = captured(|| {
            let mut log = ConnectionLog::new(&info());
            log.authenticated("alice");
            let message = with_envelope("<a@example.org>", &recipients[..1], |envelope| {
                log.message(envelope, 412)
            });
            let reply = Reply::with_enhanced(
                smtp_proto::reply::ReplyCode::OK,
                smtp_proto::reply::EnhancedStatusCode::SUCCESS,
                "Ok: queued as Q1",
            )
            .unwrap();
            message.replied(Some("Q1"), &reply);
            let many = with_envelope("<>", &recipients, |envelope| log.message(envelope, 9));
            many.replied(None, &crate::server::backend::local_error());
            with_envelope("<a@example.org>", &recipients[..2], |envelope| {
                log.refused_by_session(envelope, ResetReason::MessageTooBig);
            });
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].contains(
            "message accepted id=L1C7 peer=192.0.2.7:41234 queue_id=\"Q1\" from=<a@example.org> \
             nrcpt=1 to=<r0@example.net> size=412 user=\"alice\" reply=\"250 2.0.0 Ok: queued as Q1\""
        ), "{out}");
        assert!(lines[1].contains("message deferred id=L1C7"), "{out}");
        assert!(lines[1].contains(
            "from=<> nrcpt=12 to=<r0@example.net>,<r1@example.net>,<r2@example.net>,<r3@example.net>,\
             <r4@example.net>,<r5@example.net>,<r6@example.net>,<r7@example.net>,<r8@example.net>,\
             <r9@example.net>,+2 size=9"
        ), "{out}");
        assert!(
            lines[1].contains("reply=\"451 4.3.0 Local error in processing\""),
            "{out}"
        );
        assert!(
            lines[2].contains(
                "message refused id=L1C7 peer=192.0.2.7:41234 from=<a@example.org> nrcpt=2 \
             to=<r0@example.net>,<r1@example.net> user=\"alice\" reason=\"MessageTooBig\""
            ),
            "{out}"
        );
        assert!(
            lines[3].contains("connection closed") && lines[3].contains("messages=3"),
            "{out}"
        );
    }

    #[test]
    fn tls_values_are_written_visible_only() {
        assert_eq!(escaped("TLSv1.3\r\nfake line"), "TLSv1.3??fake?line");
    }
}
