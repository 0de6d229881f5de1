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
//!   under [`BareLineEnding::Normalize`] each becomes CRLF in the output,
//!   still without ever ending the data.
//! - [`DotStuffer`] refuses a body with a bare CR or LF (lettre's
//!   RUSTSEC-2021-0069 and RUSTSEC-2026-0561 were missing stuffing after
//!   such breaks), or normalizes it on request, and stuffs a dot after every
//!   line start it emits, so its output can never end the data early.
//! - BDAT chunks ([`BdatChunk`], RFC 3030) are counted octets: nothing inside
//!   them is interpreted, so they cannot be smuggled through.
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
//! # BDAT and bare line endings
//!
//! BDAT data is never altered: the declared size is the contract, and the
//! counted framing leaves nothing to smuggle. With `BODY=BINARYMIME`
//! (RFC 3030 §3) any octet is allowed and nothing is checked. For `7BIT` and
//! `8BITMIME` bodies sent with BDAT the lines must still end in CRLF
//! (RFC 3030 §4; RFC 5322 §2.3), so the session feeds each chunk to a
//! [`LineEndingCheck`] and, under [`BareLineEnding::Reject`], rejects the
//! message after its `LAST` chunk. Under [`BareLineEnding::Normalize`] the
//! counts are informational: the body is kept as sent, and if the message is
//! later relayed with DATA, the relaying [`DotStuffer`] applies its own
//! policy.
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

pub use bdat::{BdatChunk, LineEndingCheck};
pub use stuffer::{DotStuffer, StuffError};
pub use unstuffer::{DotUnstuffer, Unstuffed};

/// What to do with a bare CR or bare LF in message data (RFC 5321 §2.3.8:
/// CR and LF occur only together as CRLF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum BareLineEnding {
    /// Refuse the message. The client's [`DotStuffer`] returns an error; the
    /// server's [`DotUnstuffer`] keeps the bytes as content, counts them and
    /// reads on to the real end of data, after which the session rejects the
    /// message (Postfix answers `550 5.5.2 Error: bare <LF> received`; the
    /// session picks the reply). The default, because a bare line ending is
    /// the raw material of SMTP smuggling and a sender emitting one is
    /// broken.
    #[default]
    Reject,
    /// Turn each bare CR and each bare LF into CRLF. The end of data is
    /// still only a real `CRLF . CRLF` in the input.
    Normalize,
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

    /// Whether the body is larger than `max_octets` (the session then keeps
    /// reading to the end and answers `552` once, RFC 5321 §4.5.3.1.10).
    pub fn exceeds(&self, max_octets: u64) -> bool {
        self.octets > max_octets
    }
}
