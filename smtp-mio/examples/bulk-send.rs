//! `bulk-send`: send many generated messages through the delivery engine
//! ([`smtp_mio::delivery`]), N connections at once on one thread, and
//! report what came back.
//!
//! ```text
//! cargo run --release -p smtp-mio --example bulk-send -- \
//!     (--server HOST:PORT | --mx [--dns HOST:PORT] [--mx-port PORT]) \
//!     --from ADDR --to ADDR [--to ADDR]... --count N [--concurrency C] [--per-host M] \
//!     [--size BYTES] [--starttls required|opportunistic|off] [--tls-ca FILE] [--insecure] \
//!     [--auth USER:PASS] [--dkim-domain D --dkim-selector S --dkim-key FILE]...
//! ```
//!
//! `--server` relays everything through one host (a smarthost, a test
//! sink); `--mx` delivers to each recipient domain's MX hosts, looked up
//! through `--dns` (default: `/etc/resolv.conf`), on port `--mx-port`
//! (default 25). Message *i* (from 1) goes to the *i*-th `--to` address,
//! round robin, one recipient per message. Each message is a valid RFC 5322
//! message of exactly `--size` octets (default 4096): `Date`, `From`, `To`,
//! `Subject` with its sequence number, `Message-ID`, and a body of lines of
//! at most 78 characters, CRLF line endings. Messages are made as they are
//! submitted, a window of at most max(4 × concurrency, 1000) at a time, so
//! `--count 1000000` never holds a million messages.
//!
//! `--concurrency` caps the connections in total (default 20) and
//! `--per-host` those to one destination (default: the concurrency).
//! STARTTLS is `opportunistic` by default: it upgrades whenever the server
//! offers STARTTLS, so the same command works against a plain test sink and
//! a real TLS server; `required` fails each message on a server without it,
//! `off` never upgrades. The rules are the core's MX walk
//! (`smtp_proto::mx::Walk`), relay and MX alike: opportunistic TLS encrypts
//! without verifying the certificate (Postfix's `may`, RFC 7435: against an
//! unauthenticated peer, encryption still defeats passive eavesdropping),
//! and when every host fails the handshake it delivers in plaintext rather
//! than not at all; required TLS verifies the certificate against the
//! webpki roots, or the CA/certificate PEM of `--tls-ca` (e.g. the
//! `mail-server` example's `/tmp/mail-server-<port>.pem`), and never falls
//! back to plaintext. `--insecure` turns verification off for required TLS
//! too (encryption without authentication, Postfix's `encrypt`). `--auth`
//! (relay only) logs in with PLAIN/LOGIN, and only over TLS: against a
//! server without STARTTLS every message fails with "AUTH refused over an
//! unencrypted connection", and `--auth` with `--starttls off` is refused up
//! front.
//!
//! `--dkim-domain D --dkim-selector S --dkim-key FILE` signs every message
//! (DKIM, PEM keys: RSA 2048-4096 bits or Ed25519); repeat the three for
//! dual RSA + Ed25519 signing, the Nth of each going together. The engine
//! signs each message once as it is submitted (here on the engine's
//! thread: about 0.6 ms per RSA-2048 signature of a 4 KiB message on a
//! small machine, which caps the rate; Ed25519 about 40 µs).
//!
//! MX delivery asks `--dns` (default: the servers of `/etc/resolv.conf`)
//! through the core's resolver with its answer cache on: a run to one
//! domain asks for its MX and address records once, not once per message.
//!
//! Progress goes to standard error: on a terminal, one line redrawn at most
//! ten times a second; otherwise a line every second:
//!
//! ```text
//! progress: 5120/20000 done, 10230 msgs/s, accepted 5120, temporary 0, permanent 0, connections 20
//! ```
//!
//! The summary goes to standard output; failures are grouped by reply code
//! (with the first reply's text), or by the failure's text when there was no
//! reply:
//!
//! ```text
//! messages:      20000 to 1 recipient(s) via 127.0.0.1:2525
//! elapsed:       1.874 s
//! rate:          10672 msgs/s
//! accepted:      19997
//! temporary:     3
//!   451 x3: 4.3.0 try again later
//! permanent:     0
//! not attempted: 0
//! connections:   20 (most open at once)
//! ```
//!
//! Exit status 0 when every message was accepted, 1 otherwise, 2 for a bad
//! command line. Ctrl-C stops submitting, lets transactions in progress
//! finish and QUITs (the rest count as "not attempted"); a second Ctrl-C
//! exits at once.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Parser, ValueEnum};
use smtp_mio::delivery::{
    Engine, EngineConfig, Job, JobResult, MxRouting, RecipientReport, Relay, Status,
};
use smtp_mio::tls::TlsConfig;
use smtp_proto::TlsMode;
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::{Credentials, Envelope};
use smtp_proto::dkim::{Signer, SigningKey};
use smtp_proto::dns::ResolverConfig;
use smtp_proto::mx::TlsPolicy;

/// The exit status for a bad command line (as clap's own errors).
const EXIT_USAGE: u8 = 2;

/// The longest body line, CRLF excluded (RFC 5322 §2.1.1's "SHOULD").
const LINE: usize = 78;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StartTls {
    /// STARTTLS or fail the message.
    Required,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// Never STARTTLS.
    Off,
}

/// Send N generated messages through a relay or by MX, many connections at
/// once, and summarize the outcome.
///
/// Exit status: 0 when every message was accepted, 1 otherwise, 2 for a bad
/// command line.
#[derive(Debug, Parser)]
#[command(name = "bulk-send", version)]
#[command(group(ArgGroup::new("route").required(true).args(["server", "mx"])))]
struct Args {
    /// Relay every message through this server.
    #[arg(long, value_name = "HOST:PORT")]
    server: Option<String>,
    /// Deliver to each recipient domain's MX hosts instead.
    #[arg(long)]
    mx: bool,
    /// MX delivery: the DNS server [default: /etc/resolv.conf].
    #[arg(long, value_name = "HOST:PORT", requires = "mx")]
    dns: Option<SocketAddr>,
    /// MX delivery: the port on the MX hosts.
    #[arg(long, value_name = "PORT", requires = "mx", default_value_t = 25)]
    mx_port: u16,
    /// The envelope sender (MAIL FROM) and From: header.
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// A recipient; repeat for more (messages go round robin, one recipient
    /// each).
    #[arg(long, value_name = "ADDR", required = true)]
    to: Vec<String>,
    /// How many messages to send.
    #[arg(long, value_name = "N")]
    count: u64,
    /// Connections open at most, in total.
    #[arg(long, value_name = "C", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Connections open at most to one destination [default: the
    /// concurrency].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..))]
    per_host: Option<u32>,
    /// The size of each message in octets, headers included.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    size: usize,
    /// STARTTLS policy. Opportunistic by default: the same command works
    /// against a plain sink and a TLS server, and AUTH still waits for TLS.
    #[arg(long, value_enum, default_value_t = StartTls::Opportunistic)]
    starttls: StartTls,
    /// Trust the CA certificates (or the self-signed certificate) in this
    /// PEM file instead of the webpki roots.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// DANGER: do not verify the server's certificate, even when TLS is
    /// required (opportunistic TLS never verifies).
    #[arg(long, conflicts_with = "tls_ca")]
    insecure: bool,
    /// AUTH credentials for the relay (sent over TLS only).
    #[arg(long, value_name = "USER:PASS", conflicts_with = "mx")]
    auth: Option<String>,
    /// DKIM signing domain (d=); repeat for each key.
    #[arg(long, value_name = "D")]
    dkim_domain: Vec<String>,
    /// DKIM selector (s=); repeat for each key.
    #[arg(long, value_name = "S")]
    dkim_selector: Vec<String>,
    /// DKIM private key (PEM); repeat for each key.
    #[arg(long, value_name = "FILE")]
    dkim_key: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let setup = match Setup::new(&args) {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("bulk-send: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&args, setup) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bulk-send: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Everything checked before the first connection.
struct Setup {
    config: EngineConfig,
    from: ReversePath<'static>,
    recipients: Vec<ForwardPath<'static>>,
    messages: MessageMaker,
    /// Where the messages go, for the summary.
    via: String,
}

impl Setup {
    fn new(args: &Args) -> Result<Self, String> {
        let from = Mailbox::parse(&args.from)
            .map_err(|e| format!("--from {}: {e}", args.from))?
            .into_owned();
        let mut recipients = Vec::new();
        for to in &args.to {
            let mailbox = Mailbox::parse(to).map_err(|e| format!("--to {to}: {e}"))?;
            recipients.push(ForwardPath::Mailbox(mailbox.into_owned()));
        }
        let tls_mode = match args.starttls {
            StartTls::Required => TlsMode::Required,
            StartTls::Opportunistic => TlsMode::Opportunistic,
            StartTls::Off => TlsMode::Disabled,
        };
        // The walk's policy for the mode (verification only for required
        // TLS), without verification under --insecure.
        let mut tls = TlsPolicy::new(tls_mode);
        if args.insecure {
            eprintln!("bulk-send: WARNING: --insecure: server certificates are not verified");
            tls = tls.with_verify(false);
        }
        let (mut config, via) = match &args.server {
            Some(server) => {
                let (host, port) = split_host_port(server)?;
                let mut relay = Relay::new(host, port);
                relay.tls = tls;
                if let Some(auth) = &args.auth {
                    let (user, pass) = auth
                        .split_once(':')
                        .ok_or_else(|| String::from("--auth takes USER:PASS"))?;
                    if tls_mode == TlsMode::Disabled {
                        return Err(String::from(
                            "--auth needs TLS: AUTH over plaintext is refused \
                             (use --starttls required or opportunistic)",
                        ));
                    }
                    relay.credentials = Some(Credentials::password(user, pass));
                }
                (EngineConfig::relay(relay), server.clone())
            }
            None => {
                let resolver = match args.dns {
                    Some(dns) => ResolverConfig::new(vec![dns]),
                    None => smtp_mio::dns::system_config()
                        .map_err(|e| format!("{}: {e}", smtp_mio::dns::RESOLV_CONF))?,
                };
                let mut mx = MxRouting::new(resolver);
                mx.port = args.mx_port;
                mx.walk.tls = tls;
                (EngineConfig::mx(mx), format!("MX (port {})", args.mx_port))
            }
        };
        config.max_connections = args.concurrency as usize;
        config.max_per_destination = args.per_host.unwrap_or(args.concurrency) as usize;
        config.tls = tls_config(args)?;
        config.dkim = dkim_signers(args)?;
        let messages = MessageMaker::new(args)?;
        Ok(Self {
            config,
            from: ReversePath::Mailbox(from),
            recipients,
            messages,
            via,
        })
    }
}

/// The signers of `--dkim-domain`, `--dkim-selector` and `--dkim-key`,
/// matched in order.
fn dkim_signers(args: &Args) -> Result<Vec<Signer>, String> {
    let (domains, selectors, keys) = (&args.dkim_domain, &args.dkim_selector, &args.dkim_key);
    if domains.len() != keys.len() || selectors.len() != keys.len() {
        return Err(format!(
            "DKIM signing needs as many --dkim-domain, --dkim-selector and --dkim-key \
             (got {}, {} and {})",
            domains.len(),
            selectors.len(),
            keys.len()
        ));
    }
    let mut signers = Vec::with_capacity(keys.len());
    for ((domain, selector), path) in domains.iter().zip(selectors).zip(keys) {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("--dkim-key {}: {e}", path.display()))?;
        let key = SigningKey::from_pem(&pem)
            .map_err(|e| format!("--dkim-key {}: {e}", path.display()))?;
        let signer = Signer::new(key, domain, selector)
            .map_err(|e| format!("--dkim-domain {domain} --dkim-selector {selector}: {e}"))?;
        signers.push(signer);
    }
    Ok(signers)
}

/// `HOST:PORT`, `[IPv6]:PORT`.
fn split_host_port(server: &str) -> Result<(String, u16), String> {
    let bad = || format!("--server {server}: expected HOST:PORT");
    let (host, port) = server.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// The trust for verified connections: the webpki roots, or `--tls-ca`.
fn tls_config(args: &Args) -> Result<TlsConfig, String> {
    match &args.tls_ca {
        Some(file) => smtp_mio::tls::ca_pem_file(file).map_err(|e| format!("--tls-ca: {e}")),
        None => Ok(TlsConfig::default()),
    }
}

/// Builds message *i*: headers, then body lines padding it to the size.
struct MessageMaker {
    size: usize,
    count: u64,
    from: String,
    to: Vec<String>,
    domain: String,
    /// Unique per run: the Message-ID's middle part.
    run: String,
    date: String,
    /// One body line's worth of text, 78 characters, cycled.
    pattern: Vec<u8>,
}

impl MessageMaker {
    fn new(args: &Args) -> Result<Self, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let domain = args
            .from
            .rsplit_once('@')
            .map_or("localhost", |(_, domain)| domain)
            .to_owned();
        let pattern: Vec<u8> = (0..2 * LINE)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 62])
            .collect();
        let maker = Self {
            size: args.size,
            count: args.count,
            from: args.from.clone(),
            to: args.to.clone(),
            domain,
            run: format!(
                "{}.{}.{}",
                now.as_secs(),
                now.subsec_nanos(),
                std::process::id()
            ),
            date: rfc5322_date(now.as_secs()),
            pattern,
        };
        // The largest header block must still fit (the longest --to, the
        // widest sequence number), with room for one body line.
        let longest = (0..maker.to.len())
            .map(|i| {
                maker
                    .headers(maker.count.max(1) * 10 + i as u64, i, false)
                    .len()
            })
            .max()
            .unwrap_or(0);
        if longest + 3 > maker.size {
            return Err(format!(
                "--size {}: too small for the headers (at least {} octets)",
                maker.size,
                longest + 3
            ));
        }
        Ok(maker)
    }

    /// The header block with its empty line; `pad` ends the Subject with a
    /// dot, to shift the size by one.
    fn headers(&self, seq: u64, to: usize, pad: bool) -> String {
        format!(
            "Date: {}\r\nFrom: <{}>\r\nTo: <{}>\r\nSubject: bulk-send message {seq} of {}{}\r\n\
             Message-ID: <{seq}.{}@{}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n",
            self.date,
            self.from,
            self.to[to],
            self.count,
            if pad { "." } else { "" },
            self.run,
            self.domain,
        )
    }

    /// Message `seq` (from 1), for `--to` number `to`: exactly `size`
    /// octets.
    fn make(&self, seq: u64, to: usize) -> Vec<u8> {
        let mut headers = self.headers(seq, to, false);
        // A body of one octet cannot end in CRLF.
        if self.size - headers.len() == 1 {
            headers = self.headers(seq, to, true);
        }
        let mut m = Vec::with_capacity(self.size);
        m.extend_from_slice(headers.as_bytes());
        let mut left = self.size - m.len();
        let mut line = 0;
        while left > 0 {
            // Full lines of LINE + CRLF; never leave a single octet.
            let take = match left {
                n if n >= LINE + 2 && n != LINE + 3 => LINE,
                n if n == LINE + 3 => LINE - 1,
                n => n - 2,
            };
            let start = (seq as usize + line) % LINE;
            m.extend_from_slice(&self.pattern[start..start + take]);
            m.extend_from_slice(b"\r\n");
            left -= take + 2;
            line += 1;
        }
        m
    }
}

/// RFC 5322 §3.3 date-time in UTC: `Sun, 29 Nov 2026 06:40:00 +0000`.
fn rfc5322_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day} {month_name} {year} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One failure group: how many, and the first one's text.
#[derive(Default)]
struct Group {
    count: u64,
    example: String,
}

/// The outcome so far.
#[derive(Default)]
struct Tally {
    done: u64,
    accepted: u64,
    temporary: u64,
    permanent: u64,
    not_attempted: u64,
    /// Per status, by reply code ("451") or failure text.
    temporary_groups: BTreeMap<String, Group>,
    permanent_groups: BTreeMap<String, Group>,
    not_attempted_groups: BTreeMap<String, Group>,
    peak_connections: usize,
}

impl Tally {
    fn add(&mut self, result: JobResult) {
        self.done += 1;
        for report in &result.recipients {
            let groups = match report.status {
                Status::Accepted => {
                    self.accepted += 1;
                    continue;
                }
                Status::TemporaryFailure => {
                    self.temporary += 1;
                    &mut self.temporary_groups
                }
                Status::PermanentFailure => {
                    self.permanent += 1;
                    &mut self.permanent_groups
                }
                _ => {
                    self.not_attempted += 1;
                    &mut self.not_attempted_groups
                }
            };
            let (key, text) = group_of(report);
            let group = groups.entry(key).or_default();
            if group.count == 0 {
                group.example = text;
            }
            group.count += 1;
        }
    }
}

/// A failed recipient's group (the reply code, else the failure's text)
/// and the text shown for it.
fn group_of(report: &RecipientReport) -> (String, String) {
    match (&report.reply, &report.failure) {
        (Some(reply), failure) => {
            let mut text = String::new();
            if let Some(enhanced) = reply.enhanced_code() {
                text.push_str(&format!("{enhanced} "));
            }
            text.push_str(reply.first_line());
            if let Some(failure) = failure {
                text.push_str(&format!(" ({failure})"));
            }
            (reply.code().to_string(), text)
        }
        (None, Some(failure)) => (failure.to_string(), String::new()),
        (None, None) => (String::from("no reply"), String::new()),
    }
}

/// The progress display on standard error.
struct Progress {
    terminal: bool,
    total: u64,
    start: Instant,
    last: Instant,
    every: Duration,
}

impl Progress {
    fn new(total: u64, start: Instant) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            terminal,
            total,
            start,
            last: start,
            every: if terminal {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(1)
            },
        }
    }

    fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= self.every
    }

    fn show(&mut self, tally: &Tally, connections: usize, now: Instant) {
        self.last = now;
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = if secs > 0.0 {
            tally.done as f64 / secs
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        if self.terminal {
            const WIDTH: u64 = 30;
            let filled = (tally.done * WIDTH)
                .checked_div(self.total)
                .unwrap_or(WIDTH) as usize;
            let _ = write!(
                err,
                "\r\x1b[K[{}{}] {}/{} {:.0} msgs/s ok {} temp {} perm {} conns {}",
                "#".repeat(filled),
                ".".repeat(WIDTH as usize - filled),
                tally.done,
                self.total,
                rate,
                tally.accepted,
                tally.temporary,
                tally.permanent,
                connections,
            );
        } else {
            let _ = writeln!(
                err,
                "progress: {}/{} done, {:.0} msgs/s, accepted {}, temporary {}, permanent {}, \
                 connections {}",
                tally.done,
                self.total,
                rate,
                tally.accepted,
                tally.temporary,
                tally.permanent,
                connections,
            );
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// Sends everything; `Ok(true)` when every message was accepted.
fn run(args: &Args, setup: Setup) -> Result<bool, String> {
    let Setup {
        config,
        from,
        recipients,
        messages,
        via,
    } = setup;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal exits at once; the first asks for a graceful end.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&interrupted)))
            .map_err(|e| format!("signal handler: {e}"))?;
    }

    let mut engine = Engine::new(config).map_err(|e| format!("{via}: {e}"))?;
    let window = (4 * args.concurrency as u64).max(1000);
    let start = Instant::now();
    let mut progress = Progress::new(args.count, start);
    let mut tally = Tally::default();
    let mut submitted: u64 = 0;
    let mut stopping = false;
    while tally.done < submitted || (!stopping && submitted < args.count) {
        if !stopping && interrupted.load(Ordering::Relaxed) {
            eprintln!("\nbulk-send: interrupted: finishing transactions in progress");
            stopping = true;
            engine.shutdown();
        }
        while !stopping && submitted < args.count && submitted - tally.done < window {
            let index = (submitted % recipients.len() as u64) as usize;
            submitted += 1;
            let envelope = Envelope::new(from.clone(), vec![recipients[index].clone()]);
            let job = Job::new(envelope, messages.make(submitted, index));
            engine.submit(job).map_err(|e| e.to_string())?;
        }
        engine
            .poll(Some(Duration::from_millis(100)))
            .map_err(|e| format!("event loop: {e}"))?;
        while let Some(result) = engine.next_result() {
            tally.add(result);
        }
        let connections = engine.stats().connections;
        tally.peak_connections = tally.peak_connections.max(connections);
        let now = Instant::now();
        if progress.due(now) {
            progress.show(&tally, connections, now);
        }
    }
    let elapsed = start.elapsed();
    tally.peak_connections = tally.peak_connections.max(engine.stats().connections);
    progress.show(&tally, engine.stats().connections, Instant::now());
    progress.finish();
    engine
        .close(|result| tally.add(result))
        .map_err(|e| format!("closing: {e}"))?;
    // Messages never submitted (interrupted) were not attempted either.
    tally.not_attempted += args.count - submitted;

    print_summary(args, &via, &tally, elapsed);
    Ok(tally.accepted == args.count)
}

fn print_summary(args: &Args, via: &str, tally: &Tally, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        tally.done as f64 / secs
    } else {
        0.0
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "messages:      {} to {} recipient(s) via {via}",
        args.count,
        args.to.len()
    );
    let _ = writeln!(out, "elapsed:       {secs:.3} s");
    let _ = writeln!(out, "rate:          {rate:.0} msgs/s");
    let _ = writeln!(out, "accepted:      {}", tally.accepted);
    for (name, count, groups) in [
        ("temporary:    ", tally.temporary, &tally.temporary_groups),
        ("permanent:    ", tally.permanent, &tally.permanent_groups),
        (
            "not attempted:",
            tally.not_attempted,
            &tally.not_attempted_groups,
        ),
    ] {
        let _ = writeln!(out, "{name} {count}");
        for (key, group) in groups {
            if group.example.is_empty() {
                let _ = writeln!(out, "  {key} x{}", group.count);
            } else {
                let _ = writeln!(out, "  {key} x{}: {}", group.count, group.example);
            }
        }
    }
    let _ = writeln!(
        out,
        "connections:   {} (most open at once)",
        tally.peak_connections
    );
}
