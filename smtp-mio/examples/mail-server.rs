//! A mail server that just works: SMTP (or LMTP) on mio event loops,
//! STARTTLS with a certificate made at start, Maildir delivery with fsync.
//!
//! ```text
//! cargo run --release -p smtp-mio --example mail-server -- [--listen ADDR:PORT]…
//!     [--tls-listen ADDR:PORT]… [--maildir DIR] [--sink] [--tls-cert FILE --tls-key FILE]
//!     [--no-tls] [--auth USER:PASS]… [--max-message-size BYTES] [--max-recipients N]
//!     [--max-connections N] [--threads N] [--hostname NAME] [--lmtp]
//! ```
//!
//! Defaults: listen on 127.0.0.1:2525, deliver into `./maildir`, offer
//! STARTTLS with a self-signed certificate (its fingerprint is printed and
//! its PEM written to a file a client can trust), accept messages up to
//! 25 MiB. Without `--auth` it accepts any sender and recipient (a test
//! sink); with it, AUTH PLAIN/LOGIN is offered after STARTTLS and required
//! before MAIL (submission). `--sink` discards bodies (benchmarks).
//! Ctrl-C or SIGTERM shuts it down gracefully; a second one exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use smtp_mio::listener::ConnectionLimits;
use smtp_mio::maildir::Maildir;
use smtp_mio::server::{Options, Server};
use smtp_mio::store::{Credentials, Store, StoreBackend};
use smtp_mio::tls::{TlsIdentity, identity_from_pem_files};
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::server::Config;
use smtp_proto::{InjectionPolicy, Protocol, TlsMode};

const USAGE: &str = "usage: mail-server [--listen ADDR:PORT]... [--tls-listen ADDR:PORT]... \
[--maildir DIR] [--sink] [--tls-cert FILE --tls-key FILE] [--no-tls] [--auth USER:PASS]... \
[--max-message-size BYTES] [--max-recipients N] [--max-connections N] [--threads N] \
[--hostname NAME] [--lmtp]";

/// The command line.
#[derive(Debug)]
struct Args {
    listen: Vec<SocketAddr>,
    tls_listen: Vec<SocketAddr>,
    maildir: PathBuf,
    sink: bool,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    no_tls: bool,
    auth: Vec<(String, String)>,
    max_message_size: u64,
    max_recipients: usize,
    max_connections: usize,
    threads: Option<usize>,
    hostname: Option<String>,
    lmtp: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: Vec::new(),
        tls_listen: Vec::new(),
        maildir: PathBuf::from("maildir"),
        sink: false,
        tls_cert: None,
        tls_key: None,
        no_tls: false,
        auth: Vec::new(),
        max_message_size: 25 * 1024 * 1024,
        max_recipients: 100,
        max_connections: 10_000,
        threads: None,
        hostname: None,
        lmtp: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen.push(parse(&value("--listen")?, "--listen")?),
            "--tls-listen" => args
                .tls_listen
                .push(parse(&value("--tls-listen")?, "--tls-listen")?),
            "--maildir" => args.maildir = PathBuf::from(value("--maildir")?),
            "--sink" => args.sink = true,
            "--tls-cert" => args.tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => args.tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--no-tls" => args.no_tls = true,
            "--auth" => {
                let pair = value("--auth")?;
                let (user, pass) = pair.split_once(':').ok_or("--auth takes USER:PASS")?;
                args.auth.push((user.to_owned(), pass.to_owned()));
            }
            "--max-message-size" => {
                args.max_message_size = parse(&value("--max-message-size")?, "--max-message-size")?
            }
            "--max-recipients" => {
                args.max_recipients = parse(&value("--max-recipients")?, "--max-recipients")?
            }
            "--max-connections" => {
                args.max_connections = parse(&value("--max-connections")?, "--max-connections")?
            }
            "--threads" => args.threads = Some(parse(&value("--threads")?, "--threads")?),
            "--hostname" => args.hostname = Some(value("--hostname")?),
            "--lmtp" => args.lmtp = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    if args.no_tls && (!args.tls_listen.is_empty() || args.tls_cert.is_some()) {
        return Err("--no-tls excludes --tls-listen, --tls-cert and --tls-key".into());
    }
    if args.listen.is_empty() && args.tls_listen.is_empty() {
        args.listen.push(SocketAddr::from(([127, 0, 0, 1], 2525)));
    }
    Ok(args)
}

fn parse<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: cannot use {text:?}"))
}

/// This machine's name if it is a valid domain, else `localhost`.
fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| Domain::new(h).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mail-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();

    let hostname = args.hostname.clone().unwrap_or_else(default_hostname);
    let domain = Domain::new(&hostname)
        .map_err(|e| format!("--hostname {hostname:?}: {e}"))?
        .into_owned();
    let mut session = Config::new(domain);
    session.protocol = if args.lmtp {
        Protocol::Lmtp
    } else {
        Protocol::Smtp
    };
    session.max_message_size = Some(args.max_message_size);
    session.limits.max_recipients = args.max_recipients;

    // TLS: the operator's certificate, or one made now.
    let mut tls_note = String::from("no TLS");
    let mut ca_hint = String::new();
    let tls = if args.no_tls {
        None
    } else {
        let identity = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let id = identity_from_pem_files(cert, key).map_err(|e| e.to_string())?;
                tls_note = format!("STARTTLS, certificate {}", cert.display());
                id
            }
            _ => {
                // Valid from a day ago for 90 days: a throwaway certificate.
                let id = TlsIdentity::self_signed(&hostname, SystemTime::now())
                    .map_err(|e| e.to_string())?;
                let port = args
                    .listen
                    .first()
                    .or(args.tls_listen.first())
                    .map_or(0, |a| a.port());
                let pem = std::env::temp_dir().join(format!("mail-server-{port}.pem"));
                std::fs::write(&pem, id.chain_pem())
                    .map_err(|e| format!("writing {}: {e}", pem.display()))?;
                tls_note = format!(
                    "STARTTLS, self-signed certificate SHA-256 {} in {}",
                    id.fingerprint(),
                    pem.display()
                );
                ca_hint = format!(" --tls-ca {}", pem.display());
                id
            }
        };
        session.tls = TlsMode::Opportunistic;
        session.on_injection = InjectionPolicy::Close;
        Some(identity.server_config().map_err(|e| e.to_string())?)
    };

    let mut credentials = Credentials::new();
    for (user, pass) in &args.auth {
        credentials.add(user.as_str(), pass.as_str());
    }
    let policy = if credentials.is_empty() {
        "test sink: any sender and recipient accepted"
    } else {
        session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
        session.auth.required_for_mail = true;
        // Passwords only over TLS, unless TLS was switched off on purpose.
        session.auth.require_tls = tls.is_some();
        if tls.is_none() {
            "AUTH required (WARNING: passwords travel in cleartext with --no-tls)"
        } else {
            "AUTH required after STARTTLS (submission)"
        }
    };

    let store = if args.sink {
        Store::Discard
    } else {
        let maildir = Maildir::open(&args.maildir)
            .map_err(|e| format!("--maildir {}: {e}", args.maildir.display()))?
            .with_hostname(&hostname);
        Store::Maildir(Arc::new(maildir))
    };
    let store_note = match &store {
        Store::Maildir(m) => format!("delivering to {}", m.path().display()),
        _ => "discarding messages (--sink)".to_owned(),
    };

    let mut options = Options::new(session);
    options.listen = args.listen.clone();
    options.tls_listen = args.tls_listen.clone();
    options.tls = tls;
    if let Some(threads) = args.threads {
        options.threads = threads;
    }
    options.limits = ConnectionLimits::new(args.max_connections, 50);

    let backend = StoreBackend::new(store, &hostname, credentials);
    let server = Server::bind(options, backend).map_err(|e| format!("cannot listen: {e}"))?;

    let mut listening: Vec<String> = server
        .local_addrs()
        .iter()
        .map(|a| format!("smtp://{a}"))
        .collect();
    listening.extend(
        server
            .tls_local_addrs()
            .iter()
            .map(|a| format!("smtps://{a}")),
    );
    let try_addr = server
        .local_addrs()
        .first()
        .or(server.tls_local_addrs().first())
        .copied();
    let try_it = try_addr.map_or_else(String::new, |addr| {
        let mode = if server.local_addrs().is_empty() {
            " --implicit-tls"
        } else {
            ""
        };
        let lmtp = if args.lmtp { " --lmtp" } else { "" };
        let auth = args
            .auth
            .first()
            .map_or_else(String::new, |(u, p)| format!(" --auth {u}:{p}"));
        format!(
            "; try: cargo run -p smtp-blocking --example send -- --server {addr}{mode}{lmtp}{ca_hint}{auth} \
             --from me@example.org --to you@example.org --body hello"
        )
    });
    println!(
        "mail-server {hostname} listening on {} ({tls_note}), {store_note}, {policy}{try_it}",
        listening.join(" ")
    );

    let running = server.spawn().map_err(|e| e.to_string())?;
    let handle = running.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot handle signals: {e}"))?;
    std::thread::spawn(move || {
        let mut received = signals.forever();
        if received.next().is_some() {
            eprintln!("mail-server: shutting down (again to exit at once)");
            handle.shutdown();
        }
        if received.next().is_some() {
            std::process::exit(130);
        }
    });
    running.join().map_err(|e| e.to_string())
}
