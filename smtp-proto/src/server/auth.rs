//! The AUTH exchange (RFC 4954 §4) as the server runs it: reading response
//! lines (up to 12288 octets), `*` to cancel, base64, and the PLAIN and
//! LOGIN steps. The decoded data lives in a small server-owned buffer that
//! the auth events borrow; it is cleared when the exchange ends.

use crate::framing::Frame;

use super::replies::{self, Canned};
use super::sasl::{self, Response};
use super::state::{Awaiting, Pending, SaslStep, State};
use super::{Server, Step, SyncPoint};

impl Server {
    /// Reads one SASL response line.
    pub(super) fn read_sasl(&mut self) -> Step {
        let State::Sasl(step) = &self.state else {
            return Step::Stall;
        };
        let step = step.clone();
        let len = match self.framer.next(self.input.bytes()) {
            Frame::Line(line) => line.wire_len(),
            Frame::TooLong { discard, .. } => {
                // RFC 4954 §4: "500 5.5.6 Authentication Exchange line is
                // too long"; the exchange fails, the rest of the line is
                // dropped as it arrives.
                self.input.consume(discard);
                return self.fail_auth(replies::AUTH_LINE_TOO_LONG, true);
            }
            Frame::Discard { discard, .. } => {
                self.input.consume(discard);
                return Step::Continue;
            }
            Frame::NeedMore => return self.need_more(),
        };
        if self.sync_check(SyncPoint::Auth, len) {
            // A response line with more behind it: the client did not wait
            // for the server's reply (RFC 4954 §4: one line per reply).
            self.input.consume(len);
            self.sasl.clear();
            self.leave_sasl();
            self.sync_close(SyncPoint::Auth);
            return Step::Continue;
        }
        let content = len.saturating_sub(2);
        if !matches!(step, SaslStep::LoginPassword { .. }) {
            self.sasl.clear();
        }
        let response = {
            let line = self.input.bytes().get(..content).unwrap_or_default();
            sasl::decode_response(line, &mut self.sasl)
        };
        self.input.consume(len);
        match response {
            // RFC 4954 §4: a cancelled exchange MUST get 501; the client's
            // choice, not a protocol error.
            Response::Cancel => self.fail_auth(replies::AUTH_CANCELLED, false),
            Response::Invalid => self.fail_auth(replies::BAD_BASE64, true),
            Response::Data => match step {
                SaslStep::Plain => self.credentials_plain(),
                SaslStep::LoginUser => self.login_user(),
                SaslStep::LoginPassword { user_len } => self.login_password(user_len),
                SaslStep::Relay => {
                    self.leave_sasl();
                    self.awaiting = Some(Awaiting::Auth);
                    Step::Emit(Pending::AuthResponse)
                }
            },
        }
    }

    /// The SASL buffer holds a PLAIN message: hand it out or refuse it.
    pub(super) fn credentials_plain(&mut self) -> Step {
        match sasl::split_plain(&self.sasl) {
            Some(plain) => {
                self.leave_sasl();
                self.awaiting = Some(Awaiting::AuthCredentials);
                Step::Emit(Pending::AuthPlain {
                    authzid: plain.authzid,
                    authcid: plain.authcid,
                    password: plain.password,
                })
            }
            None => self.fail_auth(replies::BAD_CREDENTIALS_FORMAT, true),
        }
    }

    /// The SASL buffer holds the LOGIN user name: ask for the password.
    pub(super) fn login_user(&mut self) -> Step {
        if !sasl::valid_login_part(&self.sasl) {
            return self.fail_auth(replies::BAD_CREDENTIALS_FORMAT, true);
        }
        let user_len = self.sasl.len();
        sasl_challenge(self, sasl::LOGIN_PASSWORD);
        self.enter_sasl(SaslStep::LoginPassword { user_len });
        Step::Continue
    }

    /// The SASL buffer holds the LOGIN user name and password.
    fn login_password(&mut self, user_len: usize) -> Step {
        let password = self.sasl.get(user_len..).unwrap_or_default();
        if !sasl::valid_login_part(password) {
            return self.fail_auth(replies::BAD_CREDENTIALS_FORMAT, true);
        }
        self.leave_sasl();
        self.awaiting = Some(Awaiting::AuthCredentials);
        Step::Emit(Pending::AuthLogin { user_len })
    }

    /// Ends the exchange with an automatic refusal.
    fn fail_auth(&mut self, reply: Canned, counts: bool) -> Step {
        self.sasl.clear();
        self.leave_sasl();
        self.state = State::Command(None);
        if counts {
            self.error(reply);
        } else {
            self.say(reply);
        }
        Step::Continue
    }
}

/// Queues a `334` challenge.
fn sasl_challenge(server: &mut Server, challenge: &[u8]) {
    replies::write_challenge(server.output.queue(), challenge);
}
