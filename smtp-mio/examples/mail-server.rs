//! A mail server that just works: SMTP (or LMTP) on mio event loops,
//! STARTTLS with a certificate made at start, Maildir delivery with fsync.
//!
//! ```text
//! cargo run --release -p smtp-mio --example mail-server -- [--listen ADDR:PORT]…
//!     [--tls-listen ADDR:PORT]… [--maildir DIR] [--sink] [--tls-cert FILE --tls-key FILE]
//!     [--no-tls] [--auth USER:PASS]… [--max-message-size BYTES] [--max-recipients N]
//!     [--max-connections N] [--threads N] [--hostname NAME] [--lmtp] [-v]…
//!     [--dkim-verify on|off] [--dns ADDR:PORT] [--spf on|off] [--dmarc on|off]
//!     [--spf-reject] [--dmarc-enforce] [--exempt-network CIDR]…
//!     [--allow-unauth-pipelining] [--greeting-delay SECONDS]
//!     [--bare-line-ending reject|normalize|accept] [--proxy-protocol CIDR]…
//!     [--connection-rate-limit N] [--message-rate-limit N] [--recipient-rate-limit N]
//!     [--rate-exempt CIDR]…
//! ```
//!
//! `--help` describes every flag and its default. In short: listen on
//! 127.0.0.1:2525, deliver into `./maildir`, offer STARTTLS with a
//! self-signed certificate, accept messages up to 25 MiB. Without `--auth`
//! it accepts any sender and recipient (a test sink); with it, AUTH
//! PLAIN/LOGIN is offered after STARTTLS and required before MAIL
//! (submission). `--sink` discards bodies (benchmarks). The DKIM
//! signatures of every message are verified (`--dkim-verify off` turns
//! that off): its key records are asked of `--dns`'s server or
//! `/etc/resolv.conf`'s on a thread of their own, the reply to the end of
//! data waits for the results, and the stored message begins with
//! `Authentication-Results: HOSTNAME; dkim=pass header.d=…` (incoming
//! fields claiming HOSTNAME are removed). SPF is checked at MAIL FROM and
//! DMARC at the end of data (`--spf off`, `--dmarc off`), for every client
//! but those of `--exempt-network`, and recorded in the same field
//! (`spf=pass smtp.mailfrom=…; dkim=…; dmarc=pass header.from=…
//! policy.dmarc=none`); by default nothing is refused for them,
//! `--spf-reject` and `--dmarc-enforce` act on the results. Ctrl-C or SIGTERM
//! shuts it down gracefully; a second one exits at once.
//!
//! ## What an operator can rely on
//!
//! - **The port is ours alone.** The listeners are bound exclusively (see
//!   `smtp_mio::server::listener`): a second server on a port in use fails at once,
//!   with `cannot listen on ADDR: Address already in use` and exit
//!   status 1, and the first one keeps every connection.
//! - **The certificate file belongs to the server that holds the port.** A
//!   self-signed certificate is written to
//!   `$TMPDIR/mail-server-PORT.pem` (listening on 127.0.0.1, the default)
//!   or `$TMPDIR/mail-server-IP-PORT.pem` (any other address), so a client
//!   can trust it with `--tls-ca`. It is written only *after* the listeners
//!   are bound: the name carries the first listener's address, which no
//!   other running server can hold, so no running server's file is ever
//!   replaced — only one left behind by a server that is gone. It is
//!   written to a fresh file and renamed into place (a client never reads
//!   half a file, a planted symbolic link is replaced, not followed); if
//!   the name belongs to another user, the file gets this process's id in
//!   its name instead. It is removed at a graceful shutdown.
//! - **Logs.** One line per message and one per connection at INFO
//!   (`smtp_mio::server::trace`), to standard error; `RUST_LOG` filters them
//!   (`RUST_LOG=debug`, `RUST_LOG=smtp_mio=trace`…), `-v`/`-vv` ask for
//!   debug/trace and override `RUST_LOG`. No password is ever logged.
//! - **Standard output** gets one line once the server listens (what it
//!   listens on, its certificate, its policy and a command to try it),
//!   which scripts can wait for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{ArgAction, Parser};
use smtp_mio::server::auth_checks::{AuthChecks, Network};
use smtp_mio::server::authentication::{DkimConfig, DkimService};
use smtp_mio::server::listener::ConnectionLimits;
use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_mio::server::{Options, Server};
use smtp_mio::tls::{TlsIdentity, identity_from_pem_files};
use smtp_proto::address::Domain;
use smtp_proto::dns::ResolverConfig;
use smtp_proto::keyword::Mechanism;
use smtp_proto::server::Config;
use smtp_proto::{InjectionPolicy, Protocol, TlsMode};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// An SMTP (or LMTP) server on mio event loops: STARTTLS, AUTH for
/// submission, durable Maildir delivery.
///
/// Without options it listens on 127.0.0.1:2525, offers STARTTLS with a
/// self-signed certificate (its PEM file is printed, for a client's
/// --tls-ca), accepts any sender and recipient (a test sink) and delivers
/// into ./maildir. With --auth it is a submission server: AUTH PLAIN/LOGIN
/// after STARTTLS, required before MAIL.
///
/// Logs go to standard error, one INFO line per message and per
/// connection; RUST_LOG filters them (e.g. RUST_LOG=debug), -v/-vv
/// override it.
#[derive(Debug, Parser)]
#[command(name = "mail-server", version)]
struct Args {
    /// Listen for SMTP on ADDR:PORT (STARTTLS offered unless --no-tls);
    /// repeat for more [default: 127.0.0.1:2525, when neither --listen nor
    /// --tls-listen is given].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Listen for implicit TLS (TLS from the first byte, RFC 8314, usually
    /// port 465) on ADDR:PORT; repeat for more.
    #[arg(long, value_name = "ADDR:PORT")]
    tls_listen: Vec<SocketAddr>,
    /// Deliver into this Maildir (tmp/, fsync, new/); created if missing.
    #[arg(long, value_name = "DIR", default_value = "maildir")]
    maildir: PathBuf,
    /// Read every message and discard it instead of storing it
    /// (benchmarks).
    #[arg(long)]
    sink: bool,
    /// The certificate chain (PEM, leaf first, e.g. an ACME fullchain.pem)
    /// [default: a self-signed certificate made at start, valid 90 days].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// No TLS at all: no STARTTLS, no certificate (passwords of --auth then
    /// travel in cleartext).
    #[arg(long, conflicts_with_all = ["tls_listen", "tls_cert", "tls_key"])]
    no_tls: bool,
    /// Require AUTH (PLAIN or LOGIN, after STARTTLS) as this user; repeat
    /// for more users [default: no AUTH, any sender and recipient
    /// accepted].
    #[arg(long, value_name = "USER:PASS", value_parser = user_and_password)]
    auth: Vec<(String, String)>,
    /// The largest message accepted, in bytes (announced with SIZE; the
    /// default is 25 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 25 * 1024 * 1024)]
    max_message_size: u64,
    /// The most recipients per message.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_recipients: usize,
    /// The most connections open at once (more get 421); 50 per client
    /// address, loopback exempt.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_connections: usize,
    /// Event loops (threads) [default: one per CPU core].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// This server's name in its greeting, EHLO reply and Received: headers
    /// [default: this machine's host name if it is a valid domain, else
    /// localhost].
    #[arg(long, value_name = "NAME", value_parser = domain)]
    hostname: Option<String>,
    /// Speak LMTP (RFC 2033: LHLO, one reply per recipient) instead of
    /// SMTP.
    #[arg(long)]
    lmtp: bool,
    /// Verify the DKIM signatures of incoming mail and prepend
    /// Authentication-Results (RFC 8601) to what is stored.
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        value_parser = on_off,
        action = ArgAction::Set
    )]
    dkim_verify: bool,
    /// Ask this DNS server (UDP, TCP on truncation) for DKIM key records
    /// and SPF and DMARC policies
    /// [default: the servers of /etc/resolv.conf].
    #[arg(long, value_name = "ADDR:PORT")]
    dns: Option<SocketAddr>,
    // ---- Sender authentication: SPF and DMARC (beside --dkim-verify) ----
    /// Check SPF (RFC 7208) at MAIL FROM: the client's address against the
    /// sender domain's policy (the HELO name's for the null sender); the
    /// MAIL reply waits for the result, recorded as spf= in
    /// Authentication-Results.
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        value_parser = on_off,
        action = ArgAction::Set
    )]
    spf: bool,
    /// Check DMARC (RFC 7489) at the end of data: the From: domain's policy
    /// against the SPF result and the passing DKIM signatures; recorded as
    /// dmarc= (header.from, policy.dmarc) in Authentication-Results.
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        value_parser = on_off,
        action = ArgAction::Set
    )]
    dmarc: bool,
    /// Refuse a sender whose SPF result is fail with 550 5.7.23 at MAIL
    /// FROM (451 4.7.24 for a DNS temperror); AUTHenticated clients are
    /// never refused [default: off, annotate only].
    #[arg(long)]
    spf_reject: bool,
    /// Enforce the From: domain's DMARC policy: a failing message under
    /// p=reject is refused with 550 5.7.1 at the end of data, one under
    /// p=quarantine is stored with an "X-Quarantine: dmarc header.from=…"
    /// field in front, a DNS temperror is answered 451 4.7.0 [default:
    /// off, annotate only].
    #[arg(long)]
    dmarc_enforce: bool,
    /// Do not check SPF or DMARC for clients in this network (CIDR, e.g.
    /// 10.0.0.0/8 or 2001:db8::/32); repeat for more [default: none, every
    /// client is checked, loopback included].
    #[arg(long, value_name = "CIDR")]
    exempt_network: Vec<Network>,
    /// How long a message's DKIM, SPF or DMARC lookups may take before
    /// those unanswered count as temperror, in seconds (the MAIL or
    /// end-of-data reply waits at most this long for them; RFC 7208 §4.6.4
    /// asks for at least 20 s for an SPF evaluation).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    dns_timeout: u64,
    // ---- end of sender authentication ----
    /// More log output: -v debug, -vv trace (overrides RUST_LOG) [default:
    /// RUST_LOG if set, else info].
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    hardening: Hardening,
}

/// `on` or `off`.
fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?}: expected on or off")),
    }
}

/// `USER:PASS` of `--auth`.
fn user_and_password(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((user, pass)) if !user.is_empty() => Ok((user.to_owned(), pass.to_owned())),
        _ => Err("takes USER:PASS (a user name, a colon, the password)".to_owned()),
    }
}

/// `--hostname`: a domain name, as the greeting and EHLO need.
fn domain(text: &str) -> Result<String, String> {
    match Domain::new(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(_) => Err(
            "not a valid domain name (labels of letters, digits and hyphens \
             separated by dots, e.g. mx.example.org)"
                .to_owned(),
        ),
    }
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
    let args = Args::parse();
    init_logging(args.verbose);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mail-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines to standard error: `-v`/`-vv` if given, else `RUST_LOG`, else
/// INFO.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .from_env_lossy(),
        1 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(args: Args) -> Result<(), String> {
    let hostname = args.hostname.clone().unwrap_or_else(default_hostname);
    // Checked by the argument parser or by `default_hostname`.
    let domain = Domain::new(&hostname)
        .map_err(|_| format!("--hostname {hostname:?} is not a valid domain name"))?
        .into_owned();
    let mut session = Config::new(domain);
    session.protocol = if args.lmtp {
        Protocol::Lmtp
    } else {
        Protocol::Smtp
    };
    session.max_message_size = Some(args.max_message_size);
    session.limits.max_recipients = args.max_recipients;

    // TLS: the operator's certificate, or one made now (its file is written
    // once the listeners are ours).
    let mut self_signed = None;
    let tls = if args.no_tls {
        None
    } else {
        let identity = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                identity_from_pem_files(cert, key).map_err(|e| format!("TLS: {e}"))?
            }
            _ => {
                // Valid from a day ago for 90 days: a throwaway certificate.
                let id = TlsIdentity::self_signed(&hostname, SystemTime::now())
                    .map_err(|e| format!("cannot make a certificate: {e}"))?;
                self_signed = Some((id.chain_pem(), id.fingerprint().to_string()));
                id
            }
        };
        session.tls = TlsMode::Opportunistic;
        session.on_injection = InjectionPolicy::Close;
        let config = identity.server_config().map_err(|e| match &args.tls_cert {
            Some(cert) => format!("TLS: {}: {e}", cert.display()),
            None => format!("TLS: {e}"),
        })?;
        Some(config)
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
    options.listen = if args.listen.is_empty() && args.tls_listen.is_empty() {
        vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 2525))]
    } else {
        args.listen.clone()
    };
    options.tls_listen = args.tls_listen.clone();
    options.tls = tls;
    if let Some(threads) = args.threads {
        options.threads = threads;
    }
    options.limits = ConnectionLimits::new(args.max_connections, 50);

    hardening(&args.hardening, &mut options);
    let mut backend = StoreBackend::new(store, &hostname, credentials);
    let dkim_note = if args.dkim_verify || args.spf || args.dmarc {
        let resolver = match args.dns {
            Some(dns) => ResolverConfig::new(vec![dns]),
            None => smtp_mio::dns::system_config()
                .map_err(|e| format!("{}: {e}", smtp_mio::dns::RESOLV_CONF))?,
        };
        let servers: Vec<String> = resolver.servers.iter().map(|s| s.to_string()).collect();
        let mut config = DkimConfig::new(resolver);
        config.timeout = std::time::Duration::from_secs(args.dns_timeout);
        let service = DkimService::start(config)
            .map_err(|e| format!("cannot start DKIM verification: {e}"))?;
        let mut checked = Vec::new();
        if args.dkim_verify {
            backend = backend.with_dkim(service.clone());
            checked.push("DKIM");
        }
        // Sender authentication (SPF, DMARC).
        if args.spf || args.dmarc {
            let mut checks = AuthChecks::new();
            checks.spf = args.spf;
            checks.dmarc = args.dmarc;
            checks.spf_reject = args.spf_reject;
            checks.dmarc_enforce = args.dmarc_enforce;
            checks.exempt = args.exempt_network.clone();
            // %{r} in an SPF explanation names this server.
            checks.spf_config.receiver = hostname.clone();
            backend = backend.with_auth_checks(service, checks);
            checked.extend(args.spf.then_some("SPF"));
            checked.extend(args.dmarc.then_some("DMARC"));
        }
        let mut enforcing = Vec::new();
        if args.spf_reject && args.spf {
            enforcing.push("SPF");
        }
        if args.dmarc_enforce && args.dmarc {
            enforcing.push("DMARC");
        }
        let enforcing = match enforcing.is_empty() {
            true => "annotating only".to_owned(),
            false => format!("enforcing {}", enforcing.join("+")),
        };
        format!(
            "verifying {} (DNS {}; {enforcing})",
            checked.join("+"),
            servers.join(" ")
        )
    } else {
        "not verifying DKIM, SPF or DMARC".to_owned()
    };
    // The error names the address: "cannot listen on 127.0.0.1:2525: ...".
    let server = Server::bind(options, backend).map_err(|e| e.to_string())?;

    // Where a client connects: the first listener, a wildcard one through
    // loopback.
    let (first, implicit) = match (
        server.local_addrs().first(),
        server.tls_local_addrs().first(),
    ) {
        (Some(addr), _) => (*addr, false),
        (None, Some(addr)) => (*addr, true),
        (None, None) => return Err("no listener".to_owned()),
    };
    let pem = match &self_signed {
        Some((chain, _)) => Some(write_certificate(&std::env::temp_dir(), chain, first)?),
        None => None,
    };
    let tls_note = match (&pem, &self_signed, &args.tls_cert) {
        (Some(path), Some((_, fingerprint)), _) => format!(
            "STARTTLS, self-signed certificate SHA-256 {fingerprint} in {}",
            path.display()
        ),
        (_, _, Some(cert)) => format!("STARTTLS, certificate {}", cert.display()),
        _ => "no TLS".to_owned(),
    };

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
    let try_it = try_command(&args, reachable(first), implicit, pem.as_deref());
    println!(
        "mail-server {hostname} listening on {} ({tls_note}), {store_note}, {dkim_note}, {policy}; try: {try_it}",
        listening.join(" ")
    );

    let result = serve(server);
    if let Some(path) = &pem {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Runs the server until Ctrl-C or SIGTERM (a second one exits at once).
fn serve(server: Server<StoreBackend>) -> Result<(), String> {
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

/// The address a local client uses to reach `addr`: loopback for a
/// wildcard (`0.0.0.0` → `127.0.0.1`, `[::]` → `[::1]`).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// The `send` example's command line that delivers a test message here
/// (the password of `--auth` is not repeated).
fn try_command(args: &Args, addr: SocketAddr, implicit: bool, pem: Option<&Path>) -> String {
    let mut command =
        format!("cargo run --release -p smtp-blocking --example send -- --server {addr}");
    if implicit {
        command.push_str(" --implicit-tls");
    }
    if args.lmtp {
        command.push_str(" --lmtp");
    }
    if let Some(pem) = pem {
        command.push_str(&format!(" --tls-ca {}", pem.display()));
    }
    if let Some((user, _)) = args.auth.first() {
        command.push_str(&format!(" --auth {user}:PASSWORD"));
    }
    command.push_str(" --from me@example.org --to you@example.org --body hello");
    command
}

/// Writes the self-signed certificate for clients to trust (see the module
/// docs): `mail-server-PORT.pem` for 127.0.0.1, `mail-server-IP-PORT.pem`
/// otherwise, in `dir`; the path written.
fn write_certificate(dir: &Path, chain_pem: &str, addr: SocketAddr) -> Result<PathBuf, String> {
    let name = if addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        format!("mail-server-{}", addr.port())
    } else {
        format!("mail-server-{}-{}", addr.ip(), addr.port())
    };
    let path = dir.join(format!("{name}.pem"));
    let pid = std::process::id();
    let temporary = dir.join(format!(".{name}.pem.{pid}"));
    // Left by a process that had our id and died before its rename.
    let _ = std::fs::remove_file(&temporary);
    let written = (|| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(chain_pem.as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(format!("writing {}: {e}", temporary.display()));
    }
    if std::fs::rename(&temporary, &path).is_ok() {
        return Ok(path);
    }
    // The name is taken by a file we may not replace (another user's):
    // a name of our own.
    let own = dir.join(format!("{name}-{pid}.pem"));
    match std::fs::rename(&temporary, &own) {
        Ok(()) => Ok(own),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(format!("writing {}: {e}", own.display()))
        }
    }
}

// ----- server hardening: protocol synchronization, message content policy,
// PROXY protocol, per-client rates ------------------------------------------

/// Defences for a server on port 25 (Postfix's names in brackets).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Hardening")]
struct Hardening {
    /// Serve unauthenticated clients that send on where RFC 2920 says to
    /// wait (after EHLO, DATA, the end of data, VRFY, EXPN, NOOP, QUIT,
    /// STARTTLS, during AUTH, before the greeting) [default: they get "554
    /// 5.5.0 Error: SMTP protocol synchronization" and are disconnected;
    /// smtpd_forbid_unauth_pipelining].
    #[arg(long)]
    allow_unauth_pipelining: bool,
    /// Hold the greeting back this many seconds; a client that talks
    /// meanwhile is disconnected as out of sync (postscreen_greet_wait,
    /// which is 6); 0 greets at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    greeting_delay: f64,
    /// What a message with a bare CR, a bare LF or a NUL gets (DATA, and
    /// BDAT unless BODY=BINARYMIME): reject = read to its end and refused
    /// with 550 (smtpd_forbid_bare_newline = reject), normalize = CRLF and
    /// NULs dropped, accept = stored as sent.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = ContentPolicy::Reject)]
    bare_line_ending: ContentPolicy,
    /// Expect a PROXY protocol header (v1 or v2, HAProxy) on every
    /// listener, before the greeting and before implicit TLS, from these
    /// trusted proxies only (an address or network, e.g. 10.0.0.0/8);
    /// repeat for more. The client it names is used for Received:, the
    /// per-client limits and the logs; other sources and malformed headers
    /// are closed without a greeting [default: no PROXY protocol].
    #[arg(long, value_name = "CIDR")]
    proxy_protocol: Vec<smtp_proto::proxy::Cidr>,
    /// Connections per client address (IPv6: per /64) and minute; more get
    /// "421 4.7.0" instead of the greeting
    /// (smtpd_client_connection_rate_limit) [default: unlimited].
    #[arg(long, value_name = "N")]
    connection_rate_limit: Option<u32>,
    /// MAIL commands per client and minute; more get "450 4.7.1"
    /// (smtpd_client_message_rate_limit) [default: unlimited].
    #[arg(long, value_name = "N")]
    message_rate_limit: Option<u32>,
    /// RCPT commands per client and minute; more get "450 4.7.1"
    /// (smtpd_client_recipient_rate_limit) [default: unlimited].
    #[arg(long, value_name = "N")]
    recipient_rate_limit: Option<u32>,
    /// Networks whose clients no rate limit applies to (nor to loopback); repeat
    /// for more (smtpd_client_event_limit_exceptions) [default: none].
    #[arg(long, value_name = "CIDR")]
    rate_exempt: Vec<smtp_proto::proxy::Cidr>,
}

/// `--bare-line-ending`: the smuggling policy.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ContentPolicy {
    Reject,
    Normalize,
    Accept,
}

/// Applies the [`Hardening`] flags to the server options.
fn hardening(h: &Hardening, options: &mut Options) {
    let session = &mut options.session;
    session.forbid_unauth_pipelining = !h.allow_unauth_pipelining;
    session.greeting_delay = std::time::Duration::try_from_secs_f64(h.greeting_delay.max(0.0))
        .unwrap_or(std::time::Duration::ZERO);
    options.proxy_protocol = h.proxy_protocol.clone();
    options.rates.connections = h.connection_rate_limit;
    options.rates.messages = h.message_rate_limit;
    options.rates.recipients = h.recipient_rate_limit;
    options.rates.exempt = h.rate_exempt.clone();
    let session = &mut options.session;
    session.bare_line_ending = match h.bare_line_ending {
        ContentPolicy::Reject => smtp_proto::data::BareLineEnding::Reject,
        ContentPolicy::Normalize => smtp_proto::data::BareLineEnding::Normalize,
        ContentPolicy::Accept => smtp_proto::data::BareLineEnding::Accept,
    };
}

// ----- end of server hardening ----------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_is_reached_through_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(at("0.0.0.0:2525")), at("127.0.0.1:2525"));
        assert_eq!(reachable(at("[::]:25")), at("[::1]:25"));
        assert_eq!(reachable(at("192.0.2.1:25")), at("192.0.2.1:25"));
        assert_eq!(reachable(at("[2001:db8::1]:25")), at("[2001:db8::1]:25"));
    }

    #[test]
    fn the_certificate_file_is_named_after_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        for (addr, name) in [
            ("127.0.0.1:2525", "mail-server-2525.pem"),
            ("127.0.0.2:2525", "mail-server-127.0.0.2-2525.pem"),
            ("0.0.0.0:2525", "mail-server-0.0.0.0-2525.pem"),
            ("[::1]:2525", "mail-server-::1-2525.pem"),
        ] {
            let path = write_certificate(dir.path(), "PEM", at(addr)).unwrap();
            assert_eq!(path, dir.path().join(name));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "PEM");
        }
        // A file left behind is replaced; nothing else is left over.
        let path = write_certificate(dir.path(), "NEW", at("127.0.0.1:2525")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "NEW");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("mail-server-2525.pem");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let path = write_certificate(dir.path(), "PEM", "127.0.0.1:2525".parse().unwrap()).unwrap();
        assert_eq!(path, link);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "PEM");
    }

    #[test]
    fn the_try_hint_never_repeats_a_password() {
        let args = Args::parse_from(["mail-server", "--auth", "alice:s3cret"]);
        let hint = try_command(&args, "127.0.0.1:2525".parse().unwrap(), false, None);
        assert!(hint.contains("--auth alice:PASSWORD"), "{hint}");
        assert!(!hint.contains("s3cret"), "{hint}");
    }
}
