//! The SMTP server: N mio event loops driving `smtp_proto` server sessions.
//!
//! Each loop runs on its own thread with its own handles of the listeners
//! (one socket per address, bound exclusively, see [`listener`]),
//! a slab of connections, a set of deadlines and an inbox for late
//! answers ([`completion`]). A connection never leaves its loop, so nothing
//! per-connection is shared or locked.
//!
//! A program names everything of the server half through this module: the
//! types a server needs are re-exported here ([`Server`], [`Options`],
//! [`Backend`], [`Session`], [`ConnectionInfo`], [`Responder`]); the
//! ready-made backends are in [`store`].
//!
//! ## One pass over a connection
//!
//! Sockets are registered once for both readiness kinds, edge-triggered; the
//! loop remembers for each connection whether its socket is still readable
//! and writable (until a read or write hits `WouldBlock`). A pass over a
//! connection:
//!
//! 1. reads while the socket is readable and the session wants input
//!    (`Server::read_capacity`, so every byte read goes into the session —
//!    the transport keeps none), or while a TLS handshake is running;
//! 2. polls the session until it waits: events go to the [`Session`]
//!    callbacks, transmits go to the socket (`advance_transmit` with what
//!    it took), `StartTls` switches the transport;
//! 3. applies answers given inline by the callbacks, and goes round again
//!    while anything moved.
//!
//! Reading and writing happen in the same pass, so a client that pipelines
//! a large batch without reading its replies cannot deadlock the server:
//! when the session's reply buffer is full it stops taking input, the loop
//! stops reading, and TCP flow control pushes back on the client. No
//! reregistration is needed for that: edge-triggered readiness plus the
//! two flags say everything a changed interest set would. A connection that
//! keeps the socket readable gets a bounded number of reads per pass and is
//! then queued behind the others, so one fast sender cannot starve a loop.
//!
//! ## TLS
//!
//! STARTTLS and implicit TLS take one path: the session's
//! `Output::StartTls` switches the transport to TLS, the handshake runs in
//! the read step, and its end is reported with `handle_tls_established`.
//! An implicit-TLS listener configures its sessions with
//! [`TlsMode::Implicit`](smtp_proto::TlsMode::Implicit), so that request is their first output and the
//! session's own handshake timer bounds it. The application's [`Session`]
//! of such a connection is made once the handshake is done, so that
//! [`Backend::connect`] sees the TLS parameters; a refusal then becomes
//! the greeting of a fresh session, which asks for the handshake again and
//! is told at once that it is done.
//!
//! ## Time
//!
//! After each pass the connection's next deadline (the session's timers,
//! the TLS handshake's included) goes into the loop's
//! [`Deadlines`](crate::timers::Deadlines); the loop sleeps until the
//! earliest one and fires only the expired ones.
//!
//! ## Shutdown
//!
//! [`ShutdownHandle::shutdown`] (Ctrl-C in the example) makes every loop stop
//! accepting, close idle connections (greeted, or between transactions)
//! with `421 4.3.2`, and let connections inside a mail transaction (from
//! an accepted `MAIL` to the end of its message) or waiting for a
//! handler's answer finish it until [`Options::shutdown_grace`] has
//! passed; the rest then get their `421`.
//! The loops return when their last connection is gone.

//!
//! ## Layout
//!
//! The public modules are the application's side: [`backend`] (what a
//! server program implements), [`completion`] (how it answers, now or
//! later), [`listener`] (sockets and connection limits),
//! [`authentication`] (DKIM verification on a thread of its own, results
//! for `Authentication-Results`), and the ready-made [`store`] backend
//! with its [`maildir`] and [`trace`] parts.
//! The loop itself is private and split along its seams, each module
//! importing only those below it:
//!
//! ```text
//! bind         Server, Running: bind every listener, one thread per loop
//!   │
//! event_loop   one loop: poll, accept, readiness, late answers, deadlines
//!   │
//! connection   one connection and one pass over it; the lingering close
//!   │
//!   ├── tls_switch  when a connection's sessions are made; a finished handshake
//!   ├── shutdown    ShutdownHandle and each loop's grace period
//!   │
//! dispatch     session events to the handler; answers back, in order
//! options      Options, and what the loops share
//!   │
//! backend, completion, listener   (store → maildir → trace → backend → completion)
//! ```
//!
//! The shared modules of the crate root ([`transport`](crate::transport),
//! [`timers`](crate::timers)) sit below all of it; nothing here imports the
//! [`delivery`](crate::delivery) half, nor it this one.

mod bind;
mod connection;
mod dispatch;
mod event_loop;
mod options;
mod proxy;
mod shutdown;
mod tls_switch;

pub mod auth_checks;
pub mod authentication;
pub mod backend;
pub mod completion;
pub mod listener;
pub mod maildir;
pub mod store;
pub mod trace;

pub use backend::{Backend, ConnectionId, ConnectionInfo, Session};
pub use bind::{Running, Server};
pub use completion::Responder;
pub use options::Options;
pub use shutdown::ShutdownHandle;
