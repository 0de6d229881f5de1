//! The RFC 5322 `From:` domain, the identifier DMARC protects (RFC 7489
//! §3.1, §6.6.1).
//!
//! A strict minimal parser rather than a general message parser (such as
//! mail-parser): a general parser is lenient by design — it recovers
//! from malformed fields and picks one address where there are several —
//! and DMARC needs the opposite, a defined outcome for every ambiguous
//! `From:`, since an attacker chooses which reading a reader's client
//! shows. It reads only the header section, field names and values as
//! RFC 5322 §2.2 and §3.4 write them: display names, quoted strings,
//! nested comments, angle addresses and groups.
//!
//! Outcomes ([`FromError`]) — the caller reports each as DMARC
//! `permerror` and, when enforcing, may refuse the message (RFC 7489
//! §6.6.1 leaves the choice to the receiver):
//!
//! | message | outcome |
//! |---|---|
//! | no `From:` field | [`FromError::NoFrom`] |
//! | two or more `From:` fields | [`FromError::MultipleFields`] |
//! | one field, several addresses | [`FromError::MultipleAddresses`], unless they all have the same domain (then that domain, as RFC 7489 §6.6.1 allows) |
//! | an empty list, an address without `@`, a domain literal, a malformed field | [`FromError::Malformed`] |

use thiserror::Error;

use crate::dns::Name;

/// The most nesting of comments followed (RFC 5322 sets none; a deeper
/// field is malformed).
const MAX_COMMENT_DEPTH: usize = 16;

/// Why a message has no usable `From:` domain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FromError {
    /// The header section has no `From:` field.
    #[error("no From: field")]
    NoFrom,
    /// More than one `From:` field.
    #[error("{0} From: fields")]
    MultipleFields(usize),
    /// One field with addresses in more than one domain.
    #[error("From: holds addresses in several domains")]
    MultipleAddresses,
    /// The field does not hold a usable address.
    #[error("malformed From: field: {0}")]
    Malformed(&'static str),
}

/// The `From:` fields' values of a header section (unfolded, without the
/// name and colon). `header` is the header section, with or without the
/// empty line that ends it; reading stops at the empty line.
fn from_fields(header: &[u8]) -> Vec<Vec<u8>> {
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut in_from = false;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if in_from && let Some(last) = fields.last_mut() {
                last.push(b' ');
                last.extend_from_slice(line);
            }
            continue;
        }
        in_from = false;
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            let name = name.strip_suffix(b" ").unwrap_or(name);
            if name.eq_ignore_ascii_case(b"from") {
                in_from = true;
                fields.push(line[colon + 1..].to_vec());
            }
        }
    }
    fields
}

/// Removes comments and splits the address list on top-level commas;
/// returns the addr-specs (the part in `<>` when there is one).
fn addresses(value: &[u8]) -> Result<Vec<Vec<u8>>, FromError> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut angle: Option<Vec<u8>> = None;
    let mut depth = 0usize;
    let mut quoted = false;
    let mut in_angle = false;
    let mut seen_angle = false;
    let mut i = 0;
    let mut finish = |current: &mut Vec<u8>, angle: &mut Option<Vec<u8>>, seen: &mut bool| {
        let addr = match angle.take() {
            Some(a) => a,
            None => std::mem::take(current),
        };
        current.clear();
        *seen = false;
        let addr: Vec<u8> = addr.trim_ascii().to_vec();
        if !addr.is_empty() {
            out.push(addr);
        }
    };
    while i < value.len() {
        let b = value[i];
        if depth > 0 {
            match b {
                b'\\' => i += 1,
                b'(' => {
                    depth += 1;
                    if depth > MAX_COMMENT_DEPTH {
                        return Err(FromError::Malformed("comments nested too deeply"));
                    }
                }
                b')' => depth -= 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        if quoted {
            match b {
                b'\\' => {
                    current.push(b);
                    if let Some(&next) = value.get(i + 1) {
                        current.push(next);
                    }
                    i += 1;
                }
                b'"' => {
                    quoted = false;
                    current.push(b);
                }
                _ => current.push(b),
            }
            i += 1;
            continue;
        }
        match b {
            b'(' => depth = 1,
            b'"' => {
                quoted = true;
                current.push(b);
            }
            b'<' if !in_angle => {
                if seen_angle {
                    return Err(FromError::Malformed("two angle addresses in one mailbox"));
                }
                in_angle = true;
                current.clear();
            }
            b'>' if in_angle => {
                in_angle = false;
                seen_angle = true;
                angle = Some(std::mem::take(&mut current));
            }
            // A group: "name:" starts it, ";" ends it; the display name
            // before ":" is no address.
            b':' if !in_angle => current.clear(),
            b',' | b';' if !in_angle => finish(&mut current, &mut angle, &mut seen_angle),
            _ => {
                if seen_angle && !b.is_ascii_whitespace() {
                    return Err(FromError::Malformed("text after an angle address"));
                }
                current.push(b);
            }
        }
        i += 1;
    }
    if depth > 0 || quoted || in_angle {
        return Err(FromError::Malformed(
            "unterminated comment, quote or angle address",
        ));
    }
    finish(&mut current, &mut angle, &mut seen_angle);
    Ok(out)
}

/// The domain of an addr-spec: after the last `@` outside quotes.
fn domain_of(addr: &[u8]) -> Result<Name, FromError> {
    let mut quoted = false;
    let mut at = None;
    let mut i = 0;
    while i < addr.len() {
        match addr[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'@' if !quoted => at = Some(i),
            _ => {}
        }
        i += 1;
    }
    let at = at.ok_or(FromError::Malformed("address without @"))?;
    if at == 0 {
        return Err(FromError::Malformed("address without local-part"));
    }
    let domain = addr[at + 1..].trim_ascii();
    if domain.first() == Some(&b'[') {
        return Err(FromError::Malformed("domain literal"));
    }
    let domain = std::str::from_utf8(domain)
        .ok()
        .filter(|d| d.is_ascii())
        .ok_or(FromError::Malformed("non-ASCII domain (not an A-label)"))?;
    let name = Name::parse(domain).map_err(|_| FromError::Malformed("invalid domain"))?;
    name.to_host_name()
        .map_err(|_| FromError::Malformed("invalid domain"))?;
    Ok(name)
}

/// The `From:` domain of a message, read from its header section (see
/// the module documentation for every outcome).
pub fn from_domain(header: &[u8]) -> Result<Name, FromError> {
    let fields = from_fields(header);
    let value = match fields.as_slice() {
        [] => return Err(FromError::NoFrom),
        [one] => one,
        many => return Err(FromError::MultipleFields(many.len())),
    };
    let addrs = addresses(value)?;
    let mut domain: Option<Name> = None;
    for addr in &addrs {
        let d = domain_of(addr)?;
        match &domain {
            None => domain = Some(d),
            Some(first) if *first == d => {}
            Some(_) => return Err(FromError::MultipleAddresses),
        }
    }
    domain.ok_or(FromError::Malformed("no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(h: &str) -> Result<String, FromError> {
        from_domain(h.as_bytes()).map(|n| n.as_str().to_owned())
    }

    #[test]
    fn forms() {
        assert_eq!(d("From: a@Example.COM\r\n\r\n").unwrap(), "example.com");
        assert_eq!(
            d("Subject: x\r\nfrom : \"Doe, John\" <j@example.org>\r\n").unwrap(),
            "example.org"
        );
        assert_eq!(
            d("From: (c (nested) @evil.example) j@example.org (x@y.example)\r\n").unwrap(),
            "example.org"
        );
        assert_eq!(
            d("From: \"a@evil.example\" <b@example.org>\r\n").unwrap(),
            "example.org"
        );
        assert_eq!(d("From: J\r\n <j@example.org>\r\n").unwrap(), "example.org");
        assert_eq!(
            d("From: Team: a@example.org, b@example.org;\r\n").unwrap(),
            "example.org"
        );
        assert_eq!(
            d("From: a@example.org, B <b@EXAMPLE.org>\r\n").unwrap(),
            "example.org"
        );
        assert_eq!(
            d("From: \"x\\\"@evil\" <a@example.org>\n\nFrom: body@evil.example\n").unwrap(),
            "example.org"
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            d("Subject: x\r\n\r\nFrom: a@example.org\r\n"),
            Err(FromError::NoFrom)
        );
        assert_eq!(
            d("From: a@example.org\r\nFrom: b@example.org\r\n"),
            Err(FromError::MultipleFields(2))
        );
        assert_eq!(
            d("From: a@example.org, b@evil.example\r\n"),
            Err(FromError::MultipleAddresses)
        );
        for bad in [
            "From: \r\n",
            "From: nobody\r\n",
            "From: a@[192.0.2.1]\r\n",
            "From: <a@example.org\r\n",
            "From: (open a@example.org\r\n",
            "From: <a@example.org> <b@evil.example>\r\n",
            "From: <a@example.org> b@evil.example\r\n",
            "From: a@exa mple.org\r\n",
            "From: @example.org\r\n",
            "From: a@example..org\r\n",
        ] {
            assert!(
                matches!(d(bad), Err(FromError::Malformed(_))),
                "{bad}: {:?}",
                d(bad)
            );
        }
    }
}
