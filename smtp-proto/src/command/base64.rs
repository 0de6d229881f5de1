//! Base64 (RFC 4648 §4) for SASL data: checked without decoding, decoded
//! into a buffer the caller owns, encoded for the client.
//!
//! Padding is optional on input (clients differ; RFC 4954 examples use it,
//! some clients drop it), but never longer than canonical, and the unused
//! low bits of the last character must be zero, so every byte string has
//! one encoding up to padding: two encodings are equal exactly when they are
//! equal without their `=`.

/// The value of each base64 character; 0xFF for any other byte.
static DECODE: [u8; 256] = {
    let alphabet = ALPHABET;
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `text` without its padding, if it is valid base64 (see the module docs).
pub(crate) fn unpadded(text: &[u8]) -> Option<&[u8]> {
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let pad = text.len() - body.len();
    let last = match (body.len() % 4, pad) {
        (0, 0) => {
            return body
                .iter()
                .all(|&c| DECODE[usize::from(c)] != 0xFF)
                .then_some(body);
        }
        // Two characters for one byte: the last one's low 4 bits are unused.
        (2, _) => 0x0F,
        // Three characters for two bytes: the low 2 bits are unused.
        (3, 0 | 1) => 0x03,
        _ => return None,
    };
    let valid = body.iter().all(|&c| DECODE[usize::from(c)] != 0xFF);
    let end = body.last().map_or(0xFF, |&c| DECODE[usize::from(c)]);
    (valid && end & last == 0).then_some(body)
}

/// Decodes `text`, appending the bytes to `out`; `None` (and `out`
/// unchanged) if it is not valid base64.
pub(crate) fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let body = unpadded(text)?;
    out.reserve(body.len() / 4 * 3 + 2);
    let mut quads = body.chunks_exact(4);
    for q in &mut quads {
        let n = q
            .iter()
            .fold(0u32, |n, &c| n << 6 | u32::from(DECODE[usize::from(c)]));
        let [_, a, b, c] = n.to_be_bytes();
        out.extend_from_slice(&[a, b, c]);
    }
    let rest = quads.remainder();
    let n = rest
        .iter()
        .fold(0u32, |n, &c| n << 6 | u32::from(DECODE[usize::from(c)]));
    match rest.len() {
        2 => out.push((n >> 4) as u8),
        3 => {
            let [_, _, a, b] = (n >> 2).to_be_bytes();
            out.extend_from_slice(&[a, b]);
        }
        _ => {}
    }
    Some(())
}

/// Appends the padded encoding of `data` to `out`.
pub(crate) fn encode_into(data: &[u8], out: &mut String) {
    out.reserve(data.len().div_ceil(3) * 4);
    let char_at = |n: u32, shift: u32| char::from(ALPHABET[(n >> shift & 0x3F) as usize]);
    let mut triples = data.chunks_exact(3);
    for t in &mut triples {
        let n = u32::from(t[0]) << 16 | u32::from(t[1]) << 8 | u32::from(t[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char_at(n, shift));
        }
    }
    match *triples.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(char_at(n, 18));
            out.push(char_at(n, 12));
            out.push_str("==");
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.push(char_at(n, 18));
            out.push(char_at(n, 12));
            out.push(char_at(n, 6));
            out.push('=');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use proptest::prelude::*;

    use super::*;

    /// The reference: the base64 crate, padding optional.
    const REFERENCE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    fn decode(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode_into(text, &mut out).map(|()| out)
    }

    #[test]
    fn known_answers() {
        assert_eq!(decode(b""), Some(vec![]));
        assert_eq!(decode(b"QQ=="), Some(b"A".to_vec()));
        assert_eq!(decode(b"QQ="), Some(b"A".to_vec()));
        assert_eq!(decode(b"QQ"), Some(b"A".to_vec()));
        assert_eq!(decode(b"QUI="), Some(b"AB".to_vec()));
        assert_eq!(decode(b"QUJD"), Some(b"ABC".to_vec()));
        for bad in [
            &b"Q"[..],
            b"QR==",
            b"QUJ=",
            b"QUJD=",
            b"QUI==",
            b"====",
            b"Q===",
            b"QU I",
            b"QQ==QQ==",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let mut s = String::new();
        encode_into(b"\0tim\0tanstaaftanstaaf", &mut s);
        assert_eq!(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    proptest! {
        #[test]
        fn decode_matches_reference(text in "[A-Za-z0-9+/=]{0,12}") {
            prop_assert_eq!(decode(text.as_bytes()), REFERENCE.decode(&text).ok());
        }

        #[test]
        fn encode_matches_reference(data in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut s = String::new();
            encode_into(&data, &mut s);
            prop_assert_eq!(&s, &REFERENCE.encode(&data));
            prop_assert_eq!(decode(s.as_bytes()), Some(data));
        }
    }
}
