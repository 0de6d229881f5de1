//! Reference models: the obvious, slow version of something the library
//! does fast or in pieces, for property tests to compare against. The
//! fuzz targets include this file by `#[path]` (they build outside the
//! workspace, without this package), so it uses nothing but `std`.

/// `body` with every line ending made CRLF: CRLF stays, and each bare CR
/// and each bare LF becomes CRLF (what `BareLineEnding::Normalize` sends).
pub fn crlf_normalized(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match (b, body.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            (b'\r' | b'\n', _) => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bare_ending_becomes_crlf_and_crlf_stays() {
        assert_eq!(crlf_normalized(b""), b"");
        assert_eq!(crlf_normalized(b"a\r\nb"), b"a\r\nb");
        assert_eq!(crlf_normalized(b"a\rb\nc"), b"a\r\nb\r\nc");
        assert_eq!(crlf_normalized(b"\n\r"), b"\r\n\r\n");
        assert_eq!(crlf_normalized(b"\r\r\n\n"), b"\r\n\r\n\r\n");
    }
}
