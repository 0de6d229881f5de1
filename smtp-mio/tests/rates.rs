//! Per-client rates on the mio server, a short real run: connections over
//! the rate get `421 4.7.0` instead of the greeting, `MAIL` and `RCPT` over
//! theirs `450 4.7.1`, and the connection goes on.

use smtp_mio::server::store::Credentials;
use smtp_tests::line_client::LineClient;

mod common;
use common::{TIMEOUT, start_store};

#[test]
fn connection_message_and_recipient_rates() {
    let server = start_store(Credentials::new(), |o| {
        o.rates.connections = Some(2);
        o.rates.messages = Some(2);
        o.rates.recipients = Some(3);
        // The test client is on loopback, exempt by default.
        o.rates.count_loopback = true;
    });
    let mut a = LineClient::connect(server.addr, TIMEOUT);
    assert!(a.last_line().starts_with("220 "));
    let mut b = LineClient::connect(server.addr, TIMEOUT);
    assert!(b.last_line().starts_with("220 "));
    let mut c = LineClient::connect(server.addr, TIMEOUT);
    assert_eq!(
        c.last_line(),
        "421 4.7.0 mx.test Error: too many connections from 127.0.0.1"
    );

    assert!(a.cmd_last("EHLO client.test").starts_with("250 "));
    assert!(a.cmd_last("MAIL FROM:<a@example.org>").starts_with("250 "));
    for to in ["b", "c", "d"] {
        assert!(
            a.cmd_last(&format!("RCPT TO:<{to}@example.net>"))
                .starts_with("250 ")
        );
    }
    assert_eq!(
        a.cmd_last("RCPT TO:<e@example.net>"),
        "450 4.7.1 Error: too many recipients from 127.0.0.1"
    );
    assert!(a.cmd_last("RSET").starts_with("250 "));
    assert!(a.cmd_last("MAIL FROM:<a@example.org>").starts_with("250 "));
    assert!(a.cmd_last("RSET").starts_with("250 "));
    assert_eq!(
        a.cmd_last("MAIL FROM:<a@example.org>"),
        "450 4.7.1 Error: too much mail from 127.0.0.1"
    );
    // The rate is the client's, not the connection's.
    assert!(b.cmd_last("EHLO client.test").starts_with("250 "));
    assert_eq!(
        b.cmd_last("MAIL FROM:<a@example.org>"),
        "450 4.7.1 Error: too much mail from 127.0.0.1"
    );
    assert!(a.cmd_last("QUIT").starts_with("221 "));
    assert!(b.cmd_last("QUIT").starts_with("221 "));
}
