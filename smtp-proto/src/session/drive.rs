//! The generic drive helper: one function that drains either session into
//! a [`Transport`] and hands its events to a callback.

use std::time::Instant;

use super::{DriveError, Output, Session, TlsInfo};

/// What [`drive`] needs from the byte pipe under a session.
///
/// `Error` must take a [`DriveError`] too: should the transport report more
/// bytes written than it was offered, or a handshake nobody asked for, the
/// session refuses the call and `drive` returns that refusal as a transport
/// error (`std::io::Error` has the conversion).
pub trait Transport {
    /// What a failed write or TLS start is reported as.
    type Error: From<DriveError>;

    /// Writes a prefix of `bytes`; returns how many were taken. `Ok(0)`
    /// means the pipe is full (a non-blocking socket would block): `drive`
    /// returns [`Drained::WriteBlocked`] and is called again once it is
    /// writable. A blocking transport writes everything.
    fn write(&mut self, bytes: &[u8]) -> Result<usize, Self::Error>;

    /// Starts the TLS handshake the session asked for
    /// ([`Output::StartTls`]). `Ok(Some(info))` when it completed within
    /// the call (a blocking transport, or one that wrapped the connection
    /// in TLS when it accepted or connected it): `drive` reports it with
    /// `handle_tls_established` and goes on. `Ok(None)` when it runs on
    /// (a non-blocking transport): `drive` returns [`Drained::Handshake`],
    /// and the caller reports the completion itself.
    fn start_tls(&mut self) -> Result<Option<TlsInfo>, Self::Error>;
}

/// Why [`drive`] returned.
#[must_use = "the caller must act on why the drive stopped"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drained {
    /// The session waits for input, an application answer or `deadline`
    /// (then call `handle_timeout`). Read at most
    /// [`Session::read_capacity`] bytes and hand them in.
    Wait {
        /// When to call `handle_timeout`; `None`: no deadline.
        deadline: Option<Instant>,
    },
    /// The transport took nothing: call `drive` again once it is writable.
    WriteBlocked,
    /// A TLS handshake is running in the transport: report its end with
    /// `handle_tls_established` (or its failure with `handle_eof`), then
    /// call `drive` again.
    Handshake,
    /// The session is over ([`Session::is_closed`]); see
    /// [`Session::close_reason`]. Close the connection.
    Closed,
}

/// What one output asks for, without borrowing the session.
enum Step {
    Wrote(usize),
    StartTls,
    Wait(Option<Instant>),
}

/// Drains `session` until it waits: writes every transmit to `transport`
/// (reporting what it took with `advance_transmit`), starts TLS when asked,
/// and hands every event to `on_event`.
///
/// `on_event` cannot touch the session (a server event borrows the
/// session's input buffer): note the answers the application gives and
/// apply them after `drive` returns, then call `drive` again. A session
/// with a question open reads nothing more, so nothing is lost meanwhile;
/// this is how the mio server's inbox works too.
///
/// # Errors
///
/// The transport's errors, and a [`DriveError`] (converted) if the
/// transport misreported a write or a handshake. The session is left as it
/// was at the failing step; a transport whose connection broke reports
/// `handle_eof` and drives again to reach the end.
pub fn drive<S, T>(
    session: &mut S,
    now: Instant,
    transport: &mut T,
    mut on_event: impl FnMut(S::Event<'_>),
) -> Result<Drained, T::Error>
where
    S: Session + ?Sized,
    T: Transport,
{
    loop {
        // The output borrows the session; `Step` carries what is needed
        // past that borrow.
        let step = match session.poll(now) {
            Output::Event(event) => {
                on_event(event);
                continue;
            }
            Output::Transmit(bytes) => Step::Wrote(transport.write(bytes)?),
            Output::StartTls => Step::StartTls,
            Output::Wait { deadline } => Step::Wait(deadline),
        };
        match step {
            Step::Wrote(n) => {
                // Also with 0: the client starts its write timer then.
                session.advance_transmit(now, n)?;
                if n == 0 {
                    return Ok(Drained::WriteBlocked);
                }
            }
            Step::StartTls => match transport.start_tls()? {
                Some(info) => session.handle_tls_established(now, info)?,
                None => return Ok(Drained::Handshake),
            },
            Step::Wait(_) if session.is_closed() => return Ok(Drained::Closed),
            Step::Wait(deadline) => return Ok(Drained::Wait { deadline }),
        }
    }
}
