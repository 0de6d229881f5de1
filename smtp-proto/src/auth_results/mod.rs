//! The `Authentication-Results` header field (RFC 8601): how a receiving
//! server tells the mail's readers and filters what it checked and what it
//! found.
//!
//! One field holds the *authserv-id* (the host name of the service that did
//! the checks) and one *resinfo* per check: a method (`dkim`, `spf`,
//! `dmarc`, `iprev`, `auth`…), its result keyword, an optional reason, and
//! properties `ptype.property=value` naming what was checked
//! (`header.d=example.com`, `smtp.mailfrom=example.net`,
//! `policy.iprev=192.0.2.200`):
//!
//! ```text
//! Authentication-Results: mx.example.org;
//!         dkim=pass header.d=example.com header.s=sel header.b=AbCdEfGh;
//!         spf=pass smtp.mailfrom=example.com
//! ```
//!
//! The types are generic, one shape for every method: an
//! [`AuthenticationResults`] is an authserv-id and a list of
//! [`MethodResult`]s, each a method, a result, and [`Property`]s. The DKIM
//! verifier gives its results in this shape
//! (`DkimResult::method_result`, feature `dkim`); other methods add
//! theirs the same way.
//!
//! # Writing
//!
//! [`AuthenticationResults::to_field`] writes the whole field, folded to
//! lines of at most [`MAX_LINE`] (78) octets where white space allows
//! (RFC 5322 §2.1.1), one resinfo per line. Values that are not RFC 2045
//! tokens (nor, for properties, `[local-part] "@" domain`) are written as
//! quoted-strings. Nothing can inject a line break: the builders refuse
//! control characters.
//!
//! # Reading
//!
//! [`AuthenticationResults::parse`] reads a field's value by RFC 8601 §2.2's
//! grammar, comments and folding anywhere CFWS may appear. Keywords are
//! case-insensitive and kept in lower case. It is lenient where deployed
//! software is sloppy and nothing is lost by it: a property value may hold
//! `/` unquoted (`header.b=gfT/i2HB`), and a trailing `;` is ignored.
//!
//! # Removing forged fields
//!
//! A receiver must remove (or rename) fields that claim its own
//! authserv-id but arrived with the message: a sender could forge a
//! `dkim=pass` in the receiver's name (RFC 8601 §5). [`ForgedFilter`] does
//! that as the message streams, holding at most one field's first octets
//! ([`ForgedFilter::HOLD_LIMIT`]) while it decides; [`authserv_id`] reads
//! just the id of a field, whether or not the rest is well formed — a
//! malformed field in our name is forged all the same.

mod filter;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

pub use filter::ForgedFilter;
pub use parse::{ParseError, authserv_id};

/// The field name.
pub const FIELD_NAME: &str = "Authentication-Results";

/// The line length folding aims for (RFC 5322 §2.1.1: lines SHOULD be at
/// most 78 characters). A single element longer than that (a long quoted
/// reason) stays whole on its own line, within the 998 octets that are a
/// MUST.
pub const MAX_LINE: usize = 78;

/// Why a value cannot go into the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A method, result, ptype or property name that is not an RFC 5321
    /// `Ldh-str` keyword (letters, digits, inner hyphens).
    #[error("{0:?} is not a keyword")]
    NotKeyword(String),
    /// A value holding a control character (CR, LF, NUL…), which would
    /// break the field.
    #[error("control character in {0:?}")]
    ControlCharacter(String),
    /// An empty authserv-id or property value.
    #[error("empty value")]
    Empty,
}

/// One `ptype.property=value` of a resinfo (RFC 8601 §2.3): `ptype` is
/// `smtp`, `header`, `body` or `policy`; the property names what was
/// checked (`mailfrom`, `d`, `from`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    ptype: String,
    property: String,
    value: String,
}

impl Property {
    /// A property. `ptype` and `property` must be keywords (kept in lower
    /// case); `value` must be non-empty, without control characters.
    ///
    /// # Errors
    ///
    /// See [`BuildError`].
    pub fn new(ptype: &str, property: &str, value: &str) -> Result<Self, BuildError> {
        Ok(Self {
            ptype: keyword(ptype)?,
            property: keyword(property)?,
            value: text(value)?,
        })
    }

    /// The ptype (`smtp`, `header`, `body`, `policy`), lower case.
    pub fn ptype(&self) -> &str {
        &self.ptype
    }

    /// The property (`mailfrom`, `d`, `i`…), lower case.
    pub fn property(&self) -> &str {
        &self.property
    }

    /// The value, unquoted.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// One check and its outcome: a resinfo (RFC 8601 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    method: String,
    version: Option<u32>,
    result: String,
    comment: Option<String>,
    reason: Option<String>,
    properties: Vec<Property>,
}

impl MethodResult {
    /// `method=result`, both keywords (`dkim`, `pass`), kept in lower case.
    ///
    /// # Errors
    ///
    /// [`BuildError::NotKeyword`].
    pub fn new(method: &str, result: &str) -> Result<Self, BuildError> {
        Ok(Self {
            method: keyword(method)?,
            version: None,
            result: keyword(result)?,
            comment: None,
            reason: None,
            properties: Vec::new(),
        })
    }

    /// A comment written after the result (`dkim=pass (2048-bit key)`),
    /// for people; parsers ignore it.
    ///
    /// # Errors
    ///
    /// [`BuildError::ControlCharacter`].
    pub fn with_comment(mut self, comment: &str) -> Result<Self, BuildError> {
        self.comment = Some(text(comment)?);
        Ok(self)
    }

    /// `reason="…"`: why the result is what it is (RFC 8601 §2.2).
    ///
    /// # Errors
    ///
    /// [`BuildError::ControlCharacter`], or an empty reason.
    pub fn with_reason(mut self, reason: &str) -> Result<Self, BuildError> {
        self.reason = Some(text(reason)?);
        Ok(self)
    }

    /// Adds `ptype.property=value`.
    ///
    /// # Errors
    ///
    /// See [`Property::new`].
    pub fn with_property(
        mut self,
        ptype: &str,
        property: &str,
        value: &str,
    ) -> Result<Self, BuildError> {
        self.properties.push(Property::new(ptype, property, value)?);
        Ok(self)
    }

    /// The method, lower case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The method's version (`dkim/1`), when written.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The result keyword, lower case.
    pub fn result(&self) -> &str {
        &self.result
    }

    /// The comment after the result, when built with one (parsing drops
    /// comments).
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The reason, unquoted.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The properties, in order.
    pub fn properties(&self) -> &[Property] {
        &self.properties
    }

    /// The first value of `ptype.property` (compared without regard to
    /// case).
    pub fn property(&self, ptype: &str, property: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| {
                p.ptype.eq_ignore_ascii_case(ptype) && p.property.eq_ignore_ascii_case(property)
            })
            .map(Property::value)
    }

    /// The resinfo's elements as written, each preceded by one space in an
    /// unfolded field; the folder may break a line before any of them.
    fn elements(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(3 + self.properties.len());
        match self.version {
            Some(v) => out.push(format!("{}/{v}={}", self.method, self.result)),
            None => out.push(format!("{}={}", self.method, self.result)),
        }
        if let Some(comment) = &self.comment {
            out.push(comment_text(comment));
        }
        if let Some(reason) = &self.reason {
            out.push(format!("reason={}", value_text(reason)));
        }
        for p in &self.properties {
            out.push(format!(
                "{}.{}={}",
                p.ptype,
                p.property,
                pvalue_text(&p.value)
            ));
        }
        out
    }
}

impl fmt::Display for MethodResult {
    /// The resinfo unfolded: `dkim=pass header.d=example.com`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.elements().join(" "))
    }
}

/// A whole `Authentication-Results` field: who checked, and what came of
/// each check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationResults {
    authserv_id: String,
    version: Option<u32>,
    results: Vec<MethodResult>,
}

impl AuthenticationResults {
    /// A field of `authserv_id` (this server's host name, RFC 8601 §2.5)
    /// with no result yet; written as `none` until one is pushed.
    ///
    /// # Errors
    ///
    /// An empty id, or one with control characters.
    pub fn new(authserv_id: &str) -> Result<Self, BuildError> {
        Ok(Self {
            authserv_id: text(authserv_id)?,
            version: None,
            results: Vec::new(),
        })
    }

    /// Adds a result.
    pub fn push(&mut self, result: MethodResult) {
        self.results.push(result);
    }

    /// Adds a result (builder style).
    pub fn with(mut self, result: MethodResult) -> Self {
        self.push(result);
        self
    }

    /// The authserv-id.
    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// The field's version (`example.org 1; none`), when written. Only
    /// version 1 exists.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The results, in order; empty for `none`.
    pub fn results(&self) -> &[MethodResult] {
        &self.results
    }

    /// The results of one method (`dkim`: one per signature).
    pub fn of_method<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a MethodResult> + 'a {
        self.results
            .iter()
            .filter(move |r| r.method.eq_ignore_ascii_case(method))
    }

    /// The field's value unfolded, without the name: `mx.example.org;
    /// dkim=pass header.d=example.com`.
    pub fn value(&self) -> String {
        let mut out = value_text(&self.authserv_id);
        if let Some(v) = self.version {
            out.push_str(&format!(" {v}"));
        }
        if self.results.is_empty() {
            out.push_str("; none");
        }
        for r in &self.results {
            out.push_str("; ");
            out.push_str(&r.to_string());
        }
        out
    }

    /// The whole field, `Authentication-Results: …` folded to lines of at
    /// most [`MAX_LINE`] octets and ending with CRLF: each resinfo begins a
    /// line (indented with a tab), and a resinfo too long for one line
    /// breaks between its elements.
    pub fn to_field(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str(FIELD_NAME);
        out.push(':');
        let mut line = out.len();
        let mut id = value_text(&self.authserv_id);
        if let Some(v) = self.version {
            id.push_str(&format!(" {v}"));
        }
        push_element(&mut out, &mut line, &id, false);
        if self.results.is_empty() {
            out.push(';');
            push_element(&mut out, &mut line, "none", false);
        }
        for r in &self.results {
            out.push(';');
            line += 1;
            for (i, element) in r.elements().iter().enumerate() {
                push_element(&mut out, &mut line, element, i == 0);
            }
        }
        out.push_str("\r\n");
        out
    }
}

impl fmt::Display for AuthenticationResults {
    /// The value unfolded ([`AuthenticationResults::value`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value())
    }
}

/// Appends ` element`, or a fold and `\telement` when it would pass
/// [`MAX_LINE`] (or `new_line` asks for one); `line` is the current
/// line's length.
fn push_element(out: &mut String, line: &mut usize, element: &str, new_line: bool) {
    if new_line || *line + 1 + element.len() > MAX_LINE {
        out.push_str("\r\n\t");
        // A tab counts as one octet.
        *line = 1;
    } else {
        out.push(' ');
        *line += 1;
    }
    out.push_str(element);
    *line += element.len();
}

/// An RFC 5321 `Ldh-str` (RFC 8601's `Keyword`), lower-cased.
fn keyword(s: &str) -> Result<String, BuildError> {
    if is_keyword(s.as_bytes()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(BuildError::NotKeyword(s.to_owned()))
    }
}

/// `Let-dig [ *(Let-dig / "-") Let-dig ]`.
pub(crate) fn is_keyword(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && s[0] != b'-'
        && s[s.len() - 1] != b'-'
}

/// Text for a value, reason or comment: non-empty, no control character.
fn text(s: &str) -> Result<String, BuildError> {
    if s.is_empty() {
        return Err(BuildError::Empty);
    }
    if s.chars().any(char::is_control) {
        return Err(BuildError::ControlCharacter(s.to_owned()));
    }
    Ok(s.to_owned())
}

/// An RFC 2045 token: printable ASCII without white space or tspecials.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(b))
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// A dot-atom (RFC 5322 §3.2.3).
fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(is_atext))
}

/// RFC 8601 `value`: the token as is, else a quoted-string.
fn value_text(s: &str) -> String {
    if is_token(s.as_bytes()) {
        s.to_owned()
    } else {
        quoted(s)
    }
}

/// RFC 8601 `pvalue`: a token, `[local-part] "@" domain-name` (as
/// `header.i=@example.com`), or a quoted-string.
fn pvalue_text(s: &str) -> String {
    if is_token(s.as_bytes()) {
        return s.to_owned();
    }
    if let Some((local, domain)) = s.rsplit_once('@')
        && (local.is_empty() || is_dot_atom(local))
        && is_dot_atom(domain)
    {
        return s.to_owned();
    }
    quoted(s)
}

/// A quoted-string (RFC 5322 §3.2.4); the text has no control character
/// (the builders checked).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A comment (RFC 5322 §3.2.2), its parentheses and backslashes escaped.
fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('(');
    for c in s.chars() {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(')');
    out
}
