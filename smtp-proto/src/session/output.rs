//! What a session asks of its transport: the one output type of both sides.
//!
//! Every session in this crate — [`client`](crate::client) and
//! [`server`](crate::server) alike — follows one rule, borrowed from str0m:
//! **after any input or application intent, call `poll(now)` until it
//! returns [`Output::Wait`]**. Each call hands out exactly one thing to do:
//!
//! - [`Output::Event`]: something the application must see (a command to
//!   answer, a reply, a body chunk, the end of the session).
//! - [`Output::Transmit`]: bytes to write to the peer. Write what the socket
//!   takes and report it with `advance_transmit(now, n)`; the rest stays
//!   pending and is offered again. Everything ready at once is offered in one
//!   slice, so a pipelined batch of replies (or commands) leaves in one write.
//! - [`Output::StartTls`]: all plaintext has been written and every byte
//!   received after the STARTTLS exchange has been dealt with (discarded and
//!   counted, or refused): the transport must run the TLS handshake now and
//!   then call `handle_tls_established`. Under implicit TLS
//!   ([`TlsMode::Implicit`](super::TlsMode::Implicit)) it is the session's
//!   first output.
//! - [`Output::Wait`]: nothing more until new input, a write becoming
//!   possible, or the deadline passes (then call `handle_timeout(now)`).
//!
//! Events and `StartTls` are handed out once each: an event not acted on is
//! gone, so a transport hands every one on before it polls again. Transmits
//! and waits are not consumed: polling again without new input or a write
//! returns the same pending bytes (until `advance_transmit`) or the same
//! deadline, so a transport that stopped at a full socket simply asks again
//! when it is writable.

use std::time::Instant;

/// One thing a session needs its transport or application to do.
#[must_use = "a session's output must be acted on: drain poll() until Wait"]
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<'a, E> {
    /// An event for the application.
    Event(E),
    /// Bytes to write to the peer; report what was written with
    /// `advance_transmit(now, n)`.
    Transmit(&'a [u8]),
    /// Start the TLS handshake now (STARTTLS was accepted, or the session
    /// starts under implicit TLS). Plaintext output is fully flushed and no
    /// plaintext input will be used after this point.
    StartTls,
    /// Nothing to do until more input arrives, the socket becomes writable,
    /// or `deadline` passes (`None`: no deadline).
    Wait {
        /// When to call `handle_timeout`.
        deadline: Option<Instant>,
    },
}

/// What the transport learned from a completed TLS handshake.
///
/// The session uses it for policy (AUTH only over TLS) and hands it to the
/// application (trace headers, logging). All fields are optional because a
/// transport may not know them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The negotiated protocol version, e.g. `TLSv1.3`.
    pub protocol: Option<String>,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
}

impl TlsInfo {
    /// Builds the info from what a TLS library reports.
    pub fn new(
        protocol: Option<String>,
        cipher: Option<String>,
        server_name: Option<String>,
    ) -> Self {
        Self {
            protocol,
            cipher,
            server_name,
        }
    }
}
