//! The store backend with SPF and DMARC, in process, asking the fake DNS
//! server: the application's policies get every result (at `MAIL FROM`
//! the SPF result, at the end of data SPF, DKIM and DMARC) and their
//! replies are what the client sees; an authenticated client is never
//! refused for SPF but its result is still recorded.

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hickory_proto::rr::RecordType;
use smtp_mio::server::auth_checks::{AuthChecks, AuthVerdicts, Decision};
use smtp_mio::server::store::{Credentials, StoreBackend};
use smtp_proto::dmarc::Verdict as DmarcVerdict;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::spf::Verdict as SpfVerdict;
use smtp_tests::fake_dns::{self, Answer, FakeDns};
use smtp_tests::line_client::LineClient;

use common::{TIMEOUT, TestServer, dkim_service, start_with, store_backend};

fn txt(owner: &'static str, text: &'static str) -> (&'static str, RecordType, Answer) {
    (
        owner,
        RecordType::TXT,
        Answer::records(vec![fake_dns::txt(owner, &[text])]),
    )
}

fn dns() -> FakeDns {
    FakeDns::start(vec![
        txt("pass.example", "v=spf1 ip4:127.0.0.1 -all"),
        txt("_dmarc.pass.example", "v=DMARC1; p=reject"),
        txt("fail.example", "v=spf1 -all"),
        txt("soft.example", "v=spf1 ~all"),
        txt("_dmarc.rej.example", "v=DMARC1; p=reject"),
    ])
}

fn server(
    dns: &FakeDns,
    checks: AuthChecks,
    configure: impl FnOnce(StoreBackend) -> StoreBackend,
) -> TestServer {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let (dir, backend) = store_backend(credentials);
    let backend = backend.with_auth_checks(dkim_service(dns), checks);
    start_with(configure(backend), dir, |options| {
        options.tls = None;
        options.session.tls = smtp_proto::TlsMode::Disabled;
        options.session.auth.mechanisms = vec![Mechanism::PLAIN];
        options.session.auth.require_tls = false;
    })
}

/// A plain SMTP client, greeted and past EHLO, one command at a time.
struct Client(LineClient);

impl Client {
    fn connect(server: &TestServer) -> Self {
        let mut c = LineClient::greeted(server.addr, TIMEOUT);
        assert!(c.cmd("EHLO client.test").starts_with("250"));
        Self(c)
    }

    fn cmd(&mut self, line: &str) -> String {
        self.0.cmd(line)
    }

    /// MAIL, and if accepted RCPT, DATA and the message: both replies.
    fn send(&mut self, from: &str, header_from: &str) -> (String, Option<String>) {
        let message = format!("From: <{header_from}>\r\nSubject: t\r\n\r\nHello.\r\n");
        self.0.transaction(from, "bob@example.net", &message)
    }
}

#[test]
fn the_applications_policies_see_every_result() {
    let dns = dns();
    let seen: Arc<Mutex<Vec<AuthVerdicts>>> = Arc::default();
    let spf_seen: Arc<Mutex<Vec<(SpfVerdict, bool)>>> = Arc::default();
    let server = {
        let seen = Arc::clone(&seen);
        let spf_seen = Arc::clone(&spf_seen);
        server(&dns, AuthChecks::new(), move |backend| {
            backend
                .with_spf_policy(move |result, authenticated| {
                    spf_seen
                        .lock()
                        .unwrap()
                        .push((result.verdict(), authenticated));
                    (result.verdict() == SpfVerdict::SoftFail).then(|| {
                        Reply::with_enhanced(
                            ReplyCode::MAILBOX_UNAVAILABLE,
                            EnhancedStatusCode::SPF_FAILED,
                            "Softfail is fail here",
                        )
                        .unwrap()
                    })
                })
                .with_message_policy(move |verdicts| {
                    seen.lock().unwrap().push(verdicts.clone());
                    match verdicts.dmarc.as_ref().map(|d| d.verdict()) {
                        Some(DmarcVerdict::Fail) => Decision::Refuse(
                            Reply::with_enhanced(
                                ReplyCode::TRANSACTION_FAILED,
                                EnhancedStatusCode::NOT_AUTHORIZED,
                                "Not from there",
                            )
                            .unwrap(),
                        ),
                        _ => Decision::Accept,
                    }
                })
        })
    };
    let mut c = Client::connect(&server);
    let (mail, _) = c.send("bob@soft.example", "bob@soft.example");
    assert_eq!(mail, "550 5.7.23 Softfail is fail here");
    let (_, end) = c.send("bob@fail.example", "bob@rej.example");
    assert_eq!(end.unwrap(), "554 5.7.1 Not from there");
    let (_, end) = c.send("bob@pass.example", "bob@pass.example");
    assert!(end.unwrap().starts_with("250"));
    assert_eq!(
        *spf_seen.lock().unwrap(),
        [
            (SpfVerdict::SoftFail, false),
            (SpfVerdict::Fail, false),
            (SpfVerdict::Pass, false)
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let verdicts: Vec<_> = seen
        .iter()
        .map(|v| {
            (
                v.spf.as_ref().map(|s| s.verdict()),
                v.dkim.is_some(),
                v.dmarc.as_ref().map(|d| d.verdict()),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (Some(SpfVerdict::Fail), false, Some(DmarcVerdict::Fail)),
            (Some(SpfVerdict::Pass), false, Some(DmarcVerdict::Pass)),
        ]
    );
    // Only the passing message was kept.
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].starts_with(
            "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=bob@pass.example;\r\n"
        ),
        "{}",
        messages[0]
    );
}

#[test]
fn an_authenticated_client_is_annotated_not_refused() {
    let dns = dns();
    let mut checks = AuthChecks::new();
    checks.spf_reject = true;
    let server = server(&dns, checks, |b| b);
    let mut c = Client::connect(&server);
    // Before AUTH: refused.
    let (mail, _) = c.send("bob@fail.example", "bob@fail.example");
    assert!(mail.starts_with("550 5.7.23 "), "{mail}");
    let token = base64::engine::general_purpose::STANDARD.encode("\0alice\0s3cret");
    assert!(c.cmd(&format!("AUTH PLAIN {token}")).starts_with("235"));
    let (mail, end) = c.send("bob@fail.example", "bob@fail.example");
    assert!(mail.starts_with("250"), "{mail}");
    assert!(end.unwrap().starts_with("250"));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].starts_with(
            "Authentication-Results: mx.test;\r\n\tspf=fail smtp.mailfrom=bob@fail.example;\r\n"
        ),
        "{}",
        messages[0]
    );
}
