//! Regression tests for the attack classes of the security manual: SMTP
//! smuggling, STARTTLS injection, AUTH framing.

use smtp_tests::transcript::run;

const EHLO: &str = "
S: 220 mx.example.org ESMTP
H: EHLO client.example
";

const OPEN_DATA: &str = "
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
C: DATA
E: data-start data
A: accept
S: 354 End data with <CR><LF>.<CR><LF>
";

/// Sends `text<variant>MAIL FROM:<evil@...>\r\n...` then the real end:
/// the smuggled MAIL must never be answered and the whole of it must be
/// content (`seen`: the variant as the body shows it, a line-start dot
/// removed as stuffing). With the default policy a message holding a bare
/// CR or LF is refused at its real end.
fn smuggle(variant: &str, seen: &str, bare: bool) {
    smuggle_with("", variant, seen, bare);
}

/// [`smuggle`] under a policy directive (`!bare-line-ending ...`).
fn smuggle_with(policy: &str, variant: &str, seen: &str, bare: bool) {
    let rest = r"MAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.org>\r\n";
    let body = format!("text{seen}{rest}");
    let size = smtp_tests::transcript::unescape(&body).len();
    let shown = smtp_tests::transcript::escape(&smtp_tests::transcript::unescape(&body));
    let end = if bare {
        "E: reset bare-line-ending\nS: 550 5.5.2 Message refused: bare CR or LF received\n"
            .to_owned()
    } else {
        format!("E: message-end size={size} replies=1\nA: accept\nS: 250 2.0.0 Message accepted\n")
    };
    run(&format!(
        "{policy}{EHLO}{OPEN_DATA}B: text{variant}{rest}.\\r\\n\nC: NOOP\nE: body {shown}\n{end}S: 250 2.0.0 Ok\n"
    ));
}

#[test]
fn smuggling_lf_dot_lf() {
    smuggle(r"\n.\n", r"\n\n", true);
}

#[test]
fn smuggling_crlf_dot_lf() {
    smuggle(r"\r\n.\n", r"\r\n\n", true);
}

#[test]
fn smuggling_lf_dot_crlf() {
    smuggle(r"\n.\r\n", r"\n\r\n", true);
}

#[test]
fn smuggling_cr_dot_cr() {
    smuggle(r"\r.\r", r"\r\r", true);
}

#[test]
fn smuggling_cr_dot_crlf() {
    smuggle(r"\r.\r\n", r"\r\r\n", true);
}

#[test]
fn smuggling_crlf_dot_cr_crlf() {
    smuggle(r"\r\n.\r\r\n", r"\r\n\r\r\n", true);
}

#[test]
fn smuggling_cr_crlf_dot_cr_crlf() {
    smuggle(r"\r\r\n.\r\r\n", r"\r\r\n\r\r\n", true);
}

#[test]
fn smuggling_lf_dot_cr() {
    smuggle(r"\n.\r", r"\n\r", true);
}

#[test]
fn smuggling_nul_before_dot() {
    // The default policy refuses a NUL like a bare line ending (see
    // server_nul.rs). Accepted, the NUL line is content; the MAIL inside is
    // still never a command.
    smuggle_with(
        "!bare-line-ending accept\n",
        r"\r\n\0.\r\n",
        r"\r\n\0.\r\n",
        false,
    );
}

#[test]
fn smuggling_dot_nul() {
    smuggle_with(
        "!bare-line-ending accept\n",
        r"\r\n.\0\r\n",
        r"\r\n\0\r\n",
        false,
    );
}

#[test]
fn normalize_policy_keeps_the_message_and_never_ends_early() {
    run(&format!(
        "!bare-line-ending normalize\n{EHLO}{OPEN_DATA}B: a\\n.\\nMAIL FROM:<e@example.com>\\r\\n.\\r\\n\nE: body a\\r\\n\\r\\nMAIL FROM:<e@example.com>\\r\\n\nE: message-end size=32 replies=1\nA: accept\nS: 250 2.0.0 Message accepted\n"
    ));
}

#[test]
fn lone_dot_is_an_empty_message() {
    run(&format!(
        "{EHLO}{OPEN_DATA}C: .\nE: message-end size=0 replies=1\nA: accept\nS: 250 2.0.0 Message accepted\n"
    ));
}

#[test]
fn pipelined_data_after_refused_data_is_read_as_commands_not_content() {
    // The classic "all recipients refused" case: the client pipelines the
    // content after DATA; DATA gets 554, the content lines are commands
    // (errors), and nothing is delivered.
    run(&format!(
        "{EHLO}C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\nC: Subject: x\nC: .\nE: mail FROM:<a@example.org>\nA: accept\nE: rcpt TO:<b@example.org>\nA: reply 550 5.1.1 no\nS: 250 2.1.0 Sender ok\nS: 550 5.1.1 no\nS: 554 5.5.1 No valid recipients\nS: 500 5.5.2 Command unrecognized\nS: 500 5.5.2 Command unrecognized\n"
    ));
}

const STARTTLS_EHLO: &str = "
S: 220 mx.example.org ESMTP
H: EHLO client.example +STARTTLS
";

#[test]
fn starttls_then_ehlo_again_without_starttls() {
    run(&format!(
        "!starttls\n{STARTTLS_EHLO}C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nE: starttls\nX: tls\nE: tls-established\nC: MAIL FROM:<a@example.org>\nS: 503 Send EHLO/HELO first\nH: EHLO client.example\nC: STARTTLS\nS: 503 5.5.1 TLS already active\n"
    ));
}

#[test]
fn starttls_with_pipelined_plaintext_closes_by_default() {
    run(&format!(
        "!no-split\n!starttls\n{STARTTLS_EHLO}C: STARTTLS\nC: RSET\nE: closed starttls-injection discarded=6\nX: closed\n"
    ));
}

#[test]
fn starttls_with_pipelined_plaintext_discard_policy() {
    run(&format!(
        "!no-split\n!starttls discard\n{STARTTLS_EHLO}C: STARTTLS\nC: NOOP\nS: 220 2.0.0 Ready to start TLS\nE: starttls\nC: NOOP\nX: tls\nE: tls-established\nC: NOOP\nS: 250 Ok\n"
    ));
}

#[test]
fn plaintext_before_the_220_is_written_also_closes() {
    // The injected bytes arrive in a second read, before the transport
    // wrote the 220: nothing more is sent.
    let t = smtp_tests::transcript::Transcript::parse(&format!("!starttls\n{STARTTLS_EHLO}"));
    let mut server = smtp_proto::server::Server::new(t.config().clone(), std::time::Instant::now());
    let now = std::time::Instant::now();
    let _ = server.poll(now);
    assert_eq!(server.handle_input(now, b"EHLO c\r\n"), 8);
    smtp_tests::serve::accept_all(&mut server, now);
    assert_eq!(server.handle_input(now, b"STARTTLS\r\n"), 10);
    assert!(matches!(
        server.poll(now),
        smtp_proto::Output::Transmit(b"220 2.0.0 Ready to start TLS\r\n")
    ));
    // Not advanced: the 220 is still queued when the injection arrives.
    assert_eq!(server.handle_input(now, b"RSET\r\n"), 6);
    match server.poll(now) {
        smtp_proto::Output::Event(smtp_proto::server::Event::Closed { reason }) => assert_eq!(
            reason,
            smtp_proto::server::CloseReason::StartTlsInjection { discarded: 6 }
        ),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(server.is_closed());
}

#[test]
fn starttls_refused_inside_a_transaction() {
    run(&format!(
        "!starttls\n{STARTTLS_EHLO}C: MAIL FROM:<a@example.org>\nE: mail FROM:<a@example.org>\nA: accept\nS: 250 2.1.0 Sender ok\nC: STARTTLS\nS: 503 5.5.1 Not permitted during a mail transaction\n"
    ));
}

const TLS_EHLO_AUTH: &str = "
!tls
!auth PLAIN LOGIN XOAUTH2
E: starttls
X: tls
E: tls-established
S: 220 mx.example.org ESMTP
H: EHLO client.example +AUTH PLAIN LOGIN XOAUTH2
";

#[test]
fn auth_plain_with_initial_response() {
    // "\0tim\0tanstaaftanstaaf" (RFC 4616 §4).
    run(&format!(
        "{TLS_EHLO_AUTH}C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\nE: auth-plain authcid=tim password=tanstaaftanstaaf\nA: success\nS: 235 2.7.0 Authentication successful\nC: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\nS: 503 5.5.1 Already authenticated\n"
    ));
}

#[test]
fn auth_plain_without_initial_response_and_failure() {
    run(&format!(
        "{TLS_EHLO_AUTH}C: AUTH PLAIN\nS: 334 \nC: VXJzZWwAS3VydAB4aXBqM3BsbXE=\nE: auth-plain authzid=Ursel authcid=Kurt password=xipj3plmq\nA: reply 535 5.7.8 Authentication credentials invalid\nS: 535 5.7.8 Authentication credentials invalid\nC: AUTH PLAIN dXNlcg==\nS: 501 5.5.2 Malformed authentication response\n"
    ));
}

#[test]
fn auth_login_cancel_and_bad_base64() {
    run(&format!(
        "{TLS_EHLO_AUTH}C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: *\nS: 501 5.7.0 Authentication cancelled\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: !!notbase64\nS: 501 5.5.2 Cannot decode base64 response\nC: AUTH LOGIN dGlt\nS: 334 UGFzc3dvcmQ6\nC: c2VjcmV0\nE: auth-login user=tim password=secret\nA: success\nS: 235 2.7.0 Authentication successful\n"
    ));
}

#[test]
fn auth_relayed_mechanism_step_by_step() {
    run(&format!(
        "{TLS_EHLO_AUTH}C: AUTH XOAUTH2 dXNlcj1h\nE: auth XOAUTH2 ir=user=a\nA: challenge {{\"status\":\"401\"}}\nS: 334 eyJzdGF0dXMiOiI0MDEifQ==\nC:\nE: auth-response \nA: reply 535 5.7.8 nope\nS: 535 5.7.8 nope\nC: AUTH XOAUTH2 =\nE: auth XOAUTH2 ir=\nU: accept 
A: success\nS: 235 2.7.0 Authentication successful\n"
    ).replace("U: accept \n", ""));
}

#[test]
fn auth_refusals() {
    run(&format!(
        "{TLS_EHLO_AUTH}C: AUTH CRAM-MD5\nS: 504 5.5.4 Unrecognized authentication type\nC: MAIL FROM:<a@example.org>\nE: mail FROM:<a@example.org>\nA: accept\nS: 250 2.1.0 Sender ok\nC: AUTH PLAIN\nS: 503 5.5.1 Not permitted during a mail transaction\n"
    ));
    run(r"
!auth PLAIN
S: 220 mx.example.org ESMTP
H: EHLO client.example
C: AUTH PLAIN
S: 538 5.7.11 Encryption required for requested authentication mechanism
");
}

#[test]
fn submission_requires_auth_for_mail() {
    run(r"
!auth PLAIN
!auth-plaintext
!require-auth
S: 220 mx.example.org ESMTP
H: EHLO client.example +AUTH PLAIN
C: MAIL FROM:<a@example.org>
S: 530 5.7.0 Authentication required
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
E: auth-plain authcid=tim password=tanstaaftanstaaf
A: success
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<a@example.org> AUTH=<>
E: mail FROM:<a@example.org> AUTH=<>
A: accept
S: 250 2.1.0 Sender ok
");
}

#[test]
fn over_long_auth_line_fails_the_exchange() {
    let long = "A".repeat(12_300);
    run(&format!(
        "!no-split\n{TLS_EHLO_AUTH}C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {long}\nS: 500 5.5.6 Authentication Exchange line is too long\nC: NOOP\nS: 250 2.0.0 Ok\n"
    ));
}

/// RFC 3207 §4 with STARTTLS required (Postfix `encrypt`): mail, AUTH,
/// VRFY and EXPN get `530` until TLS is active — before and after EHLO,
/// pipelined or not, a BDAT chunk read and refused — while the greeting
/// commands, NOOP, RSET, HELP and STARTTLS itself pass; after the
/// handshake the same commands reach the application.
#[test]
fn starttls_required_refuses_mail_before_tls() {
    run(&format!(
        "!starttls required
!auth PLAIN
S: 220 mx.example.org ESMTP
C: MAIL FROM:<a@example.org>
S: 530 Must issue a STARTTLS command first
H: HELO client.example
C: RCPT TO:<b@example.org>
S: 530 Must issue a STARTTLS command first
{}C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
C: VRFY postmaster
C: EXPN staff
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S*6: 530 5.7.0 Must issue a STARTTLS command first
B: BDAT 3 LAST\\r\\nabc
S: 530 5.7.0 Must issue a STARTTLS command first
C: NOOP
C: RSET
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
C: HELP
S: 214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH (RFC 5321)
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
E: starttls
X: tls
E: tls-established
H: EHLO client.example +AUTH PLAIN
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: VRFY postmaster
E: vrfy postmaster
A: accept
S: 252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery
C: QUIT
S: 221 2.0.0 mx.example.org Service closing transmission channel
E: closed quit
X: closed
",
        STARTTLS_EHLO.trim_start_matches('\n').replacen("S: 220 mx.example.org ESMTP\n", "", 1)
    ));
}

/// Opportunistic STARTTLS (Postfix `may`) refuses nothing before TLS.
#[test]
fn starttls_opportunistic_accepts_mail_in_plaintext() {
    run(&format!(
        "!starttls\n{STARTTLS_EHLO}C: MAIL FROM:<a@example.org>\nE: mail FROM:<a@example.org>\nA: accept\nS: 250 2.1.0 Sender ok\n"
    ));
}
