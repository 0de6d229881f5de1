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
