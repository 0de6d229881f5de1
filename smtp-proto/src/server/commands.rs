//! Reading one command line: frame it, parse it, decide, act.
//!
//! Deciding is pure (`&self` and the parsed command give a [`Decision`]);
//! acting mutates. The split keeps the borrow of the input buffer (the
//! command borrows it) apart from the state changes, and it puts every
//! sequence and policy check of RFC 5321 in one readable function per verb.

use crate::address::{ForwardPath, ReversePath};
use crate::command::{Body, Command, MailParameters, RcptParameters};
use crate::ehlo::{EhloReply, Extension, Extensions};
use crate::framing::Frame;
use crate::keyword::Mechanism;
use crate::reply::EnhancedStatusCode as Esc;

use super::event::{HeloKind, ResetReason};
use super::replies::{self, Canned};
use super::sasl;
use super::state::{
    Awaiting, BodyStart, ChunkVerdict, Fact, Pending, SaslStep, State, Transaction,
};
use super::{InjectionPolicy, Protocol, Server, Step, SyncPoint, TlsMode};

/// What the server does with a command.
#[derive(Debug)]
enum Decision {
    /// Refuse with an automatic reply, counted as a client error.
    Refuse(Canned),
    /// Refuse with an automatic reply that is not the client's fault
    /// (`452` too many recipients).
    Decline(Canned),
    /// `HELO`, `EHLO`, `LHLO`: answer and reset.
    Greet(HeloKind),
    /// `NOOP`.
    Noop,
    /// `HELP`.
    Help,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`, accepted.
    StartTls(InjectionPolicy),
    /// Ask the application about `MAIL`.
    Mail(Transaction),
    /// Ask the application about `RCPT`.
    Rcpt,
    /// Ask the application about `DATA` or the first `BDAT`.
    DataStart(BodyStart),
    /// A further `BDAT` chunk of an accepted transfer.
    Chunk { size: u64, last: bool },
    /// A `BDAT` chunk to read and discard, then refuse.
    DiscardChunk {
        size: u64,
        last: bool,
        reply: Canned,
    },
    /// `AUTH`, accepted.
    Auth(AuthStart),
    /// Ask the application about `VRFY` or `EXPN`.
    Verify,
}

/// How an accepted `AUTH` starts.
#[derive(Debug)]
enum AuthStart {
    /// PLAIN, with the initial response (decoded from the command line
    /// when the exchange starts) or without.
    Plain(bool),
    /// LOGIN, with the user name as initial response or without.
    Login(bool),
    /// Any other mechanism: the application runs it.
    Relay,
}

impl Server {
    /// Frames and handles one command line.
    pub(super) fn read_command(&mut self) -> Step {
        let (len, clean) = match self.framer.next(self.input.bytes()) {
            Frame::Line(line) => (line.wire_len(), line.is_clean()),
            Frame::TooLong { discard, .. } => {
                // RFC 5321 §4.5.3.1.10; the rest of the line is dropped as
                // it arrives and the next line is read normally.
                self.input.consume(discard);
                self.error(replies::LINE_TOO_LONG);
                return Step::Continue;
            }
            Frame::Discard { discard, .. } => {
                self.input.consume(discard);
                return Step::Continue;
            }
            Frame::NeedMore => return self.need_more(),
        };
        if !clean {
            // RFC 5321 §2.3.8: a bare CR or LF is never a line end, and a
            // command holding one is refused whole.
            self.input.consume(len);
            self.error(replies::BARE_LINE_ENDING_COMMAND);
            return Step::Continue;
        }
        let content = len.saturating_sub(2);
        let (decision, point) = {
            let line = self.input.bytes().get(..content).unwrap_or_default();
            match Command::parse(line) {
                Ok(command) => {
                    let point = sync_point(&command);
                    (self.decide(command), point)
                }
                Err(e) => (
                    Decision::Refuse(parse_error_reply(e.reply_code(), e.enhanced_status())),
                    None,
                ),
            }
        };
        if let Some(point) = point
            && self.sync_check(point, len)
            && !matches!(point, SyncPoint::Helo | SyncPoint::Noop)
        {
            // The point's answer is replaced by the 554; the application is
            // not asked. EHLO/HELO/NOOP are answered first (the 554 then
            // answers the pipelined command, see `drive`).
            self.input.consume(len);
            self.sync_close(point);
            return Step::Continue;
        }
        self.act(decision, len, content)
    }

    /// The verdict on one parsed command.
    fn decide(&self, command: Command<'_>) -> Decision {
        if self.no_service && !matches!(command, Command::Quit) {
            return Decision::Refuse(replies::NO_SERVICE);
        }
        if self.config.tls == TlsMode::Required && self.tls.is_none() {
            // RFC 3207 §4: "530 Must issue a STARTTLS command first" to
            // every command that carries mail or credentials; the greeting
            // commands, STARTTLS itself, NOOP, RSET, HELP and QUIT stay
            // (Postfix `encrypt` lets the same set through). A BDAT chunk
            // is still read (RFC 3030 §2).
            match command {
                Command::Bdat { size, last } => {
                    return Decision::DiscardChunk {
                        size,
                        last,
                        reply: replies::STARTTLS_REQUIRED,
                    };
                }
                Command::Mail { .. }
                | Command::Rcpt { .. }
                | Command::Data
                | Command::Auth { .. }
                | Command::Vrfy { .. }
                | Command::Expn { .. } => return Decision::Refuse(replies::STARTTLS_REQUIRED),
                _ => {}
            }
        }
        let lmtp = self.config.protocol == Protocol::Lmtp;
        match command {
            Command::Helo { .. } | Command::Ehlo { .. } if lmtp => {
                // RFC 2033 §4.1: LMTP knows only LHLO.
                Decision::Refuse(replies::UNKNOWN_COMMAND)
            }
            Command::Lhlo { .. } if !lmtp => Decision::Refuse(replies::UNKNOWN_COMMAND),
            Command::Helo { .. } => Decision::Greet(HeloKind::Helo),
            Command::Ehlo { .. } => Decision::Greet(HeloKind::Ehlo),
            Command::Lhlo { .. } => Decision::Greet(HeloKind::Lhlo),
            Command::Mail { from, params } => self.decide_mail(&from, &params),
            Command::Rcpt { to, params } => self.decide_rcpt(&to, &params),
            Command::Data => self.decide_data(),
            Command::Bdat { size, last } => self.decide_bdat(size, last),
            Command::Rset => Decision::Rset,
            Command::Noop { .. } => Decision::Noop,
            Command::Help { .. } => Decision::Help,
            Command::Quit => Decision::Quit,
            Command::StartTls => self.decide_starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.decide_auth(&mechanism, initial_response.is_some()),
            Command::Vrfy { .. } | Command::Expn { .. } => Decision::Verify,
        }
    }

    /// The "send EHLO first" reply of this protocol.
    fn send_greeting_first(&self) -> Canned {
        match self.config.protocol {
            Protocol::Lmtp => replies::SEND_LHLO,
            _ => replies::SEND_EHLO,
        }
    }

    /// Whether AUTH is offered right now.
    fn auth_offered(&self) -> bool {
        let auth = &self.config.auth;
        !auth.mechanisms.is_empty() && (self.tls.is_some() || !auth.require_tls)
    }

    /// `MAIL FROM` (RFC 5321 §4.1.1.2, §3.3).
    fn decide_mail(&self, from: &ReversePath<'_>, params: &MailParameters<'_>) -> Decision {
        if self.greeted.is_none() {
            return Decision::Refuse(self.send_greeting_first());
        }
        if self.envelope().is_some() {
            return Decision::Refuse(replies::NESTED_MAIL);
        }
        if self.config.auth.required_for_mail && !self.authenticated {
            return Decision::Refuse(replies::AUTH_REQUIRED);
        }
        if !self.mail_params_offered(params) {
            return Decision::Refuse(replies::PARAMETER_NOT_OFFERED);
        }
        if let (Some(max), Some(size)) = (self.config.max_message_size, params.size)
            && size > max
        {
            // RFC 1870 §6.1.
            return Decision::Decline(replies::SIZE_EXCEEDS_LIMIT);
        }
        if from.is_utf8() && !params.smtputf8 {
            return Decision::Refuse(replies::SMTPUTF8_REQUIRED);
        }
        Decision::Mail(Transaction::new(params.smtputf8, params.body))
    }

    /// Whether every MAIL parameter belongs to an extension on offer. After
    /// `HELO` no extension is on offer (RFC 5321 §4.1.1.1).
    fn mail_params_offered(&self, p: &MailParameters<'_>) -> bool {
        if p.is_empty() {
            return true;
        }
        if self.greeted == Some(HeloKind::Helo) {
            return false;
        }
        let offer = &self.config.offer;
        let body_ok = match p.body {
            None => true,
            Some(Body::SevenBit) | Some(Body::EightBitMime) => offer.eight_bit_mime,
            Some(Body::BinaryMime) => offer.binarymime && offer.chunking,
        };
        body_ok
            && (!p.smtputf8 || offer.smtputf8)
            && ((p.ret.is_none() && p.envid.is_none()) || offer.dsn)
            && (p.auth().is_none() || self.auth_offered())
            && (!p.requiretls || (offer.requiretls && self.tls.is_some()))
            && p.mt_priority().is_none()
            && p.by().is_none()
            && p.hold().is_none()
            && p.other().is_empty()
    }

    /// `RCPT TO` (RFC 5321 §4.1.1.3, §3.3).
    fn decide_rcpt(&self, to: &ForwardPath<'_>, params: &RcptParameters<'_>) -> Decision {
        let Some(envelope) = self.envelope() else {
            return Decision::Refuse(replies::NEED_MAIL);
        };
        let offered = params.is_empty()
            || (self.greeted != Some(HeloKind::Helo)
                && ((params.notify.is_none() && params.orcpt.is_none()) || self.config.offer.dsn)
                && params.rrvs().is_none()
                && params.other().is_empty());
        if !offered {
            return Decision::Refuse(replies::PARAMETER_NOT_OFFERED);
        }
        if to.is_utf8() && !envelope.smtputf8 {
            return Decision::Refuse(replies::SMTPUTF8_REQUIRED);
        }
        if envelope.recipients >= self.config.limits.max_recipients {
            return Decision::Decline(replies::TOO_MANY_RECIPIENTS);
        }
        Decision::Rcpt
    }

    /// `DATA` (RFC 5321 §4.1.1.4, §3.3; RFC 3030 §2–3).
    fn decide_data(&self) -> Decision {
        if self.greeted.is_none() {
            return Decision::Refuse(self.send_greeting_first());
        }
        let Some(envelope) = self.envelope() else {
            return Decision::Refuse(replies::NEED_MAIL);
        };
        if envelope.chunking.is_some() {
            return Decision::Refuse(replies::DATA_AFTER_BDAT);
        }
        if envelope.body == Some(Body::BinaryMime) {
            return Decision::Refuse(replies::BINARYMIME_NEEDS_BDAT);
        }
        if let Some(reply) = no_recipients(envelope) {
            return Decision::Refuse(reply);
        }
        Decision::DataStart(BodyStart::Data)
    }

    /// `BDAT` (RFC 3030 §2). The chunk's octets follow the command line at
    /// once, so every refusal still reads them.
    fn decide_bdat(&self, size: u64, last: bool) -> Decision {
        let refuse = |reply| Decision::DiscardChunk { size, last, reply };
        if !self.config.offer.chunking {
            return refuse(replies::NOT_IMPLEMENTED);
        }
        if self.greeted.is_none() {
            return refuse(self.send_greeting_first());
        }
        let Some(envelope) = self.envelope() else {
            return refuse(replies::NEED_MAIL);
        };
        if let Some(reply) = no_recipients(envelope) {
            return refuse(reply);
        }
        match envelope.chunking {
            None => Decision::DataStart(BodyStart::Bdat { size, last }),
            Some(_) => Decision::Chunk { size, last },
        }
    }

    /// `STARTTLS` (RFC 3207 §4).
    fn decide_starttls(&self) -> Decision {
        if self.config.tls == TlsMode::Disabled {
            return Decision::Refuse(replies::NOT_IMPLEMENTED);
        }
        if self.tls.is_some() {
            return Decision::Refuse(replies::TLS_ACTIVE);
        }
        if self.envelope().is_some() {
            return Decision::Refuse(replies::IN_TRANSACTION);
        }
        Decision::StartTls(self.config.on_injection)
    }

    /// `AUTH` (RFC 4954 §4).
    fn decide_auth(&self, mechanism: &Mechanism<'_>, initial: bool) -> Decision {
        let auth = &self.config.auth;
        if auth.mechanisms.is_empty() {
            return Decision::Refuse(replies::NOT_IMPLEMENTED);
        }
        if !matches!(self.greeted, Some(HeloKind::Ehlo | HeloKind::Lhlo)) {
            return Decision::Refuse(self.send_greeting_first());
        }
        if auth.require_tls && self.tls.is_none() {
            return Decision::Refuse(replies::ENCRYPTION_REQUIRED);
        }
        if self.authenticated {
            return Decision::Refuse(replies::ALREADY_AUTHENTICATED);
        }
        if self.envelope().is_some() {
            return Decision::Refuse(replies::IN_TRANSACTION);
        }
        if !auth.mechanisms.contains(mechanism) {
            return Decision::Refuse(replies::UNKNOWN_MECHANISM);
        }
        if *mechanism == Mechanism::PLAIN {
            Decision::Auth(AuthStart::Plain(initial))
        } else if *mechanism == Mechanism::LOGIN {
            Decision::Auth(AuthStart::Login(initial))
        } else {
            Decision::Auth(AuthStart::Relay)
        }
    }

    /// Carries out a decision about the line of `len` bytes (`content`
    /// without CRLF) at the front of the input.
    fn act(&mut self, decision: Decision, len: usize, content: usize) -> Step {
        match decision {
            Decision::Refuse(reply) => {
                self.input.consume(len);
                self.error(reply);
                Step::Continue
            }
            Decision::Decline(reply) => {
                self.input.consume(len);
                self.say(reply);
                Step::Continue
            }
            Decision::Greet(kind) => {
                self.reset_transaction(ResetReason::Helo);
                self.greeted = Some(kind);
                self.write_greeting_reply(kind);
                self.input.hand_out(len);
                Step::Emit(Pending::Command { len: content })
            }
            Decision::Noop => {
                self.input.consume(len);
                self.say(replies::OK);
                Step::Continue
            }
            Decision::Help => {
                self.input.consume(len);
                self.say(replies::HELP);
                Step::Continue
            }
            Decision::Rset => {
                self.input.consume(len);
                self.reset_transaction(ResetReason::Rset);
                self.say(replies::OK);
                Step::Continue
            }
            Decision::Quit => {
                self.input.consume(len);
                let enhanced = self.enhanced();
                replies::write_quit(self.output.queue(), self.config.hostname.as_str(), enhanced);
                self.close_silently(super::CloseReason::Quit);
                Step::Continue
            }
            Decision::StartTls(policy) => {
                self.input.consume(len);
                self.start_tls(policy);
                Step::Continue
            }
            Decision::Mail(envelope) => {
                let line = self.input.bytes().get(..content).unwrap_or_default();
                self.envelope_lines.mail(line);
                self.awaiting = Some(Awaiting::Mail(envelope));
                self.input.hand_out(len);
                Step::Emit(Pending::Command { len: content })
            }
            Decision::Rcpt => {
                if let State::Command(Some(envelope)) = &mut self.state {
                    envelope.rcpt_attempts += 1;
                }
                let line = self.input.bytes().get(..content).unwrap_or_default();
                self.envelope_lines.rcpt(line);
                self.awaiting = Some(Awaiting::Rcpt);
                self.input.hand_out(len);
                Step::Emit(Pending::Command { len: content })
            }
            Decision::DataStart(start) => {
                self.input.consume(len);
                self.awaiting = Some(Awaiting::DataStart(start));
                Step::Emit(Pending::DataStart(start.mode()))
            }
            Decision::Chunk { size, last } => {
                self.input.consume(len);
                self.open_body(BodyStart::Bdat { size, last });
                Step::Continue
            }
            Decision::DiscardChunk { size, last, reply } => {
                self.input.consume(len);
                if self.envelope().is_some() {
                    // RFC 3030 §2: a refused chunk fails the transaction.
                    self.facts.push_back(Fact::Reset(ResetReason::ChunkRefused));
                }
                self.state = State::Chunk {
                    envelope: None,
                    chunk: crate::data::BdatChunk::new(size),
                    size,
                    last,
                    verdict: ChunkVerdict::Refuse(reply),
                };
                Step::Continue
            }
            Decision::Auth(start) => self.start_auth(start, len, content),
            Decision::Verify => {
                self.awaiting = Some(Awaiting::Verify);
                self.input.hand_out(len);
                Step::Emit(Pending::Command { len: content })
            }
        }
    }

    /// Drops the open transaction, telling the application.
    fn reset_transaction(&mut self, reason: ResetReason) {
        if let State::Command(envelope @ Some(_)) = &mut self.state {
            *envelope = None;
            self.facts.push_back(Fact::Reset(reason));
        }
    }

    /// The EHLO/LHLO reply from the configuration, or the HELO reply.
    fn write_greeting_reply(&mut self, kind: HeloKind) {
        let hostname = self.config.hostname.as_str();
        if kind == HeloKind::Helo {
            replies::write_helo(self.output.queue(), hostname);
            return;
        }
        let offer = &self.config.offer;
        let mut ext = Extensions::new();
        ext.insert(Extension::Size(self.config.max_message_size));
        for (on, extension) in [
            (offer.pipelining, Extension::Pipelining),
            (offer.eight_bit_mime, Extension::EightBitMime),
            (offer.enhanced_status_codes, Extension::EnhancedStatusCodes),
            (offer.chunking, Extension::Chunking),
            (offer.chunking && offer.binarymime, Extension::BinaryMime),
            (offer.smtputf8, Extension::SmtpUtf8),
            (offer.dsn, Extension::Dsn),
            (
                offer.requiretls && self.tls.is_some(),
                Extension::RequireTls,
            ),
            (
                matches!(self.config.tls, TlsMode::Opportunistic | TlsMode::Required)
                    && self.tls.is_none(),
                Extension::StartTls,
            ),
        ] {
            if on {
                ext.insert(extension);
            }
        }
        if self.auth_offered() {
            ext.insert(Extension::Auth(self.config.auth.mechanisms.clone()));
        }
        match EhloReply::new(hostname, "", ext) {
            Ok(reply) => reply.encode(self.output.queue()),
            // The hostname is a validated domain, which EhloReply accepts;
            // should that ever change, answer like HELO rather than fail.
            Err(_) => replies::write_helo(self.output.queue(), hostname),
        }
    }

    /// Accepted `STARTTLS`: `220`, unless plaintext is already waiting
    /// behind the command (CVE-2011-0411).
    fn start_tls(&mut self, policy: InjectionPolicy) {
        let pipelined = self.input.len();
        if pipelined > 0 && policy == InjectionPolicy::Close {
            self.discarded += self.input.clear();
            self.close_silently(super::CloseReason::StartTlsInjection {
                discarded: pipelined,
            });
            return;
        }
        self.discarded += self.input.clear();
        self.say(replies::TLS_GO);
        // RFC 3207 §4.2: forget what the client said before TLS.
        self.greeted = None;
        self.authenticated = false;
        self.state = State::StartTls;
    }

    /// Accepted `AUTH`.
    fn start_auth(&mut self, start: AuthStart, len: usize, content: usize) -> Step {
        self.sasl.clear();
        if let AuthStart::Plain(true) | AuthStart::Login(true) = start {
            // The initial response, decoded from the command line still at
            // the front of the input into the SASL buffer. The line parsed
            // as this AUTH command in `read_command`; nothing touched it
            // since.
            let line = self.input.bytes().get(..content).unwrap_or_default();
            if let Ok(Command::Auth {
                initial_response: Some(ir),
                ..
            }) = Command::parse(line)
            {
                ir.decode_into(&mut self.sasl);
            }
        }
        match start {
            AuthStart::Plain(false) => {
                self.input.consume(len);
                replies::write_challenge(self.output.queue(), b"");
                self.enter_sasl(SaslStep::Plain);
                Step::Continue
            }
            AuthStart::Plain(true) => {
                self.input.consume(len);
                self.credentials_plain()
            }
            AuthStart::Login(false) => {
                self.input.consume(len);
                replies::write_challenge(self.output.queue(), sasl::LOGIN_USERNAME);
                self.enter_sasl(SaslStep::LoginUser);
                Step::Continue
            }
            AuthStart::Login(true) => {
                self.input.consume(len);
                self.login_user()
            }
            AuthStart::Relay => {
                self.awaiting = Some(Awaiting::Auth);
                self.input.hand_out(len);
                Step::Emit(Pending::Command { len: content })
            }
        }
    }
}

/// The synchronization point a command is (RFC 2920 §3.1, RFC 3207 §4,
/// RFC 4954 §4), if it ends a group.
fn sync_point(command: &Command<'_>) -> Option<SyncPoint> {
    match command {
        Command::Helo { .. } | Command::Ehlo { .. } | Command::Lhlo { .. } => Some(SyncPoint::Helo),
        Command::Data => Some(SyncPoint::Data),
        Command::Vrfy { .. } | Command::Expn { .. } => Some(SyncPoint::Verify),
        Command::Noop { .. } => Some(SyncPoint::Noop),
        Command::Quit => Some(SyncPoint::Quit),
        Command::StartTls => Some(SyncPoint::StartTls),
        Command::Auth { .. } => Some(SyncPoint::Auth),
        _ => None,
    }
}

/// The refusal of DATA or BDAT when no recipient was accepted: `503` if
/// none was tried, else `554 no valid recipients` (RFC 5321 §3.3).
fn no_recipients(envelope: &Transaction) -> Option<Canned> {
    if envelope.recipients > 0 {
        None
    } else if envelope.rcpt_attempts == 0 {
        Some(replies::NEED_RCPT)
    } else {
        Some(replies::NO_VALID_RECIPIENTS)
    }
}

/// The automatic reply to a line that does not parse, from the parser's
/// hint: an unknown verb gets [`replies::UNKNOWN_COMMAND`] (`500 5.5.2`,
/// as Postfix), everything else `501` with the parser's enhanced code.
fn parse_error_reply(code: u16, status: (u8, u16, u16)) -> Canned {
    if code == 500 {
        return replies::UNKNOWN_COMMAND;
    }
    let (text, status) = match status {
        (5, 1, 7) => ("Bad sender address syntax", Esc::BAD_SENDER_SYNTAX),
        (5, 1, 3) => ("Bad recipient address syntax", Esc::BAD_DESTINATION_SYNTAX),
        (5, 5, 4) => ("Invalid command arguments", Esc::INVALID_ARGUMENTS),
        _ => ("Syntax error in parameters or arguments", Esc::SYNTAX_ERROR),
    };
    Canned {
        code: crate::reply::ReplyCode::PARAMETER_SYNTAX_ERROR,
        status: Some(status),
        text,
    }
}
