//! Crash safety, proved on the `mail-server` example as a process: many
//! concurrent clients, SIGKILL at pseudo-random moments (after a
//! pseudo-random number of acknowledged messages, while the other clients
//! are in the middle of theirs), several rounds restarting on the same
//! Maildir. Afterwards every message a client saw acknowledged with `250`
//! is in `new/` byte for byte, every file in `new/` is a whole message, and
//! what a killed process left in `tmp/` is ignored (never in `new/`, never
//! in the way of a later delivery; `Maildir::open` removes such files once
//! they are 36 hours old, which the Maildir unit tests check). Then the same with the storage
//! failing: a Maildir that cannot be written gets `451 4.3.0`, a full one
//! (here: the file size limit) `452 4.3.1`, and nothing is acknowledged
//! that is not stored.
//!
//! Bounded in time: a few rounds of a few dozen messages, every read with a
//! timeout, every child killed when the test ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_tests::line_client::LineClient;
use smtp_tests::mail_server::MailServer;
use smtp_tests::sync::Signal;

const TIMEOUT: Duration = Duration::from_secs(20);
const ROUNDS: u64 = 6;
const CLIENTS: u64 = 8;

/// Starts `mail-server` on `maildir` under `sh -c "<limits> exec ..."`;
/// killed (SIGKILL) when dropped.
fn start(dir: &Path, maildir: &Path, limits: &str) -> MailServer {
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--no-tls",
        "--threads",
        "2",
        "--maildir",
        maildir.to_str().unwrap(),
    ];
    MailServer::launch(dir, &args, &[], limits)
        .unwrap_or_else(|(status, log)| panic!("mail-server exited ({status}):\n{log}"))
}

/// A deterministic pseudo-random sequence (SplitMix64): the test is the
/// same run after run, with kill points and sizes all over the place.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A message body, unique by its subject, of pseudo-random length.
fn body(round: u64, client: u64, n: u64, rng: &mut Rng) -> Vec<u8> {
    let mut b = format!("Subject: r{round} c{client} m{n}\r\n\r\n").into_bytes();
    let lines = rng.below(400);
    for i in 0..lines {
        let len = usize::try_from(rng.below(120)).unwrap_or(0);
        b.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
        b.extend_from_slice(b"\r\n");
    }
    b
}

/// The subject that names a body.
fn subject(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let start = text.find("Subject: ")? + "Subject: ".len();
    let end = text[start..].find("\r\n")? + start;
    Some(text[start..end].to_owned())
}

/// The last line of the next reply; an error once the server is gone.
fn reply(c: &mut LineClient) -> std::io::Result<String> {
    Ok(c.try_reply_lines()?.pop().unwrap_or_default())
}

/// Writes `line` (with its CRLF); the last line of the reply.
fn cmd(c: &mut LineClient, line: &[u8]) -> std::io::Result<String> {
    c.try_write(line)?;
    reply(c)
}

/// Sends one message; `Ok(Some(id))` if it was acknowledged with 250.
fn send(c: &mut LineClient, message: &[u8]) -> std::io::Result<Option<String>> {
    let mail = cmd(c, b"MAIL FROM:<a@example.org>\r\n")?;
    let rcpt = cmd(c, b"RCPT TO:<b@example.net>\r\n")?;
    let data = cmd(c, b"DATA\r\n")?;
    if !(mail.starts_with("250") && rcpt.starts_with("250") && data.starts_with("354")) {
        return Ok(None);
    }
    c.try_write(message)?;
    let end = cmd(c, b".\r\n")?;
    Ok(end
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .map(str::to_owned))
}

/// What the clients of all rounds sent and saw.
#[derive(Default)]
struct Record {
    /// Every body sent whole (its final dot written), by subject.
    sent: HashMap<String, Vec<u8>>,
    /// Acknowledged messages: queue id and subject.
    acked: Vec<(String, String)>,
}

/// One client: greets, then sends messages until the server dies.
fn client(addr: SocketAddr, round: u64, id: u64, record: &Mutex<Record>, acked: &Signal<u64>) {
    let mut rng = Rng(round * 1000 + id);
    let Ok(mut c) = LineClient::try_connect(addr, TIMEOUT) else {
        return;
    };
    let greeted = reply(&mut c).is_ok_and(|r| r.starts_with("220"))
        && cmd(&mut c, b"EHLO client.test\r\n").is_ok_and(|r| r.starts_with("250"));
    if !greeted {
        return;
    }
    for n in 0.. {
        let message = body(round, id, n, &mut rng);
        let name = subject(&message).unwrap_or_default();
        record
            .lock()
            .unwrap()
            .sent
            .insert(name.clone(), message.clone());
        match send(&mut c, &message) {
            Ok(Some(queue_id)) => {
                record.lock().unwrap().acked.push((queue_id, name));
                acked.update(|n| *n += 1);
            }
            Ok(None) => panic!("a refused message: {name}"),
            Err(_) => return,
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let record = Arc::new(Mutex::new(Record::default()));
    let mut rng = Rng(17);
    let mut kills = 0;
    for round in 0..ROUNDS {
        let server = start(dir.path(), &maildir, "");
        let acked = Arc::new(Signal::new(0u64));
        let before = record.lock().unwrap().acked.len() as u64;
        let workers: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (record, acked) = (Arc::clone(&record), Arc::clone(&acked));
                let addr = server.addr();
                std::thread::spawn(move || client(addr, round, id, &record, &acked))
            })
            .collect();
        // Kill after a pseudo-random number of acknowledged messages, with
        // the other clients somewhere in theirs.
        let target = 10 + rng.below(60);
        let reached = acked.wait_for(Duration::from_secs(40), |n| (*n >= target).then_some(()));
        assert!(
            reached.is_some(),
            "round {round}: {target} messages never acknowledged"
        );
        drop(server); // SIGKILL
        kills += 1;
        for w in workers {
            w.join().unwrap();
        }
        let after = record.lock().unwrap().acked.len() as u64;
        assert!(after - before >= target);
    }

    // Restarted once more on the same Maildir: what the killed processes
    // left in tmp/ is in nobody's way.
    let leftovers = files(&maildir.join("tmp")).len();
    let server = start(dir.path(), &maildir, "");
    let mut c = LineClient::greeted(server.addr(), TIMEOUT);
    assert!(c.cmd_last("EHLO client.test").starts_with("250"));
    let last = b"Subject: after the rounds\r\n\r\nstill here\r\n".to_vec();
    let id = send(&mut c, &last).unwrap().expect("acknowledged");
    let after_restart = std::fs::read(maildir.join("new").join(&id)).unwrap();
    assert!(after_restart.ends_with(&last));
    drop(server);

    let record = record.lock().unwrap();
    // Every acknowledged message is in new/, byte for byte.
    for (id, name) in &record.acked {
        let stored = std::fs::read(maildir.join("new").join(id))
            .unwrap_or_else(|e| panic!("acknowledged {name} ({id}) missing: {e}"));
        let sent = &record.sent[name];
        // Default settings verify DKIM: our Authentication-Results field
        // comes first, then the Received field written when DATA began.
        let trace = b"Authentication-Results: ";
        assert!(stored.starts_with(trace), "{id}");
        assert!(stored.windows(12).any(|w| w == b"\r\nReceived: "), "{id}");
        assert!(stored.ends_with(sent), "{name} ({id}) not byte for byte");
    }
    // Every file in new/ is a whole message (a kill between the commit and
    // the 250 leaves a whole, unacknowledged one: the client sends it
    // again, a duplicate but no loss).
    let new = files(&maildir.join("new"));
    let mut unacknowledged = 0;
    for path in &new {
        let stored = std::fs::read(path).unwrap();
        if stored.ends_with(&last) {
            continue;
        }
        let name = subject(&stored).unwrap_or_else(|| panic!("no subject: {}", path.display()));
        let sent = record
            .sent
            .get(&name)
            .unwrap_or_else(|| panic!("{} holds an unknown message", path.display()));
        assert!(stored.ends_with(sent), "{} is not whole", path.display());
        unacknowledged += usize::from(!record.acked.iter().any(|(_, n)| *n == name));
    }
    assert_eq!(new.len(), record.acked.len() + unacknowledged + 1);
    println!(
        "crash safety: {ROUNDS} rounds, {kills} SIGKILLs, {CLIENTS} clients, {} messages \
         acknowledged and all found byte for byte, {unacknowledged} stored but unacknowledged \
         (killed before the 250), {leftovers} tmp/ leftovers ignored",
        record.acked.len()
    );
}

/// One connection's attempt at one message: its final reply (or the
/// refusal of DATA).
fn attempt(addr: SocketAddr, message: &[u8]) -> String {
    let mut c = LineClient::greeted(addr, TIMEOUT);
    assert!(c.cmd_last("EHLO client.test").starts_with("250"));
    assert!(c.cmd_last("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd_last("RCPT TO:<b@example.net>").starts_with("250"));
    let data = c.cmd_last("DATA");
    if !data.starts_with("354") {
        return data;
    }
    c.write(message);
    c.cmd_last(".")
}

#[test]
fn an_unwritable_maildir_gets_451() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let server = start(dir.path(), &maildir, "");
    let tmp = maildir.join("tmp");
    let root = std::fs::metadata("/proc/self").map_or(0, |m| m.uid()) == 0;
    if root {
        // Permissions do not bind root: a tmp/ that is not a directory
        // fails the same way.
        std::fs::remove_dir(&tmp).unwrap();
        std::fs::write(&tmp, b"").unwrap();
    } else {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let reply = attempt(server.addr(), b"Subject: x\r\n\r\nbody\r\n");
    assert!(reply.starts_with("451 4.3.0 "), "{reply}");
    assert!(files(&maildir.join("new")).is_empty());
}

#[test]
fn a_full_maildir_gets_452_and_acknowledges_only_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    // A file size limit of 16 KiB (SIGXFSZ ignored: the write fails with
    // EFBIG instead of killing the server).
    let server = start(dir.path(), &maildir, "trap '' XFSZ; ulimit -f 32;");
    let small = b"Subject: small\r\n\r\nfits\r\n".to_vec();
    let reply = attempt(server.addr(), &small);
    let id = reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("{reply}"));
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..1000 {
        big.extend_from_slice(&[b'x'; 98]);
        big.extend_from_slice(b"\r\n");
    }
    let reply = attempt(server.addr(), &big);
    assert!(reply.starts_with("452 4.3.1 "), "{reply}");
    // Only the acknowledged message is stored; nothing partial anywhere.
    let new = files(&maildir.join("new"));
    assert_eq!(new.len(), 1);
    assert!(std::fs::read(&new[0]).unwrap().ends_with(&small));
    assert!(new[0].ends_with(id));
    assert!(files(&maildir.join("tmp")).is_empty());
}
