//! The replies an application gives most, ready made: each a reply code of
//! RFC 5321 §4.2.2 with the enhanced status code of RFC 3463 that says the
//! same thing, and the RFC's own words as text (without
//! RFC 5321's "Requested action not taken:" prefixes).
//!
//! They are infallible (`const`, even): the text is a constant without CR,
//! LF or NUL and the enhanced code is of the reply code's class, which a
//! test checks for every one. Other text goes in with
//! [`Reply::with_text`], which keeps both codes:
//!
//! ```
//! use smtp_proto::reply::Reply;
//!
//! assert_eq!(Reply::mailbox_unavailable().to_string(), "550 5.1.1 Mailbox unavailable");
//! let greylisted = Reply::mailbox_busy().with_text("Greylisted, try again in 5 minutes")?;
//! assert_eq!(greylisted.to_string(), "450 4.2.0 Greylisted, try again in 5 minutes");
//! # Ok::<(), smtp_proto::reply::ReplyTextError>(())
//! ```
//!
//! Enhanced codes are meant for a client that greeted with `EHLO` or
//! `LHLO` on a server offering `ENHANCEDSTATUSCODES` (RFC 2034 §3); one
//! that does not know them reads them as the start of the text, which is
//! harmless, so these replies always carry them.

use super::{EnhancedStatusCode as Esc, Lines, Reply, ReplyCode, Text};

/// Defines each constructor and the list the tests walk.
macro_rules! common {
    ($($(#[$doc:meta])* $name:ident = ($code:ident, $esc:ident, $text:literal);)*) => {
        impl Reply<'static> {
            $(
                $(#[$doc])*
                #[doc = concat!("\n\n`", stringify!($code), "` with `", stringify!($esc), "`.")]
                #[must_use]
                pub const fn $name() -> Self {
                    Self {
                        code: ReplyCode::$code,
                        enhanced: Some(Esc::$esc),
                        lines: Lines::One(Text::Borrowed($text)),
                    }
                }
            )*
        }

        /// Every common reply, with its constructor's name.
        #[cfg(test)]
        pub(super) const ALL: &[(&str, fn() -> Reply<'static>)] = &[
            $((stringify!($name), Reply::$name),)*
        ];
    };
}

common! {
    /// `250 2.0.0 Ok`: the requested action was completed (RFC 5321
    /// §4.2.2) — a message taken, a command done.
    ok = (OK, SUCCESS, "Ok");
    /// `421 4.3.2 Service not available, closing transmission channel`
    /// (RFC 5321 §4.2.2; RFC 3463 §3.4: system not accepting network
    /// messages): a connection refused for now (too many, shutting down).
    /// The client tries again later; the connection is closed after it.
    service_not_available = (
        SERVICE_NOT_AVAILABLE,
        NOT_ACCEPTING_MESSAGES,
        "Service not available, closing transmission channel"
    );
    /// `450 4.2.0 Mailbox busy` (RFC 5321
    /// §4.2.2): the mailbox cannot take mail now — busy, or temporarily
    /// blocked by policy (greylisting).
    mailbox_busy = (
        MAILBOX_BUSY,
        MAILBOX_TEMPORARY,
        "Mailbox busy"
    );
    /// `451 4.3.0 Local error in processing`
    /// (RFC 5321 §4.2.2, RFC 3463 §3.4): a temporary failure on this side
    /// (storage, a database); the client keeps the message and retries.
    local_error = (
        LOCAL_ERROR,
        SYSTEM_TEMPORARY,
        "Local error in processing"
    );
    /// `452 4.3.1 Insufficient system storage`
    /// (RFC 5321 §4.2.2; RFC 3463 §3.4: mail system full).
    insufficient_storage = (
        INSUFFICIENT_STORAGE,
        MAIL_SYSTEM_FULL,
        "Insufficient system storage"
    );
    /// `454 4.7.0 Temporary authentication failure` (RFC 4954 §6): the
    /// credentials could not be checked now (the user database is down).
    temporary_authentication_failure = (
        TEMPORARY_FAILURE,
        SECURITY_TEMPORARY,
        "Temporary authentication failure"
    );
    /// `535 5.7.8 Authentication credentials invalid` (RFC 4954 §6).
    authentication_credentials_invalid = (
        AUTH_CREDENTIALS_INVALID,
        AUTH_CREDENTIALS_INVALID,
        "Authentication credentials invalid"
    );
    /// `550 5.1.1 Mailbox unavailable`
    /// (RFC 5321 §4.2.2; RFC 3463 §3.2: bad destination mailbox address):
    /// no such user here, the answer to a `RCPT` for an unknown mailbox.
    mailbox_unavailable = (
        MAILBOX_UNAVAILABLE,
        BAD_DESTINATION_MAILBOX,
        "Mailbox unavailable"
    );
    /// `552 5.2.2 Mailbox full` (RFC 5321
    /// §4.2.2: exceeded storage allocation; RFC 3463 §3.3).
    mailbox_full = (
        EXCEEDED_STORAGE,
        MAILBOX_FULL,
        "Mailbox full"
    );
    /// `552 5.3.4 Message too big for system` (RFC 5321 §4.2.2, RFC 1870;
    /// RFC 3463 §3.4).
    message_too_big = (EXCEEDED_STORAGE, MESSAGE_TOO_BIG, "Message too big for system");
    /// `554 5.7.1 Delivery not authorized, message refused` (RFC 5321
    /// §4.2.2: transaction failed; RFC 3463 §3.8): refused by policy —
    /// relaying denied, a sender or content not accepted here.
    delivery_not_authorized = (
        TRANSACTION_FAILED,
        NOT_AUTHORIZED,
        "Delivery not authorized, message refused"
    );
}

impl<'a> Reply<'a> {
    /// The same codes with one line of other text: a common reply
    /// ([`Reply::mailbox_unavailable`]…) told in the application's words.
    ///
    /// ```
    /// use smtp_proto::reply::Reply;
    ///
    /// let reply = Reply::mailbox_unavailable().with_text("<bob@example.net>: no such user")?;
    /// assert_eq!(reply.to_bytes(), b"550 5.1.1 <bob@example.net>: no such user\r\n");
    /// assert!(Reply::ok().with_text("Ok\r\n250 injected").is_err());
    /// # Ok::<(), smtp_proto::reply::ReplyTextError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Reply::multiline`]: the text holds CR, LF or NUL, or (for a
    /// reply without an enhanced code) starts like one.
    pub fn with_text<'b>(
        self,
        text: impl Into<std::borrow::Cow<'b, str>>,
    ) -> Result<Reply<'b>, super::ReplyTextError> {
        Reply::multiline(self.code, self.enhanced, [text])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_reply_is_valid_and_round_trips() {
        for (name, make) in ALL {
            let reply = make();
            let esc = reply.enhanced_code().unwrap();
            assert_eq!(esc.class(), reply.code().first_digit(), "{name}");
            let text = reply.first_line().to_owned();
            // What a checked constructor builds from the same parts.
            let checked = Reply::with_enhanced(reply.code(), esc, text.clone()).unwrap();
            assert_eq!(reply, checked, "{name}");
            let wire = reply.to_bytes();
            let (parsed, used) = Reply::parse(&wire).unwrap().unwrap();
            assert_eq!(used, wire.len(), "{name}");
            assert_eq!(parsed, reply, "{name}");
            assert!(wire.len() <= super::super::MAX_REPLY_LINE_LEN, "{name}");
            assert_eq!(reply.to_string(), format!("{} {esc} {text}", reply.code()));
        }
    }

    #[test]
    fn common_replies_have_the_rfc_codes() {
        let codes: Vec<String> = ALL
            .iter()
            .map(|(name, make)| {
                let r = make();
                format!("{name} {} {}", r.code(), r.enhanced_code().unwrap())
            })
            .collect();
        assert_eq!(
            codes,
            [
                "ok 250 2.0.0",
                "service_not_available 421 4.3.2",
                "mailbox_busy 450 4.2.0",
                "local_error 451 4.3.0",
                "insufficient_storage 452 4.3.1",
                "temporary_authentication_failure 454 4.7.0",
                "authentication_credentials_invalid 535 5.7.8",
                "mailbox_unavailable 550 5.1.1",
                "mailbox_full 552 5.2.2",
                "message_too_big 552 5.3.4",
                "delivery_not_authorized 554 5.7.1",
            ]
        );
    }

    #[test]
    fn with_text_keeps_the_codes_and_checks_the_text() {
        let reply = Reply::local_error()
            .with_text("Queue file write error")
            .unwrap();
        assert_eq!(reply.to_bytes(), b"451 4.3.0 Queue file write error\r\n");
        let owned = String::from("disk full");
        let reply = Reply::insufficient_storage().with_text(owned).unwrap();
        assert_eq!(reply.to_string(), "452 4.3.1 disk full");
        for bad in ["a\rb", "a\nb", "a\0b"] {
            assert!(matches!(
                Reply::ok().with_text(bad),
                Err(super::super::ReplyTextError::InvalidChar { .. })
            ));
        }
        // Without an enhanced code, text that reads as one is refused.
        let plain = Reply::new(ReplyCode::OK, "Ok").unwrap();
        assert_eq!(
            plain.with_text("2.0.0 sneaky"),
            Err(super::super::ReplyTextError::AmbiguousText)
        );
    }
    #[test]
    fn display_is_the_wire_form_without_crlf() {
        let wires: [&[u8]; 7] = [
            b"250 2.0.0 Ok\r\n",
            b"250\r\n",
            b"250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
            b"550-5.7.1 Relaying denied.\r\n550 5.7.1 See the policy\r\n",
            b"250-2.0.0\r\n250 2.0.0 done\r\n",
            b"250-\r\n250 last\r\n",
            b"421 4.3.2\r\n",
        ];
        for wire in wires {
            let (reply, _) = Reply::parse(wire).unwrap().unwrap();
            let shown = reply.to_string();
            let expected = String::from_utf8(reply.to_bytes()).unwrap();
            let expected = expected.trim_end_matches("\r\n").replace("\r\n", "\n");
            assert_eq!(shown, expected, "{:?}", String::from_utf8_lossy(wire));
        }
        let built = Reply::multiline(
            ReplyCode::MAILBOX_UNAVAILABLE,
            Some(Esc::NOT_AUTHORIZED),
            ["a", "", "c"],
        )
        .unwrap();
        assert_eq!(built.to_string(), "550-5.7.1 a\n550-5.7.1\n550 5.7.1 c");
    }
}
