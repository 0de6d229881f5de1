//! Small constructors the session tests share: the test client's
//! configuration, paths and envelope commands from their text (each
//! panics on text that does not parse: the tests write only valid values),
//! and the questions they often ask of a transaction's report.

use smtp_proto::TlsMode;
use smtp_proto::address::{ForwardPath, Host, Mailbox, ReversePath};
use smtp_proto::client::{self, Outcome, TransactionReport};
use smtp_proto::command::{Command, MailParameters, RcptParameters};

/// The test client's configuration: it says `EHLO client.example`, with
/// the TLS mode `tls`.
pub fn client_config(tls: TlsMode) -> client::Config {
    let mut c = client::Config::new(Host::parse("client.example").unwrap());
    c.tls = tls;
    c
}

/// A mailbox from its text, e.g. `a@example.org`.
pub fn mailbox(s: &str) -> Mailbox<'static> {
    Mailbox::parse(s).unwrap().into_owned()
}

/// The reverse-path of the mailbox `s` (`MAIL FROM:<s>`).
pub fn from(s: &str) -> ReversePath<'static> {
    ReversePath::Mailbox(mailbox(s))
}

/// The forward-path of the mailbox `s` (`RCPT TO:<s>`).
pub fn to(s: &str) -> ForwardPath<'static> {
    ForwardPath::Mailbox(mailbox(s))
}

/// `MAIL FROM:<s>` without parameters.
pub fn mail(s: &str) -> Command<'static> {
    Command::Mail {
        from: from(s),
        params: MailParameters::default(),
    }
}

/// `RCPT TO:<s>` without parameters.
pub fn rcpt(s: &str) -> Command<'static> {
    Command::Rcpt {
        to: to(s),
        params: RcptParameters::default(),
    }
}

/// Each recipient's outcome in `report`, in envelope order.
pub fn outcomes(report: &TransactionReport) -> Vec<Outcome> {
    report.recipients.iter().map(|r| r.outcome).collect()
}

/// Whether every recipient of `report` failed permanently.
pub fn all_permanent(report: &TransactionReport) -> bool {
    report
        .recipients
        .iter()
        .all(|r| r.outcome == Outcome::PermanentFailure)
}
