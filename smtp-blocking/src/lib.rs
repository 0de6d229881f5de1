//! # smtp-blocking: send mail from simple programs
//!
//! A blocking `std::net` + rustls transport around [`smtp_proto`]'s sans-IO
//! core. It holds no protocol logic of its own: every byte it reads goes
//! into the core, every byte it writes comes out of it, and every decision
//! (which command next, what a reply means, when to give up, which DNS
//! server to ask and when to retry, which MX host to try next and with which
//! TLS) is the core's.
//!
//! What this crate adds is I/O, done carefully:
//!
//! - [`client`]: the drive loop, [`Connection`]: connect, set up (EHLO,
//!   STARTTLS, AUTH), send messages over one connection, quit.
//! - [`channel`]: TCP with `TCP_NODELAY`, connect timeouts over every
//!   resolved address, rustls for STARTTLS and implicit TLS, deadlines as
//!   socket timeouts, and **no read buffer** that could carry plaintext
//!   across the STARTTLS switch; Unix sockets for LMTP.
//! - [`tls`]: the core's rustls glue ([`smtp_proto::tls`]: ring only,
//!   webpki roots by default, one loudly named way to skip verification),
//!   plus reading a CA file.
//! - [`mx`]: [`deliver_mx`], delivery by MX with per-recipient results. It
//!   follows the core's MX walk ([`smtp_proto::mx::Walk`]) and decides
//!   nothing itself: which recipients go on to the next host after a `4yz`,
//!   what a connect or TLS failure means, the opportunistic TLS rule
//!   (encrypt without verifying unless asked, one plaintext pass when TLS
//!   failed everywhere) are the walk's, shared with `smtp-mio`. Two
//!   behaviours changed when the walk moved to the core: only the deferred
//!   recipients move on to the next host (this crate used to move on only
//!   when every recipient was deferred), and opportunistic TLS no longer
//!   verifies certificates unless [`MxSettings::verify`] asks for it.
//! - [`dns`]: a socket pump under the core's stub resolver
//!   ([`smtp_proto::dns::Resolver`]): UDP from a random port, TCP when the
//!   core says, the core's deadlines as socket timeouts, OS randomness for
//!   seeds. The retry policy and answer matching are the core's.
//! - [`url`]: `smtp://`, `smtps://` and `lmtp://` server URLs, parsed into
//!   the core's [`Protocol`] and [`TlsMode`] (re-exported here).
//! - [`Error`]: one error type that tells temporary from permanent failures.
//!
//! It never spawns threads, never keeps global state and never reads a
//! clock inside the core: time is taken here and handed in.
//!
//! # Sending mail
//!
//! Through a submission server, with STARTTLS required and AUTH (the
//! session refuses to authenticate without TLS):
//!
//! ```no_run
//! use smtp_blocking::{Connection, Envelope};
//!
//! let mut conn = Connection::connect("smtp://alice:s3cret@mail.example.org:587?tls=required")?;
//! let envelope = Envelope::parse("alice@example.org", ["bob@example.net"])?;
//! let report = conn.send(&envelope, b"Subject: hi\r\n\r\nHello Bob.\r\n")?;
//! for r in &report.recipients {
//!     println!("{:?}: {:?}", r.recipient, r.outcome);
//! }
//! if let Some(reply) = &report.data {
//!     println!("queued: {}", reply.first_line());
//! }
//! // The connection carries any number of messages; a large one streams
//! // from a reader, never held whole:
//! let file = std::fs::File::open("big.eml")?;
//! conn.send_reader(&envelope, std::io::BufReader::new(file))?;
//! conn.quit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With implicit TLS (port 465), a private CA and a transcript on stderr:
//!
//! ```no_run
//! use std::sync::Arc;
//! use smtp_blocking::{Connection, Envelope, ServerUrl, Settings};
//!
//! let url: ServerUrl = "smtps://alice:s3cret@mail.example.org".parse()?;
//! let mut settings = Settings::default();
//! settings.tls = smtp_blocking::tls::ca_pem_file("/etc/ssl/private-ca.pem")?;
//! settings.trace = Some(Arc::new(|direction, line| eprintln!("{} {line}", direction.prefix())));
//! let mut conn = Connection::open(&url, &settings)?;
//! let envelope = Envelope::parse("alice@example.org", ["bob@example.net"])?;
//! match conn.send(&envelope, b"Subject: hi\r\n\r\nHello.\r\n") {
//!     Ok(report) if report.all_accepted() => println!("sent"),
//!     Ok(report) => println!("partly refused: {:?}", report.recipients),
//!     Err(e) if e.is_temporary() => println!("try again later: {e}"),
//!     Err(e) => println!("failed for good: {e}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Straight to the recipients' MX hosts (no relay): each domain looked up,
//! hosts tried in preference order, opportunistic STARTTLS (unverified
//! unless [`MxSettings::verify`] says so), a result per recipient, all as
//! the core's walk decides:
//!
//! ```no_run
//! use smtp_blocking::{Envelope, MxSettings, Resolver, deliver_mx};
//! use smtp_proto::client::Outcome;
//!
//! let settings = MxSettings::new(Resolver::from_system()?);
//! let envelope = Envelope::parse("alice@example.org", ["bob@example.net", "carol@example.com"])?;
//! let report = deliver_mx(&envelope, b"Subject: hi\r\n\r\nHello.\r\n", &settings);
//! for r in &report.recipients {
//!     match r.outcome {
//!         Outcome::Accepted => println!("{:?}: accepted: {}", r.recipient, r.describe()),
//!         Outcome::TransientFailure => println!("{:?}: retry later", r.recipient),
//!         _ => println!("{:?}: bounced", r.recipient),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Building blocks
//!
//! A server URL, as configuration files carry it:
//!
//! ```
//! use smtp_blocking::{Endpoint, ServerUrl, TlsMode};
//!
//! let url: ServerUrl = "smtp://alice:s3cr%40t@mail.example.org?tls=required".parse()?;
//! assert_eq!(url.tls, TlsMode::Required);
//! assert_eq!(
//!     url.endpoint,
//!     Endpoint::Tcp { host: "mail.example.org".into(), port: 587 }
//! );
//! let credentials = url.credentials.as_ref().unwrap();
//! assert_eq!(credentials.password.expose(), "s3cr@t");
//! assert!(!format!("{url:?}").contains("s3cr"), "Debug never shows the password");
//! # Ok::<(), smtp_blocking::UrlError>(())
//! ```
//!
//! TLS trust: the webpki roots by default, a private CA on request (from a
//! file, or from PEM bytes you already hold):
//!
//! ```no_run
//! use smtp_blocking::TlsConfig;
//!
//! let public = TlsConfig::default();
//! let private = smtp_blocking::tls::ca_pem_file("/etc/ssl/private-ca.pem")?;
//! let pem = std::fs::read("/etc/ssl/private-ca.pem").unwrap();
//! let same = TlsConfig::builder().ca_pem(&pem)?.build()?;
//! # Ok::<(), smtp_blocking::Error>(())
//! ```
//!
//! A connection, and the STARTTLS switch when the session asks for it
//! (the session itself is [`smtp_proto`]'s):
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use smtp_blocking::{Channel, ServerUrl, TlsConfig};
//!
//! let url: ServerUrl = "smtp://mail.example.org".parse()?;
//! let tls = TlsConfig::default();
//! let mut channel = Channel::open(&url, &tls, Duration::from_secs(30), Duration::from_secs(60))?;
//! let mut buf = [0u8; 4096];
//! let n = channel.read(&mut buf, Some(Instant::now() + Duration::from_secs(300)))?;
//! // ... hand buf[..n] to the session; on Output::StartTls:
//! let info = channel.start_tls(&tls, "mail.example.org", Instant::now() + Duration::from_secs(120))?;
//! # Ok::<(), smtp_blocking::Error>(())
//! ```
//!
//! DNS through the system's nameservers: the MX hosts of a domain as the
//! core judges them, a host's addresses, a TXT record:
//!
//! ```no_run
//! use smtp_blocking::Resolver;
//! use smtp_proto::mx::MxAnswer;
//!
//! let resolver = Resolver::from_system()?;
//! match resolver.resolve_mx("example.org")? {
//!     MxAnswer::Hosts(hosts) => {
//!         for host in hosts {
//!             let ips = resolver.resolve_addresses(host.name().as_str())?;
//!             println!("{} {}: {ips:?}", host.preference(), host.name());
//!         }
//!     }
//!     other => println!("{other:?}"),
//! }
//! for txt in resolver.resolve_txt("_dmarc.example.org")? {
//!     println!("{}", String::from_utf8_lossy(&txt.joined()));
//! }
//! # Ok::<(), smtp_blocking::DnsError>(())
//! ```
#![forbid(unsafe_code)]

pub mod channel;
pub mod client;
pub mod dns;
pub mod error;
pub mod mx;
pub mod tls;
pub mod url;

/// The sans-IO core this crate drives, re-exported: a program can name
/// `smtp_blocking::smtp_proto::…` and always get the very version this
/// crate was built against, without keeping two versions in lockstep.
pub use smtp_proto;

pub use channel::Channel;
pub use client::{Connection, Direction, SessionParams, Settings, Trace};
pub use dns::{DnsError, Resolver};
pub use error::{Error, Phase};
pub use mx::{MxRecipientResult, MxReport, MxSettings, deliver_mx};
pub use smtp_proto::client::{Envelope, Outcome, RecipientResult, TransactionReport};
pub use smtp_proto::{Protocol, TlsMode};
pub use tls::{TlsConfig, TlsConfigBuilder, TlsError};
pub use url::{Credentials, Endpoint, ServerUrl, UrlError};
