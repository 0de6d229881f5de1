//! Basic server transcripts: greeting, EHLO, a full transaction, the
//! automatic replies.

use smtp_tests::transcript::run;

#[test]
fn ehlo_and_simple_transaction() {
    run(r"
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250-SIZE 10240000
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250 SMTPUTF8
E: helo ehlo client.example
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
");
}
