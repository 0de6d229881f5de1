//! Descriptor exhaustion: the `mail-server` example in a child process
//! whose descriptor limit (`ulimit -n`) is lowered runs out of descriptors
//! while clients keep connecting. It must keep serving its open
//! connections, log the shortage once, and — once connections close —
//! accept the clients that waited in the listen queue, without a new
//! connection arriving to wake it (with edge-triggered readiness a loop
//! that simply gave up on the failed `accept` would leave them there).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use smtp_tests::examples;

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

struct KillOnDrop {
    child: Child,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    stream: TcpStream,
    replies: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let replies = BufReader::new(stream.try_clone().unwrap());
        Self { stream, replies }
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.replies
            .read_line(&mut line)
            .expect("a reply within the timeout");
        line
    }
}

#[test]
fn out_of_descriptors_backs_off_serves_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("server.log");
    let server = examples::example("smtp-mio", "mail-server");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\""))
        .arg(&server)
        .args(["--listen", "127.0.0.1:0", "--no-tls", "--threads", "1"])
        .arg("--maildir")
        .arg(dir.path().join("maildir"))
        .env("TMPDIR", dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = KillOnDrop {
        child: cmd.spawn().unwrap(),
    };
    let stdout = child.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("startup line");
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("smtp://"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let mut first: Vec<Client> = (0..FIRST).map(|_| Client::connect(addr)).collect();
    for c in &mut first {
        assert!(c.reply().starts_with("220 "));
    }
    // More than the descriptors left: the server accepts what it can and
    // the rest wait in the listen queue.
    let mut rest: Vec<Client> = (FIRST..CLIENTS).map(|_| Client::connect(addr)).collect();
    // Meanwhile the open connections are served.
    for c in &mut first {
        c.stream.write_all(b"NOOP\r\n").unwrap();
        assert!(c.reply().starts_with("250 "));
    }
    // Closing them frees descriptors: every waiting client is greeted,
    // although no new connection arrives to wake the listener.
    for mut c in first {
        c.stream.write_all(b"QUIT\r\n").unwrap();
        assert!(c.reply().starts_with("221 "));
    }
    for c in &mut rest {
        assert!(c.reply().starts_with("220 "));
    }
    for mut c in rest {
        c.stream.write_all(b"QUIT\r\n").unwrap();
        assert!(c.reply().starts_with("221 "));
    }
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(
        log.matches("pausing accepts").count(),
        1,
        "one warning per episode:\n{log}"
    );
    assert!(log.contains("accepting connections again"), "{log}");
}
