//! The `mail-server` example run as a process, as an operator runs it: a
//! second server on a busy port, the log lines, `--help`, the wording of
//! its errors. Each server listens on 127.0.0.1 on a port the system
//! picks, works in a temporary directory (also its `TMPDIR`, where it
//! writes its certificate), is waited for through its startup line and is
//! killed when the test ends; every run is bounded by a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use smtp_tests::examples;
use smtp_tests::mail_server::{MailServer, wait_bounded};

use base64::Engine as _;

/// What a finished process left.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn stdout_text(&self) -> &str {
        &self.stdout
    }

    fn stderr_text(&self) -> &str {
        &self.stderr
    }
}

/// Runs `cmd` to its end (killed at [`smtp_tests::mail_server::EXIT`]), its output in files so
/// it never blocks on a pipe.
fn run_bounded(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child);
    Output {
        status,
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    }
}

/// Runs the `send` example with `args`.
fn send(args: &[&str]) -> Output {
    let mut cmd = Command::new(examples::example("smtp-blocking", "send"));
    cmd.args(args).args(["--timeout", "10"]);
    run_bounded(cmd)
}

/// Runs the `mail-server` example with `args` until it exits (it must, on
/// its own).
fn mail_server_exits(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(examples::example("smtp-mio", "mail-server"));
    cmd.args(args).current_dir(dir).env("TMPDIR", dir);
    run_bounded(cmd)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_second_server_on_a_busy_port_fails_and_the_first_keeps_the_mail_and_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first_dir = dir.path().join("first");
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first = MailServer::launch(&first_dir, &["--listen", "127.0.0.1:0"], &[], "").unwrap();
    let addr = first.addr();
    let pem = first.pem();
    assert_eq!(
        pem,
        first_dir.join(format!("mail-server-{}.pem", addr.port())),
        "{}",
        first.line()
    );
    let certificate = std::fs::read(&pem).unwrap();

    // Both servers share TMPDIR, so the second would write the same file.
    let listen = addr.to_string();
    let err = match MailServer::launch(
        &first_dir,
        &["--listen", &listen, "--maildir", "../second/maildir"],
        &[],
        "",
    ) {
        Ok(second) => panic!("a second server started: {}", second.line()),
        Err(err) => err,
    };
    assert_eq!(err.0.code(), Some(1), "{}", err.1);
    assert!(
        err.1.contains(&format!(
            "mail-server: cannot listen on {addr}: Address already in use"
        )),
        "{}",
        err.1
    );
    assert_eq!(
        std::fs::read(&pem).unwrap(),
        certificate,
        "certificate replaced"
    );
    // No leftover of the second one's certificate either.
    let pems: Vec<_> = files(&first_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".pem"))
        .collect();
    assert_eq!(pems, std::slice::from_ref(&pem));

    // Every message lands in the first server, verified with its file.
    let pem_arg = pem.to_str().unwrap();
    for i in 0..6 {
        let body = format!("message {i}");
        let out = send(&[
            "--server",
            &listen,
            "--tls-ca",
            pem_arg,
            "--from",
            "me@example.org",
            "--to",
            "you@example.org",
            "--body",
            &body,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            out.stdout_text(),
            out.stderr_text()
        );
    }
    assert_eq!(files(&first_dir.join("maildir/new")).len(), 6);
    assert!(files(&second_dir.join("maildir/new")).is_empty());

    // Without the file the client says what to do.
    let out = send(&[
        "--server",
        &listen,
        "--from",
        "me@example.org",
        "--to",
        "you@example.org",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = out.stdout_text();
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(
        text.contains("--tls-ca") && text.contains("--insecure"),
        "{text}"
    );

    // A graceful stop removes the certificate file.
    let (status, _) = first.terminate();
    assert!(status.success(), "{status}");
    assert!(!pem.exists());
}

#[test]
fn logs_a_line_per_connection_and_per_message_and_never_the_password() {
    const PASSWORD: &str = "Tr0ub4dor&3-secret";
    const WRONG: &str = "wrong-Secret-42";
    let dir = tempfile::tempdir().unwrap();
    let auth = format!("alice:{PASSWORD}");
    let server = MailServer::launch(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--auth", &auth, "--threads", "2"],
        &[("RUST_LOG", "info")],
        "",
    )
    .unwrap();
    assert!(!server.line().contains(PASSWORD), "{}", server.line());
    let listen = server.addr().to_string();
    let pem = server.pem();
    let pem_arg = pem.to_str().unwrap();

    let out = send(&[
        "--server",
        &listen,
        "--tls-ca",
        pem_arg,
        "--auth",
        &auth,
        "--from",
        "me@example.org",
        "--to",
        "you@example.org",
        "--body",
        "hello",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        out.stdout_text(),
        out.stderr_text()
    );
    let wrong = format!("alice:{WRONG}");
    let out = send(&[
        "--server",
        &listen,
        "--tls-ca",
        pem_arg,
        "--auth",
        &wrong,
        "--from",
        "me@example.org",
        "--to",
        "you@example.org",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout_text());

    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    let stored = files(&dir.path().join("maildir/new"));
    assert_eq!(stored.len(), 1);
    let queue_id = stored[0].file_name().unwrap().to_str().unwrap();

    let messages: Vec<&str> = log.lines().filter(|l| l.contains(" message ")).collect();
    assert_eq!(messages.len(), 1, "{log}");
    for part in [
        " INFO ",
        "message accepted id=L",
        &format!("queue_id=\"{queue_id}\""),
        "from=<me@example.org> nrcpt=1 to=<you@example.org> size=",
        "user=\"alice\"",
        &format!("reply=\"250 2.0.0 Ok: queued as {queue_id}\""),
    ] {
        assert!(messages[0].contains(part), "{part} in {}", messages[0]);
    }
    let connections: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection closed"))
        .collect();
    assert_eq!(connections.len(), 2, "{log}");
    let (good, bad) = if connections[0].contains("messages=1") {
        (connections[0], connections[1])
    } else {
        (connections[1], connections[0])
    };
    for part in [
        " INFO ",
        "peer=127.0.0.1:",
        "tls_version=\"TLSv1.3\"",
        "tls_cipher=\"TLS13_",
        "user=\"alice\"",
        "messages=1",
        "reason=\"Quit\"",
    ] {
        assert!(good.contains(part), "{part} in {good}");
    }
    assert!(
        bad.contains("auth_failures=1") && !bad.contains("user="),
        "{bad}"
    );
    assert!(log.contains("authentication failed"), "{log}");

    // Neither password, in clear or as AUTH PLAIN sends it.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for secret in [
        PASSWORD.to_owned(),
        WRONG.to_owned(),
        b64(&format!("\0alice\0{PASSWORD}")),
        b64(&format!("\0alice\0{WRONG}")),
        b64(PASSWORD),
    ] {
        assert!(!log.contains(&secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn rust_log_and_verbose_choose_the_level() {
    let dir = tempfile::tempdir().unwrap();
    for (args, env, debug_expected) in [
        (&[][..], &[][..], false),
        (&[][..], &[("RUST_LOG", "debug")][..], true),
        (&["-v"][..], &[][..], true),
        (&["-v"][..], &[("RUST_LOG", "warn")][..], true),
        (&[][..], &[("RUST_LOG", "warn")][..], false),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0", "--no-tls"];
        all.extend_from_slice(args);
        let server = MailServer::launch(dir.path(), &all, env, "").unwrap();
        let listen = server.addr().to_string();
        let out = send(&[
            "--server",
            &listen,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", out.stdout_text());
        let (_, log) = server.terminate();
        // The server loop logs each new connection at DEBUG.
        assert_eq!(
            log.contains("DEBUG"),
            debug_expected,
            "{args:?} {env:?}:\n{log}"
        );
        let info_expected = env.is_empty() || env[0].1 != "warn" || !args.is_empty();
        assert_eq!(
            log.contains("connection closed"),
            info_expected,
            "{args:?} {env:?}:\n{log}"
        );
    }
}

#[test]
fn help_documents_every_flag_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = mail_server_exits(dir.path(), &["--help"]);
    let help = out.stdout_text();
    assert_eq!(out.status.code(), Some(0), "{help}{}", out.stderr_text());
    for flag in [
        "--listen <ADDR:PORT>",
        "--tls-listen <ADDR:PORT>",
        "--maildir <DIR>",
        "--sink",
        "--tls-cert <FILE>",
        "--tls-key <FILE>",
        "--no-tls",
        "--auth <USER:PASS>",
        "--max-message-size <BYTES>",
        "--max-recipients <N>",
        "--max-connections <N>",
        "--threads <N>",
        "--hostname <NAME>",
        "--lmtp",
        "-v, --verbose",
        "RUST_LOG",
    ] {
        assert!(help.contains(flag), "{flag} missing in\n{help}");
    }
    for default in [
        "[default: 127.0.0.1:2525",
        "[default: maildir]",
        "[default: a self-signed certificate",
        "[default: no AUTH",
        "[default: 26214400]",
        "[default: 100]",
        "[default: 10000]",
        "[default: one per CPU core]",
        "[default: this machine's host name",
        "[default: RUST_LOG if set, else info]",
    ] {
        assert!(help.contains(default), "{default} missing in\n{help}");
    }
    // Nothing was created by asking for help.
    assert!(files(dir.path()).is_empty());
}

#[test]
fn errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = mail_server_exits(dir.path(), &["--hostname", "bad host"]);
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a valid domain name"), "{stderr}");
    assert!(!stderr.contains("malformed address"), "{stderr}");

    // A certificate where the key should be.
    let cert = dir.path().join("cert.pem");
    let identity =
        smtp_mio::tls::TlsIdentity::self_signed("mx.test", std::time::SystemTime::now()).unwrap();
    std::fs::write(&cert, identity.chain_pem()).unwrap();
    let cert_arg = cert.to_str().unwrap();
    let out = mail_server_exits(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert_arg,
            "--tls-key",
            cert_arg,
        ],
    );
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{cert_arg}: no private key")),
        "{stderr}"
    );
    assert!(!stderr.contains("no items found"), "{stderr}");

    let out = mail_server_exits(dir.path(), &["--tls-cert", cert_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("--tls-key"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn the_startup_line_says_how_to_try_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = MailServer::launch(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "alice:pw-not-shown",
            "--lmtp",
        ],
        &[],
        "",
    )
    .unwrap();
    let addr = server.addr();
    let pem = server.pem();
    let (_, try_it) = server.line().split_once("; try: ").unwrap();
    assert_eq!(
        try_it,
        format!(
            "cargo run --release -p smtp-blocking --example send -- --server {addr} --lmtp \
             --tls-ca {} --auth alice:PASSWORD --from me@example.org --to you@example.org \
             --body hello",
            pem.display()
        )
    );
    assert!(!server.line().contains("pw-not-shown"));
}
