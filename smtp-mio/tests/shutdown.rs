//! Graceful shutdown as clients see it: a connection between transactions
//! (greeted, or after a message) gets `421 4.3.2` and is closed at once; a
//! connection inside a transaction finishes it first, then gets its `421`.

mod common;

use smtp_mio::server::store::Credentials;
use smtp_tests::line_client::LineClient;

use common::{TIMEOUT, start_store};

/// A plain client, greeted, reading whole replies.
fn connect(server: &common::TestServer) -> LineClient {
    let mut c = LineClient::connect(server.addr, TIMEOUT);
    assert!(c.reply().starts_with("220 "));
    c
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

#[test]
fn idle_connections_get_421_and_a_transaction_in_progress_finishes() {
    let server = start_store(Credentials::new(), |o| o.threads = 1);

    // Greeted with EHLO, nothing else.
    let mut greeted = connect(&server);
    assert_eq!(code(&greeted.cmd("EHLO client.test")), "250");
    // Between transactions: one message done.
    let mut between = connect(&server);
    assert_eq!(code(&between.cmd("EHLO client.test")), "250");
    assert_eq!(code(&between.cmd("MAIL FROM:<a@example.org>")), "250");
    assert_eq!(code(&between.cmd("RCPT TO:<b@example.net>")), "250");
    assert_eq!(code(&between.cmd("DATA")), "354");
    assert_eq!(code(&between.cmd("Subject: one\r\n\r\nfirst\r\n.")), "250");
    // Inside a transaction: MAIL and RCPT accepted, DATA not sent yet.
    let mut open = connect(&server);
    assert_eq!(code(&open.cmd("EHLO client.test")), "250");
    assert_eq!(code(&open.cmd("MAIL FROM:<c@example.org>")), "250");
    assert_eq!(code(&open.cmd("RCPT TO:<d@example.net>")), "250");

    server
        .running
        .as_ref()
        .unwrap()
        .shutdown_handle()
        .shutdown();

    for idle in [&mut greeted, &mut between] {
        let reply = idle.reply();
        assert!(reply.starts_with("421 4.3.2 "), "{reply}");
        assert!(idle.closed());
    }

    // The transaction goes on to its end, then the 421.
    assert_eq!(code(&open.cmd("DATA")), "354");
    assert_eq!(code(&open.cmd("Subject: two\r\n\r\nsecond\r\n.")), "250");
    let reply = open.reply();
    assert!(reply.starts_with("421 4.3.2 "), "{reply}");
    assert!(open.closed());

    assert_eq!(server.files("new").len(), 2);
    server.shutdown();
}
