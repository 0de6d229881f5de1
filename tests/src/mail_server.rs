//! The `mail-server` example of `smtp-mio` as a child process, started the
//! way an operator starts it and waited for through its startup line.
//!
//! The example prints one line on standard output once it listens (its
//! `smtp://` addresses, its certificate); that line is the readiness
//! signal, so no test sleeps and hopes. Standard output keeps being drained
//! so that the server never blocks on a full pipe; standard error goes to a
//! log file of its own in the test's directory, which a test reads after
//! the fact. The process is killed (SIGKILL) when the handle is dropped, so
//! a failing test leaves no server behind, and every wait is bounded.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::examples;

/// How long a server may take to print its startup line: a debug build
/// starting on a loaded machine.
pub const START: Duration = Duration::from_secs(60);
/// How long a server may take to exit once asked to.
pub const EXIT: Duration = Duration::from_secs(60);

/// A running `mail-server` process and what it said when it started;
/// killed when dropped.
#[derive(Debug)]
pub struct MailServer {
    child: Child,
    line: String,
    log: PathBuf,
    /// The Maildir it delivers into, when [`delivering`](Self::delivering)
    /// chose it.
    maildir: Option<PathBuf>,
}

impl MailServer {
    /// Starts the server in `dir` (its working directory and `TMPDIR`, where
    /// it writes its certificate and its log) with `args`.
    ///
    /// # Panics
    ///
    /// When the example cannot be built, or the server exits or prints
    /// nothing within [`START`]: with its exit status and log.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::launch(dir, args, &[], "").unwrap_or_else(|(status, log)| {
            panic!("mail-server {args:?} exited ({status}) before it listened:\n{log}")
        })
    }

    /// Starts a plaintext server (`--no-tls`) on 127.0.0.1 in `dir`, named
    /// `hostname`, asking the DNS server at `dns` and delivering into
    /// `dir/maildir` (read back with [`stored`](Self::stored)), with the
    /// further arguments `extra`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn delivering(dir: &Path, hostname: &str, dns: SocketAddr, extra: &[&str]) -> Self {
        let maildir = dir.join("maildir");
        let dns = dns.to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
            "--hostname",
            hostname,
            "--maildir",
            maildir.to_str().expect("a UTF-8 temporary directory"),
            "--dns",
            &dns,
        ];
        args.extend(extra);
        let mut server = Self::start(dir, &args);
        server.maildir = Some(maildir);
        server
    }

    /// The messages delivered into the Maildir's `new/`, in file-name
    /// order (Maildir names begin with the delivery time in seconds).
    ///
    /// # Panics
    ///
    /// When the server was not started by [`delivering`](Self::delivering),
    /// or the directory cannot be read.
    pub fn stored(&self) -> Vec<String> {
        let new = self
            .maildir
            .as_ref()
            .expect("a server started by MailServer::delivering")
            .join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .unwrap_or_else(|e| panic!("{}: {e}", new.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("a stored message"))
            .collect()
    }

    /// Starts the server in `dir` with `args` and the environment
    /// variables `env`, under `sh -c "<shell> exec mail-server ..."` when
    /// `shell` is not empty (resource limits: `ulimit -n 40 &&`), and waits
    /// for its startup line; or returns its exit status and its log when it
    /// exits first.
    ///
    /// # Panics
    ///
    /// When the example cannot be built, the process cannot be spawned, or
    /// no startup line comes within [`START`].
    pub fn launch(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        shell: &str,
    ) -> Result<Self, (ExitStatus, String)> {
        let program = examples::example("smtp-mio", "mail-server");
        let mut cmd = if shell.is_empty() {
            Command::new(program)
        } else {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("{shell} exec \"$0\" \"$@\""))
                .arg(program);
            cmd
        };
        let log = dir.join(format!("mail-server-{}.log", unique()));
        cmd.args(args)
            .current_dir(dir)
            .env("TMPDIR", dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the server's log"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped standard output");
        let (lines, first) = mpsc::channel();
        std::thread::spawn(move || {
            // The first line is the readiness signal; the rest is drained so
            // the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let read_log = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
        let deadline = Instant::now() + START;
        loop {
            match first.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    return Ok(Self {
                        child,
                        line,
                        log,
                        maildir: None,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = wait_bounded(&mut child);
                    return Err((status, read_log(&log)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait().expect("poll the server") {
                        return Err((status, read_log(&log)));
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("no startup line after {START:?}:\n{}", read_log(&log));
                    }
                }
            }
        }
    }

    /// The startup line (standard output).
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The first `smtp://` address of the startup line.
    ///
    /// # Panics
    ///
    /// When the line names none.
    pub fn addr(&self) -> SocketAddr {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("smtp://"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no smtp:// address in {:?}", self.line))
    }

    /// The self-signed certificate file the startup line names.
    ///
    /// # Panics
    ///
    /// When the line names none.
    pub fn pem(&self) -> PathBuf {
        let (_, rest) = self
            .line
            .split_once("self-signed certificate SHA-256 ")
            .unwrap_or_else(|| panic!("no certificate in {:?}", self.line));
        let path = rest
            .split_once(" in ")
            .and_then(|(_, p)| p.split_once(')'))
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("no certificate path in {:?}", self.line));
        PathBuf::from(path)
    }

    /// What the server logged (standard error) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).expect("read the server's log")
    }

    /// The process id (to signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server as a service manager does (SIGTERM), waits for it
    /// (at most [`EXIT`]), and returns its exit status and everything it
    /// logged.
    ///
    /// # Panics
    ///
    /// When `kill` fails or the server is still running after [`EXIT`].
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM: {status}");
        let status = wait_bounded(&mut self.child);
        (status, self.log())
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, at most [`EXIT`].
///
/// # Panics
///
/// When it is still running then (it is killed first).
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + EXIT;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {EXIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A number no other server of this process got (log file names).
fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
