//! `send`: a swaks-like command-line sender on top of smtp-blocking.
//!
//! ```text
//! cargo run --release -p smtp-blocking --example send -- --server 127.0.0.1:2525 \
//!     --tls-ca /tmp/mail-server-2525.pem --from me@example.org --to you@example.org --body hello
//! ```
//!
//! With `--server` it submits through that server (STARTTLS, implicit TLS,
//! AUTH, LMTP over TCP or a Unix socket); without it, it delivers straight
//! to each recipient domain's MX hosts. One line per recipient; exit status
//! 0 when every recipient was accepted, 75 (EX_TEMPFAIL) when some failure
//! was temporary, 1 otherwise (and 64, EX_USAGE, for a bad command line).

use std::io::{IsTerminal, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use rustls::CertificateError;
use smtp_blocking::tls::TlsError;
use smtp_blocking::{
    Connection, Credentials, Direction, Envelope, Error, MxSettings, Outcome, Resolver, ServerUrl,
    Settings, TlsConfig, TlsMode, deliver_mx,
};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::data::BareLineEnding;
use smtp_proto::reply::Reply;

/// EX_TEMPFAIL (sysexits.h): a temporary failure, try again later.
const EX_TEMPFAIL: u8 = 75;
/// EX_USAGE (sysexits.h): the command line was wrong.
const EX_USAGE: u8 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StartTls {
    /// STARTTLS or fail.
    Required,
    /// STARTTLS when offered.
    Opportunistic,
    /// Never STARTTLS.
    Off,
}

/// Send one message through a server, or straight to the recipients' MX
/// hosts.
///
/// TLS is secure by default. With --server, STARTTLS is *required* when
/// --auth or --tls-ca is given (credentials never travel in cleartext, and
/// a CA file means you expect TLS), and opportunistic otherwise; MX
/// delivery uses opportunistic STARTTLS unless --starttls says otherwise.
/// With --server, certificates are always verified (webpki roots, or
/// --tls-ca) unless --insecure. MX delivery follows the core's rule:
/// opportunistic STARTTLS encrypts without verifying (RFC 7435, Postfix's
/// `may`) unless --tls-ca is given; --starttls required verifies unless
/// --insecure. AUTH over plaintext happens only with an explicit
/// `--starttls off`.
///
/// The message: --body-file (a complete RFC 5322 message), --body TEXT (the
/// text of a test message), or standard input when it is not a terminal (a
/// complete message); otherwise a small test message. Bare LF line
/// endings are sent as CRLF.
#[derive(Debug, Parser)]
#[command(name = "send", version)]
struct Args {
    /// The server, HOST:PORT (HOST alone: port 587, 465 with
    /// --implicit-tls, 24 with --lmtp), or a Unix socket path with --lmtp.
    /// Without it, mail goes to the MX hosts of each recipient's domain.
    #[arg(long, value_name = "HOST:PORT")]
    server: Option<String>,
    /// The envelope sender (MAIL FROM) and From: of a built message.
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// A recipient (RCPT TO); repeat for more.
    #[arg(long, value_name = "ADDR", required = true)]
    to: Vec<String>,
    /// STARTTLS policy [default: required with --auth or --tls-ca,
    /// opportunistic otherwise].
    #[arg(long, value_enum)]
    starttls: Option<StartTls>,
    /// TLS from the first byte (port 465, RFC 8314) instead of STARTTLS.
    #[arg(long, conflicts_with = "starttls")]
    implicit_tls: bool,
    /// Trust the CA certificates in this PEM file instead of the webpki
    /// roots.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// DANGER: accept any server certificate (tests only).
    #[arg(long, conflicts_with = "tls_ca")]
    insecure: bool,
    /// AUTH credentials.
    #[arg(long, value_name = "USER:PASS")]
    auth: Option<String>,
    /// The EHLO/LHLO name [default: the local address as a literal].
    #[arg(long, value_name = "NAME")]
    helo: Option<String>,
    /// A file holding the complete message.
    #[arg(long, value_name = "FILE", conflicts_with = "body")]
    body_file: Option<PathBuf>,
    /// The body text of a built test message.
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    /// The Subject of a built message.
    #[arg(long, value_name = "S")]
    subject: Option<String>,
    /// MX delivery: the DNS server [default: /etc/resolv.conf].
    #[arg(long, value_name = "HOST:PORT")]
    dns: Option<String>,
    /// MX delivery: the port on MX hosts instead of 25 (for tests).
    #[arg(long, value_name = "PORT")]
    mx_port: Option<u16>,
    /// Speak LMTP (RFC 2033) to --server.
    #[arg(long, requires = "server")]
    lmtp: bool,
    /// Give up on any connect, handshake or reply after this many seconds
    /// [default: the RFC 5321 timeouts].
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Print the conversation (C:/S: lines; AUTH secrets redacted).
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("send: {message}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// One recipient's line and outcome.
fn print_result(recipient: &str, outcome: Outcome, detail: &str) {
    let what = match outcome {
        Outcome::Accepted => "accepted",
        Outcome::TransientFailure => "temporary failure",
        _ => "permanent failure",
    };
    println!(
        "{recipient}: {what}{}{detail}",
        if detail.is_empty() { "" } else { ": " }
    );
}

fn reply_text(reply: &Reply<'_>) -> String {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    String::from_utf8_lossy(&wire)
        .trim_end()
        .replace("\r\n", " / ")
}

fn exit_code(outcomes: impl IntoIterator<Item = Outcome>) -> u8 {
    let mut code = 0;
    for outcome in outcomes {
        match outcome {
            Outcome::Accepted => {}
            Outcome::TransientFailure => code = EX_TEMPFAIL,
            _ => {
                if code == 0 {
                    code = 1;
                }
            }
        }
    }
    code
}

fn run(args: &Args) -> Result<u8, String> {
    let from = Mailbox::parse(&args.from)
        .map_err(|e| format!("--from {}: {e}", args.from))?
        .into_owned();
    let mut recipients = Vec::new();
    for to in &args.to {
        let mailbox = Mailbox::parse(to).map_err(|e| format!("--to {to}: {e}"))?;
        recipients.push(ForwardPath::Mailbox(mailbox.into_owned()));
    }
    let envelope = Envelope::new(ReversePath::Mailbox(from), recipients);
    let message = message(args)?;

    let mut settings = match args.timeout {
        Some(secs) => Settings::default().with_timeout(Duration::from_secs(secs.max(1))),
        None => Settings::default(),
    };
    if let Some(name) = &args.helo {
        // A domain or an address literal, checked before any connection.
        settings.helo = Some(name.parse().map_err(|e| format!("--helo {name}: {e}"))?);
    }
    settings.bare_line_ending = BareLineEnding::Normalize;
    settings.tls = tls_config(args)?;
    if args.verbose {
        settings.trace = Some(Arc::new(|direction: Direction, line: &str| {
            eprintln!("{} {line}", direction.prefix());
        }));
    }

    match &args.server {
        Some(server) => submit(args, server, settings, &envelope, &message),
        None => deliver(args, settings, &envelope, &message),
    }
}

fn tls_config(args: &Args) -> Result<TlsConfig, String> {
    if args.insecure {
        eprintln!("send: WARNING: --insecure: server certificates are not verified");
        return TlsConfig::builder()
            .dangerous_accept_any_certificate()
            .build()
            .map_err(|e| e.to_string());
    }
    match &args.tls_ca {
        Some(file) => smtp_blocking::tls::ca_pem_file(file).map_err(|e| format!("--tls-ca: {e}")),
        None => Ok(TlsConfig::default()),
    }
}

/// The URL for `--server` and the TLS flags.
fn server_url(args: &Args, server: &str) -> Result<ServerUrl, String> {
    let scheme = match (args.lmtp, args.implicit_tls) {
        (true, true) => return Err(String::from("--lmtp and --implicit-tls do not combine")),
        (true, false) => "lmtp",
        (false, true) => "smtps",
        (false, false) => "smtp",
    };
    let tls = match args.starttls {
        Some(StartTls::Required) => "required",
        Some(StartTls::Opportunistic) => "opportunistic",
        Some(StartTls::Off) => "off",
        None if args.auth.is_some() || args.tls_ca.is_some() => "required",
        None => "opportunistic",
    };
    let text = if server.starts_with('/') {
        if !args.lmtp {
            return Err(String::from("a Unix socket --server needs --lmtp"));
        }
        format!("lmtp://{server}")
    } else {
        let authority = if server.starts_with('[') || server.matches(':').count() <= 1 {
            server.to_owned()
        } else {
            // A bare IPv6 address.
            format!("[{server}]")
        };
        if args.implicit_tls {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}?tls={tls}")
        }
    };
    let mut url: ServerUrl = text
        .parse()
        .map_err(|e| format!("--server {server}: {e}"))?;
    if let Some(auth) = &args.auth {
        let (user, pass) = auth
            .split_once(':')
            .ok_or_else(|| String::from("--auth takes USER:PASS"))?;
        url.credentials = Some(Credentials::new(user, pass));
    }
    Ok(url)
}

fn submit(
    args: &Args,
    server: &str,
    mut settings: Settings,
    envelope: &Envelope,
    message: &[u8],
) -> Result<u8, String> {
    let url = server_url(args, server)?;
    if args.auth.is_some() && url.tls == TlsMode::Disabled {
        eprintln!("send: WARNING: --starttls off: the password travels in cleartext");
        settings.allow_plaintext_auth = true;
    }
    let result = Connection::open(&url, &settings).and_then(|mut conn| {
        let report = conn.send(envelope, message)?;
        // The message is decided; a failing QUIT changes nothing.
        let _ = conn.quit();
        Ok(report)
    });
    match result {
        Ok(report) => {
            for r in &report.recipients {
                let detail = r.reply.as_ref().map(reply_text).unwrap_or_default();
                print_result(&path_text(&r.recipient), r.outcome, &detail);
            }
            Ok(exit_code(report.recipients.iter().map(|r| r.outcome)))
        }
        Err(e) => {
            let outcome = if e.is_temporary() {
                Outcome::TransientFailure
            } else {
                Outcome::PermanentFailure
            };
            let detail = error_text(args, &e);
            for (recipient, _) in &envelope.recipients {
                print_result(&path_text(recipient), outcome, &detail);
            }
            Ok(exit_code(envelope.recipients.iter().map(|_| outcome)))
        }
    }
}

fn error_text(args: &Args, e: &Error) -> String {
    match e {
        Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ))) => match &args.tls_ca {
            Some(ca) => format!(
                "{e} (the certificate is not one {} vouches for: is it the server's \
                 current file? a restarted mail-server example writes a new one)",
                ca.display()
            ),
            None => format!(
                "{e} (the server's certificate is not signed by a trusted CA: give its CA or \
                 self-signed certificate with --tls-ca FILE — the mail-server example prints \
                 its file — or, for tests only, --insecure)"
            ),
        },
        Error::Tls(_) if e.to_string().contains("STARTTLS") => {
            format!("{e} (use --starttls off to send in cleartext)")
        }
        _ => e.to_string(),
    }
}

fn deliver(
    args: &Args,
    settings: Settings,
    envelope: &Envelope,
    message: &[u8],
) -> Result<u8, String> {
    if args.auth.is_some() {
        return Err(String::from(
            "--auth needs --server (MX hosts take no AUTH)",
        ));
    }
    if args.implicit_tls {
        return Err(String::from("--implicit-tls needs --server"));
    }
    let resolver = match &args.dns {
        Some(dns) => {
            let addrs: Vec<SocketAddr> = dns
                .to_socket_addrs()
                .map_err(|e| format!("--dns {dns}: {e}"))?
                .collect();
            Resolver::new(addrs)
        }
        None => Resolver::from_system().map_err(|e| format!("/etc/resolv.conf: {e}"))?,
    };
    let mut mx = MxSettings::new(resolver);
    if let Some(port) = args.mx_port {
        mx.port = port;
    }
    mx.tls = match args.starttls {
        Some(StartTls::Required) => TlsMode::Required,
        Some(StartTls::Off) => TlsMode::Disabled,
        _ => TlsMode::Opportunistic,
    };
    if args.tls_ca.is_some() {
        mx.verify = Some(true);
    } else if args.insecure {
        mx.verify = Some(false);
    }
    mx.settings = settings;
    let report = deliver_mx(envelope, message, &mx);
    for r in &report.recipients {
        print_result(&path_text(&r.recipient), r.outcome, &r.describe());
    }
    Ok(exit_code(report.recipients.iter().map(|r| r.outcome)))
}

fn path_text(path: &ForwardPath<'_>) -> String {
    let mut out = Vec::new();
    path.encode(&mut out);
    String::from_utf8_lossy(&out)
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// The message to send: a file, standard input, or a built test message.
fn message(args: &Args) -> Result<Vec<u8>, String> {
    if let Some(file) = &args.body_file {
        return std::fs::read(file).map_err(|e| format!("--body-file {}: {e}", file.display()));
    }
    if args.body.is_none() && !std::io::stdin().is_terminal() {
        let mut message = Vec::new();
        std::io::stdin()
            .read_to_end(&mut message)
            .map_err(|e| format!("reading standard input: {e}"))?;
        if !message.is_empty() {
            return Ok(message);
        }
    }
    let text = args
        .body
        .as_deref()
        .unwrap_or("This is a test message sent by the smtp-blocking send example.");
    Ok(build_message(args, text))
}

/// A small RFC 5322 message: Date, Message-ID, From, To, Subject.
fn build_message(args: &Args, text: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let domain = args
        .from
        .rsplit_once('@')
        .map_or("localhost", |(_, domain)| domain);
    let subject = args.subject.as_deref().unwrap_or("smtp-blocking test");
    let mut m = String::new();
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(now.as_secs())));
    m.push_str(&format!(
        "Message-ID: <{}.{}.{}@{domain}>\r\n",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    ));
    m.push_str(&format!("From: <{}>\r\n", args.from));
    m.push_str(&format!(
        "To: {}\r\n",
        args.to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    for line in text.lines() {
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.into_bytes()
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
