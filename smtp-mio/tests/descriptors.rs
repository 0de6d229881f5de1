//! Descriptor exhaustion: the `mail-server` example in a child process
//! whose descriptor limit (`ulimit -n`) is lowered runs out of descriptors
//! while clients keep connecting. It must keep serving its open
//! connections, log the shortage once, and — once connections close —
//! accept the clients that waited in the listen queue, without a new
//! connection arriving to wake it (with edge-triggered readiness a loop
//! that simply gave up on the failed `accept` would leave them there).

use std::time::Duration;

use smtp_tests::line_client::LineClient;
use smtp_tests::mail_server::MailServer;

/// Any one read: long enough for a debug build on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The child's descriptor limit: about ten go to the process itself
/// (standard streams, poll, waker, listener, log file), the rest to
/// connections.
const NOFILE: u32 = 40;
/// Clients that connect in all: more than the limit allows at once.
const CLIENTS: usize = 45;
/// Clients served first (well below the limit), then closed.
const FIRST: usize = 20;

#[test]
fn out_of_descriptors_backs_off_serves_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--no-tls",
        "--threads",
        "1",
        "--maildir",
        maildir.to_str().unwrap(),
    ];
    let server = MailServer::launch(dir.path(), &args, &[], &format!("ulimit -n {NOFILE} &&"))
        .unwrap_or_else(|(status, log)| panic!("mail-server exited ({status}):\n{log}"));
    let addr = server.addr();

    let mut first: Vec<LineClient> = (0..FIRST)
        .map(|_| LineClient::connect(addr, TIMEOUT))
        .collect();
    for c in &mut first {
        assert!(c.last_line().starts_with("220 "));
    }
    // More than the descriptors left: the server accepts what it can and
    // the rest wait in the listen queue.
    let mut rest: Vec<LineClient> = (FIRST..CLIENTS)
        .map(|_| LineClient::connect(addr, TIMEOUT))
        .collect();
    // Meanwhile the open connections are served.
    for c in &mut first {
        assert!(c.cmd_last("NOOP").starts_with("250 "));
    }
    // Closing them frees descriptors: every waiting client is greeted,
    // although no new connection arrives to wake the listener.
    for mut c in first {
        assert!(c.cmd_last("QUIT").starts_with("221 "));
    }
    for c in &mut rest {
        assert!(c.last_line().starts_with("220 "));
    }
    for mut c in rest {
        assert!(c.cmd_last("QUIT").starts_with("221 "));
    }
    let log = server.log();
    assert_eq!(
        log.matches("pausing accepts").count(),
        1,
        "one warning per episode:\n{log}"
    );
    assert!(log.contains("accepting connections again"), "{log}");
}
