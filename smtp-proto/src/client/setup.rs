//! Connection setup, run by the session itself: greeting, EHLO/HELO/LHLO,
//! STARTTLS, AUTH (see the diagram in `state.rs`).

use super::auth::{self, Exchange, Step};
use super::event::{Error, Event, ReplyTo, UsageError};
use super::state::State;
use super::{Client, Protocol, TlsMode};
use crate::command::{Command, InitialResponse};
use crate::ehlo::EhloReply;
use crate::framing::AUTH_LINE_MAX;
use crate::reply::{Reply, ReplyCode};
use crate::secret::Secret;

impl Client {
    /// The greeting arrived (RFC 5321 §3.1).
    pub(super) fn on_greeting(&mut self, reply: Reply<'static>) {
        if reply.is_positive_completion() {
            self.send_hello();
        } else {
            // `554` (or anything else): no SMTP service here. RFC 5321 §3.1:
            // the client should send QUIT and wait for the reply.
            self.fail(Error::GreetingRejected(reply), true);
        }
    }

    /// Sends EHLO, or LHLO under LMTP, with the configured name.
    pub(super) fn send_hello(&mut self) {
        let host = self.config.helo_name.clone();
        let (command, to) = match self.config.protocol {
            Protocol::Lmtp => (Command::Lhlo { host }, ReplyTo::Lhlo),
            _ => (Command::Ehlo { host }, ReplyTo::Ehlo),
        };
        self.state = State::Hello;
        self.extensions = None;
        self.send_command(&command, to);
    }

    /// The reply to EHLO or LHLO.
    pub(super) fn on_hello(&mut self, reply: Reply<'static>) {
        if reply.is_positive_completion() {
            // Only `250` is an EHLO reply; a `2yz` other than 250 carries no
            // extensions.
            self.extensions = Some(
                EhloReply::parse(&reply)
                    .map(|r| r.into_extensions().into_owned())
                    .unwrap_or_default(),
            );
            self.after_hello();
            return;
        }
        let no_ehlo = matches!(
            reply.code(),
            ReplyCode::SYNTAX_ERROR | ReplyCode::COMMAND_NOT_IMPLEMENTED
        );
        if no_ehlo && self.config.protocol == Protocol::Smtp {
            // RFC 5321 §4.1.4 / §3.2: an old server; HELO, no extensions.
            self.state = State::Helo;
            let host = self.config.helo_name.clone();
            self.send_command(&Command::Helo { host }, ReplyTo::Helo);
        } else {
            self.fail(Error::HelloRejected(reply), true);
        }
    }

    /// The reply to the HELO fallback.
    pub(super) fn on_helo(&mut self, reply: Reply<'static>) {
        if reply.is_positive_completion() {
            self.extensions = None;
            self.after_hello();
        } else {
            self.fail(Error::HelloRejected(reply), true);
        }
    }

    /// After a successful hello: STARTTLS if wanted, else AUTH, else ready.
    fn after_hello(&mut self) {
        if !self.tls && matches!(self.config.tls, TlsMode::Required | TlsMode::Opportunistic) {
            let offered = self
                .extensions
                .as_ref()
                .is_some_and(|e| e.supports_starttls());
            if offered {
                self.state = State::StartTls;
                self.send_command(&Command::StartTls, ReplyTo::StartTls);
                return;
            }
            if self.config.tls == TlsMode::Required {
                self.fail(Error::StartTlsNotOffered, true);
                return;
            }
        }
        self.start_auth_or_ready();
    }

    /// The reply to STARTTLS.
    pub(super) fn on_starttls(&mut self, reply: Reply<'static>) {
        if reply.code() == ReplyCode::SERVICE_READY {
            // Nothing learned in plaintext survives (RFC 3207 §4.2); the
            // caller checks that nothing followed the 220.
            self.extensions = None;
            self.state = State::Handshake;
            self.starttls_signalled = false;
            return;
        }
        if self.config.tls == TlsMode::Required {
            self.fail(Error::StartTlsRefused(reply), true);
        } else {
            // Opportunistic: go on in plaintext with what EHLO said.
            self.start_auth_or_ready();
        }
    }

    /// AUTH if configured and not done yet, else ready.
    fn start_auth_or_ready(&mut self) {
        let Some(config) = self.config.auth.as_ref() else {
            self.become_ready();
            return;
        };
        if self.authenticated.is_some() {
            self.become_ready();
            return;
        }
        if !self.tls && !config.allow_plaintext {
            self.fail(Error::AuthRequiresTls, true);
            return;
        }
        let offered = self
            .extensions
            .as_ref()
            .map(|e| e.auth_mechanisms().to_vec())
            .unwrap_or_default();
        let Some(plan) = auth::choose(config, &offered) else {
            self.fail(Error::AuthNotAvailable, true);
            return;
        };
        let mechanism = plan.mechanism();
        let initial_response = plan
            .initial_response()
            .map(|ir| InitialResponse::new(ir.expose()));
        self.state = State::Auth(Exchange::new(plan));
        // Challenges and the AUTH line may be up to 12288 octets (RFC 4954 §4).
        self.framer
            .set_max_len(self.config.max_reply_line.max(AUTH_LINE_MAX));
        self.send_command(
            &Command::Auth {
                mechanism,
                initial_response,
            },
            ReplyTo::Auth,
        );
    }

    /// A reply during AUTH.
    pub(super) fn on_auth(&mut self, reply: Reply<'static>) {
        let State::Auth(exchange) = &mut self.state else {
            return;
        };
        if reply.is_positive_completion() {
            let mechanism = exchange.mechanism();
            self.framer.set_max_len(self.config.max_reply_line);
            self.authenticated = Some(mechanism.clone());
            self.events.push_back(Event::Authenticated { mechanism });
            self.become_ready();
            return;
        }
        if reply.code() != ReplyCode::AUTH_CHALLENGE || exchange.cancelled {
            let error = if exchange.cancelled && exchange.awaiting_application {
                Error::AuthCancelled
            } else {
                Error::AuthFailed(reply)
            };
            self.framer.set_max_len(self.config.max_reply_line);
            self.fail(error, true);
            return;
        }
        match exchange.on_challenge(reply.first_line()) {
            Step::Respond(raw) => {
                auth::encode_response(raw.expose(), &mut self.out);
                self.push_in_flight(ReplyTo::Auth, true);
            }
            Step::AskApplication(challenge) => {
                let mechanism = exchange.mechanism();
                self.events.push_back(Event::AuthChallenge {
                    mechanism,
                    challenge,
                });
            }
            Step::Cancel => {
                exchange.cancelled = true;
                auth::encode_cancel(&mut self.out);
                self.push_in_flight(ReplyTo::Auth, true);
            }
        }
    }

    /// Answers the pending [`Event::AuthChallenge`] of an
    /// application-driven SASL mechanism with `response` (raw bytes; the
    /// session base64-encodes them).
    pub fn auth_respond(&mut self, response: Secret<Vec<u8>>) -> Result<(), UsageError> {
        let State::Auth(exchange) = &mut self.state else {
            return Err(UsageError::NoChallenge);
        };
        if !exchange.awaiting_application || !self.in_flight.is_empty() {
            return Err(UsageError::NoChallenge);
        }
        exchange.awaiting_application = false;
        auth::encode_response(response.expose(), &mut self.out);
        self.push_in_flight(ReplyTo::Auth, true);
        Ok(())
    }

    /// Cancels the SASL exchange at a pending [`Event::AuthChallenge`]
    /// (`*`, RFC 4954 §4); the session then fails with
    /// [`Error::AuthCancelled`].
    pub fn auth_cancel(&mut self) -> Result<(), UsageError> {
        let State::Auth(exchange) = &mut self.state else {
            return Err(UsageError::NoChallenge);
        };
        if !exchange.awaiting_application || !self.in_flight.is_empty() {
            return Err(UsageError::NoChallenge);
        }
        exchange.cancelled = true;
        auth::encode_cancel(&mut self.out);
        self.push_in_flight(ReplyTo::Auth, true);
        Ok(())
    }

    fn become_ready(&mut self) {
        self.state = State::Ready;
        self.events.push_back(Event::Ready);
    }
}
