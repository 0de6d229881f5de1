//! DMARC records (RFC 7489 §6.3, §6.4; `np` of RFC 9091), parsed strictly.
//!
//! ```text
//! dmarc-record = dmarc-version dmarc-sep *(dmarc-tag dmarc-sep)
//! dmarc-version = "v" *WSP "=" *WSP "DMARC1"
//! dmarc-sep     = *WSP ";" *WSP
//! tags: p, sp, np (none / quarantine / reject), adkim, aspf (r / s),
//!       pct (0-100), rua, ruf (comma-separated DMARC URIs with an optional
//!       "!" size limit), fo (colon-separated 0 / 1 / d / s), rf, ri
//! ```

use std::fmt;

use thiserror::Error;

/// Why a `v=DMARC1` TXT record is not a valid DMARC record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not start with `v=DMARC1` (not a DMARC record).
    #[error("not a DMARC record (no leading v=DMARC1)")]
    NotDmarc,
    /// Not 7-bit ASCII.
    #[error("non-ASCII byte in DMARC record")]
    NonAscii,
    /// A tag without `=`, or with an invalid name.
    #[error("malformed tag {0:?}")]
    MalformedTag(String),
    /// A tag given twice.
    #[error("tag {0}= appears more than once")]
    DuplicateTag(String),
    /// A known tag with a value outside its grammar.
    #[error("invalid value for {tag}=: {value:?}")]
    InvalidValue {
        /// The tag.
        tag: &'static str,
        /// The value as written.
        value: String,
    },
    /// No `p=` and no valid `rua=` (RFC 7489 §6.6.3 makes a record with
    /// `rua=` but no `p=` a `p=none` record).
    #[error("no p= tag")]
    MissingPolicy,
}

/// A requested policy (RFC 7489 §6.3 `p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// Monitor only.
    None,
    /// Treat failing mail as suspicious.
    Quarantine,
    /// Refuse failing mail.
    Reject,
}

impl Policy {
    /// The policy's name, as written in records and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "quarantine" => Self::Quarantine,
            "reject" => Self::Reject,
            _ => return None,
        })
    }

    /// One step weaker (RFC 7489 §6.6.4: what a message outside the `pct`
    /// sample gets).
    pub fn weaker(self) -> Self {
        match self {
            Self::Reject => Self::Quarantine,
            Self::Quarantine | Self::None => Self::None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifier alignment mode (RFC 7489 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alignment {
    /// The organizational domains must match (the default).
    Relaxed,
    /// The domains must be equal.
    Strict,
}

/// A reporting URI with its optional size limit (RFC 7489 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportUri {
    /// The URI (`mailto:` in practice).
    pub uri: String,
    /// The size limit in octets, if given (`!10m` is 10 485 760).
    pub max_size: Option<u64>,
}

/// A failure reporting option (RFC 7489 §6.3 `fo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureOption {
    /// `0`: report when all mechanisms fail to align and pass.
    AllFail,
    /// `1`: report when any mechanism fails.
    AnyFail,
    /// `d`: report failing DKIM signatures.
    Dkim,
    /// `s`: report failing SPF evaluations.
    Spf,
}

/// A parsed DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// `p`: the policy for the domain.
    pub policy: Policy,
    /// `sp`: the policy for subdomains (defaults to `p`).
    pub subdomain_policy: Option<Policy>,
    /// `np`: the policy for non-existent subdomains (RFC 9091; defaults
    /// to `sp`, then `p`).
    pub nonexistent_policy: Option<Policy>,
    /// `adkim` (default relaxed).
    pub adkim: Alignment,
    /// `aspf` (default relaxed).
    pub aspf: Alignment,
    /// `pct` (default 100).
    pub pct: u8,
    /// `rua`: aggregate report destinations.
    pub rua: Vec<ReportUri>,
    /// `ruf`: failure report destinations.
    pub ruf: Vec<ReportUri>,
    /// `fo` (default `0`).
    pub failure_options: Vec<FailureOption>,
    /// `ri`: aggregate report interval in seconds (default 86400).
    pub report_interval: u32,
}

/// Whether a TXT record claims to be DMARC (RFC 7489 §6.6.3: records not
/// starting with `v=DMARC1` are discarded).
pub fn is_dmarc_record(txt: &[u8]) -> bool {
    let Some(first) = txt.split(|&b| b == b';').next() else {
        return false;
    };
    let Ok(first) = std::str::from_utf8(first) else {
        return false;
    };
    match first.split_once('=') {
        Some((k, v)) => k.trim() == "v" && v.trim() == "DMARC1",
        None => false,
    }
}

fn invalid(tag: &'static str, value: &str) -> RecordError {
    RecordError::InvalidValue {
        tag,
        value: value.to_owned(),
    }
}

/// `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`
fn parse_uris(tag: &'static str, value: &str) -> Result<Vec<ReportUri>, RecordError> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        let (uri, size) = match item.rfind('!') {
            Some(bang) => (&item[..bang], Some(&item[bang + 1..])),
            None => (item, None),
        };
        // A URI: a scheme, ":", and no white space or separators.
        let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
            !rest.is_empty()
                && scheme
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
        if !scheme_ok || uri.bytes().any(|b| b.is_ascii_whitespace() || b == b';') {
            return Err(invalid(tag, value));
        }
        let max_size = match size {
            None => None,
            Some(size) => {
                let digits = size.bytes().take_while(u8::is_ascii_digit).count();
                let shift = match &size[digits..] {
                    "" => 0,
                    "k" | "K" => 10,
                    "m" | "M" => 20,
                    "g" | "G" => 30,
                    "t" | "T" => 40,
                    _ => return Err(invalid(tag, value)),
                };
                let n: u64 = size[..digits].parse().map_err(|_| invalid(tag, value))?;
                Some(
                    n.checked_shl(shift)
                        .filter(|v| v >> shift == n)
                        .ok_or_else(|| invalid(tag, value))?,
                )
            }
        };
        out.push(ReportUri {
            uri: uri.to_owned(),
            max_size,
        });
    }
    Ok(out)
}

impl Record {
    /// Parses a TXT record (its strings joined).
    pub fn parse(txt: &[u8]) -> Result<Self, RecordError> {
        if !is_dmarc_record(txt) {
            return Err(RecordError::NotDmarc);
        }
        let text = std::str::from_utf8(txt)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or(RecordError::NonAscii)?;
        let mut record = Self {
            policy: Policy::None,
            subdomain_policy: None,
            nonexistent_policy: None,
            adkim: Alignment::Relaxed,
            aspf: Alignment::Relaxed,
            pct: 100,
            rua: Vec::new(),
            ruf: Vec::new(),
            failure_options: vec![FailureOption::AllFail],
            report_interval: 86_400,
        };
        let mut seen: Vec<String> = Vec::new();
        let mut policy = None;
        let mut rua_valid = false;
        let pieces: Vec<&str> = text.split(';').collect();
        for (i, tag) in pieces.iter().enumerate() {
            let tag = tag.trim_matches([' ', '\t']);
            if i == 0 {
                continue; // v=DMARC1, checked above
            }
            if tag.is_empty() {
                // Only the optional separator after the last tag may be
                // followed by nothing (RFC 7489 §6.4: `[dmarc-sep]` at the
                // end); `;;` is not in the grammar.
                if i + 1 == pieces.len() {
                    continue;
                }
                return Err(RecordError::MalformedTag(String::new()));
            }
            let Some((name, value)) = tag.split_once('=') else {
                return Err(RecordError::MalformedTag(tag.to_owned()));
            };
            let name = name.trim_matches([' ', '\t']);
            let value = value.trim_matches([' ', '\t']);
            if name.is_empty()
                || !name.as_bytes()[0].is_ascii_alphabetic()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(RecordError::MalformedTag(tag.to_owned()));
            }
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                return Err(RecordError::DuplicateTag(lower));
            }
            seen.push(lower.clone());
            match lower.as_str() {
                "v" => return Err(RecordError::DuplicateTag(lower)),
                "p" => policy = Some(Policy::parse(value).ok_or_else(|| invalid("p", value))?),
                "sp" => {
                    record.subdomain_policy =
                        Some(Policy::parse(value).ok_or_else(|| invalid("sp", value))?);
                }
                "np" => {
                    record.nonexistent_policy =
                        Some(Policy::parse(value).ok_or_else(|| invalid("np", value))?);
                }
                "adkim" | "aspf" => {
                    let tag = if lower == "adkim" { "adkim" } else { "aspf" };
                    let mode = match value {
                        "r" | "R" => Alignment::Relaxed,
                        "s" | "S" => Alignment::Strict,
                        _ => return Err(invalid(tag, value)),
                    };
                    if tag == "adkim" {
                        record.adkim = mode;
                    } else {
                        record.aspf = mode;
                    }
                }
                "pct" => {
                    record.pct = value
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= 100 && !value.starts_with('+'))
                        .ok_or_else(|| invalid("pct", value))?;
                }
                "rua" => {
                    record.rua = parse_uris("rua", value)?;
                    rua_valid = true;
                }
                "ruf" => record.ruf = parse_uris("ruf", value)?,
                "fo" => {
                    let mut options = Vec::new();
                    for o in value.split(':') {
                        options.push(match o.trim() {
                            "0" => FailureOption::AllFail,
                            "1" => FailureOption::AnyFail,
                            "d" | "D" => FailureOption::Dkim,
                            "s" | "S" => FailureOption::Spf,
                            _ => return Err(invalid("fo", value)),
                        });
                    }
                    record.failure_options = options;
                }
                "rf" if !value
                    .split(':')
                    .all(|f| f.trim().eq_ignore_ascii_case("afrf")) =>
                {
                    return Err(invalid("rf", value));
                }
                "ri" => {
                    record.report_interval = value
                        .parse::<u32>()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| invalid("ri", value))?;
                }
                // RFC 7489 §6.3: unknown tags are ignored.
                _ => {}
            }
        }
        record.policy = match policy {
            Some(p) => p,
            None if rua_valid => Policy::None,
            None => return Err(RecordError::MissingPolicy),
        };
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_record() {
        let r = Record::parse(b"v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=r; pct=50; rua=mailto:a@example.org!10m,mailto:b@example.net; ruf=mailto:f@example.org; fo=1:d:s; rf=afrf; ri=3600; x=ignored;").unwrap();
        assert_eq!(r.policy, Policy::Reject);
        assert_eq!(r.subdomain_policy, Some(Policy::Quarantine));
        assert_eq!(r.nonexistent_policy, Some(Policy::Reject));
        assert_eq!(r.adkim, Alignment::Strict);
        assert_eq!(r.aspf, Alignment::Relaxed);
        assert_eq!(r.pct, 50);
        assert_eq!(r.rua.len(), 2);
        assert_eq!(r.rua[0].max_size, Some(10 << 20));
        assert_eq!(r.ruf[0].uri, "mailto:f@example.org");
        assert_eq!(
            r.failure_options,
            [
                FailureOption::AnyFail,
                FailureOption::Dkim,
                FailureOption::Spf
            ]
        );
        assert_eq!(r.report_interval, 3600);
    }

    #[test]
    fn defaults_and_rua_only() {
        let r = Record::parse(b"v=DMARC1;p=none").unwrap();
        assert!(Record::parse(b"v=DMARC1; p=none; ").is_ok());
        assert_eq!(
            (r.pct, r.adkim, r.aspf),
            (100, Alignment::Relaxed, Alignment::Relaxed)
        );
        let r = Record::parse(b"v=DMARC1; rua=mailto:a@example.org").unwrap();
        assert_eq!(r.policy, Policy::None);
    }

    #[test]
    fn invalid_records() {
        for bad in [
            "v=DMARC1",
            "v=DMARC1; p=bogus",
            "v=DMARC1; p=none; p=reject",
            "v=DMARC1; p=none; pct=101",
            "v=DMARC1; p=none; pct=-1",
            "v=DMARC1; p=none; adkim=x",
            "v=DMARC1; p=none; fo=2",
            "v=DMARC1; p=none; rua=nouri",
            "v=DMARC1; p=none; rua=mailto:a@b!10x",
            "v=DMARC1; p=none; junk",
            "v=DMARC1; p=none; ri=-5",
            "v=DMARC1; p=none; sp=all",
            "v=DMARC1; p=none;; adkim=s",
            "v=DMARC1;; p=none",
        ] {
            assert!(Record::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            Record::parse(b"v=DMARC2; p=none"),
            Err(RecordError::NotDmarc)
        );
        assert_eq!(
            Record::parse(b"p=none; v=DMARC1"),
            Err(RecordError::NotDmarc)
        );
        assert!(is_dmarc_record(b"v = DMARC1 ;p=none"));
    }
}
