//! The tag list both DKIM-Signature fields and key records are written in
//! (RFC 6376 §3.2), and the DKIM quoted-printable encoding of `i=` and
//! `z=` (RFC 6376 §2.11).
//!
//! ```text
//! tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//! tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//! tag-name  =  ALPHA *ALNUMPUNC
//! tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//! tval      =  1*VALCHAR
//! VALCHAR   =  %x21-3A / %x3C-7E      ; "!" to "~" except ";"
//! ALNUMPUNC =  ALPHA / DIGIT / "_"
//! FWS       =  [*WSP CRLF] 1*WSP      ; RFC 5322 §3.2.2
//! ```
//!
//! The parser is strict where the grammar is: a byte outside VALCHAR and
//! whitespace, a CR or LF that is not folding, a tag without `=`, an empty
//! tag-spec in the middle and a tag that appears twice are errors (RFC 6376
//! §3.2: "Tags with duplicate names MUST NOT occur within a single tag-list;
//! if a tag name does occur more than once, the entire tag-list is
//! invalid"). Tag names are case-sensitive. Unknown tags are the caller's
//! to ignore.

use std::collections::BTreeSet;

use thiserror::Error;

/// Why a tag list (RFC 6376 §3.2) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TagListError {
    /// A tag-spec does not start with a letter (an empty tag-spec, `;;`,
    /// is one).
    #[error("tag-spec without a tag name at offset {offset}")]
    InvalidTagName {
        /// Where the name was expected.
        offset: usize,
    },
    /// A tag name is not followed by `=`.
    #[error("tag name without '=' at offset {offset}")]
    MissingEquals {
        /// Where the `=` was expected.
        offset: usize,
    },
    /// A byte that is neither VALCHAR nor folding white space, or a CR or
    /// LF that does not fold a line.
    #[error("byte 0x{byte:02x} not allowed in a tag list at offset {offset}")]
    InvalidByte {
        /// The byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// A tag name appears twice: the whole list is invalid.
    #[error("tag {0:?} appears twice")]
    DuplicateTag(String),
}

/// One `tag=value` of a tag list, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagSpec<'a> {
    /// The tag name.
    pub(crate) name: &'a [u8],
    /// The value without the white space around it (inner folding kept).
    pub(crate) value: &'a [u8],
    /// Offset of the `=` in the input.
    pub(crate) equals: usize,
    /// Offset just past the value's last character.
    pub(crate) value_end: usize,
}

/// Whether `b` is a VALCHAR.
pub(crate) fn is_valchar(b: u8) -> bool {
    matches!(b, 0x21..=0x3a | 0x3c..=0x7e)
}

/// Skips folding white space from `i`: SP, HTAB, and CRLF followed by SP
/// or HTAB. A CR or LF that does not fold is an error.
fn skip_fws(input: &[u8], mut i: usize) -> Result<usize, TagListError> {
    while let Some(&b) = input.get(i) {
        match b {
            b' ' | b'\t' => i += 1,
            b'\r'
                if input.get(i + 1) == Some(&b'\n')
                    && matches!(input.get(i + 2), Some(b' ' | b'\t')) =>
            {
                i += 3;
            }
            b'\r' | b'\n' => return Err(TagListError::InvalidByte { byte: b, offset: i }),
            _ => break,
        }
    }
    Ok(i)
}

/// Tag lists up to this long are checked for duplicates by a scan.
const SHORT_LIST: usize = 32;

/// Parses a tag list. An empty list (only white space, or nothing) is
/// valid here; the caller reports the tags it misses.
pub(crate) fn parse_tag_list(input: &[u8]) -> Result<Vec<TagSpec<'_>>, TagListError> {
    let mut tags: Vec<TagSpec<'_>> = Vec::with_capacity(16);
    // Names seen so far, for duplicates: the list itself while it is short,
    // a set beyond, so that a hostile list of many tags costs O(n log n),
    // not O(n²).
    let mut seen: BTreeSet<&[u8]> = BTreeSet::new();
    let mut i = 0;
    loop {
        i = skip_fws(input, i)?;
        if i == input.len() {
            break;
        }
        let start = i;
        if !input[i].is_ascii_alphabetic() {
            return Err(TagListError::InvalidTagName { offset: i });
        }
        i += 1;
        while input
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            i += 1;
        }
        let name = &input[start..i];
        i = skip_fws(input, i)?;
        if input.get(i) != Some(&b'=') {
            return Err(TagListError::MissingEquals { offset: i });
        }
        let equals = i;
        i = skip_fws(input, i + 1)?;
        let value_start = i;
        // The value runs to the next ';': every byte in it must be a
        // VALCHAR or white space, and every CR or LF must fold a line.
        let segment_end = memchr::memchr(b';', &input[i..]).map_or(input.len(), |p| i + p);
        let segment = &input[i..segment_end];
        if let Some(p) = segment
            .iter()
            .position(|&b| !(is_valchar(b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n')))
        {
            return Err(TagListError::InvalidByte {
                byte: segment[p],
                offset: i + p,
            });
        }
        for p in memchr::memchr2_iter(b'\r', b'\n', segment) {
            let at = i + p;
            let folds = match input[at] {
                b'\r' => skip_fws(input, at).is_ok(),
                // An LF is fine only as the second half of a folding CRLF.
                _ => at > 0 && input[at - 1] == b'\r' && skip_fws(input, at - 1).is_ok(),
            };
            if !folds {
                return Err(TagListError::InvalidByte {
                    byte: input[at],
                    offset: at,
                });
            }
        }
        let value_end = i + segment
            .iter()
            .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |p| p + 1);
        i = segment_end;
        let duplicate = if tags.len() < SHORT_LIST {
            tags.iter().any(|t| t.name == name)
        } else {
            if seen.is_empty() {
                seen.extend(tags.iter().map(|t| t.name));
            }
            !seen.insert(name)
        };
        if duplicate {
            return Err(TagListError::DuplicateTag(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        tags.push(TagSpec {
            name,
            value: &input[value_start..value_end],
            equals,
            value_end,
        });
        if i == input.len() {
            break;
        }
        // The ';' ending this tag-spec.
        i += 1;
    }
    Ok(tags)
}

/// Removes folding white space (SP, HTAB, CR, LF) from a value: base64
/// (`b=`, `bh=`, `p=`) and lists may be folded anywhere between their
/// characters. The tag list parser already refused any other control byte.
pub(crate) fn strip_fws(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    if !value.iter().any(is_ws) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    for piece in value.split(is_ws) {
        out.extend_from_slice(piece);
    }
    std::borrow::Cow::Owned(out)
}

/// Splits a colon-separated list (`h=`, `q=`, key `h=`, `s=`, `t=`) into
/// its items, white space around each removed. Empty items are kept (as
/// empty slices) for the caller to refuse.
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b':').map(trim_fws)
}

/// Trims folding white space at both ends.
pub(crate) fn trim_fws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Decodes DKIM quoted-printable (RFC 6376 §2.11): `=XX` is the octet XX,
/// folding white space is dropped, every other byte stands for itself.
/// `None` for a `=` not followed by two hex digits.
pub(crate) fn decode_dkim_quoted_printable(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        match b {
            b'=' => {
                let hi = hex_value(*value.get(i + 1)?)?;
                let lo = hex_value(*value.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Encodes `value` as DKIM quoted-printable: every byte outside
/// `dkim-safe-char` (`!`–`:`, `<`, `>`–`~`) as `=XX`.
pub(crate) fn encode_dkim_quoted_printable(value: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e) {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The value of a hex digit (either case: RFC 2045 asks for upper case,
/// and accepting lower case on input costs nothing).
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_tag_list(input.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| {
                (
                    String::from_utf8(t.name.to_vec()).unwrap(),
                    String::from_utf8(t.value.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn tag_lists_with_folding_and_trailing_semicolon() {
        assert_eq!(
            pairs(" v=1; a = rsa-sha256 ;\r\n\tb=ab\r\n cd ;"),
            vec![
                ("v".into(), "1".into()),
                ("a".into(), "rsa-sha256".into()),
                ("b".into(), "ab\r\n cd".into()),
            ]
        );
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("p="), vec![("p".into(), String::new())]);
        assert_eq!(pairs("x_1=a b"), vec![("x_1".into(), "a b".into())]);
    }

    #[test]
    fn tag_list_errors() {
        let err = |s: &str| parse_tag_list(s.as_bytes()).unwrap_err();
        assert_eq!(err("v=1;;a=b"), TagListError::InvalidTagName { offset: 4 });
        // A semicolon only ends a tag-spec: a list of none is empty.
        assert_eq!(err(" ;"), TagListError::InvalidTagName { offset: 1 });
        assert_eq!(err("1v=1"), TagListError::InvalidTagName { offset: 0 });
        assert_eq!(err("v 1"), TagListError::MissingEquals { offset: 2 });
        assert_eq!(err("v=1; v=2"), TagListError::DuplicateTag("v".into()));
        assert_eq!(
            err("v=\x01"),
            TagListError::InvalidByte { byte: 1, offset: 2 }
        );
        // A CRLF that does not fold, a bare LF, 8-bit bytes.
        assert!(matches!(err("v=1\r\nx"), TagListError::InvalidByte { .. }));
        assert!(matches!(err("v=1\n a"), TagListError::InvalidByte { .. }));
        assert!(matches!(err("v=\u{e9}"), TagListError::InvalidByte { .. }));
        // Tag names are case-sensitive: V and v are two tags.
        assert_eq!(pairs("V=1; v=1").len(), 2);
    }

    #[test]
    fn quoted_printable_both_ways() {
        assert_eq!(
            decode_dkim_quoted_printable(b"a=3Db=20c").unwrap(),
            b"a=b c"
        );
        assert_eq!(decode_dkim_quoted_printable(b"a=3").as_deref(), None);
        assert_eq!(decode_dkim_quoted_printable(b"a=zz"), None);
        assert_eq!(
            encode_dkim_quoted_printable(b"a;b=c d@e"),
            "a=3Bb=3Dc=20d@e"
        );
    }
}
