//! The SMTP side of SASL (RFC 4954 §4): base64 response lines, `*`, and the
//! two mechanisms the server decodes itself, PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login).
//!
//! Only framing lives here. Whether credentials are good is the
//! application's decision; mechanisms other than PLAIN and LOGIN (XOAUTH2,
//! OAUTHBEARER, SCRAM, …) are relayed to it step by step.

use std::ops::Range;

use crate::command::base64;

/// `334 VXNlcm5hbWU6` ("Username:"), LOGIN's first challenge.
pub(crate) const LOGIN_USERNAME: &[u8] = b"Username:";
/// `334 UGFzc3dvcmQ6` ("Password:"), LOGIN's second challenge.
pub(crate) const LOGIN_PASSWORD: &[u8] = b"Password:";

/// One client line of a SASL exchange.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Response {
    /// `*`: the client cancels (RFC 4954 §4; answered `501`).
    Cancel,
    /// The decoded data was appended to the buffer.
    Data,
    /// Not base64 (answered `501 5.5.2`).
    Invalid,
}

/// Decodes a response line (without CRLF), appending the data to `out`.
///
/// ```text
/// response = base64 / "*"      ; RFC 4954 §4, base64 per RFC 4648 §4
/// ```
pub(crate) fn decode_response(line: &[u8], out: &mut Vec<u8>) -> Response {
    if line == b"*" {
        return Response::Cancel;
    }
    // Base64 as in RFC 4648 §4, with or without padding: clients differ.
    match base64::decode_into(line, out) {
        Some(()) => Response::Data,
        None => Response::Invalid,
    }
}

/// The parts of a PLAIN message, as ranges into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plain {
    pub(crate) authzid: Option<Range<usize>>,
    pub(crate) authcid: Range<usize>,
    pub(crate) password: Range<usize>,
}

/// Splits a PLAIN message (RFC 4616 §2):
///
/// ```text
/// message = [authzid] UTF8NUL authcid UTF8NUL passwd
/// authcid = 1*SAFE ; MUST accept up to 255 octets
/// passwd  = 1*SAFE ; MUST accept up to 255 octets
/// ```
///
/// Every part must be UTF-8 without NUL, and the identity and password must
/// not be empty; anything else is malformed.
pub(crate) fn split_plain(message: &[u8]) -> Option<Plain> {
    let first = memchr::memchr(0, message)?;
    let second = first + 1 + memchr::memchr(0, message.get(first + 1..)?)?;
    let authzid = 0..first;
    let authcid = first + 1..second;
    let password = second + 1..message.len();
    for part in [&authzid, &authcid, &password] {
        let bytes = message.get(part.clone())?;
        if bytes.contains(&0) || std::str::from_utf8(bytes).is_err() {
            return None;
        }
    }
    if authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some(Plain {
        authzid: (!authzid.is_empty()).then_some(authzid),
        authcid,
        password,
    })
}

/// Whether a LOGIN user name or password is acceptable: non-empty UTF-8
/// without NUL.
pub(crate) fn valid_login_part(part: &[u8]) -> bool {
    !part.is_empty() && !part.contains(&0) && std::str::from_utf8(part).is_ok()
}

/// The longest challenge (before base64) that fits one line of `max_line`
/// octets: `334 ` + base64 + CRLF.
pub(crate) fn max_challenge(max_line: usize) -> usize {
    max_line.saturating_sub(6) / 4 * 3
}

/// A `str` view of bytes validated by [`split_plain`] or
/// [`valid_login_part`]; empty if they were not (never reached).
pub(crate) fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_known_answers() {
        let m = b"\0tim\0tanstaaftanstaaf";
        let p = split_plain(m).unwrap();
        assert_eq!(p.authzid, None);
        assert_eq!(&m[p.authcid], b"tim");
        assert_eq!(&m[p.password], b"tanstaaftanstaaf");
        let m = b"Ursel\0Kurt\0xipj3plmq";
        let p = split_plain(m).unwrap();
        assert_eq!(&m[p.authzid.unwrap()], b"Ursel");
        for bad in [
            &b""[..],
            b"user",
            b"\0user",
            b"\0\0pass",
            b"\0user\0",
            b"a\0b\0c\0d",
            b"\0us\xffer\0pass",
        ] {
            assert_eq!(split_plain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        assert_eq!(decode_response(b"*", &mut out), Response::Cancel);
        assert_eq!(decode_response(b"dGVzdA==", &mut out), Response::Data);
        assert_eq!(decode_response(b"dGVzdA", &mut out), Response::Data);
        assert_eq!(out, b"testtest");
        assert_eq!(decode_response(b"not base64!", &mut out), Response::Invalid);
        out.clear();
        assert_eq!(decode_response(b"", &mut out), Response::Data);
        assert!(out.is_empty());
    }

    #[test]
    fn challenge_fits_a_line() {
        let n = max_challenge(12288);
        assert!(4 + n.div_ceil(3) * 4 + 2 <= 12288);
    }
}
