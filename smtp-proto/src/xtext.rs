//! The `xtext` encoding of DSN parameters (RFC 3461 §4) and the
//! `utf-8-addr-xtext` / `utf-8-addr-unitext` forms of RFC 6533 §3.
//!
//! ESMTP parameter values may not contain a space, an `=` or a control
//! character (RFC 5321 §4.1.2 `esmtp-value`), yet `ENVID`, `ORCPT` and the
//! `AUTH=` parameter of MAIL carry arbitrary text. RFC 3461 solves this with
//! `xtext`: every octet outside `!`..`~`, and `+` and `=` themselves, is written
//! as `+XX` (two hex digits). RFC 6533 adds a second escape, `\x{HEX}` naming a
//! Unicode code point, for internationalized addresses in `ORCPT=utf-8;…`.
//!
//! [`XText`] holds the **decoded** value, so comparing two values compares
//! what they mean, not how a peer chose to escape them; encoding is canonical
//! (upper-case hex, escaping only what must be escaped) and infallible.
//!
//! Decoding is strict about structure (a `+` must be followed by two hex
//! digits, no octet outside `!`..`~`) but accepts lower-case hex digits, which
//! RFC 3461 does not allow and some clients send; the decoded value is the
//! same either way. A decoded value must be UTF-8: `+FF` on its own is an
//! error, not a lossy replacement.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// Why an `xtext` (or RFC 6533 `utf-8-addr-*`) value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XTextError {
    /// The value is empty; every use of xtext in SMTP (`ENVID`, `ORCPT`,
    /// `AUTH=`) is an `esmtp-value`, which has at least one character.
    #[error("empty xtext value")]
    Empty,
    /// A character that the encoding does not allow unescaped.
    #[error("invalid character {ch:?} at offset {offset} in xtext")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset in the encoded text.
        offset: usize,
    },
    /// A `+` not followed by two hex digits, or a malformed `\x{…}` escape.
    #[error("invalid escape at offset {offset} in xtext")]
    InvalidEscape {
        /// Byte offset of the escape in the encoded text.
        offset: usize,
    },
    /// The decoded octets are not UTF-8.
    #[error("decoded xtext is not UTF-8")]
    InvalidUtf8,
}

/// A decoded `xtext` value (RFC 3461 §4).
///
/// ```text
/// xtext   = *( xchar / hexchar )
/// xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
///           except for "+" and "=".
/// hexchar = ASCII "+" immediately followed by two upper case
///           hexadecimal digits
/// ```
///
/// The value is any non-empty string; [`XText::encode`] escapes whatever
/// needs it, so no value can put a space, CR or LF on the wire. Note that the
/// *decoded* value may therefore contain any character (`+0D` decodes to CR):
/// treat it as data.
///
/// ```
/// use smtp_proto::xtext::XText;
/// let v = XText::parse("a+2Bb+3Dc").unwrap();
/// assert_eq!(v.as_str(), "a+b=c");
/// assert_eq!(v.to_string(), "a+2Bb+3Dc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XText<'a>(Cow<'a, str>);

impl<'a> XText<'a> {
    /// Wraps a decoded value. Fails only if it is empty.
    pub fn new(value: impl Into<Cow<'a, str>>) -> Result<Self, XTextError> {
        let value = value.into();
        if value.is_empty() {
            return Err(XTextError::Empty);
        }
        Ok(Self(value))
    }

    /// Decodes the wire form, borrowing when it contains no `+XX` escape.
    pub fn parse(wire: &'a str) -> Result<Self, XTextError> {
        decode_xtext(wire).map(Self)
    }

    /// The decoded value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends the canonical wire form (upper-case hex escapes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_xtext_bytes(&self.0, out);
    }

    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> XText<'static> {
        XText(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for XText<'_> {
    /// Writes the wire (encoded) form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(self.0.len());
        encode_xtext_bytes(&self.0, &mut buf);
        // The encoder only emits ASCII bytes (xchars and `+XX`).
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// `xchar`: `!`..`~` except `+` and `=` (RFC 3461 §4).
const fn is_xchar(b: u8) -> bool {
    matches!(b, 33..=126) && b != b'+' && b != b'='
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `xtext`, borrowing when there is nothing to unescape.
pub(crate) fn decode_xtext(wire: &str) -> Result<Cow<'_, str>, XTextError> {
    if wire.is_empty() {
        return Err(XTextError::Empty);
    }
    let bytes = wire.as_bytes();
    if let Some(pos) = bytes.iter().position(|&b| !is_xchar(b)) {
        if bytes.get(pos) != Some(&b'+') {
            return Err(invalid_char(wire, pos));
        }
    } else {
        return Ok(Cow::Borrowed(wire));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'+' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(XTextError::InvalidEscape { offset: i }),
            }
            i += 3;
        } else if is_xchar(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(invalid_char(wire, i));
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| XTextError::InvalidUtf8)
}

fn invalid_char(wire: &str, offset: usize) -> XTextError {
    let ch = wire
        .get(offset..)
        .and_then(|s| s.chars().next())
        .unwrap_or('\u{FFFD}');
    XTextError::InvalidChar { ch, offset }
}

/// Appends the xtext encoding of `value`.
pub(crate) fn encode_xtext_bytes(value: &str, out: &mut Vec<u8>) {
    out.reserve(value.len());
    for &b in value.as_bytes() {
        if is_xchar(b) {
            out.push(b);
        } else {
            // `b >> 4` and `b & 0x0f` are at most 15: valid table indexes.
            out.extend_from_slice(&[
                b'+',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 0x0f)],
            ]);
        }
    }
}

/// `QCHAR` of RFC 6533 §3: printable ASCII except `+`, `=` and `\`.
const fn is_qchar(c: char) -> bool {
    matches!(c, '\x21'..='\x2a' | '\x2c'..='\x3c' | '\x3e'..='\x5b' | '\x5d'..='\x7e')
}

/// Decodes `utf-8-addr-xtext` or `utf-8-addr-unitext` (RFC 6533 §3).
///
/// ```text
/// utf-8-addr-xtext   = 1*(QCHAR / EmbeddedUnicodeChar)
/// utf-8-addr-unitext = 1*(QUCHAR / EmbeddedUnicodeChar)
/// QCHAR    = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e
/// QUCHAR   = QCHAR / UTF8-2 / UTF8-3 / UTF8-4
/// EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"
/// HEXPOINT = 2 to 6 upper-case hex digits naming a code point
/// ```
///
/// Both forms are accepted (the first is a subset of the second); raw
/// non-ASCII characters are what the caller reports as needing SMTPUTF8.
/// HEXPOINT is read leniently: 1 to 6 hex digits of either case naming any
/// Unicode scalar value other than NUL. Control characters are refused after
/// decoding, since an address never contains one.
pub fn decode_utf8_addr(wire: &str) -> Result<Cow<'_, str>, XTextError> {
    if wire.is_empty() {
        return Err(XTextError::Empty);
    }
    let check = |c: char, offset: usize| -> Result<(), XTextError> {
        if is_qchar(c) || (!c.is_ascii() && !c.is_control()) {
            Ok(())
        } else {
            Err(XTextError::InvalidChar { ch: c, offset })
        }
    };
    if !wire.contains('\\') {
        for (i, c) in wire.char_indices() {
            check(c, i)?;
        }
        return Ok(Cow::Borrowed(wire));
    }
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    let mut base = 0;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let after = rest
                .get(2..)
                .filter(|_| rest.as_bytes().get(1) == Some(&b'x'));
            let Some(after) = after.and_then(|a| a.strip_prefix('{')) else {
                return Err(XTextError::InvalidEscape { offset: base });
            };
            let Some(close) = after.find('}') else {
                return Err(XTextError::InvalidEscape { offset: base });
            };
            let hex = after.get(..close).unwrap_or_default();
            let point = (1..=6)
                .contains(&hex.len())
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(char::from_u32)
                .filter(|&ch| !ch.is_control());
            let Some(ch) = point else {
                return Err(XTextError::InvalidEscape { offset: base });
            };
            out.push(ch);
            let used = 3 + close + 1;
            rest = rest.get(used..).unwrap_or_default();
            base += used;
        } else {
            check(c, base)?;
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
            base += c.len_utf8();
        }
    }
    Ok(Cow::Owned(out))
}

/// Appends `value` as `utf-8-addr-xtext` (RFC 6533 §3): pure ASCII, so it may
/// be sent whether or not the server offers SMTPUTF8. Every character that
/// is not a `QCHAR` becomes `\x{HEX}` (at least two upper-case hex digits).
pub fn encode_utf8_addr_xtext(value: &str, out: &mut Vec<u8>) {
    encode_utf8_addr(value, out, false);
}

/// Appends `value` as `utf-8-addr-unitext` (RFC 6533 §3): non-ASCII
/// characters are written raw, so it may only be sent when SMTPUTF8 is in use.
pub fn encode_utf8_addr_unitext(value: &str, out: &mut Vec<u8>) {
    encode_utf8_addr(value, out, true);
}

fn encode_utf8_addr(value: &str, out: &mut Vec<u8>, raw_non_ascii: bool) {
    let mut tmp = [0u8; 4];
    for c in value.chars() {
        if is_qchar(c) || (raw_non_ascii && !c.is_ascii() && !c.is_control()) {
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        } else {
            out.extend_from_slice(b"\\x{");
            let v = u32::from(c);
            let digits = if v <= 0xff {
                2
            } else {
                (32 - v.leading_zeros()).div_ceil(4)
            };
            for shift in (0..digits).rev() {
                let nibble = (v >> (shift * 4)) & 0xf;
                // `nibble` is at most 15, a valid index into the 16-entry table.
                out.push(HEX_UPPER[nibble as usize]);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_known_answers() {
        let table: &[(&str, &str)] = &[
            ("abc", "abc"),
            ("a+2Bb", "a+b"),
            ("a+3Db", "a=b"),
            ("+20", " "),
            ("x+0D+0Ay", "x\r\ny"),
            ("+C3+A9", "é"),
        ];
        for (wire, value) in table {
            let x = XText::parse(wire).unwrap();
            assert_eq!(x.as_str(), *value, "{wire}");
            let mut out = Vec::new();
            x.encode(&mut out);
            assert_eq!(out, wire.as_bytes());
            assert_eq!(x.to_string(), *wire);
        }
        assert!(matches!(XText::parse("abc").unwrap().0, Cow::Borrowed(_)));
        // Lower-case hex is accepted and re-encoded upper-case.
        assert_eq!(XText::parse("a+2bb").unwrap().to_string(), "a+2Bb");
    }

    #[test]
    fn xtext_errors() {
        assert_eq!(XText::parse(""), Err(XTextError::Empty));
        assert_eq!(XText::new(""), Err(XTextError::Empty));
        assert_eq!(
            XText::parse("a=b"),
            Err(XTextError::InvalidChar { ch: '=', offset: 1 })
        );
        assert_eq!(
            XText::parse("a b"),
            Err(XTextError::InvalidChar { ch: ' ', offset: 1 })
        );
        assert_eq!(
            XText::parse("a+2"),
            Err(XTextError::InvalidEscape { offset: 1 })
        );
        assert_eq!(
            XText::parse("+G0"),
            Err(XTextError::InvalidEscape { offset: 0 })
        );
        assert_eq!(XText::parse("+FF"), Err(XTextError::InvalidUtf8));
        assert!(matches!(
            XText::parse("é"),
            Err(XTextError::InvalidChar {
                ch: 'é', offset: 0
            })
        ));
    }

    #[test]
    fn utf8_addr_known_answers() {
        // RFC 6533 style: non-ASCII and the three reserved characters escaped.
        let table: &[(&str, &str)] = &[
            ("user@example.com", "user@example.com"),
            ("\\x{E9}t\\x{E9}@example.com", "été@example.com"),
            ("a\\x{2B}b@x", "a+b@x"),
            ("a\\x{3D}b\\x{5C}@x", "a=b\\@x"),
            ("\\x{4F60}\\x{597D}@x", "你好@x"),
            ("\\x{1F600}@x", "\u{1F600}@x"),
        ];
        for (wire, value) in table {
            let v = decode_utf8_addr(wire).unwrap();
            assert_eq!(v, *value);
            let mut out = Vec::new();
            encode_utf8_addr_xtext(value, &mut out);
            assert_eq!(out, wire.as_bytes());
        }
        // unitext: raw UTF-8 accepted and produced.
        assert_eq!(decode_utf8_addr("été@x").unwrap(), "été@x");
        let mut out = Vec::new();
        encode_utf8_addr_unitext("été+@x", &mut out);
        assert_eq!(out, "été\\x{2B}@x".as_bytes());
    }

    #[test]
    fn utf8_addr_errors() {
        assert_eq!(decode_utf8_addr(""), Err(XTextError::Empty));
        assert!(decode_utf8_addr("a+b").is_err());
        assert!(decode_utf8_addr("a b").is_err());
        assert!(decode_utf8_addr("\\x{}").is_err());
        assert!(decode_utf8_addr("\\x{0}").is_err());
        assert!(decode_utf8_addr("\\x{D800}").is_err());
        assert!(decode_utf8_addr("\\x{1100000}").is_err());
        assert!(decode_utf8_addr("\\x{41").is_err());
        assert!(decode_utf8_addr("\\y{41}").is_err());
        assert!(decode_utf8_addr("\\x{0D}").is_err());
        assert!(decode_utf8_addr("a\\").is_err());
    }

    proptest::proptest! {
        #[test]
        fn xtext_round_trip(s in "\\PC{1,30}|.{1,30}") {
            let x = XText::new(s).unwrap();
            let mut out = Vec::new();
            x.encode(&mut out);
            proptest::prop_assert!(out.iter().all(|&b| (33..=126).contains(&b) && b != b'='));
            let wire = String::from_utf8(out).unwrap();
            proptest::prop_assert_eq!(XText::parse(&wire).unwrap(), x);
        }

        #[test]
        fn utf8_addr_round_trip(s in "\\PC{1,30}") {
            let mut out = Vec::new();
            encode_utf8_addr_xtext(&s, &mut out);
            proptest::prop_assert!(out.is_ascii());
            let wire = String::from_utf8(out).unwrap();
            proptest::prop_assert_eq!(decode_utf8_addr(&wire).unwrap(), s.as_str());
            let mut out = Vec::new();
            encode_utf8_addr_unitext(&s, &mut out);
            let wire = String::from_utf8(out).unwrap();
            proptest::prop_assert_eq!(decode_utf8_addr(&wire).unwrap(), s.as_str());
        }

        #[test]
        fn decoders_never_panic(s in ".{0,40}|[+\\\\x{}0-9A-Fa-f]{0,20}") {
            let _ = XText::parse(&s);
            let _ = decode_utf8_addr(&s);
        }
    }
}
