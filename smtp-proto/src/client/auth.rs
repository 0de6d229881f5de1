//! The client's side of AUTH (RFC 4954): choosing a mechanism and answering
//! challenges.
//!
//! The session picks the strongest mechanism the server offers that some
//! configured credential can drive. Strength, from strongest: the
//! application's own SASL mechanisms (it chose them, typically SCRAM), then
//! `XOAUTH2` (a scoped, expiring token), then `PLAIN` (RFC 4616, one round
//! trip), then `LOGIN` (obsolete, the same password in two lines). All of
//! the built-in ones send the secret in the clear inside TLS, which is why
//! AUTH waits for TLS unless plaintext is explicitly allowed.
//!
//! ```text
//! PLAIN    C: AUTH PLAIN base64(authzid NUL user NUL pass)   S: 235 | 535
//! LOGIN    C: AUTH LOGIN   S: 334 VXNlcm5hbWU6   C: base64(user)
//!                          S: 334 UGFzc3dvcmQ6   C: base64(pass)   S: 235 | 535
//! XOAUTH2  C: AUTH XOAUTH2 base64("user=" u ^A "auth=Bearer " t ^A ^A)
//!          S: 235 | 334 base64(error json)  C: (empty line)  S: 535
//! SASL     C: AUTH <mech>  S: 334 <challenge>  (application answers) … S: 235
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::config::{AuthConfig, Credentials};
use crate::keyword::Mechanism;
use crate::secret::Secret;

/// A mechanism with the credential that drives it.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Plain {
        authzid: Option<String>,
        username: String,
        password: Secret<String>,
    },
    Login {
        username: String,
        password: Secret<String>,
    },
    XOAuth2 {
        username: String,
        token: Secret<String>,
    },
    Sasl {
        mechanism: Mechanism<'static>,
    },
}

impl Plan {
    /// The mechanism name sent with AUTH.
    pub(crate) fn mechanism(&self) -> Mechanism<'static> {
        match self {
            Self::Plain { .. } => Mechanism::PLAIN,
            Self::Login { .. } => Mechanism::LOGIN,
            Self::XOAuth2 { .. } => Mechanism::XOAUTH2,
            Self::Sasl { mechanism } => mechanism.clone(),
        }
    }

    /// The raw initial response sent with the AUTH command, if the
    /// mechanism has one (RFC 4954 §4 allows it to save a round trip).
    pub(crate) fn initial_response(&self) -> Option<Secret<Vec<u8>>> {
        match self {
            Self::Plain {
                authzid,
                username,
                password,
            } => {
                let mut v = Vec::new();
                v.extend_from_slice(authzid.as_deref().unwrap_or("").as_bytes());
                v.push(0);
                v.extend_from_slice(username.as_bytes());
                v.push(0);
                v.extend_from_slice(password.expose().as_bytes());
                Some(Secret::new(v))
            }
            Self::XOAuth2 { username, token } => {
                let s = format!("user={username}\x01auth=Bearer {}\x01\x01", token.expose());
                Some(Secret::new(s.into_bytes()))
            }
            Self::Login { .. } | Self::Sasl { .. } => None,
        }
    }
}

/// Rank of a built-in mechanism (higher is stronger); application SASL
/// mechanisms rank above all of them.
fn builtin_rank(plan: &Plan) -> usize {
    match plan {
        Plan::Login { .. } => 0,
        Plan::Plain { .. } => 1,
        Plan::XOAuth2 { .. } => 2,
        Plan::Sasl { .. } => 3,
    }
}

/// The strongest plan among `config`'s credentials whose mechanism is in
/// `offered` (compared case-insensitively).
pub(crate) fn choose(config: &AuthConfig, offered: &[Mechanism<'_>]) -> Option<Plan> {
    let is_offered = |m: &Mechanism<'_>| offered.iter().any(|o| o == m);
    let mut best: Option<(usize, Plan)> = None;
    let mut consider = |rank: usize, plan: Plan| {
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, plan));
        }
    };
    for cred in &config.credentials {
        match cred {
            Credentials::Password {
                authzid,
                username,
                password,
            } => {
                if is_offered(&Mechanism::PLAIN) {
                    let plan = Plan::Plain {
                        authzid: authzid.clone(),
                        username: username.clone(),
                        password: password.clone(),
                    };
                    consider(builtin_rank(&plan), plan);
                } else if is_offered(&Mechanism::LOGIN) {
                    let plan = Plan::Login {
                        username: username.clone(),
                        password: password.clone(),
                    };
                    consider(builtin_rank(&plan), plan);
                }
            }
            Credentials::OAuth2 { username, token } => {
                if is_offered(&Mechanism::XOAUTH2) {
                    let plan = Plan::XOAuth2 {
                        username: username.clone(),
                        token: token.clone(),
                    };
                    consider(builtin_rank(&plan), plan);
                }
            }
            Credentials::Sasl { mechanisms } => {
                // First listed is strongest: rank by reverse position.
                let n = mechanisms.len();
                if let Some((i, m)) = mechanisms.iter().enumerate().find(|(_, m)| is_offered(m)) {
                    let plan = Plan::Sasl {
                        mechanism: m.clone(),
                    };
                    consider(builtin_rank(&plan) + (n - i), plan);
                }
            }
        }
    }
    best.map(|(_, plan)| plan)
}

/// What to do after a `334` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this response (raw; base64-encoded on the wire).
    Respond(Secret<Vec<u8>>),
    /// Ask the application (generic SASL), with the decoded challenge.
    AskApplication(Secret<Vec<u8>>),
    /// The exchange cannot go on: send `*` to cancel (RFC 4954 §4).
    Cancel,
}

/// A running AUTH exchange.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    plan: Plan,
    /// `334` challenges answered so far.
    steps: usize,
    /// Waiting for the application's answer to a challenge.
    pub(crate) awaiting_application: bool,
    /// The client cancelled (`*`); the next reply ends the exchange.
    pub(crate) cancelled: bool,
}

impl Exchange {
    /// Starts an exchange.
    pub(crate) fn new(plan: Plan) -> Self {
        Self {
            plan,
            steps: 0,
            awaiting_application: false,
            cancelled: false,
        }
    }

    /// The mechanism being run.
    pub(crate) fn mechanism(&self) -> Mechanism<'static> {
        self.plan.mechanism()
    }

    /// Answers a `334` whose text (after the code) is `text`.
    pub(crate) fn on_challenge(&mut self, text: &str) -> Step {
        self.steps += 1;
        match &self.plan {
            Plan::Login { username, password } => match self.steps {
                // The prompts are "Username:" and "Password:" in base64;
                // servers vary the wording, so the order decides.
                1 => Step::Respond(Secret::new(username.clone().into_bytes())),
                2 => Step::Respond(Secret::new(password.expose().clone().into_bytes())),
                _ => Step::Cancel,
            },
            // XOAUTH2 failure: the server sends an error document and
            // expects an empty response before its final 535.
            Plan::XOAuth2 { .. } if self.steps == 1 => Step::Respond(Secret::new(Vec::new())),
            // PLAIN sent everything up front; any challenge is unexpected.
            Plan::Plain { .. } | Plan::XOAuth2 { .. } => Step::Cancel,
            Plan::Sasl { .. } => match STANDARD.decode(text.trim()) {
                Ok(bytes) => {
                    self.awaiting_application = true;
                    Step::AskApplication(Secret::new(bytes))
                }
                Err(_) => Step::Cancel,
            },
        }
    }
}

/// Appends a SASL response line: base64 then CRLF (RFC 4954 §4). An empty
/// response is an empty line.
pub(crate) fn encode_response(raw: &[u8], out: &mut Vec<u8>) {
    let mut line = String::new();
    STANDARD.encode_string(raw, &mut line);
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the cancel line `*` CRLF (RFC 4954 §4).
pub(crate) fn encode_cancel(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base64 of an initial response as the AUTH command writes it.
    fn initial_response_text(raw: &[u8]) -> String {
        if raw.is_empty() {
            "=".to_owned()
        } else {
            STANDARD.encode(raw)
        }
    }

    fn mechs(names: &[&'static str]) -> Vec<Mechanism<'static>> {
        names.iter().map(|n| Mechanism::new(n).unwrap()).collect()
    }

    #[test]
    fn picks_the_strongest_offered() {
        let config = AuthConfig {
            credentials: vec![
                Credentials::password("u", "p"),
                Credentials::oauth2("u", "t"),
            ],
            allow_plaintext: false,
        };
        let pick = |o: &[&'static str]| choose(&config, &mechs(o)).map(|p| p.mechanism());
        assert_eq!(
            pick(&["LOGIN", "PLAIN", "XOAUTH2"]),
            Some(Mechanism::XOAUTH2)
        );
        assert_eq!(pick(&["login", "plain"]), Some(Mechanism::PLAIN));
        assert_eq!(pick(&["LOGIN"]), Some(Mechanism::LOGIN));
        assert_eq!(pick(&["CRAM-MD5"]), None);
        let sasl = AuthConfig::new(Credentials::Sasl {
            mechanisms: mechs(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
        });
        assert_eq!(
            choose(&sasl, &mechs(&["PLAIN", "SCRAM-SHA-256"])).map(|p| p.mechanism()),
            Some(Mechanism::new("SCRAM-SHA-256").unwrap())
        );
    }

    #[test]
    fn initial_responses() {
        let plain = Plan::Plain {
            authzid: None,
            username: "tim".into(),
            password: Secret::new("tanstaaftanstaaf".into()),
        };
        let ir = plain.initial_response().unwrap();
        assert_eq!(
            initial_response_text(ir.expose()),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm" // RFC 4954 §9 example
        );
        let x = Plan::XOAuth2 {
            username: "someuser@example.com".into(),
            token: Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg".into()),
        };
        // Google's documented example.
        assert_eq!(
            initial_response_text(x.initial_response().unwrap().expose()),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert_eq!(initial_response_text(b""), "=");
    }

    #[test]
    fn login_answers_in_order() {
        let mut ex = Exchange::new(Plan::Login {
            username: "u".into(),
            password: Secret::new("p".into()),
        });
        assert_eq!(
            ex.on_challenge("VXNlcm5hbWU6"),
            Step::Respond(Secret::new(b"u".to_vec()))
        );
        assert_eq!(
            ex.on_challenge("UGFzc3dvcmQ6"),
            Step::Respond(Secret::new(b"p".to_vec()))
        );
        assert_eq!(ex.on_challenge("x"), Step::Cancel);
        let mut out = Vec::new();
        encode_response(b"u", &mut out);
        assert_eq!(out, b"dQ==\r\n");
    }

    #[test]
    fn sasl_decodes_challenges() {
        let mut ex = Exchange::new(Plan::Sasl {
            mechanism: Mechanism::new("X-TEST").unwrap(),
        });
        assert_eq!(
            ex.on_challenge("aGk="),
            Step::AskApplication(Secret::new(b"hi".to_vec()))
        );
        assert!(ex.awaiting_application);
        assert_eq!(ex.on_challenge("!!"), Step::Cancel);
    }
}
