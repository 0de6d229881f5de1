//! Message data: dot-stuffing (DATA, client), dot-unstuffing with a strict
//! end of data (DATA, server), and counted chunks (BDAT, both sides).
//!
//! # Why the end of data is so strict
//!
//! After `DATA` the message is a sequence of CRLF-terminated lines ended by a
//! line holding a single dot: `CRLF . CRLF` (RFC 5321 §4.1.1.4). A line that
//! starts with a dot is sent with one more dot in front (dot-stuffing,
//! RFC 5321 §4.5.2) so that no message line can look like the end.
//!
//! SMTP smuggling (SEC Consult, December 2023; CVE-2023-51764 Postfix,
//! CVE-2023-51765 Sendmail, CVE-2023-51766 Exim, CVE-2024-27305 aiosmtpd)
//! combines an outbound server that does not see `\n.\r\n` as the end with an
//! inbound server that does: the rest of the "message" then runs as commands
//! on the inbound server, with the outbound server's SPF/DKIM standing.
//! Therefore, here:
//!
//! - [`DotUnstuffer`] ends a message **only** at `CRLF . CRLF` where the CRLF
//!   before the dot is a real line end (or the dot is the first byte of the
//!   body). `\n.\n`, `\r\n.\n`, `\n.\r\n`, `\r.\r`, `\r\n.\r\r\n`,
//!   `\r\n\0.\r\n` … are message content. A CR is stripped only as part of
//!   one CRLF, never "all CRs before LF" (Postfix's legacy bug).
//! - Bare CR, bare LF and NUL are counted in [`BodyStats`]. Under the default
//!   [`BareLineEnding::Reject`] the session keeps reading to the real end and
//!   then rejects the message (Postfix `smtpd_forbid_bare_newline = reject`);
//!   under [`BareLineEnding::Normalize`] each bare line ending becomes CRLF
//!   and each NUL is dropped in the output, still without ever ending the
//!   data; [`BareLineEnding::Accept`] keeps them.
//! - [`DotStuffer`] refuses a body with a bare CR, a bare LF or a NUL
//!   (lettre's RUSTSEC-2021-0069 and RUSTSEC-2026-0561 were missing
//!   stuffing after such breaks), or normalizes it on request, and stuffs a
//!   dot after every line start it emits, so its output can never end the
//!   data early — not even for a hop that strips NULs.
//! - BDAT chunks ([`BdatChunk`], RFC 3030) are counted octets: nothing inside
//!   them ends the chunk, so they cannot be smuggled through *here*; but a
//!   message received with BDAT may be relayed with DATA, so the same
//!   policy applies to their content (below).
//!
//! # Driving them
//!
//! A server session in DATA mode hands its input buffer to the unstuffer,
//! passes the body on, drains, and goes back to the line framer once the
//! end is reached (what follows the terminator is the next pipelined
//! command):
//!
//! ```
//! use smtp_proto::data::{BareLineEnding, DotUnstuffer};
//!
//! let mut unstuffer = DotUnstuffer::new(BareLineEnding::Reject);
//! let mut buf: Vec<u8> = Vec::new();
//! let mut body = Vec::new();
//! for read in [&b"Subject: hi\r\n\r\n..dot\r\nbare\n.\r"[..], b"\nstill body\r\n.\r\nQUIT\r\n"] {
//!     buf.extend_from_slice(read);
//!     let r = unstuffer.unstuff_in_place(&mut buf);
//!     body.extend_from_slice(&buf[..r.body_len]); // or hand it to the application
//!     buf.drain(..r.consumed);
//!     if r.end {
//!         break;
//!     }
//! }
//! assert!(unstuffer.is_done());
//! assert_eq!(body, b"Subject: hi\r\n\r\n.dot\r\nbare\n\r\nstill body\r\n");
//! // `\n.\r\n` did not end the message, but it is remembered:
//! assert!(unstuffer.stats().has_bare_line_ending()); // -> 550 at the real end
//! assert_eq!(buf, b"QUIT\r\n"); // back to the line framer
//! ```
//!
//! A client session stuffs each chunk the application writes and finishes
//! with the terminator:
//!
//! ```
//! use smtp_proto::data::{BareLineEnding, DotStuffer, StuffError};
//!
//! let mut stuffer = DotStuffer::new(BareLineEnding::Reject);
//! let mut wire = Vec::new();
//! stuffer.stuff(b"Subject: hi\r\n\r\n.dot\r", &mut wire)?;
//! stuffer.stuff(b"\nend", &mut wire)?;
//! stuffer.finish(&mut wire)?;
//! assert_eq!(wire, b"Subject: hi\r\n\r\n..dot\r\nend\r\n.\r\n");
//! # Ok::<(), StuffError>(())
//! ```
//!
//! # Lines after a bare line ending
//!
//! A bare CR or LF is not a line end, so the byte after it is not at a line
//! start for the end-of-data rule. It is a "weak" line start for
//! unstuffing: a dot there is removed, because a sender that treats bare LF
//! as a line end (lettre ≥ 0.11.24, most MUAs) stuffed it. The end of data
//! can never be found there, under either policy.
//!
//! # BDAT, bare line endings and NUL
//!
//! With `BODY=BINARYMIME` (RFC 3030 §3) any octet is allowed and nothing is
//! checked or changed. For `7BIT` and `8BITMIME` bodies sent with BDAT the
//! lines must still end in CRLF and hold no NUL (RFC 3030 §4; RFC 5322
//! §2.3; RFC 2045 §2.7–2.8), so the session feeds each chunk to a
//! [`LineEndingCheck`] and applies the same policy as to DATA: under
//! [`BareLineEnding::Reject`] it reads every chunk and rejects the message
//! after its `LAST` chunk (one reply at the real end, nothing stored);
//! under [`BareLineEnding::Normalize`] a [`LineEndingNormalizer`] rewrites
//! the chunks as they are handed out; under [`BareLineEnding::Accept`] they
//! are kept as sent.
//!
//! # Size
//!
//! [`BodyStats::octets`] counts the body as delivered, so the session can
//! compare it with its size limit as data arrives. An oversized message
//! keeps its framing (the unstuffer runs to the end of data) and gets one
//! `552` at its end (RFC 5321 §4.5.3.1.10, RFC 1870 §6.3).

mod bdat;
mod stuffer;
mod unstuffer;

pub use bdat::{BdatChunk, LineEndingCheck, LineEndingNormalizer};
pub use stuffer::{DotStuffer, StuffError};
pub use unstuffer::{DotUnstuffer, Unstuffed};

/// The smuggling policy: what to do with a bare CR, a bare LF or a NUL in
/// message data (RFC 5321 §2.3.8: CR and LF occur only together as CRLF;
/// RFC 2045 §2.7–2.8: 7bit and 8bit data hold no NUL).
///
/// A NUL belongs here because hops strip it: `CRLF NUL . CRLF` or `CRLF .
/// NUL CRLF` is content to this server but an end of data to a downstream
/// hop that drops NULs before looking (Sendmail's and several filters'
/// habit), which makes it the same raw material for smuggling as a bare
/// line ending. The policy covers DATA and the BDAT chunks of a `7BIT` or
/// `8BITMIME` body alike; a `BODY=BINARYMIME` body (RFC 3030 §3) may hold
/// any octet and is never checked or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum BareLineEnding {
    /// Refuse the message. The client's [`DotStuffer`] returns an error; the
    /// server's [`DotUnstuffer`] keeps the bytes as content, counts them and
    /// reads on to the real end of data, after which the session rejects the
    /// message (Postfix answers `550 5.5.2 Error: bare <LF> received`; the
    /// session picks the reply). The default, because a bare line ending or
    /// a NUL is the raw material of SMTP smuggling and a sender emitting one
    /// is broken.
    #[default]
    Reject,
    /// Turn each bare CR and each bare LF into CRLF and drop each NUL. The
    /// end of data is still only a real `CRLF . CRLF` in the input, and the
    /// stored message then holds nothing a later hop could read
    /// differently.
    Normalize,
    /// Receive: keep bare CR, bare LF and NUL as they arrived (the end of
    /// data is still only a real `CRLF . CRLF`), for mail that must arrive
    /// unchanged from legacy senders, at the risk of relaying smuggling
    /// material to a hop that reads it differently. Send: the same as
    /// [`BareLineEnding::Normalize`] — a sender never puts a bare line
    /// ending or a NUL on the wire.
    Accept,
}

impl BareLineEnding {
    /// Whether the body is rewritten (bare line endings to CRLF, NULs
    /// dropped). The sending side normalizes under `Accept` too.
    pub(crate) fn normalizes_received(self) -> bool {
        self == Self::Normalize
    }
}

/// What a body contained, counted as it streamed past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub struct BodyStats {
    /// Octets of body produced (after unstuffing and any normalization; for
    /// BDAT, the chunk octets).
    pub octets: u64,
    /// CRs not followed by a LF.
    pub bare_cr: u64,
    /// LFs not preceded by a CR.
    pub bare_lf: u64,
    /// NUL octets (not allowed in 7bit or 8bit data, RFC 2045 §2.7–2.8,
    /// which 7BIT and 8BITMIME bodies are).
    pub nul: u64,
}

impl BodyStats {
    /// Whether a bare CR or bare LF was seen.
    pub fn has_bare_line_ending(&self) -> bool {
        self.bare_cr > 0 || self.bare_lf > 0
    }

    /// Whether a NUL was seen.
    pub fn has_nul(&self) -> bool {
        self.nul > 0
    }

    /// Whether the body is larger than `max_octets` (the session then keeps
    /// reading to the end and answers `552` once, RFC 5321 §4.5.3.1.10).
    pub fn exceeds(&self, max_octets: u64) -> bool {
        self.octets > max_octets
    }
}
