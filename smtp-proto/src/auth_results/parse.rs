//! Reading an `Authentication-Results` value (RFC 8601 §2.2).
//!
//! A cursor over the octets; [`Cursor::cfws`] skips white space, line
//! folds and comments (nested, with quoted-pairs) wherever the grammar
//! allows CFWS. Comments nest with a depth counter, not recursion, so a
//! hostile `((((…` costs one pass and no stack. Everything is linear in
//! the value's length.

use super::{AuthenticationResults, MethodResult, Property, is_keyword};

/// Why a value is not an `Authentication-Results` payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No authserv-id at the start.
    #[error("no authserv-id")]
    NoAuthservId,
    /// Something else than what the grammar allows, at this octet offset.
    #[error("unexpected input at offset {0}")]
    Unexpected(usize),
    /// A comment or quoted-string that does not end.
    #[error("unterminated comment or quoted-string")]
    Unterminated,
    /// A version number that does not fit.
    #[error("version number out of range")]
    Version,
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn unexpected(&self) -> ParseError {
        ParseError::Unexpected(self.pos)
    }

    /// Skips CFWS: white space, CR and LF (folds), comments.
    fn cfws(&mut self) -> Result<(), ParseError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => self.comment()?,
                _ => break,
            }
        }
        Ok(())
    }

    fn comment(&mut self) -> Result<(), ParseError> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'\\' => self.pos += 1,
                _ => {}
            }
        }
        Err(ParseError::Unterminated)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ParseError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A run of octets matching `f`.
    fn run(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A keyword, lower-cased.
    fn keyword(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let word = self.run(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !is_keyword(word) {
            return Err(ParseError::Unexpected(start));
        }
        Ok(String::from_utf8_lossy(word).to_ascii_lowercase())
    }

    /// Digits, as a version number.
    fn number(&mut self) -> Result<u32, ParseError> {
        let digits = self.run(|b| b.is_ascii_digit());
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(ParseError::Version)
    }

    /// A quoted-string's content (the opening quote is next).
    fn quoted(&mut self) -> Result<String, ParseError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let Some(q) = self.peek() else { break };
                    // RFC 5322 quoted-pair: a VCHAR or WSP (and UTF-8),
                    // never a line end or another control.
                    if q.is_ascii_control() && q != b'\t' {
                        return Err(self.unexpected());
                    }
                    self.pos += 1;
                    out.push(q);
                }
                // A fold inside: the CRLF goes, the white space stays.
                b'\r' | b'\n' => {}
                // Controls are no qtext: what is read can always be
                // written back without breaking the field.
                _ if b.is_ascii_control() && b != b'\t' => return Err(self.unexpected()),
                _ => out.push(b),
            }
        }
        Err(ParseError::Unterminated)
    }

    /// RFC 8601 `value`: a token or a quoted-string. With `pvalue`, also
    /// `[local-part] "@" domain` (whose atext holds `/`, as deployed
    /// software writes `header.b` unquoted).
    fn value(&mut self, pvalue: bool) -> Result<String, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let start = self.pos;
        // A token excludes the tspecials; a pvalue may also be a
        // `local-part@domain` of atext, dots and `@` (so `=`, `/`, `?`).
        let specials: &[u8] = if pvalue {
            b"()<>,;:\\\"[]"
        } else {
            b"()<>@,;:\\\"/[]?="
        };
        let word = self.run(|b| b.is_ascii_graphic() && !specials.contains(&b) || b >= 0x80);
        if word.is_empty() {
            return Err(ParseError::Unexpected(start));
        }
        Ok(String::from_utf8_lossy(word).into_owned())
    }
}

/// The authserv-id of a field value, read without judging the rest: a
/// field that claims an id is a claim whether or not its results parse
/// (RFC 8601 §5). `None` when not even an id can be read.
pub fn authserv_id(value: &[u8]) -> Option<String> {
    let mut c = Cursor { s: value, pos: 0 };
    c.cfws().ok()?;
    c.value(false).ok()
}

impl AuthenticationResults {
    /// Parses a field's value (what follows `Authentication-Results:`,
    /// folds included).
    ///
    /// # Errors
    ///
    /// See [`ParseError`].
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        let mut c = Cursor { s: value, pos: 0 };
        c.cfws()?;
        let authserv_id = c.value(false).map_err(|_| ParseError::NoAuthservId)?;
        c.cfws()?;
        let version = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
            let v = c.number()?;
            c.cfws()?;
            Some(v)
        } else {
            None
        };
        let mut field = Self {
            authserv_id,
            version,
            results: Vec::new(),
        };
        c.expect(b';')?;
        c.cfws()?;
        // `none`: nothing was checked.
        let save = c.pos;
        if let Ok(word) = c.keyword() {
            c.cfws()?;
            if word == "none" && c.at_end() {
                return Ok(field);
            }
        }
        c.pos = save;
        loop {
            if c.at_end() {
                // A trailing `;` (sloppy, harmless) or no resinfo at all.
                if field.results.is_empty() {
                    return Err(c.unexpected());
                }
                return Ok(field);
            }
            field.results.push(resinfo(&mut c)?);
            c.cfws()?;
            if c.at_end() {
                return Ok(field);
            }
            c.expect(b';')?;
            c.cfws()?;
        }
    }
}

/// `methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]`, at its method.
fn resinfo(c: &mut Cursor<'_>) -> Result<MethodResult, ParseError> {
    let method = c.keyword()?;
    c.cfws()?;
    let version = if c.eat(b'/') {
        c.cfws()?;
        let v = c.number()?;
        c.cfws()?;
        Some(v)
    } else {
        None
    };
    c.expect(b'=')?;
    c.cfws()?;
    let result = c.keyword()?;
    let mut out = MethodResult {
        method,
        version,
        result,
        comment: None,
        reason: None,
        properties: Vec::new(),
    };
    loop {
        c.cfws()?;
        if c.at_end() || c.peek() == Some(b';') {
            return Ok(out);
        }
        let word = c.keyword()?;
        c.cfws()?;
        if word == "reason" && out.reason.is_none() && out.properties.is_empty() && c.eat(b'=') {
            c.cfws()?;
            out.reason = Some(c.value(false)?);
            continue;
        }
        c.expect(b'.')?;
        c.cfws()?;
        let property = c.keyword()?;
        c.cfws()?;
        c.expect(b'=')?;
        c.cfws()?;
        let value = c.value(true)?;
        out.properties.push(Property {
            ptype: word,
            property,
            value,
        });
    }
}
