//! When a connection's sessions are made, and what a finished TLS handshake
//! changes.
//!
//! A plaintext connection gets both sessions at once: the protocol session
//! and the application's, made by [`Backend::connect`] (or its refusal,
//! which becomes the greeting). An implicit-TLS connection gets only the
//! protocol session, configured with [`TlsMode::Implicit`] so that its
//! first output asks for the handshake; the application's session is made
//! once the handshake is done, so that `connect` sees the TLS parameters.
//! A refusal at that point becomes the greeting of a fresh session, which
//! asks for the handshake again and is told at once that it is done.
//!
//! After STARTTLS the handler hears of TLS through
//! [`Session::tls_established`], in event order; the handler of an
//! implicit-TLS connection had the parameters in `connect` already and
//! hears nothing more.

use std::time::Instant;

use smtp_proto::server as proto;
use smtp_proto::{Output, TlsInfo, TlsMode};

use super::backend::{Backend, ConnectionInfo, Session};
use super::dispatch::{Active, Handler};
use super::options::Shared;

/// Creates the protocol session of a new connection, and its application
/// session unless it waits for an implicit-TLS handshake.
pub(super) fn start_session<B: Backend>(
    backend: &B,
    shared: &Shared,
    info: &ConnectionInfo,
    implicit: bool,
    now: Instant,
) -> Active<B::Session> {
    let mut config = shared.options.session.clone();
    if implicit {
        config.tls = TlsMode::Implicit;
    }
    if config.tls == TlsMode::Implicit {
        return Active {
            server: proto::Server::new(config, now),
            handler: Handler::AwaitingTls,
        };
    }
    let handler = match backend.connect(info) {
        Ok(session) => Handler::Ready {
            session,
            tls_reported: false,
        },
        Err(reply) => {
            config.greeting = Some(reply);
            Handler::Refused
        }
    };
    Active {
        server: proto::Server::new(config, now),
        handler,
    }
}

/// A TLS handshake completed: tell the session, and make the application's
/// session of an implicit-TLS connection (`connection` describes it; its
/// `tls` is filled in here). Whether the connection goes on: `false` ends
/// it.
pub(super) fn tls_established<B: Backend>(
    backend: &B,
    shared: &Shared,
    active: &mut Active<B::Session>,
    mut connection: ConnectionInfo,
    info: TlsInfo,
    now: Instant,
) -> bool {
    tracing::debug!(protocol = ?info.protocol, cipher = ?info.cipher, "TLS established");
    if matches!(active.handler, Handler::AwaitingTls) {
        connection.tls = Some(info.clone());
        match backend.connect(&connection) {
            Ok(session) => {
                active.handler = Handler::Ready {
                    session,
                    tls_reported: true,
                };
            }
            Err(reply) => {
                // The refusal is the greeting, which the session queues
                // after the handshake: a fresh implicit-TLS session with it,
                // whose handshake request is answered at once.
                let mut config = shared.options.session.clone();
                config.tls = TlsMode::Implicit;
                config.greeting = Some(reply);
                let mut server = proto::Server::new(config, now);
                if !matches!(server.poll(now), Output::StartTls) {
                    return false;
                }
                *active = Active {
                    server,
                    handler: Handler::Refused,
                };
            }
        }
    }
    // A handshake the session did not ask for cannot happen (or the
    // session gave up on it meanwhile): end the connection rather than
    // guess.
    active.server.handle_tls_established(now, info).is_ok()
}

/// The session reported `TlsEstablished`: the handler hears of it with the
/// session's TLS parameters, unless its `connect` had them already.
pub(super) fn report_tls_established<S: Session>(active: &mut Active<S>) {
    if let (
        Handler::Ready {
            session,
            tls_reported,
        },
        Some(info),
    ) = (&mut active.handler, active.server.tls_info())
    {
        if *tls_reported {
            *tls_reported = false;
        } else {
            session.tls_established(info);
        }
    }
}
