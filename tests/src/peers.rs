//! Real SMTP peers for interop tests: find them, start them on loopback,
//! stop them.
//!
//! Our sessions are tested against each other in memory, but two halves
//! written by one team can share a misreading of the RFCs. So the transports
//! are also tested against programs other people wrote: Postfix's
//! `smtp-sink` (server) and `smtp-source` (load client), `swaks` (the SMTP
//! Swiss army knife), `curl`'s SMTP client and Python's `aiosmtpd` (server
//! with STARTTLS and AUTH); `openssl` makes a certificate for one of them;
//! for DKIM, Python's `dkimpy`.
//!
//! `.ci/install-peers` installs them (without any daemon) and writes
//! `target/peers/env`; `.ci/run` sources it. A finder looks at its
//! environment variable first, then where the script puts the peer, then
//! `PATH`. When a peer is absent the finder prints why and returns `None`,
//! so the test skips; with `SMTP_PEERS_REQUIRED=1` (set by the env file when
//! every peer was installed) it panics instead, so CI cannot turn green by
//! skipping.
//!
//! Every server runs on `127.0.0.1` on a free port, is waited for with a
//! bounded timeout, and is killed when its handle is dropped. Commands run
//! with [`run_bounded`], which kills them at a deadline, so no test can
//! hang on a peer.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a started server may take to accept connections (Python's
/// start-up with imports takes about a second on a loaded machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An external program found on this machine.
#[derive(Debug, Clone)]
pub struct Peer {
    name: &'static str,
    program: PathBuf,
    /// Directory of the program's private shared libraries (Postfix's
    /// `libpostfix-*.so` when unpacked from the .deb).
    lib_dir: Option<PathBuf>,
}

impl Peer {
    /// The peer's name, as in skip messages.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The executable.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A command running the program, with its library path set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(lib) = &self.lib_dir {
            let mut path = OsString::from(lib);
            if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                path.push(":");
                path.push(old);
            }
            cmd.env("LD_LIBRARY_PATH", path);
        }
        cmd
    }
}

/// Where `.ci/install-peers` puts things: `<workspace>/target/peers`.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("target/peers")
}

/// Postfix's `smtp-sink`: `$SMTP_SINK`, the installed copy, or `PATH`.
pub fn smtp_sink() -> Option<Peer> {
    postfix_tool("smtp-sink", "SMTP_SINK")
}

/// Postfix's `smtp-source`: `$SMTP_SOURCE`, the installed copy, or `PATH`.
pub fn smtp_source() -> Option<Peer> {
    postfix_tool("smtp-source", "SMTP_SOURCE")
}

/// `swaks`: `$SWAKS` or `PATH`.
pub fn swaks() -> Option<Peer> {
    found("swaks", "swaks", "SWAKS", &[])
}

/// `curl` with SMTP support: `$CURL` or `PATH`.
pub fn curl() -> Option<Peer> {
    let peer = found("curl", "curl", "CURL", &[])?;
    probed(peer, &["--version"], |out| {
        if out.status.success() && speaks_smtp(&out.stdout_text()) {
            Ok(())
        } else {
            Err(format!(
                "has no SMTP support: {}",
                out.stdout_text().lines().next().unwrap_or_default()
            ))
        }
    })
}

/// Whether `curl --version` lists the `smtp` protocol.
fn speaks_smtp(version: &str) -> bool {
    version
        .lines()
        .filter_map(|l| l.strip_prefix("Protocols:"))
        .any(|protocols| protocols.split_whitespace().any(|p| p == "smtp"))
}

/// `openssl` (to make test certificates for peers): `$OPENSSL` or `PATH`.
pub fn openssl() -> Option<Peer> {
    found("openssl", "openssl", "OPENSSL", &[])
}

/// A Python interpreter that can `import aiosmtpd`: `$AIOSMTPD_PYTHON`, the
/// installed venv, or `python3` on `PATH` if it has the module. Its standard
/// library also gives tests `smtplib`, a real client.
pub fn aiosmtpd_python() -> Option<Peer> {
    python_with("aiosmtpd", "AIOSMTPD_PYTHON", "aiosmtpd")
}

/// A Python interpreter that can `import dkim` (dkimpy, the DKIM reference
/// implementation) and `nacl.signing` (PyNaCl, for its ed25519-sha256):
/// `$DKIMPY_PYTHON`, the installed venv, or `python3` on `PATH` if it has
/// both. It runs `tests/dkimpy_helper.py` ([`dkimpy_helper`]).
pub fn dkimpy_python() -> Option<Peer> {
    python_with("dkimpy", "DKIMPY_PYTHON", "dkim, nacl.signing")
}

/// A Python interpreter (`$<var>`, the installed venv, or `python3` on
/// `PATH`) that can `import <modules>`, named `name`.
fn python_with(name: &'static str, var: &str, modules: &str) -> Option<Peer> {
    let venv = peers_dir().join("venv/bin/python");
    let peer = found(name, "python3", var, &[venv])?;
    probed(peer, &["-c", &format!("import {modules}")], |out| {
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot import {modules}: {}",
                out.stderr_text().trim()
            ))
        }
    })
}

/// The peer `name`: the program `program` found by [`find_program`]
/// (`$<var>`, then `known`, then `PATH`), without private libraries; or a
/// skip saying why it was not found.
fn found(name: &'static str, program: &str, var: &str, known: &[PathBuf]) -> Option<Peer> {
    match find_program(program, var, known) {
        Ok(program) => Some(Peer {
            name,
            program,
            lib_dir: None,
        }),
        Err(reason) => skip(name, &reason),
    }
}

/// `peer` if running it with `args` (bounded in time) gives an output
/// `usable` accepts; else a skip saying why.
fn probed(
    peer: Peer,
    args: &[&str],
    usable: impl FnOnce(&RunOutput) -> Result<(), String>,
) -> Option<Peer> {
    let mut cmd = peer.command();
    cmd.args(args);
    let why = match run_bounded(&mut cmd, Duration::from_secs(20)) {
        Ok(out) => match usable(&out) {
            Ok(()) => return Some(peer),
            Err(why) => why,
        },
        Err(e) => e.to_string(),
    };
    skip(peer.name, &format!("{}: {why}", peer.program.display()))
}

/// The script that drives dkimpy: `tests/dkimpy_helper.py`.
pub fn dkimpy_helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dkimpy_helper.py")
}

fn postfix_tool(name: &'static str, var: &str) -> Option<Peer> {
    let unpacked = peers_dir().join("postfix/usr/sbin").join(name);
    let program = match find_program(name, var, &[unpacked, Path::new("/usr/sbin").join(name)]) {
        Ok(program) => program,
        Err(reason) => return skip(name, &reason),
    };
    // Unpacked from the .deb, the tools need Postfix's private libraries:
    // $POSTFIX_LIB, or ../lib/postfix next to the program's sbin/.
    let lib_dir = std::env::var_os("POSTFIX_LIB")
        .map(PathBuf::from)
        .or_else(|| {
            program
                .parent()
                .and_then(Path::parent)
                .map(|usr| usr.join("lib/postfix"))
        })
        .filter(|dir| dir.is_dir());
    Some(Peer {
        name,
        program,
        lib_dir,
    })
}

/// The program named by `var`, else the first of `known` that exists, else
/// `name` on `PATH`; or why none was found.
fn find_program(name: &str, var: &str, known: &[PathBuf]) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("${var} = {} is not a file", path.display()))
        };
    }
    if let Some(path) = known.iter().find(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        format!("not found (set ${var}, put {name} on PATH, or run .ci/install-peers)")
    })
}

/// Prints why a peer is missing and returns `None`; panics instead when
/// `SMTP_PEERS_REQUIRED=1`.
fn skip(name: &str, reason: &str) -> Option<Peer> {
    if std::env::var_os("SMTP_PEERS_REQUIRED").is_some_and(|v| v == "1") {
        panic!("peer {name} is required (SMTP_PEERS_REQUIRED=1) but {reason}");
    }
    eprintln!("SKIP: peer {name} {reason}");
    None
}

/// What a command run by [`run_bounded`] left behind.
#[derive(Debug)]
pub struct RunOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl RunOutput {
    /// Stdout as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as (lossy) text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` to completion with no input, killing it if it runs longer
/// than `timeout` (then the error kind is `TimedOut`). Output goes to files,
/// so a chatty program can never block on a full pipe.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> io::Result<RunOutput> {
    let scratch = ScratchDir::new("run")?;
    let out_path = scratch.path().join("stdout");
    let err_path = scratch.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{cmd:?} still running after {timeout:?}: killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(RunOutput {
        status,
        stdout: fs::read(&out_path)?,
        stderr: fs::read(&err_path)?,
    })
}

/// A directory under the system temp dir, removed with its contents on
/// drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates a fresh, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "smtp-tests-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path)?;
        Ok(Self(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A server process on a loopback port, killed when dropped.
#[derive(Debug)]
pub struct PeerServer {
    child: Child,
    addr: SocketAddr,
    /// Holds the server's log (stderr) and anything else it writes.
    scratch: ScratchDir,
}

impl PeerServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its scratch directory (its log is `server.log`).
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.scratch.path().join("server.log")).unwrap_or_default()
    }

    /// Starts `cmd` (which must listen on `addr`, on loopback) with `scratch`
    /// as its directory and waits until `addr` accepts connections.
    fn spawn(mut cmd: Command, addr: SocketAddr, scratch: ScratchDir) -> io::Result<Self> {
        let log = fs::File::create(scratch.path().join("server.log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = Self {
            child,
            addr,
            scratch,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "server exited with {status} before listening on {}: {}",
                    self.addr,
                    self.log().trim()
                )));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "server not listening on {} after {START_TIMEOUT:?}",
                        self.addr
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (free when asked: another process may take it
/// before the server binds, so starters retry).
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    probe.local_addr()
}

/// Starts a server built by `make` on a free port, retrying a few times if
/// it dies early (another process took the port in between).
fn start_on_free_port(
    prefix: &str,
    mut make: impl FnMut(SocketAddr, &Path) -> Command,
) -> io::Result<PeerServer> {
    let mut last = None;
    for _ in 0..3 {
        let addr = free_loopback_addr()?;
        let scratch = ScratchDir::new(prefix)?;
        let cmd = make(addr, scratch.path());
        match PeerServer::spawn(cmd, addr, scratch) {
            Ok(server) => return Ok(server),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("server did not start")))
}

/// Whether this process runs as root (smtp-sink then needs `-u nobody`).
fn is_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Starts Postfix's `smtp-sink` on a free loopback port: it accepts and
/// discards every message with no delay, and offers PIPELINING, 8BITMIME,
/// AUTH, XCLIENT, XFORWARD, ENHANCEDSTATUSCODES and DSN (never STARTTLS).
pub fn start_smtp_sink(sink: &Peer) -> io::Result<PeerServer> {
    let root = is_root();
    start_on_free_port("smtp-sink", |addr, _| {
        let mut cmd = sink.command();
        if root {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg(addr.to_string()).arg("256");
        cmd
    })
}

/// Options of [`start_aiosmtpd`].
#[derive(Debug, Clone, Default)]
pub struct AiosmtpdOptions {
    /// Certificate chain and key (PEM files) to offer STARTTLS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// One user and password accepted by AUTH PLAIN/LOGIN. AUTH is then
    /// required before MAIL, and over TLS only when `tls` is set.
    pub auth: Option<(String, String)>,
    /// Save each accepted message in the server's directory (see
    /// [`saved_messages`]).
    pub save: bool,
}

/// The aiosmtpd server: a handler that keeps or discards each message, an
/// authenticator for one user, STARTTLS from a certificate file.
const AIOSMTPD_SERVER: &str = r#"
import asyncio, json, os, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

host, port, save_dir, cert, key, user, password = sys.argv[1:8]
ctx = None
if cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

class Handler:
    def __init__(self):
        self.count = 0
    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        if save_dir:
            base = os.path.join(save_dir, "msg-%06d" % self.count)
            with open(base + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            with open(base + ".json", "w") as f:
                json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                           "tls": session.ssl is not None,
                           "auth": session.authenticated}, f)
            os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as %d" % self.count

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    return AuthResult(success=ok)

handler = Handler()
def factory():
    kwargs = dict(hostname="aiosmtpd.test", ident="aiosmtpd-peer", enable_SMTPUTF8=True,
                  tls_context=ctx, require_starttls=False)
    if user:
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=ctx is not None)
    return SMTP(handler, **kwargs)

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
srv = loop.run_until_complete(loop.create_server(factory, host, int(port), backlog=1024))
print("aiosmtpd listening on %s:%s tls=%s auth=%s" % (host, port, bool(ctx), bool(user)), flush=True)
loop.run_forever()
"#;

/// Starts an aiosmtpd server on a free loopback port with `python` (from
/// [`aiosmtpd_python`]).
pub fn start_aiosmtpd(python: &Peer, options: &AiosmtpdOptions) -> io::Result<PeerServer> {
    start_on_free_port("aiosmtpd", |addr, dir| {
        let mut cmd = python.command();
        let (cert, key) = options
            .tls
            .as_ref()
            .map(|(c, k)| (c.as_os_str().to_owned(), k.as_os_str().to_owned()))
            .unwrap_or_default();
        let (user, password) = options.auth.clone().unwrap_or_default();
        let save_dir = if options.save {
            dir.as_os_str().to_owned()
        } else {
            OsString::new()
        };
        cmd.arg("-c")
            .arg(AIOSMTPD_SERVER)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(save_dir)
            .arg(cert)
            .arg(key)
            .arg(user)
            .arg(password);
        cmd
    })
}

/// One message kept by an aiosmtpd server started with `save: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMessage {
    /// The content as received (after dot-unstuffing).
    pub content: Vec<u8>,
    /// The envelope and session facts, as JSON text (`mail_from`,
    /// `rcpt_tos`, `tls`, `auth`).
    pub envelope_json: String,
}

/// The messages `server` saved so far, in arrival order.
pub fn saved_messages(server: &PeerServer) -> io::Result<Vec<SavedMessage>> {
    let mut names: Vec<PathBuf> = fs::read_dir(server.dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|eml| {
            Ok(SavedMessage {
                content: fs::read(&eml)?,
                envelope_json: fs::read_to_string(eml.with_extension("json"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// A minimal SMTP client: send a line, expect a reply code.
    struct Dialog {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    impl Dialog {
        fn connect(addr: SocketAddr) -> Self {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            Self {
                writer: stream.try_clone().unwrap(),
                reader: BufReader::new(stream),
            }
        }

        /// Reads one (possibly multi-line) reply; returns its lines.
        fn expect(&mut self, code: &str) -> Vec<String> {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).unwrap();
                assert!(line.starts_with(code), "expected {code}, got {line:?}");
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines;
                }
            }
        }

        fn send(&mut self, line: &str, code: &str) -> Vec<String> {
            self.writer.write_all(line.as_bytes()).unwrap();
            self.writer.write_all(b"\r\n").unwrap();
            self.expect(code)
        }

        /// Connects, reads the greeting and says EHLO; the EHLO reply's lines.
        fn after_ehlo(addr: SocketAddr) -> (Self, Vec<String>) {
            let mut d = Self::connect(addr);
            d.expect("220");
            let ehlo = d.send("EHLO client.test", "250");
            (d, ehlo)
        }
    }

    /// Runs a client `cmd` against `server`, bounded in time: it must exit
    /// successfully (else its output and the server's log are shown).
    fn succeeds(cmd: &mut Command, server: &PeerServer) {
        let out = run_bounded(cmd, Duration::from_secs(30)).unwrap();
        assert!(
            out.status.success(),
            "{}\n{}\n{}",
            out.stdout_text(),
            out.stderr_text(),
            server.log()
        );
    }

    /// Sends one message from a@example.org to b@example.net with `swaks`
    /// to `server` (`options`: the rest of its command line); it must
    /// succeed, and the server must have saved exactly that one message.
    fn swaks_delivers(
        swaks: &Peer,
        server: &PeerServer,
        options: impl FnOnce(&mut Command),
    ) -> SavedMessage {
        let mut cmd = swaks.command();
        cmd.args(["--server", &server.addr().to_string()]).args([
            "--from",
            "a@example.org",
            "--to",
            "b@example.net",
        ]);
        options(&mut cmd);
        succeeds(&mut cmd, server);
        let mut saved = saved_messages(server).unwrap();
        assert_eq!(saved.len(), 1);
        saved.remove(0)
    }

    #[test]
    fn smtp_sink_accepts_a_message() {
        let Some(sink) = smtp_sink() else { return };
        let server = start_smtp_sink(&sink).unwrap();
        let (mut d, ehlo) = Dialog::after_ehlo(server.addr());
        assert!(ehlo.iter().any(|l| l.contains("PIPELINING")), "{ehlo:?}");
        d.send("MAIL FROM:<a@example.org>", "250");
        d.send("RCPT TO:<b@example.net>", "250");
        d.send("DATA", "354");
        d.send("Subject: smoke\r\n\r\nhello\r\n.", "250");
        d.send("QUIT", "221");
    }

    #[test]
    fn smtp_source_delivers_to_smtp_sink() {
        let (Some(sink), Some(source)) = (smtp_sink(), smtp_source()) else {
            return;
        };
        let server = start_smtp_sink(&sink).unwrap();
        let mut cmd = source.command();
        cmd.args(["-m", "5", "-s", "1", "-l", "512"])
            .arg(server.addr().to_string());
        succeeds(&mut cmd, &server);
    }

    #[test]
    fn swaks_authenticates_and_delivers_to_aiosmtpd() {
        let (Some(python), Some(swaks)) = (aiosmtpd_python(), swaks()) else {
            return;
        };
        let options = AiosmtpdOptions {
            auth: Some(("alice".into(), "s3cret".into())),
            save: true,
            ..AiosmtpdOptions::default()
        };
        let server = start_aiosmtpd(&python, &options).unwrap();
        // Without AUTH the server refuses the transaction.
        let (mut d, _) = Dialog::after_ehlo(server.addr());
        d.send("MAIL FROM:<a@example.org>", "530");
        d.send("QUIT", "221");

        let saved = swaks_delivers(&swaks, &server, |cmd| {
            cmd.args(["--auth", "PLAIN", "--auth-user", "alice"])
                .args(["--auth-password", "s3cret"])
                .args(["--body", "interop body line", "--timeout", "10"]);
        });
        let content = String::from_utf8_lossy(&saved.content);
        assert!(content.contains("interop body line"), "{content}");
        assert!(saved.envelope_json.contains("b@example.net"));
        assert!(saved.envelope_json.contains("\"auth\": true"));
    }

    #[test]
    fn swaks_starttls_to_aiosmtpd_verifies_the_certificate() {
        let (Some(python), Some(swaks)) = (aiosmtpd_python(), swaks()) else {
            return;
        };
        let Some(openssl) = openssl() else {
            return;
        };
        let certs = ScratchDir::new("certs").unwrap();
        let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
        let mut make_cert = openssl.command();
        make_cert
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        let out = run_bounded(&mut make_cert, Duration::from_secs(30)).unwrap();
        assert!(out.status.success(), "{}", out.stderr_text());
        let options = AiosmtpdOptions {
            tls: Some((cert.clone(), key)),
            save: true,
            ..AiosmtpdOptions::default()
        };
        let server = start_aiosmtpd(&python, &options).unwrap();
        let (mut d, ehlo) = Dialog::after_ehlo(server.addr());
        assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        d.send("QUIT", "221");

        let saved = swaks_delivers(&swaks, &server, |cmd| {
            cmd.args(["--tls", "--tls-verify", "--tls-ca-path"])
                .arg(&cert)
                .args(["--body", "over tls", "--timeout", "10"]);
        });
        assert!(saved.envelope_json.contains("\"tls\": true"));
    }

    #[test]
    fn curl_speaks_smtp_when_its_protocols_say_so() {
        let version = "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1\n\
                       Protocols: dict file ftp http https imap smtp smtps telnet\n";
        assert!(speaks_smtp(version));
        assert!(!speaks_smtp("curl 8\nProtocols: http https smtps\n"));
        assert!(!speaks_smtp("curl 8 smtp\nFeatures: smtp\n"));
    }

    #[test]
    fn run_bounded_kills_at_the_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = Instant::now();
        let err = run_bounded(&mut cmd, Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn server_that_dies_is_reported_not_waited_for() {
        // Port 1 (tcpmux): nothing listens there, and no test binds it. A
        // free port could be taken by another test's server meanwhile, and
        // the dying server would then look ready.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let scratch = ScratchDir::new("dies").unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let started = Instant::now();
        let err = PeerServer::spawn(cmd, addr, scratch).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert!(started.elapsed() < START_TIMEOUT);
    }
}
