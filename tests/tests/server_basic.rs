//! Server transcripts: the automatic replies of RFC 5321, sequencing,
//! parameters, pipelining and the RFC 5321 Appendix D scenarios. Every
//! transcript is replayed whole, byte by byte and cut at every index.

use smtp_tests::transcript::run;

/// Greeting and EHLO with the default configuration.
const EHLO: &str = "
S: 220 mx.example.org ESMTP
H: EHLO client.example
";

fn with_ehlo(rest: &str) -> String {
    format!("{EHLO}{rest}")
}

#[test]
fn ehlo_and_simple_transaction() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<alice@example.org>
E: mail FROM:<alice@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<bob@example.net>
E: rcpt TO:<bob@example.net>
A: accept
S: 250 2.1.5 Recipient ok
C: DATA
E: data-start data
A: accept
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: hi
C:
C: ..dot
C: .
E: body Subject: hi\r\n\r\n.dot\r\n
E: message-end size=21 replies=1
A: accept
S: 250 2.0.0 Message accepted
C: QUIT
S: 221 2.0.0 mx.example.org Service closing transmission channel
E: closed quit
X: closed
",
    ));
}

#[test]
fn helo_gets_no_extensions_and_no_enhanced_codes() {
    run(r"
S: 220 mx.example.org ESMTP
H: HELO client.example
C: MAIL FROM:<a@example.org> SIZE=10
S: 555 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 Sender ok
C: NOOP
S: 250 Ok
");
}

#[test]
fn appendix_d1_typical_transaction() {
    // RFC 5321 Appendix D.1, with PIPELINING off and each reply awaited.
    run(r"
!hostname foo.com
!offer -pipelining -chunking -smtputf8 -8bitmime
S: 220 foo.com ESMTP
C: EHLO bar.com
S: 250-foo.com
S: 250-SIZE 10240000
S: 250 ENHANCEDSTATUSCODES
E: helo ehlo bar.com
C: MAIL FROM:<Smith@bar.com>
E: mail FROM:<Smith@bar.com>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<Jones@foo.com>
E: rcpt TO:<Jones@foo.com>
A: accept
S: 250 2.1.5 Recipient ok
C: RCPT TO:<Green@foo.com>
E: rcpt TO:<Green@foo.com>
A: reply 550 No such user here
S: 550 No such user here
C: RCPT TO:<Brown@foo.com>
E: rcpt TO:<Brown@foo.com>
A: accept
S: 250 2.1.5 Recipient ok
C: DATA
E: data-start data
A: accept
S: 354 End data with <CR><LF>.<CR><LF>
C: Blah blah blah...
C: ...etc. etc. etc.
C: .
E: body Blah blah blah...\r\n..etc. etc. etc.\r\n
E: message-end size=37 replies=1
A: reply 250 OK
S: 250 OK
C: QUIT
S: 221 2.0.0 foo.com Service closing transmission channel
E: closed quit
");
}

#[test]
fn appendix_d2_aborted_transaction() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<Smith@bar.com>
E: mail FROM:<Smith@bar.com>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<Jones@foo.com>
E: rcpt TO:<Jones@foo.com>
A: accept
S: 250 2.1.5 Recipient ok
C: RSET
S: 250 2.0.0 Ok
E: reset rset
C: DATA
S: 503 5.5.1 Need MAIL command
C: QUIT
S: 221 2.0.0 mx.example.org Service closing transmission channel
E: closed quit
",
    ));
}

#[test]
fn appendix_d3_relay_with_null_reverse_path_and_vrfy() {
    run(&with_ehlo(
        r"
C: VRFY Crispin
E: vrfy Crispin
A: reply 250 Mark Crispin <Admin.MRC@foo.com>
S: 250 Mark Crispin <Admin.MRC@foo.com>
C: EXPN list
E: expn list
A: accept
S: 252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery
C: MAIL FROM:<>
E: mail FROM:<>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<Postmaster>
E: rcpt TO:<Postmaster>
A: accept
S: 250 2.1.5 Recipient ok
",
    ));
}

#[test]
fn pipelined_batch_is_answered_in_order() {
    // RFC 2920 §3.1 example: everything up to DATA in one write.
    run(&with_ehlo(
        r"
C: MAIL FROM:<mrose@dbc.mtview.ca.us>
C: RCPT TO:<ned@innosoft.com>
C: RCPT TO:<dan@innosoft.com>
C: RCPT TO:<kvc@innosoft.com>
C: DATA
E: mail FROM:<mrose@dbc.mtview.ca.us>
A: accept
E: rcpt TO:<ned@innosoft.com>
A: accept
E: rcpt TO:<dan@innosoft.com>
A: reply 550 5.1.1 No such user
E: rcpt TO:<kvc@innosoft.com>
A: accept
E: data-start data
A: accept
S: 250 2.1.0 Sender ok
S: 250 2.1.5 Recipient ok
S: 550 5.1.1 No such user
S: 250 2.1.5 Recipient ok
S: 354 End data with <CR><LF>.<CR><LF>
C: body
C: .
C: QUIT
E: body body\r\n
E: message-end size=6 replies=1
A: accept
S: 250 2.0.0 Message accepted
S: 221 2.0.0 mx.example.org Service closing transmission channel
E: closed quit
",
    ));
}

#[test]
fn bad_sequences_get_503() {
    run(r"
S: 220 mx.example.org ESMTP
C: MAIL FROM:<a@example.org>
S: 503 Send EHLO/HELO first
C: DATA
S: 503 Send EHLO/HELO first
H: EHLO client.example
C: RCPT TO:<b@example.org>
S: 503 5.5.1 Need MAIL command
C: DATA
S: 503 5.5.1 Need MAIL command
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: DATA
S: 503 5.5.1 Need RCPT command
C: MAIL FROM:<a@example.org>
S: 503 5.5.1 Nested MAIL command
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: reply 550 5.1.1 unknown
S: 550 5.1.1 unknown
C: DATA
S: 554 5.5.1 No valid recipients
C: STARTTLS
S: 502 5.5.1 Command not implemented
C: AUTH PLAIN
S: 502 5.5.1 Command not implemented
");
}

#[test]
fn unknown_commands_syntax_errors_help_noop() {
    run(&with_ehlo(
        r"
C: FOO bar
S: 500 5.5.2 Command unrecognized
C: MAIL TO:<a@example.org>
S: 501 5.5.2 Syntax error in parameters or arguments
C: MAIL FROM:<not an address>
S: 501 5.1.7 Bad sender address syntax
C: NOOP whatever
S: 250 2.0.0 Ok
C: HELP
S: 214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH (RFC 5321)
C: LHLO client.example
S: 500 5.5.2 Command unrecognized
B: NO\nOP\r\n
S: 500 5.5.2 Bare CR or LF in command
",
    ));
}

#[test]
fn parameters_not_offered_get_555() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<a@example.org> BODY=BINARYMIME
S: 555 5.5.4 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org> RET=HDRS
S: 555 5.5.4 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org> X-UNKNOWN=1
S: 555 5.5.4 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org> AUTH=<>
S: 555 5.5.4 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org> REQUIRETLS
S: 555 5.5.4 Parameter not recognized or not implemented
C: MAIL FROM:<a@example.org> SIZE=10240001
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8
E: mail FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org> NOTIFY=NEVER
S: 555 5.5.4 Parameter not recognized or not implemented
",
    ));
}

#[test]
fn smtputf8_addresses_need_the_parameter() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<jörg@example.org>
S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>
S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
C: RSET
S: 250 2.0.0 Ok
E: reset rset
C: MAIL FROM:<jörg@example.org> SMTPUTF8
E: mail FROM:<jörg@example.org> SMTPUTF8
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>
E: rcpt TO:<δοκιμή@παράδειγμα.δοκιμή>
A: accept
S: 250 2.1.5 Recipient ok
B: RCPT TO:<a\xff@example.org>\r\n
S: 501 5.5.2 Syntax error in parameters or arguments
",
    ));
}

#[test]
fn reply_codes_are_checked_against_the_question() {
    run(&with_ehlo(
        r"
U: accept
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
U: reply 354 go ahead
U: reply 221 bye
U: challenge abc
A: reply 451 4.3.0 try later
S: 451 4.3.0 try later
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
U: reply 354 nope
A: reply 251 2.1.5 will forward
S: 251 2.1.5 will forward
C: DATA
E: data-start data
U: reply 250 nope
A: reply 554 5.7.1 no thanks
S: 554 5.7.1 no thanks
C: RCPT TO:<b@example.org>
S: 503 5.5.1 Need MAIL command
",
    ));
}

#[test]
fn ehlo_inside_a_transaction_resets_it() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
H: EHLO again.example
E: reset helo
C: RCPT TO:<b@example.org>
S: 503 5.5.1 Need MAIL command
",
    ));
}

#[test]
fn too_many_recipients_get_452() {
    let mut t = String::from(
        "
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C*101: RCPT TO:<b@example.org>
",
    );
    for _ in 0..100 {
        t.push_str("E: rcpt TO:<b@example.org>\nA: accept\n");
    }
    t.push_str("S*100: 250 2.1.5 Recipient ok\nS: 452 4.5.3 Too many recipients\n");
    run(&with_ehlo(&t));
}

#[test]
fn bdat_transfer() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
B: BDAT 7\r\nab\r\n.\r\nBDAT 0 LAST\r\n
E: mail FROM:<a@example.org>
A: accept
E: rcpt TO:<b@example.org>
A: accept
E: data-start bdat
A: accept
E: body ab\r\n.\r\n
E: message-end size=7 replies=1
A: accept
S: 250 2.1.0 Sender ok
S: 250 2.1.5 Recipient ok
S: 250 2.0.0 7 octets received
S: 250 2.0.0 Message accepted
",
    ));
}

#[test]
fn bdat_refusals_still_consume_the_chunk() {
    run(&with_ehlo(
        r"
B: BDAT 11 LAST\r\nMAIL FROM:x
S: 503 5.5.1 Need MAIL command
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: reply 550 5.1.1 no
S: 550 5.1.1 no
B: BDAT 10\r\nRSET\r\nQUIT
E: reset chunk-refused
S: 554 5.5.1 No valid recipients
C: RCPT TO:<b@example.org>
S: 503 5.5.1 Need MAIL command
C: BDAT x
S: 501 5.5.4 Invalid command arguments
",
    ));
}

#[test]
fn bdat_declined_by_the_application_and_data_after_bdat() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
B: BDAT 3\r\nabc
E: data-start bdat
A: reply 452 4.3.1 no space
S: 452 4.3.1 no space
C: DATA
S: 503 5.5.1 Need MAIL command
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
B: BDAT 2\r\nxy
E: data-start bdat
A: accept
E: body xy
S: 250 2.0.0 2 octets received
C: DATA
S: 503 5.5.1 DATA not allowed after BDAT
B: BDAT 1 LAST\r\nz
E: body z
E: message-end size=3 replies=1
A: accept
S: 250 2.0.0 Message accepted
",
    ));
}

#[test]
fn binarymime_requires_bdat() {
    run(r"
!offer +binarymime
S: 220 mx.example.org ESMTP
C: EHLO c.example
S: 250-mx.example.org
S: 250-SIZE 10240000
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250-BINARYMIME
S: 250 SMTPUTF8
E: helo ehlo c.example
C: MAIL FROM:<a@example.org> BODY=BINARYMIME
E: mail FROM:<a@example.org> BODY=BINARYMIME
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
C: DATA
S: 503 5.5.1 BINARYMIME requires BDAT
");
}

#[test]
fn message_too_big_keeps_framing_and_resets() {
    run(&format!(
        "!max-size 15{}",
        with_ehlo(
            r"
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
C: 0123456789
C: 0123456789
C: .
C: RCPT TO:<c@example.org>
E: body 0123456789\r\n012
E: reset too-big
S: 552 5.3.4 Message too big
S: 503 5.5.1 Need MAIL command
",
        )
    ));
}

#[test]
fn bdat_too_big_gets_552_for_that_chunk() {
    run(&format!(
        "!max-size 15{}",
        with_ehlo(
            r"
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 2.1.5 Recipient ok
B: BDAT 20\r\n01234567890123456789BDAT 2 LAST\r\nxy
E: data-start bdat
A: accept
E: body 012345678901234
E: reset too-big
S: 552 5.3.4 Message too big
S: 503 5.5.1 Need MAIL command
",
        )
    ));
}

#[test]
fn lmtp_one_reply_per_recipient() {
    run(r"
!lmtp
S: 220 mx.example.org LMTP
C: EHLO c.example
S: 500 Command unrecognized
C: MAIL FROM:<a@example.org>
S: 503 Send LHLO first
H: LHLO c.example
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: RCPT TO:<c@example.org>
C: RCPT TO:<d@example.org>
C: DATA
E: mail FROM:<a@example.org>
A: accept
E: rcpt TO:<b@example.org>
A: accept
E: rcpt TO:<c@example.org>
A: reply 550 5.1.1 no
E: rcpt TO:<d@example.org>
A: accept
E: data-start data
A: accept
S: 250 2.1.0 Sender ok
S: 250 2.1.5 Recipient ok
S: 550 5.1.1 no
S: 250 2.1.5 Recipient ok
S: 354 End data with <CR><LF>.<CR><LF>
C: hi
C: .
E: body hi\r\n
E: message-end size=4 replies=2
A: accept
A: reply 452 4.2.2 mailbox full
S: 250 2.0.0 Message accepted
S: 452 4.2.2 mailbox full
U: accept
");
}

#[test]
fn no_service_greeting_allows_only_quit() {
    run(r"
!greeting 554 mx.example.org No SMTP service here
S: 554 mx.example.org No SMTP service here
C: EHLO c.example
S: 503 No SMTP service here
C: QUIT
S: 221 mx.example.org Service closing transmission channel
E: closed quit
");
}

#[test]
fn eof_mid_message_closes_without_a_reply() {
    run(&with_ehlo(
        r"
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
B: partial
X: eof
E: body partial
E: closed eof
X: closed
",
    ));
}

#[test]
fn application_shutdown_and_421_answers_close() {
    run(&with_ehlo(
        r"
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
A: reply 421 4.3.2 mx.example.org going down
S: 421 4.3.2 mx.example.org going down
E: closed shutdown
X: closed
",
    ));
    run(&with_ehlo(
        r"
A: shutdown
S: 421 4.3.2 mx.example.org Service shutting down
E: closed shutdown
",
    ));
}
