//! # smtp-blocking: send mail from simple programs
//!
//! A blocking `std::net` + rustls transport around [`smtp_proto`]'s sans-IO
//! core. It holds no protocol logic of its own: every byte it reads goes
//! into the core, every byte it writes comes out of it, and every decision
//! (which command next, what a reply means, when to give up, which MX host
//! to try) is the core's.
//!
//! What this crate adds is I/O, done carefully:
//!
//! - [`channel`]: TCP with `TCP_NODELAY`, connect timeouts over every
//!   resolved address, rustls for STARTTLS and implicit TLS, deadlines as
//!   socket timeouts, and **no read buffer** that could carry plaintext
//!   across the STARTTLS switch; Unix sockets for LMTP.
//! - [`tls`]: rustls with the ring provider, webpki roots by default, a CA
//!   file on request, and one loudly named way to skip verification in
//!   tests.
//! - [`dns`]: a stub resolver for MX delivery (UDP, TCP on truncation,
//!   random ids), walking the core's [`DeliveryPlan`](smtp_proto::mx::DeliveryPlan).
//! - [`url`]: `smtp://`, `smtps://` and `lmtp://` server URLs.
//! - [`Error`]: one error type that tells temporary from permanent failures.
//!
//! It never spawns threads, never keeps global state and never reads a
//! clock inside the core: time is taken here and handed in.
//!
//! # Examples
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
//! TLS trust: the webpki roots by default, a private CA on request:
//!
//! ```no_run
//! use smtp_blocking::TlsConfig;
//!
//! let public = TlsConfig::default();
//! let private = TlsConfig::builder().ca_pem_file("/etc/ssl/private-ca.pem")?.build()?;
//! # Ok::<(), smtp_blocking::TlsError>(())
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
//! The MX hosts of a domain, through the system's nameservers:
//!
//! ```no_run
//! use smtp_blocking::Resolver;
//! use smtp_blocking::dns::Step;
//! use smtp_proto::mx::PlanConfig;
//!
//! let resolver = Resolver::from_system()?;
//! let mut plan = resolver.delivery_plan("example.org", &PlanConfig::default())?;
//! while let Step::Connect { host, ip } = resolver.next_target(&mut plan) {
//!     println!("try {} at {ip}", host.as_str());
//!     // connect; on failure:
//!     plan.on_connect_failed().unwrap();
//! }
//! # Ok::<(), smtp_blocking::DnsError>(())
//! ```
#![forbid(unsafe_code)]

pub mod channel;
pub mod dns;
pub mod error;
pub mod tls;
pub mod url;

pub use channel::Channel;
pub use dns::{DnsError, Resolver};
pub use error::{Error, Phase};
pub use tls::{TlsConfig, TlsConfigBuilder, TlsError};
pub use url::{Credentials, Endpoint, Protocol, ServerUrl, TlsMode, UrlError};
