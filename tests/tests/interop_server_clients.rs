//! The server session against real clients: Python `smtplib`, `swaks`,
//! Postfix `smtp-source`, and a few raw-socket clients that misbehave on
//! purpose. Each test starts a [`TestServer`] on `127.0.0.1:0`, runs the
//! client (bounded by `timeout`), then checks what the client reported *and*
//! what the server delivered, byte for byte.
//!
//! Peers that may be absent (`swaks`, `curl`, `smtp-source`) are found by
//! [`smtp_tests::peers`] (an environment variable, `.ci/install-peers`'
//! copy, or `PATH`); when one is absent the test prints why and passes
//! without running — unless `SMTP_PEERS_REQUIRED=1` (CI), when it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use smtp_proto::Protocol;
use smtp_proto::server::{CloseReason, SyncPoint};
use smtp_tests::peers::{self, Peer};
use smtp_tests::std_server::{Options, TestServer};

const USER: &str = "alice";
/// ASCII: smtplib encodes credentials as ASCII.
const PASS: &str = "s3cret pass:word";

fn auth_policy() -> Options {
    Options {
        credentials: Some((USER.to_owned(), PASS.to_owned())),
        ..Options::default()
    }
}

/// Runs `python3 -c script PORT`, bounded in time; returns stdout and
/// fails the test (with stderr) when the script fails.
fn python(server: &TestServer, script: &str) -> String {
    let out = Command::new("timeout")
        .args(["30", "python3", "-c", script])
        .arg(server.port().to_string())
        .output()
        .expect("python3 runs");
    check(&out, "python3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The common preamble of the smtplib scripts: connect with a timeout.
const PY_CONNECT: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.example', timeout=10)
"#;

fn py(body: &str) -> String {
    format!("{PY_CONNECT}{body}")
}

// ----- smtplib -------------------------------------------------------------

#[test]
fn smtplib_ehlo_features_and_send_message_to_several_recipients() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
from email.message import EmailMessage
code, msg = s.ehlo()
print(code, msg.decode())
for ext in ['pipelining', 'size', '8bitmime', 'smtputf8', 'enhancedstatuscodes', 'chunking']:
    assert s.has_extn(ext), ext
assert not s.has_extn('starttls')
assert not s.has_extn('auth')
print('size', s.esmtp_features['size'])
m = EmailMessage()
m['From'] = 'Sender <sender@example.org>'
m['To'] = 'a@example.net, b@example.net'
m['Cc'] = 'c@example.com'
m['Subject'] = 'interop'
m.set_content('Hello from smtplib.\n')
refused = s.send_message(m)
print('refused', refused)
print(s.quit())
"#),
    );
    assert!(
        out.starts_with("250 mx.test.example\n"),
        "EHLO reply: {out}"
    );
    assert!(out.contains("size 10240000"), "{out}");
    assert!(out.contains("refused {}"), "{out}");
    assert!(
        out.contains("(221, b'2.0.0 mx.test.example Service closing transmission channel')"),
        "{out}"
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let m = &delivered[0];
    assert_eq!(m.from, "<sender@example.org>");
    assert_eq!(
        m.to,
        ["<a@example.net>", "<b@example.net>", "<c@example.com>"]
    );
    let body = String::from_utf8(m.body.clone()).expect("ASCII message");
    assert!(body.contains("Subject: interop\r\n"), "{body:?}");
    assert!(
        body.ends_with("\r\n\r\nHello from smtplib.\r\n"),
        "{body:?}"
    );
    assert!(!body.contains("\n\n") && !body.replace("\r\n", "").contains('\n'));
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].close, Some(CloseReason::Quit));
}

#[test]
fn smtplib_refused_recipient_is_partial_success() {
    let server = TestServer::start(Options {
        refuse_rcpt: vec!["<nobody@example.net>".to_owned()],
        ..Options::default()
    });
    let out = python(
        &server,
        &py(r#"
refused = s.sendmail('a@example.org', ['x@example.net', 'nobody@example.net', 'y@example.net'],
                     b'Subject: t\r\n\r\nbody\r\n')
print(sorted(refused.items()))
try:
    s.sendmail('a@example.org', ['nobody@example.net'], b'Subject: t\r\n\r\nbody\r\n')
    print('all-refused: no exception')
except smtplib.SMTPRecipientsRefused as e:
    print('all-refused', sorted(e.recipients.items()))
s.quit()
"#),
    );
    assert!(
        out.contains("[('nobody@example.net', (550, b'5.1.1 No such user here'))]"),
        "{out}"
    );
    assert!(
        out.contains("all-refused [('nobody@example.net', (550, b'5.1.1 No such user here'))]"),
        "{out}"
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].to, ["<x@example.net>", "<y@example.net>"]);
    assert_eq!(delivered[0].body, b"Subject: t\r\n\r\nbody\r\n");
}

#[test]
fn smtplib_login_plain_and_login_with_and_without_initial_response() {
    let server = TestServer::start(auth_policy());
    let out = python(
        &server,
        &format!(
            "{PY_CONNECT}USER, PASS = {USER:?}, {PASS:?}\n{}",
            r#"
s.ehlo()
print('auth', s.esmtp_features.get('auth').strip())
# login() picks PLAIN (the first it prefers that is offered).
print('login', s.login(USER, PASS))
s.sendmail('a@example.org', ['b@example.net'], b'Subject: auth\r\n\r\nx\r\n')
s.quit()
for mech, ir in [('PLAIN', True), ('PLAIN', False), ('LOGIN', True), ('LOGIN', False)]:
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.example', timeout=10)
    s.ehlo()
    s.user, s.password = USER, PASS
    obj = s.auth_plain if mech == 'PLAIN' else s.auth_login
    print(mech, ir, s.auth(mech, obj, initial_response_ok=ir))
    s.quit()
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.example', timeout=10)
try:
    s.login(USER, 'wrong')
    print('wrong: accepted')
except smtplib.SMTPAuthenticationError as e:
    print('wrong', e.smtp_code, e.smtp_error)
# Still usable after a failed AUTH.
print('noop', s.noop())
s.quit()
"#
        ),
    );
    assert!(out.contains("auth PLAIN LOGIN"), "{out}");
    assert!(
        out.contains("login (235, b'2.7.0 Authentication successful')"),
        "{out}"
    );
    for line in [
        "PLAIN True (235,",
        "PLAIN False (235,",
        "LOGIN True (235,",
        "LOGIN False (235,",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        out.contains("wrong 535 b'5.7.8 Authentication credentials invalid'"),
        "{out}"
    );
    assert!(out.contains("noop (250, b'2.0.0 Ok')"), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].auth_user.as_deref(), Some(USER));
}

#[test]
fn smtplib_smtputf8_addresses() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
s.ehlo()
r = s.sendmail('j\u00f6rg@b\u00fccher.example', ['\u00e9l\u00e8ve@\u00e9cole.example', 'plain@example.net'],
               'Subject: caf\u00e9\r\n\r\nna\u00efve\r\n'.encode('utf-8'), mail_options=['SMTPUTF8'])
print('refused', r)
# Without SMTPUTF8 a UTF-8 address is refused, not mangled.
try:
    s.sendmail('a@example.org', ['\u00fc@example.net'], b'x\r\n')
    print('no-utf8: accepted')
except (smtplib.SMTPRecipientsRefused, UnicodeEncodeError, smtplib.SMTPNotSupportedError) as e:
    print('no-utf8', type(e).__name__)
s.quit()
"#),
    );
    assert!(out.contains("refused {}"), "{out}");
    assert!(out.contains("no-utf8 "), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let m = &delivered[0];
    assert!(m.smtputf8);
    assert_eq!(m.from, "<jörg@bücher.example>");
    assert_eq!(m.to, ["<élève@école.example>", "<plain@example.net>"]);
    assert_eq!(m.body, "Subject: café\r\n\r\nnaïve\r\n".as_bytes());
}

#[test]
fn smtplib_dot_lines_are_unstuffed_byte_exact() {
    let server = TestServer::start(Options::default());
    let body: &[u8] =
        b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n..two\r\nmid.dle\r\n. \r\n.\r\nend\r\n";
    let out = python(
        &server,
        &py(&format!(
            r#"
body = {body}
print(s.sendmail('a@example.org', ['b@example.net'], body))
print(s.sendmail('a@example.org', ['b@example.net'], b'no final newline'))
s.quit()
"#,
            body = py_bytes(body)
        )),
    );
    assert_eq!(out, "{}\n{}\n");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].body, body);
    // smtplib adds the CRLF a message must end with.
    assert_eq!(delivered[1].body, b"no final newline\r\n");
}

/// A Python bytes literal of `b`.
fn py_bytes(b: &[u8]) -> String {
    let mut s = String::from("b'");
    for &c in b {
        s.push_str(&format!("\\x{c:02x}"));
    }
    s.push('\'');
    s
}

#[test]
fn smtplib_one_megabyte_message() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
line = b'0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789\r\n'
body = b'Subject: big\r\n\r\n' + b''.join(b'%06d ' % i + line for i in range(13000))
print(len(body))
print(s.sendmail('a@example.org', ['b@example.net'], body))
s.quit()
"#),
    );
    let mut lines = out.lines();
    let len: usize = lines.next().and_then(|l| l.parse().ok()).expect("length");
    assert!(len > 1_000_000, "{len}");
    assert_eq!(lines.next(), Some("{}"));
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let body = &delivered[0].body;
    assert_eq!(body.len(), len);
    assert!(body.starts_with(b"Subject: big\r\n\r\n000000 0123"));
    assert!(body.ends_with(
        b"012999 0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789\r\n"
    ));
}

#[test]
fn smtplib_rset_and_second_message_on_one_connection() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
s.ehlo()
print(s.mail('first@example.org'))
print(s.rcpt('dropped@example.net'))
print(s.rset())
print(s.sendmail('second@example.org', ['kept@example.net'], b'Subject: 2\r\n\r\ntwo\r\n'))
print(s.sendmail('third@example.org', ['kept3@example.net'], b'Subject: 3\r\n\r\nthree\r\n'))
s.quit()
"#),
    );
    assert_eq!(
        out,
        "(250, b'2.1.0 Sender ok')\n(250, b'2.1.5 Recipient ok')\n(250, b'2.0.0 Ok')\n{}\n{}\n"
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].from, "<second@example.org>");
    assert_eq!(delivered[0].to, ["<kept@example.net>"]);
    assert_eq!(delivered[0].body, b"Subject: 2\r\n\r\ntwo\r\n");
    assert_eq!(delivered[1].from, "<third@example.org>");
    assert_eq!(delivered[1].body, b"Subject: 3\r\n\r\nthree\r\n");
}

#[test]
fn smtplib_noop_vrfy_expn_help_quit() {
    let server = TestServer::start(Options {
        vrfy_known: Some("postmaster".to_owned()),
        ..Options::default()
    });
    let out = python(
        &server,
        &py(r#"
print('noop-before-ehlo', s.noop())
s.ehlo()
print('noop', s.noop())
print('vrfy-unknown', s.vrfy('someone@example.net'))
print('vrfy-known', s.verify('postmaster'))
print('expn', s.expn('list'))
print('help', s.help())
print('helo-again', s.helo('other.example'))
print('noop-after-helo', s.noop())
print('quit', s.quit())
"#),
    );
    let expect = [
        "noop-before-ehlo (250, b'Ok')",
        "noop (250, b'2.0.0 Ok')",
        "vrfy-unknown (252, b'2.0.0 Cannot VRFY user, but will accept message and attempt delivery')",
        "vrfy-known (250, b'2.1.5 User known')",
        "expn (502, b'5.5.1 EXPN not available')",
        "help b'2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH (RFC 5321)'",
        "helo-again (250, b'mx.test.example')",
        "noop-after-helo (250, b'Ok')",
        "quit (221, b'mx.test.example Service closing transmission channel')",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expect, "{out}");
}

#[test]
fn smtplib_helo_only_client() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
print(s.helo())
print(s.sendmail('a@example.org', ['b@example.net'], b'Subject: helo\r\n\r\n.hi\r\n'))
print(s.quit())
"#),
    );
    assert_eq!(
        out,
        "(250, b'mx.test.example')\n{}\n(221, b'mx.test.example Service closing transmission channel')\n"
    );
    assert_eq!(server.delivered()[0].body, b"Subject: helo\r\n\r\n.hi\r\n");
}

#[test]
fn smtplib_size_limit_declared_and_undeclared() {
    let policy = Options::default();
    let mut config = TestServer::config(&policy);
    config.max_message_size = Some(10_000);
    let server = TestServer::start_with(config, policy);
    let out = python(
        &server,
        &py(r#"
s.ehlo()
print('size', s.esmtp_features['size'])
big = b'Subject: big\r\n\r\n' + b'x' * 70 + b'\r\n'
big = big * 200
try:
    s.sendmail('a@example.org', ['b@example.net'], big)
    print('declared: accepted')
except smtplib.SMTPSenderRefused as e:
    print('declared', e.smtp_code, e.smtp_error)
# Pretend SIZE was not offered: the body itself is too big.
del s.esmtp_features['size']
try:
    s.sendmail('a@example.org', ['b@example.net'], big)
    print('undeclared: accepted')
except smtplib.SMTPDataError as e:
    print('undeclared', e.smtp_code, e.smtp_error)
print(s.sendmail('a@example.org', ['b@example.net'], b'small\r\n'))
s.quit()
"#),
    );
    assert_eq!(
        out,
        "size 10000\n\
declared 552 b'5.3.4 Message size exceeds fixed maximum message size'\n\
undeclared 552 b'5.3.4 Message too big'\n{}\n"
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body, b"small\r\n");
}

#[test]
fn smtplib_auth_required_for_mail() {
    let policy = auth_policy();
    let mut config = TestServer::config(&policy);
    config.auth.required_for_mail = true;
    let server = TestServer::start_with(config, policy);
    let out = python(
        &server,
        &format!(
            "{PY_CONNECT}USER, PASS = {USER:?}, {PASS:?}\n{}",
            r#"
try:
    s.sendmail('a@example.org', ['b@example.net'], b'x\r\n')
except smtplib.SMTPSenderRefused as e:
    print('unauthenticated', e.smtp_code, e.smtp_error)
s.login(USER, PASS)
print(s.sendmail('a@example.org', ['b@example.net'], b'x\r\n'))
s.quit()
"#
        ),
    );
    assert_eq!(
        out,
        "unauthenticated 530 b'5.7.0 Authentication required'\n{}\n"
    );
    assert_eq!(server.delivered().len(), 1);
}

#[test]
fn smtplib_send_message_with_utf8_headers_uses_smtputf8() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
from email.message import EmailMessage
from email import policy
m = EmailMessage(policy=policy.SMTPUTF8)
m['From'] = 'J\u00f6rg <j\u00f6rg@example.org>'
m['To'] = '\u00e9l\u00e8ve@example.net'
m['Subject'] = 'caf\u00e9 \u2615'
m.set_content('na\u00efve \u2615 content\n' + 'long line ' * 200 + '\n', cte='8bit')
print(s.send_message(m))
s.quit()
"#),
    );
    assert_eq!(out, "{}\n");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let m = &delivered[0];
    assert!(m.smtputf8);
    assert_eq!(m.from, "<jörg@example.org>");
    assert_eq!(m.to, ["<élève@example.net>"]);
    let body = String::from_utf8(m.body.clone()).expect("UTF-8 content");
    assert!(body.contains("Subject: café ☕\r\n"), "{body}");
    // A 2000-octet line (over RFC 5322's 998) is passed through, not cut.
    assert!(
        body.contains(&format!("\r\n{}\r\n", "long line ".repeat(200))),
        "{body}"
    );
}

#[test]
fn smtplib_empty_message() {
    let server = TestServer::start(Options::default());
    let out = python(
        &server,
        &py(r#"
print(s.sendmail('', ['b@example.net'], b''))
s.quit()
"#),
    );
    assert_eq!(out, "{}\n");
    let delivered = server.delivered();
    assert_eq!(delivered[0].from, "<>");
    // smtplib sends CRLF . CRLF after adding the missing final CRLF.
    assert_eq!(delivered[0].body, b"\r\n");
}

// ----- swaks ---------------------------------------------------------------

/// Runs a peer's command to its end, killed after `secs` seconds.
fn bounded(cmd: &mut Command, secs: u64) -> Output {
    let out = peers::run_bounded(cmd, Duration::from_secs(secs)).expect("peer runs");
    Output {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn run_swaks(server: &TestServer, args: &[&str]) -> Option<String> {
    let swaks = peers::swaks()?;
    let out = bounded(
        swaks_command(&swaks, server)
            .args(["--helo", "client.example", "--timeout", "10"])
            .args(["--from", "sender@example.org", "--to", "rcpt@example.net"])
            .args(args),
        30,
    );
    check(&out, "swaks");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn swaks_command(swaks: &Peer, server: &TestServer) -> Command {
    let mut cmd = swaks.command();
    cmd.args(["--server", &format!("127.0.0.1:{}", server.port())]);
    cmd
}

#[test]
fn swaks_plain_send() {
    let server = TestServer::start(Options::default());
    let Some(out) = run_swaks(&server, &["--body", "plain body"]) else {
        return;
    };
    assert!(out.contains("<-  250 2.0.0 Message accepted"), "{out}");
    assert!(out.contains("<-  221 2.0.0 mx.test.example"), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].to, ["<rcpt@example.net>"]);
    assert!(
        // swaks itself ends every body with two empty lines.
        delivered[0]
            .body
            .ends_with(b"\r\n\r\nplain body\r\n\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&delivered[0].body)
    );
}

#[test]
fn swaks_pipeline() {
    let server = TestServer::start(Options {
        refuse_rcpt: vec!["<bad@example.net>".to_owned()],
        ..Options::default()
    });
    let Some(out) = run_swaks(
        &server,
        &[
            "--pipeline",
            "--to",
            "one@example.net,bad@example.net,two@example.net",
            "--body",
            "pipelined",
        ],
    ) else {
        return;
    };
    assert!(out.contains("<** 550 5.1.1 No such user here"), "{out}");
    assert!(out.contains("<-  250 2.0.0 Message accepted"), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1, "{out}");
    assert_eq!(delivered[0].to, ["<one@example.net>", "<two@example.net>"]);
    // The pipelined group arrived in one write and was answered in one.
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].close, Some(CloseReason::Quit));
}

#[test]
fn swaks_auth_plain_and_login() {
    let server = TestServer::start(auth_policy());
    for mech in ["PLAIN", "LOGIN"] {
        let Some(out) = run_swaks(
            &server,
            &[
                "--auth",
                mech,
                "--auth-user",
                USER,
                "--auth-password",
                PASS,
                "--body",
                mech,
            ],
        ) else {
            return;
        };
        assert!(
            out.contains("<-  235 2.7.0 Authentication successful"),
            "{out}"
        );
    }
    // A wrong password: swaks exits non-zero, the server counts a failure.
    let swaks = peers::swaks().expect("found above");
    let out = bounded(
        swaks_command(&swaks, &server)
            .args(["--from", "a@example.org", "--to", "b@example.net"])
            .args(["--auth", "LOGIN", "--auth-user", USER])
            .args(["--auth-password", "wrong", "--timeout", "10"]),
        30,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<** 535 5.7.8"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 2);
    assert!(
        delivered
            .iter()
            .all(|d| d.auth_user.as_deref() == Some(USER))
    );
}

#[test]
fn swaks_body_with_dots() {
    let server = TestServer::start(Options::default());
    let body = "first\n.\n..\n.dot\nlast .\n.";
    let Some(out) = run_swaks(&server, &["--body", body, "--add-header", "X-Test: dots"]) else {
        return;
    };
    assert!(out.contains("<-  250 2.0.0 Message accepted"), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let got = String::from_utf8(delivered[0].body.clone()).expect("ASCII");
    assert!(
        got.ends_with("\r\n\r\nfirst\r\n.\r\n..\r\n.dot\r\nlast .\r\n.\r\n\r\n\r\n"),
        "{got:?}"
    );
}

// ----- curl ----------------------------------------------------------------

/// Runs curl's SMTP client with `args`, uploading `body` from a temp file.
/// Returns (success, stdout+stderr) or `None` when curl or its SMTP support
/// is absent (see [`peers::curl`]).
fn run_curl(server: &TestServer, name: &str, body: &[u8], args: &[&str]) -> Option<(bool, String)> {
    let curl = peers::curl()?;
    let file = std::env::temp_dir().join(format!(
        "interop-curl-{}-{name}-{}.eml",
        std::process::id(),
        server.port()
    ));
    std::fs::write(&file, body).expect("write temp file");
    let out = bounded(
        curl.command()
            .args(["-sS", "-v", "--max-time", "10"])
            .arg(format!("smtp://127.0.0.1:{}/client.example", server.port()))
            .arg("--upload-file")
            .arg(&file)
            .args(args),
        30,
    );
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn curl_send_to_several_recipients_with_dots() {
    let server = TestServer::start(Options::default());
    let body = b"Subject: curl\r\n\r\n.\r\n..\r\n.x\r\nend\r\n";
    let Some((ok, out)) = run_curl(
        &server,
        "several",
        body,
        &[
            "--mail-from",
            "a@example.org",
            "--mail-rcpt",
            "b@example.net",
            "--mail-rcpt",
            "c@example.net",
        ],
    ) else {
        return;
    };
    assert!(ok, "{out}");
    assert!(out.contains("> EHLO client.example"), "{out}");
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1, "{out}");
    assert_eq!(delivered[0].to, ["<b@example.net>", "<c@example.net>"]);
    assert_eq!(delivered[0].body, body);
}

#[test]
fn curl_lf_only_file_is_refused_unless_converted() {
    // curl sends an upload as is: a file with LF line endings puts bare
    // LFs into DATA. The strict default refuses that message (550 5.5.2)
    // at its real end; `--crlf` makes curl send CRLF and it is accepted.
    let server = TestServer::start(Options::default());
    let body = b"Subject: lf\n\nline one\n.dot\n";
    let args = [
        "--mail-from",
        "a@example.org",
        "--mail-rcpt",
        "b@example.net",
    ];
    let Some((ok, out)) = run_curl(&server, "lf", body, &args) else {
        return;
    };
    assert!(!ok, "{out}");
    assert!(
        out.contains("< 550 5.5.2 Message refused: bare CR or LF received"),
        "{out}"
    );
    assert!(server.delivered().is_empty());
    let mut with_crlf = args.to_vec();
    with_crlf.push("--crlf");
    let Some((ok, out)) = run_curl(&server, "crlf", body, &with_crlf) else {
        return;
    };
    assert!(ok, "{out}");
    assert_eq!(
        server.delivered()[0].body,
        b"Subject: lf\r\n\r\nline one\r\n.dot\r\n"
    );
}

#[test]
fn curl_auth_plain_and_login_and_mail_auth() {
    let server = TestServer::start(auth_policy());
    let userpass = format!("{USER}:{PASS}");
    for (name, options) in [("plain", "AUTH=PLAIN"), ("login", "AUTH=LOGIN")] {
        for ir in [false, true] {
            let mut args = vec![
                "--mail-from",
                "a@example.org",
                "--mail-rcpt",
                "b@example.net",
                "--user",
                &userpass,
                "--login-options",
                options,
                "--mail-auth",
                "a@example.org",
            ];
            if ir {
                args.push("--sasl-ir");
            }
            let Some((ok, out)) = run_curl(&server, name, b"Subject: a\r\n\r\nx\r\n", &args) else {
                return;
            };
            assert!(ok, "{out}");
            assert!(
                out.contains("< 235 2.7.0 Authentication successful"),
                "{out}"
            );
        }
    }
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 4);
    assert!(
        delivered
            .iter()
            .all(|d| d.auth_user.as_deref() == Some(USER))
    );
    let Some((ok, out)) = run_curl(
        &server,
        "wrong",
        b"x\r\n",
        &[
            "--mail-from",
            "a@example.org",
            "--mail-rcpt",
            "b@example.net",
            "--user",
            "alice:nope",
        ],
    ) else {
        return;
    };
    assert!(!ok);
    assert!(out.contains("< 535 5.7.8"), "{out}");
}

#[test]
fn curl_refused_recipient_with_allowfails() {
    let server = TestServer::start(Options {
        refuse_rcpt: vec!["<bad@example.net>".to_owned()],
        ..Options::default()
    });
    let Some((ok, out)) = run_curl(
        &server,
        "allowfails",
        b"Subject: a\r\n\r\nx\r\n",
        &[
            "--mail-from",
            "a@example.org",
            "--mail-rcpt",
            "bad@example.net",
            "--mail-rcpt",
            "good@example.net",
            "--mail-rcpt-allowfails",
        ],
    ) else {
        return;
    };
    assert!(ok, "{out}");
    assert_eq!(server.delivered()[0].to, ["<good@example.net>"]);
}

// ----- Postfix smtp-source ---------------------------------------------------

fn run_smtp_source(server: &TestServer, args: &[&str]) -> Option<()> {
    let source = peers::smtp_source()?;
    let out = bounded(
        source
            .command()
            .args(args)
            .arg(format!("127.0.0.1:{}", server.port())),
        60,
    );
    check(&out, "smtp-source");
    Some(())
}

#[test]
fn postfix_smtp_source_fifty_messages_over_five_sessions() {
    let server = TestServer::start(Options::default());
    let started = Instant::now();
    if run_smtp_source(
        &server,
        &[
            "-s",
            "5",
            "-m",
            "50",
            "-l",
            "4096",
            "-d",
            "-M",
            "client.example",
        ],
    )
    .is_none()
    {
        return;
    }
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 50, "after {:?}", started.elapsed());
    for m in &delivered {
        assert_eq!(m.to.len(), 1);
        // smtp-source's -l counts the payload; headers come on top.
        assert!(m.body.len() >= 4096, "{}", m.body.len());
        assert!(m.body.ends_with(b"\r\n"));
    }
    let sessions = server.wait_sessions(5, Duration::from_secs(5));
    assert_eq!(sessions.len(), 5);
    assert!(
        sessions.iter().all(|s| s.close == Some(CloseReason::Quit)),
        "{:?}",
        sessions.iter().map(|s| s.close).collect::<Vec<_>>()
    );
}

#[test]
fn postfix_smtp_source_ehlo_and_several_recipients() {
    let server = TestServer::start(Options::default());
    // -r 3: three recipients per message (numbered), new connection per
    // message (no -d), explicit sender and recipient.
    if run_smtp_source(
        &server,
        &[
            "-s",
            "2",
            "-m",
            "6",
            "-r",
            "3",
            "-l",
            "1000",
            "-M",
            "client.example",
            "-f",
            "s@example.org",
            "-t",
            "r@example.net",
        ],
    )
    .is_none()
    {
        return;
    }
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 6);
    assert!(
        delivered.iter().all(|m| m.from == "<s@example.org>"),
        "{delivered:?}"
    );
    assert!(delivered.iter().all(|m| m.to.len() == 3), "{delivered:?}");
}

#[test]
fn postfix_smtp_source_lmtp() {
    let policy = Options::default();
    let mut config = TestServer::config(&policy);
    config.protocol = Protocol::Lmtp;
    let server = TestServer::start_with(config, policy);
    if run_smtp_source(
        &server,
        &[
            "-L",
            "-s",
            "2",
            "-m",
            "6",
            "-r",
            "2",
            "-l",
            "500",
            "-M",
            "client.example",
            "-d",
        ],
    )
    .is_none()
    {
        return;
    }
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 6);
    assert!(delivered.iter().all(|m| m.to.len() == 2), "{delivered:?}");
}

#[test]
fn swaks_lmtp_one_reply_per_recipient() {
    let policy = Options {
        refuse_rcpt: vec!["<bad@example.net>".to_owned()],
        ..Options::default()
    };
    let mut config = TestServer::config(&policy);
    config.protocol = Protocol::Lmtp;
    let server = TestServer::start_with(config, policy);
    let Some(out) = run_swaks(
        &server,
        &[
            "--protocol",
            "LMTP",
            "--to",
            "one@example.net,bad@example.net,two@example.net",
        ],
    ) else {
        return;
    };
    assert!(out.contains(" -> LHLO client.example"), "{out}");
    assert_eq!(
        out.matches("<-  250 2.0.0 Message accepted").count(),
        2,
        "{out}"
    );
    assert_eq!(
        server.delivered()[0].to,
        ["<one@example.net>", "<two@example.net>"]
    );
}

// ----- raw sockets -----------------------------------------------------------

/// Connects, writes each chunk (pausing between them), then reads until
/// the server closes or 5 s pass.
fn raw_session(server: &TestServer, chunks: &[&[u8]]) -> String {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_some = |stream: &mut TcpStream, got: &mut Vec<u8>, until: Duration| {
        let end = Instant::now() + until;
        while Instant::now() < end {
            match stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        false
    };
    read_some(&mut stream, &mut got, Duration::from_millis(300));
    for chunk in chunks {
        stream.write_all(chunk).expect("write");
        if read_some(&mut stream, &mut got, Duration::from_millis(300)) {
            return String::from_utf8_lossy(&got).into_owned();
        }
    }
    read_some(&mut stream, &mut got, Duration::from_secs(5));
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn raw_pipelined_batch_in_one_write_is_answered_in_order() {
    // Pipelining across group ends (behind EHLO and the end of data) is
    // refused by default (protocol synchronization, see
    // `raw_everything_in_one_write_is_out_of_sync`); with the rule off the
    // server still answers such a batch in order.
    let policy = Options {
        refuse_rcpt: vec!["<bad@example.net>".to_owned()],
        ..Options::default()
    };
    let mut config = TestServer::config(&policy);
    config.forbid_unauth_pipelining = false;
    let server = TestServer::start_with(config, policy);
    let got = raw_session(
        &server,
        &[
            b"EHLO raw.example\r\nMAIL FROM:<a@example.org> SIZE=20\r\nRCPT TO:<bad@example.net>\r\n\
RCPT TO:<ok@example.net>\r\nDATA\r\n",
            b".x\r\nline\r\n.\r\nNOOP\r\nQUIT\r\n",
        ],
    );
    let expected = "220 mx.test.example ESMTP\r\n\
250-mx.test.example\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n\
250 2.1.0 Sender ok\r\n550 5.1.1 No such user here\r\n250 2.1.5 Recipient ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 Message accepted\r\n250 2.0.0 Ok\r\n\
221 2.0.0 mx.test.example Service closing transmission channel\r\n";
    assert_eq!(got, expected);
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body, b"x\r\nline\r\n");
}

#[test]
fn raw_everything_in_one_write_is_out_of_sync() {
    // A "blast" client that waits for nothing: RFC 2920 §3.1 says it must
    // wait after HELO, DATA and the end of data. By default it gets the
    // HELO reply, then 554 5.5.0, and nothing is delivered.
    let server = TestServer::start(Options::default());
    let got = raw_session(
        &server,
        &[b"HELO raw\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nbounce\r\n.\r\nQUIT\r\n"],
    );
    assert_eq!(
        got,
        "220 mx.test.example ESMTP\r\n250 mx.test.example\r\n\
554 5.5.0 Error: SMTP protocol synchronization\r\n"
    );
    assert!(server.delivered().is_empty());
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(
        sessions[0].close,
        Some(CloseReason::Synchronization(SyncPoint::Helo))
    );
}

#[test]
fn raw_everything_in_one_write_including_body_and_quit() {
    // The same blast client with the synchronization rule off: a server
    // that reads in order loses nothing.
    let policy = Options::default();
    let mut config = TestServer::config(&policy);
    config.forbid_unauth_pipelining = false;
    let server = TestServer::start_with(config, policy);
    let got = raw_session(
        &server,
        &[b"HELO raw\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nbounce\r\n.\r\nQUIT\r\n"],
    );
    assert_eq!(
        got,
        "220 mx.test.example ESMTP\r\n250 mx.test.example\r\n250 Sender ok\r\n\
250 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 Message accepted\r\n\
221 mx.test.example Service closing transmission channel\r\n"
    );
    let delivered = server.delivered();
    assert_eq!(delivered[0].from, "<>");
    assert_eq!(delivered[0].to, ["<Postmaster>"]);
}

#[test]
fn raw_starttls_not_configured_is_refused_cleanly() {
    let server = TestServer::start(Options::default());
    let got = raw_session(
        &server,
        &[
            b"EHLO raw.example\r\n",
            b"STARTTLS\r\n",
            b"MAIL FROM:<a@example.org>\r\nQUIT\r\n",
        ],
    );
    assert!(!got.contains("STARTTLS"), "not offered: {got}");
    assert!(
        got.contains(
            "250 SMTPUTF8\r\n502 5.5.1 Command not implemented\r\n250 2.1.0 Sender ok\r\n221 "
        ),
        "{got}"
    );
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].close, Some(CloseReason::Quit));
}

#[test]
fn raw_client_vanishing_mid_data_delivers_nothing() {
    let server = TestServer::start(Options::default());
    {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        // Read the replies so that closing sends FIN, not RST; wait where
        // a group ends (protocol synchronization).
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        for (send, until) in [
            (&b"EHLO x\r\n"[..], &b"250 SMTPUTF8\r\n"[..]),
            (
                b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n",
                b"354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
            (b"partial\r\n", b""),
        ] {
            stream.write_all(send).expect("write");
            let end = Instant::now() + Duration::from_secs(5);
            while !got.ends_with(until) && Instant::now() < end {
                if let Ok(n) = stream.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].close, Some(CloseReason::Eof));
    assert!(server.delivered().is_empty());
}

#[test]
fn raw_smuggling_attempt_is_one_refused_message() {
    // CVE-2023-51764 style: a bare-LF "end of data" followed by a smuggled
    // transaction, then the real end. The whole thing is one message, and
    // the bare LF gets it refused.
    let server = TestServer::start(Options::default());
    let got = raw_session(
        &server,
        &[
            b"EHLO x\r\n",
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n",
            b"legit\r\n\n.\nMAIL FROM:<evil@b.example>\r\nRCPT TO:<victim@d.example>\r\nDATA\r\nsmuggled\r\n.\r\n",
            b"QUIT\r\n",
        ],
    );
    assert!(
        got.contains("354 End data with <CR><LF>.<CR><LF>\r\n550 5.5.2 Message refused: bare CR or LF received\r\n221 "),
        "{got}"
    );
    assert!(server.delivered().is_empty());
}

#[test]
fn raw_idle_client_times_out_with_421() {
    let policy = Options::default();
    let mut config = TestServer::config(&policy);
    config.timeouts.command = Duration::from_millis(1500);
    let server = TestServer::start_with(config, policy);
    let started = Instant::now();
    let got = raw_session(&server, &[b"EHLO idle.example\r\n"]);
    assert!(
        got.ends_with("250 SMTPUTF8\r\n421 4.4.2 mx.test.example Error: timeout exceeded\r\n"),
        "{got}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].close, Some(CloseReason::Timeout));
}

#[test]
fn raw_error_limits_delay_then_close() {
    let policy = Options::default();
    let mut config = TestServer::config(&policy);
    config.errors.soft = 2;
    config.errors.hard = 5;
    config.errors.delay = Duration::from_millis(100);
    let server = TestServer::start_with(config, policy);
    let started = Instant::now();
    let got = raw_session(
        &server,
        &[
            b"EHLO x\r\n",
            b"BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nNOOP\r\n",
        ],
    );
    assert_eq!(
        got.matches("500 5.5.2 Command unrecognized\r\n").count(),
        5,
        "{got}"
    );
    assert!(
        got.ends_with(
            "500 5.5.2 Command unrecognized\r\n421 4.7.0 mx.test.example Error: too many errors\r\n"
        ),
        "{got}"
    );
    // Errors 3, 4 and 5 were each held back for the delay.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let sessions = server.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].close, Some(CloseReason::TooManyErrors));
}

#[test]
fn raw_lenient_but_valid_greetings_and_paths() {
    // What real clients send that is legal or harmless: a bare host name,
    // an address literal, lowercase verbs, a space after the colon.
    let server = TestServer::start(Options::default());
    let got = raw_session(
        &server,
        &[
            b"ehlo my-pc\r\n",
            b"helo [127.0.0.1]\r\n",
            b"mail from: <a@b.example>\r\nrcpt to:<Postmaster>\r\ndata\r\n",
            b".\r\n",
            b"quit\r\n",
        ],
    );
    assert_eq!(
        got.lines()
            .filter(|l| l.starts_with('5') || l.starts_with('4'))
            .count(),
        0,
        "{got}"
    );
    assert_eq!(server.delivered()[0].body, b"");
}
