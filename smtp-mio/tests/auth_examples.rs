//! SPF and DMARC end to end, through the `mail-server` example run as a
//! process, asking the fake DNS server of the tests: SPF pass, fail,
//! softfail, temperror (a silent DNS server) and permerror (too many
//! lookups), the null sender's HELO check; DMARC pass through SPF alone
//! and through DKIM alone, failure under `p=none`, `p=quarantine` and
//! `p=reject`, the organizational domain's record and its `sp=` for a
//! subdomain; the stored `Authentication-Results` parsed with
//! `smtp_proto::auth_results` and checked property by property; a forged
//! field in our name removed; then the policy flags (`--spf-reject`,
//! `--dmarc-enforce`) and `--exempt-network`. Three server processes in
//! all, several cases each; every read is bounded by a deadline.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::RecordType;
use smtp_proto::auth_results::{AuthenticationResults, MethodResult};
use smtp_proto::dkim::{Signer, SigningKey, SystemRandom};
use smtp_tests::fake_dns::{self, Answer, FakeDns};
use smtp_tests::line_client::LineClient;
use smtp_tests::mail_server;

/// Long enough for a debug build to start, or a reply to come, on a
/// loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
const HOSTNAME: &str = "mx.test.example";
/// The client's greeting (its SPF record passes 127.0.0.1).
const HELO: &str = "client.test.example";

fn ed_key() -> SigningKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../smtp-proto/src/dkim/testdata/ed25519.pem"
    ))
    .unwrap();
    SigningKey::from_pem(&pem).unwrap()
}

fn txt(owner: &str, text: &str) -> (String, RecordType, Answer) {
    (
        owner.to_owned(),
        RecordType::TXT,
        Answer::records(vec![fake_dns::txt(owner, &[text])]),
    )
}

/// The zones of every case. The client is 127.0.0.1.
fn zone() -> FakeDns {
    let mut entries = vec![
        txt(HELO, "v=spf1 ip4:127.0.0.1 -all"),
        txt("pass.example", "v=spf1 ip4:127.0.0.0/8 -all"),
        txt("_dmarc.pass.example", "v=DMARC1; p=reject"),
        txt("fail.example", "v=spf1 ip4:192.0.2.0/24 -all"),
        txt("_dmarc.fail.example", "v=DMARC1; p=none"),
        txt("soft.example", "v=spf1 ip4:192.0.2.0/24 ~all"),
        txt("dkim.example", "v=spf1 -all"),
        txt("_dmarc.dkim.example", "v=DMARC1; p=reject"),
        txt("_dmarc.quar.example", "v=DMARC1; p=quarantine"),
        txt("_dmarc.rej.example", "v=DMARC1; p=reject"),
        // Organizational domain: the record of orgfb.example serves
        // mail.orgfb.example, with its sp= for a subdomain.
        txt("orgfb.example", "v=spf1 ip4:127.0.0.1 -all"),
        txt("_dmarc.orgfb.example", "v=DMARC1; p=reject; sp=quarantine"),
        ("silent.example".to_owned(), RecordType::TXT, Answer::Silent),
    ];
    // Eleven DNS-querying terms, each answered (no void lookup): one over
    // RFC 7208 §4.6.4's ten.
    let terms: Vec<String> = (1..=11).map(|i| format!("a:h{i}.many.example")).collect();
    entries.push(txt(
        "many.example",
        &format!("v=spf1 {} -all", terms.join(" ")),
    ));
    for i in 1..=11 {
        let owner = format!("h{i}.many.example");
        entries.push((
            owner.clone(),
            RecordType::A,
            Answer::records(vec![fake_dns::addr(&owner, "192.0.2.1")]),
        ));
    }
    let record = ed_key().dns_record();
    entries.push(txt("ed._domainkey.dkim.example", &record));
    FakeDns::start(
        entries
            .iter()
            .map(|(o, t, a)| (o.as_str(), *t, a.clone()))
            .collect(),
    )
}

/// A `mail-server` process delivering into `dir/maildir`.
struct MailServer {
    process: mail_server::MailServer,
    addr: SocketAddr,
}

impl MailServer {
    fn start(dir: &Path, dns: &FakeDns, extra: &[&str]) -> Self {
        Self::start_with_timeout(dir, dns, 2, extra)
    }

    /// [`start`](Self::start) with `--dns-timeout seconds`.
    fn start_with_timeout(dir: &Path, dns: &FakeDns, seconds: u64, extra: &[&str]) -> Self {
        let seconds = seconds.to_string();
        let mut args = vec!["--dns-timeout", &seconds];
        args.extend(extra);
        let process = mail_server::MailServer::delivering(dir, HOSTNAME, dns.addr(), &args);
        Self {
            addr: process.addr(),
            process,
        }
    }

    /// The stored message whose body holds `marker`.
    fn message(&self, marker: &str) -> String {
        let found: Vec<String> = self
            .process
            .stored()
            .into_iter()
            .filter(|m| m.contains(marker))
            .collect();
        assert_eq!(found.len(), 1, "one message with {marker}");
        found.into_iter().next().unwrap()
    }

    fn stored(&self) -> usize {
        self.process.stored().len()
    }
}

/// A plain SMTP client, greeted, one command at a time.
struct Client(LineClient);

impl Client {
    fn connect(server: &MailServer) -> Self {
        Self(LineClient::greeted(server.addr, DEADLINE))
    }

    fn reply(&mut self) -> String {
        self.0.reply()
    }

    fn cmd(&mut self, line: &str) -> String {
        self.0.cmd(line)
    }

    /// One transaction to bob@example.net; the replies to MAIL and to the
    /// end of data (or `None` when MAIL was refused).
    fn send(&mut self, from: &str, message: &str) -> (String, Option<String>) {
        self.0.transaction(from, "bob@example.net", message)
    }
}

/// A message from `from` whose body is `marker`.
fn message(from: &str, marker: &str) -> String {
    format!("From: <{from}>\r\nTo: <bob@example.net>\r\nSubject: {marker}\r\n\r\n{marker}\r\n")
}

/// [`message`] signed by `d=dkim.example`.
fn signed(from: &str, marker: &str) -> String {
    let text = message(from, marker);
    let signer = Signer::new(ed_key(), "dkim.example", "ed").unwrap();
    let field = signer
        .sign_message(text.as_bytes(), SystemTime::now(), &SystemRandom::new())
        .unwrap();
    format!("{field}{text}")
}

/// The first header field of a stored message, parsed: it must be our
/// `Authentication-Results`.
fn results(stored: &str) -> AuthenticationResults {
    let field = first_field(stored);
    let (name, value) = field.split_once(':').unwrap();
    assert_eq!(name, "Authentication-Results", "{stored}");
    let parsed = AuthenticationResults::parse(value.as_bytes()).unwrap();
    assert_eq!(parsed.authserv_id(), HOSTNAME);
    parsed
}

/// The header field at the start of `text`, with its folded lines.
fn first_field(text: &str) -> String {
    let mut lines = text.split("\r\n");
    let mut field = lines.next().unwrap().to_owned();
    for line in lines {
        if !line.starts_with([' ', '\t']) {
            break;
        }
        field.push_str("\r\n");
        field.push_str(line);
    }
    field
}

/// The one result of `method`.
fn one<'a>(field: &'a AuthenticationResults, method: &'a str) -> &'a MethodResult {
    let all: Vec<_> = field.of_method(method).collect();
    assert_eq!(all.len(), 1, "one {method} result in {}", field.value());
    all[0]
}

fn check(field: &AuthenticationResults, method: &str, result: &str, props: &[(&str, &str)]) {
    let r = one(field, method);
    assert_eq!(r.result(), result, "{method} in {}", field.value());
    for (name, value) in props {
        let (ptype, property) = name.split_once('.').unwrap();
        assert_eq!(
            r.property(ptype, property),
            Some(*value),
            "{name} in {}",
            field.value()
        );
    }
}

#[test]
fn results_are_recorded_for_every_case() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(dir.path(), &dns, &[]);
    let mut c = Client::connect(&server);
    assert!(c.cmd(&format!("EHLO {HELO}")).starts_with("250"));

    // (sender, message, spf, dkim, dmarc and its properties)
    type Case<'a> = (
        &'a str,
        String,
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
    );
    let cases: Vec<Case<'_>> = vec![
        // SPF pass; DMARC pass through SPF alone (unsigned).
        (
            "alice@pass.example",
            message("alice@pass.example", "case-spf-pass"),
            "pass",
            "none",
            "pass",
            &[("header.from", "pass.example"), ("policy.dmarc", "none")],
        ),
        // SPF fail; DMARC fail under p=none.
        (
            "alice@fail.example",
            message("alice@fail.example", "case-spf-fail"),
            "fail",
            "none",
            "fail",
            &[("header.from", "fail.example"), ("policy.dmarc", "none")],
        ),
        // SPF softfail; DMARC fail under p=quarantine (recorded only).
        (
            "bounce@soft.example",
            message("alice@quar.example", "case-softfail"),
            "softfail",
            "none",
            "fail",
            &[
                ("header.from", "quar.example"),
                ("policy.dmarc", "quarantine"),
            ],
        ),
        // SPF temperror (the DNS server never answers); DMARC fails under
        // p=reject, recorded only.
        (
            "bounce@silent.example",
            message("alice@rej.example", "case-temperror"),
            "temperror",
            "none",
            "fail",
            &[("header.from", "rej.example"), ("policy.dmarc", "reject")],
        ),
        // SPF permerror (eleven lookups); no DMARC record: none.
        (
            "bounce@many.example",
            message("alice@nodmarc.example", "case-permerror"),
            "permerror",
            "none",
            "none",
            &[("header.from", "nodmarc.example")],
        ),
        // DMARC pass through DKIM alone (SPF of dkim.example fails).
        (
            "alice@dkim.example",
            signed("alice@dkim.example", "case-dkim-only"),
            "fail",
            "pass",
            "pass",
            &[("header.from", "dkim.example"), ("policy.dmarc", "none")],
        ),
        // Organizational domain: mail.orgfb.example has no record; the
        // one of orgfb.example applies, with its sp= for a subdomain.
        // SPF passes for orgfb.example, aligned (relaxed): pass.
        (
            "bounce@orgfb.example",
            message("alice@mail.orgfb.example", "case-org-pass"),
            "pass",
            "none",
            "pass",
            &[
                ("header.from", "mail.orgfb.example"),
                ("policy.dmarc", "none"),
            ],
        ),
        // The same subdomain, not aligned: sp=quarantine, not p=reject.
        (
            "alice@pass.example",
            message("alice@mail.orgfb.example", "case-org-sp"),
            "pass",
            "none",
            "fail",
            &[
                ("header.from", "mail.orgfb.example"),
                ("policy.dmarc", "quarantine"),
            ],
        ),
    ];
    for (from, text, spf, dkim, dmarc, props) in &cases {
        let (mail, end) = c.send(from, text);
        assert!(mail.starts_with("250"), "{from}: {mail}");
        let end = end.unwrap();
        assert!(end.starts_with("250"), "{from}: {end}");
        let marker = text.lines().last().unwrap();
        let field = results(&server.message(marker));
        check(&field, "spf", spf, &[("smtp.mailfrom", from)]);
        check(&field, "dkim", dkim, &[]);
        check(&field, "dmarc", dmarc, props);
        // Why an error is an error.
        let reason = one(&field, "spf").reason();
        match *spf {
            "permerror" => assert_eq!(reason, Some("more than 10 DNS-querying terms")),
            "temperror" => assert_eq!(reason, Some("no answer in time")),
            _ => assert_eq!(reason, None),
        }
        if *dkim == "pass" {
            check(&field, "dkim", "pass", &[("header.d", "dkim.example")]);
        }
        assert!(!server.message(marker).contains("X-Quarantine"));
    }

    // The null sender: the HELO identity is checked.
    let (_, end) = c.send("", &message("postmaster@pass.example", "case-null"));
    assert!(end.unwrap().starts_with("250"));
    let field = results(&server.message("case-null"));
    check(&field, "spf", "pass", &[("smtp.helo", HELO)]);

    // A forged field in our name does not survive; another server's does.
    let forged = format!(
        "Authentication-Results: {HOSTNAME}; spf=pass smtp.mailfrom=alice@fail.example;\r\n\
         \tdmarc=pass header.from=fail.example\r\n\
         Authentication-Results: other.example; spf=pass\r\n{}",
        message("alice@fail.example", "case-forged")
    );
    let (_, end) = c.send("alice@fail.example", &forged);
    assert!(end.unwrap().starts_with("250"));
    let stored = server.message("case-forged");
    let field = results(&stored);
    check(&field, "spf", "fail", &[]);
    check(&field, "dmarc", "fail", &[]);
    let ours = format!("Authentication-Results: {HOSTNAME}");
    assert_eq!(stored.matches(&ours).count(), 1, "{stored}");
    assert!(stored.contains("Authentication-Results: other.example; spf=pass"));
    assert_eq!(c.cmd("QUIT").get(..3), Some("221"));
}

#[test]
fn enforcement_refuses_what_the_policies_say() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    // One event loop: a check waiting for DNS must not hold up the
    // loop's other connections.
    let server = MailServer::start_with_timeout(
        dir.path(),
        &dns,
        10,
        &["--spf-reject", "--dmarc-enforce", "--threads", "1"],
    );
    let mut c = Client::connect(&server);
    assert!(c.cmd(&format!("EHLO {HELO}")).starts_with("250"));

    // A sender whose DNS never answers: its MAIL waits (up to the 10 s
    // deadline) while another connection is served in full.
    let mut slow = Client::connect(&server);
    assert!(slow.cmd(&format!("EHLO {HELO}")).starts_with("250"));
    slow.0
        .stream()
        .write_all(b"MAIL FROM:<bounce@silent.example>\r\n")
        .unwrap();
    let (mail, end) = c.send("alice@pass.example", &message("a@pass.example", "x0"));
    assert!(mail.starts_with("250") && end.unwrap().starts_with("250"));
    slow.0.stream().set_nonblocking(true).unwrap();
    let mut peek = [0u8; 1];
    assert!(
        matches!(slow.0.stream().peek(&mut peek), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the waiting MAIL is still unanswered"
    );
    slow.0.stream().set_nonblocking(false).unwrap();
    // SPF temperror at the deadline: try again later (enforcing).
    let mail = slow.reply();
    assert!(mail.starts_with("451 4.7.24 "), "{mail}");

    // SPF fail: refused at MAIL FROM (RFC 7372).
    let (mail, end) = c.send("alice@fail.example", &message("a@fail.example", "x1"));
    assert!(mail.starts_with("550 5.7.23 "), "{mail}");
    assert!(end.is_none());
    // Softfail is not refused; DMARC p=reject fails: refused at the end.
    let (mail, end) = c.send("bounce@soft.example", &message("a@rej.example", "x3"));
    assert!(mail.starts_with("250"), "{mail}");
    let end = end.unwrap();
    assert!(end.starts_with("550 5.7.1 "), "{end}");
    // p=quarantine: stored, marked.
    let (_, end) = c.send("bounce@soft.example", &message("a@quar.example", "x4"));
    assert!(end.unwrap().starts_with("250"));
    let stored = server.message("x4");
    assert!(
        stored.starts_with("X-Quarantine: dmarc header.from=quar.example\r\n"),
        "{stored}"
    );
    // Passing mail is stored unmarked.
    let (_, end) = c.send("alice@pass.example", &message("a@pass.example", "x5"));
    assert!(end.unwrap().starts_with("250"));
    assert!(server.message("x5").starts_with("Authentication-Results:"));
    assert_eq!(server.stored(), 3);
}

#[test]
fn exempt_networks_are_not_checked() {
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::start(
        dir.path(),
        &dns,
        &[
            "--spf-reject",
            "--dmarc-enforce",
            "--exempt-network",
            "192.0.2.0/24",
            "--exempt-network",
            "127.0.0.0/8",
        ],
    );
    let mut c = Client::connect(&server);
    assert!(c.cmd(&format!("EHLO {HELO}")).starts_with("250"));
    let forged = format!(
        "Authentication-Results: {HOSTNAME}; dmarc=pass header.from=rej.example\r\n{}",
        message("a@rej.example", "e1")
    );
    let (mail, end) = c.send("alice@fail.example", &forged);
    assert!(mail.starts_with("250"), "{mail}");
    assert!(end.unwrap().starts_with("250"));
    // DKIM is still verified; SPF and DMARC are not.
    let field = results(&server.message("e1"));
    check(&field, "dkim", "none", &[]);
    assert_eq!(field.of_method("spf").count(), 0, "{}", field.value());
    assert_eq!(field.of_method("dmarc").count(), 0, "{}", field.value());
    // The forged field is gone all the same.
    let stored = server.message("e1");
    assert_eq!(
        stored.matches("Authentication-Results:").count(),
        1,
        "{stored}"
    );
}
