//! The workspace's test support, written once: the integration tests of
//! this package (`tests/tests/`), its benchmarks (`tests/benches/`) and the
//! tests and benchmarks of `smtp-blocking` and `smtp-mio` (which take this
//! package as a dev-dependency) all use it. Nothing here is published.
//!
//! It depends on the core (`smtp-proto`, with its `rustls` glue) and on
//! test-only crates, never on a transport: a transport's tests would then
//! compile a second copy of the transport, whose types differ from the one
//! under test.
//!
//! In memory, on a virtual clock:
//!
//! - [`pair`]: a client and a server session wired together, driven by the
//!   core's generic `drive` helper; timeouts without sleeping.
//! - [`transcript`]: server sessions played from written transcripts.
//! - [`serve`]: a server session drained by hand, the test answering its
//!   events.
//! - [`fixtures`]: the test client's configuration, paths and envelope
//!   commands from their text.
//! - [`reference`](mod@reference): obvious models of what the library does fast, for
//!   property tests (and, by `#[path]`, the fuzz targets).
//!
//! On loopback sockets:
//!
//! - [`std_server`]: the core's server over `std::net` and Unix sockets —
//!   STARTTLS, implicit TLS, AUTH, LMTP, policies — recording what it
//!   accepted; for real clients and for the transports' clients.
//! - [`scripted`]: hand-written SMTP servers that behave well or badly on
//!   purpose (refusals, closes, TLS that fails, chaos), and one-connection
//!   servers scripted byte by byte.
//! - [`fake_dns`]: a DNS server answering from a table (MX, A, AAAA, TXT,
//!   error codes, truncation, silence, spoofing), UDP and TCP.
//! - [`pki`]: a test CA, the certificates it signs, self-signed ones, and
//!   the server side of a handshake.
//! - [`peers`]: real programs (Postfix's `smtp-sink` and `smtp-source`,
//!   `swaks`, `curl`, Python's `aiosmtpd` and `dkimpy`): finding, starting
//!   and stopping them.
//! - [`net`]: listeners on one port across loopback addresses (MX hosts).
//! - [`sync`]: waiting on another thread without sleeping.
//! - [`mail_server`]: the `mail-server` example as a child process, waited
//!   for through its startup line and killed when dropped.
//! - [`line_client`]: a raw SMTP client, one line and one reply at a time,
//!   for tests that speak to a server byte by byte.
//!
//! Benchmarks:
//!
//! - [`timing`]: alternating timed rounds of ours and a peer, and the
//!   `ratio` line every benchmark prints.
//!
//! The MX scenario table, shared by both transports:
//!
//! - [`mx_scenarios`]: the delivery stories and the verdicts they must end
//!   with.
//! - [`mx_stage`]: one story's DNS and servers, running on loopback.

pub mod examples;
pub mod fake_dns;
pub mod fixtures;
pub mod line_client;
pub mod mail_server;
pub mod mx_scenarios;
pub mod mx_stage;
pub mod net;
pub mod pair;
pub mod peers;
pub mod pki;
pub mod reference;
pub mod scripted;
pub mod serve;
pub mod std_server;
pub mod sync;
pub mod timing;
pub mod transcript;
