//! Server URLs: one string that says where and how to send.
//!
//! # The forms
//!
//! | URL | protocol | TLS | default port |
//! |---|---|---|---|
//! | `smtp://host` | SMTP | STARTTLS if offered ([`TlsMode::Opportunistic`]) | 587 |
//! | `smtp://host?tls=required` | SMTP | STARTTLS, or fail ([`TlsMode::Required`]) | 587 |
//! | `smtp://host?tls=off` | SMTP | none ([`TlsMode::Disabled`]) | 25 |
//! | `smtps://host` | SMTP | implicit TLS ([`TlsMode::Implicit`], RFC 8314) | 465 |
//! | `lmtp://host` | LMTP (RFC 2033) | as `smtp://`, `tls=` allowed | 24 |
//! | `lmtp:///run/dovecot/lmtp` | LMTP over a Unix socket | none | — |
//!
//! Credentials go before the host, percent-encoded as in any URL
//! (`smtp://user%40example.org:p%40ss@host`), and are kept in a
//! [`Secret`] so that printing the parsed URL never shows the password.
//! The query takes `tls=off|opportunistic|required` (the values of the
//! `send` example's `--starttls`; `disabled` is accepted for `off`) and
//! `helo=NAME` (the name sent in EHLO); anything else is an error, so a typo
//! cannot silently weaken security.
//!
//! [`Protocol`] and [`TlsMode`] are the core's own types
//! ([`smtp_proto::Protocol`], [`smtp_proto::TlsMode`]), so a parsed URL
//! configures a session without a translation step.
//!
//! # Why these defaults
//!
//! They follow lettre's URL form, which users of this crate know: port 587
//! (message submission, RFC 6409) when STARTTLS is in play, 465 for implicit
//! TLS, 25 for plaintext relay. Unlike lettre, a bare `smtp://host` uses
//! opportunistic STARTTLS rather than plaintext: encryption whenever the
//! server offers it costs nothing, and `tls=off` says so explicitly when it
//! is really wanted. Opportunistic TLS does not stop an active attacker who
//! strips the STARTTLS offer; use `tls=required` or `smtps://` for a
//! submission server, where AUTH credentials travel.
//!
//! LMTP has no assigned port; 24 ("any private mail system") is what
//! Dovecot's and Cyrus' documentation use. A Unix socket is written as a URL
//! with an empty host, `lmtp:///path` (the `file:///path` pattern).

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use smtp_proto::address::Host;
use smtp_proto::mx::HostName;
use smtp_proto::{Protocol, Secret, TlsMode};
use thiserror::Error;

/// SMTP submission port. RFC 6409 §3.1.
pub const SUBMISSION_PORT: u16 = 587;
/// SMTP over implicit TLS ("submissions"). RFC 8314 §7.3.
pub const SUBMISSIONS_PORT: u16 = 465;
/// SMTP relay port. RFC 5321 §4.5.4.1.
pub const SMTP_PORT: u16 = 25;
/// The conventional LMTP port (RFC 2033 assigns none; 24 is IANA's "any
/// private mail system").
pub const LMTP_PORT: u16 = 24;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A TCP host and port.
    Tcp {
        /// A host name (lower case, validated) or an IP address (IPv6
        /// without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket path (LMTP only).
    Unix(PathBuf),
}

/// AUTH credentials from the URL's user information.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// The user name (percent-decoded).
    pub username: String,
    /// The password (percent-decoded); empty if the URL had none.
    pub password: Secret<String>,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }
}

/// A parsed server URL. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerUrl {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// How TLS is used.
    pub tls: TlsMode,
    /// Where to connect.
    pub endpoint: Endpoint,
    /// AUTH credentials, if the URL has user information.
    pub credentials: Option<Credentials>,
    /// The name to send in EHLO/LHLO (`helo=`), if given: a domain or an
    /// address literal, checked when the URL is parsed.
    pub helo: Option<Host<'static>>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `scheme://`.
    #[error("not a URL (expected scheme://...)")]
    NotAUrl,
    /// The scheme is not `smtp`, `smtps` or `lmtp`.
    #[error("unsupported URL scheme {0:?} (expected smtp, smtps or lmtp)")]
    UnsupportedScheme(String),
    /// There is no host (and it is not an `lmtp:///path` URL).
    #[error("the URL has no host")]
    MissingHost,
    /// The host is neither an IP address nor a valid host name.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// The port is not a number in 1..=65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// A `%` is not followed by two hex digits.
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// Decoded text is not UTF-8, or holds a NUL, CR or LF.
    #[error("invalid characters in the user name or password")]
    InvalidCredentials,
    /// A path where none belongs, or a socket path that is not absolute.
    #[error("unexpected path {0:?}")]
    UnexpectedPath(String),
    /// A query parameter this crate does not know.
    #[error("unknown URL parameter {0:?} (expected tls or helo)")]
    UnknownParameter(String),
    /// A known parameter with a value it cannot take.
    #[error("invalid value {value:?} for URL parameter {name}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
    },
    /// A parameter given twice.
    #[error("URL parameter {0} given twice")]
    DuplicateParameter(String),
    /// A `#fragment`, which means nothing here.
    #[error("a server URL takes no #fragment")]
    Fragment,
}

impl FromStr for ServerUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl ServerUrl {
    /// Parses a URL of one of the [forms](self).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::NotAUrl)?;
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "smtp" | "smtps" => Protocol::Smtp,
            "lmtp" => Protocol::Lmtp,
            _ => return Err(UrlError::UnsupportedScheme(scheme.to_owned())),
        };
        let implicit = scheme.eq_ignore_ascii_case("smtps");
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        // The last '@' ends the user information: a raw '@' in a password
        // is invalid but common, and taking the last one reads it right.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (authority.get(..at), authority.get(at + 1..).unwrap_or("")),
            None => (None, authority),
        };
        let credentials = userinfo.map(parse_credentials).transpose()?;
        let params = Params::parse(query)?;
        let helo = params.helo;

        if hostport.is_empty() {
            // lmtp:///path: a Unix socket.
            if protocol != Protocol::Lmtp || path.len() <= 1 {
                return Err(if path.len() > 1 {
                    UrlError::UnexpectedPath(path.to_owned())
                } else {
                    UrlError::MissingHost
                });
            }
            if params.tls.is_some_and(|tls| tls != TlsMode::Disabled) {
                return Err(UrlError::InvalidParameter {
                    name: String::from("tls"),
                    value: String::from("(TLS over a Unix socket)"),
                });
            }
            let path = String::from_utf8(percent_decode(path)?)
                .map_err(|_| UrlError::UnexpectedPath(path.to_owned()))?;
            return Ok(Self {
                protocol,
                tls: TlsMode::Disabled,
                endpoint: Endpoint::Unix(PathBuf::from(path)),
                credentials,
                helo,
            });
        }
        if !(path.is_empty() || path == "/") {
            return Err(UrlError::UnexpectedPath(path.to_owned()));
        }
        let tls = match (implicit, params.tls) {
            (true, None) => TlsMode::Implicit,
            (true, Some(_)) => {
                return Err(UrlError::InvalidParameter {
                    name: String::from("tls"),
                    value: String::from("(smtps:// is always implicit TLS)"),
                });
            }
            (false, tls) => tls.unwrap_or(TlsMode::Opportunistic),
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            Some(port) => port,
            None => match (protocol, tls) {
                (Protocol::Lmtp, _) => LMTP_PORT,
                (_, TlsMode::Implicit) => SUBMISSIONS_PORT,
                (_, TlsMode::Disabled) => SMTP_PORT,
                _ => SUBMISSION_PORT,
            },
        };
        Ok(Self {
            protocol,
            tls,
            endpoint: Endpoint::Tcp { host, port },
            credentials,
            helo,
        })
    }
}

/// The query parameters.
#[derive(Default)]
struct Params {
    tls: Option<TlsMode>,
    helo: Option<Host<'static>>,
}

impl Params {
    fn parse(query: Option<&str>) -> Result<Self, UrlError> {
        let mut params = Self::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = String::from_utf8(percent_decode(value)?).map_err(|_| {
                UrlError::InvalidParameter {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }
            })?;
            let invalid = || UrlError::InvalidParameter {
                name: name.to_owned(),
                value: value.clone(),
            };
            match name {
                "tls" => {
                    let mode = match value.as_str() {
                        "off" | "disabled" => TlsMode::Disabled,
                        "opportunistic" => TlsMode::Opportunistic,
                        "required" => TlsMode::Required,
                        _ => return Err(invalid()),
                    };
                    if params.tls.replace(mode).is_some() {
                        return Err(UrlError::DuplicateParameter(name.to_owned()));
                    }
                }
                "helo" => {
                    // Checked here, with the rest of the configuration: a
                    // bad name is the URL's error, never a session's.
                    let host = value.parse::<Host<'static>>().map_err(|_| invalid())?;
                    if params.helo.replace(host).is_some() {
                        return Err(UrlError::DuplicateParameter(name.to_owned()));
                    }
                }
                _ => return Err(UrlError::UnknownParameter(name.to_owned())),
            }
        }
        Ok(params)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlError::InvalidHost(hostport.to_owned()))?;
        let ip: IpAddr = v6
            .parse()
            .map_err(|_| UrlError::InvalidHost(hostport.to_owned()))?;
        if !ip.is_ipv6() {
            return Err(UrlError::InvalidHost(hostport.to_owned()));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::InvalidPort(p.to_owned()))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            // A bare IPv6 address needs brackets in a URL.
            Ok(IpAddr::V6(_)) => return Err(UrlError::InvalidHost(host.to_owned())),
            Err(_) => HostName::parse(host)
                .map_err(|_| UrlError::InvalidHost(host.to_owned()))?
                .as_str()
                .to_owned(),
        };
        (host, port)
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(port) if port != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
            _ => Err(UrlError::InvalidPort(p.to_owned())),
        })
        .transpose()?;
    Ok((host, port))
}

/// `user[:password]`, percent-decoded.
fn parse_credentials(userinfo: &str) -> Result<Credentials, UrlError> {
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| -> Result<String, UrlError> {
        let text =
            String::from_utf8(percent_decode(s)?).map_err(|_| UrlError::InvalidCredentials)?;
        // NUL separates the fields of SASL PLAIN (RFC 4616 §2), CR and LF
        // would end a line: neither can be part of a credential.
        if text.contains(['\0', '\r', '\n']) {
            return Err(UrlError::InvalidCredentials);
        }
        Ok(text)
    };
    let username = decode(user)?;
    if username.is_empty() {
        return Err(UrlError::InvalidCredentials);
    }
    Ok(Credentials::new(username, decode(pass)?))
}

/// RFC 3986 §2.1 percent-decoding. `+` stays `+` (it means space only in
/// HTML forms).
fn percent_decode(s: &str) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_value);
            let lo = bytes.next().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(UrlError::InvalidPercentEncoding),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn known_answers() {
        use Protocol::{Lmtp, Smtp};
        use TlsMode::{Disabled, Implicit, Opportunistic, Required};
        let cases: &[(&str, Protocol, TlsMode, Endpoint)] = &[
            (
                "smtp://mail.example.org",
                Smtp,
                Opportunistic,
                tcp("mail.example.org", 587),
            ),
            (
                "smtp://Mail.Example.ORG/",
                Smtp,
                Opportunistic,
                tcp("mail.example.org", 587),
            ),
            (
                "SMTP://mail.example.org:2525",
                Smtp,
                Opportunistic,
                tcp("mail.example.org", 2525),
            ),
            (
                "smtp://mail.example.org?tls=required",
                Smtp,
                Required,
                tcp("mail.example.org", 587),
            ),
            (
                "smtp://mail.example.org?tls=opportunistic",
                Smtp,
                Opportunistic,
                tcp("mail.example.org", 587),
            ),
            (
                "smtp://mail.example.org?tls=off",
                Smtp,
                Disabled,
                tcp("mail.example.org", 25),
            ),
            (
                "smtp://mail.example.org?tls=disabled",
                Smtp,
                Disabled,
                tcp("mail.example.org", 25),
            ),
            (
                "smtp://mail.example.org:587?tls=off",
                Smtp,
                Disabled,
                tcp("mail.example.org", 587),
            ),
            (
                "smtps://mail.example.org",
                Smtp,
                Implicit,
                tcp("mail.example.org", 465),
            ),
            (
                "smtps://mail.example.org:1465",
                Smtp,
                Implicit,
                tcp("mail.example.org", 1465),
            ),
            (
                "smtp://127.0.0.1:2525",
                Smtp,
                Opportunistic,
                tcp("127.0.0.1", 2525),
            ),
            ("smtp://[::1]:2525", Smtp, Opportunistic, tcp("::1", 2525)),
            (
                "smtp://[2001:db8::1]",
                Smtp,
                Opportunistic,
                tcp("2001:db8::1", 587),
            ),
            (
                "lmtp://localhost",
                Lmtp,
                Opportunistic,
                tcp("localhost", 24),
            ),
            (
                "lmtp://localhost:2424?tls=off",
                Lmtp,
                Disabled,
                tcp("localhost", 2424),
            ),
            (
                "lmtp:///run/dovecot/lmtp",
                Lmtp,
                Disabled,
                Endpoint::Unix("/run/dovecot/lmtp".into()),
            ),
            (
                "lmtp:///tmp/a%20b",
                Lmtp,
                Disabled,
                Endpoint::Unix("/tmp/a b".into()),
            ),
            (
                "lmtp:///tmp/s?tls=off",
                Lmtp,
                Disabled,
                Endpoint::Unix("/tmp/s".into()),
            ),
        ];
        for (url, protocol, tls, endpoint) in cases {
            let parsed = ServerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.protocol, *protocol, "{url}");
            assert_eq!(parsed.tls, *tls, "{url}");
            assert_eq!(&parsed.endpoint, endpoint, "{url}");
            assert_eq!(parsed.credentials, None, "{url}");
            assert_eq!(url.parse::<ServerUrl>().unwrap(), parsed);
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let cases: &[(&str, &str, &str)] = &[
            ("smtp://user:pass@host", "user", "pass"),
            ("smtp://user@host", "user", ""),
            (
                "smtp://user%40example.org:p%40ss%3Aw%2Frd@host",
                "user@example.org",
                "p@ss:w/rd",
            ),
            ("smtp://u:p@ss@host", "u", "p@ss"),
            ("smtp://u:a+b%20c@host", "u", "a+b c"),
            ("smtp://%C3%A9l%C3%A8ve:%E2%82%AC@host", "élève", "€"),
            ("smtp://u:@host", "u", ""),
        ];
        for (url, user, pass) in cases {
            let parsed = ServerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let creds = parsed.credentials.expect(url);
            assert_eq!(creds.username, *user, "{url}");
            assert_eq!(creds.password.expose(), pass, "{url}");
            assert_eq!(parsed.endpoint, tcp("host", 587), "{url}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let parsed = ServerUrl::parse("smtps://alice:hunter2@mail.example.org").unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("alice"), "{debug}");
    }

    #[test]
    fn helo_parameter() {
        let parsed = ServerUrl::parse("smtp://host?helo=client.example.org&tls=required").unwrap();
        assert_eq!(parsed.helo.unwrap().to_string(), "client.example.org");
        let literal = ServerUrl::parse("smtp://host?helo=%5B192.0.2.1%5D").unwrap();
        assert_eq!(literal.helo.unwrap().to_string(), "[192.0.2.1]");
        assert_eq!(parsed.tls, TlsMode::Required);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, UrlError)] = &[
            ("mail.example.org", UrlError::NotAUrl),
            ("http://host", UrlError::UnsupportedScheme("http".into())),
            ("smtp://", UrlError::MissingHost),
            ("smtp://:25", UrlError::MissingHost),
            ("smtp:///path", UrlError::UnexpectedPath("/path".into())),
            ("lmtp://", UrlError::MissingHost),
            ("lmtp:///", UrlError::MissingHost),
            ("smtp://host/path", UrlError::UnexpectedPath("/path".into())),
            ("smtp://host:0", UrlError::InvalidPort("0".into())),
            ("smtp://host:65536", UrlError::InvalidPort("65536".into())),
            ("smtp://host:+25", UrlError::InvalidPort("+25".into())),
            ("smtp://host:", UrlError::InvalidPort("".into())),
            ("smtp://[::1]x", UrlError::InvalidPort("x".into())),
            ("smtp://[::1", UrlError::InvalidHost("[::1".into())),
            (
                "smtp://[127.0.0.1]",
                UrlError::InvalidHost("[127.0.0.1]".into()),
            ),
            ("smtp://bad_host", UrlError::InvalidHost("bad_host".into())),
            (
                "smtp://host?tls=maybe",
                UrlError::InvalidParameter {
                    name: "tls".into(),
                    value: "maybe".into(),
                },
            ),
            (
                "smtp://host?tls=off&tls=required",
                UrlError::DuplicateParameter("tls".into()),
            ),
            (
                "smtp://host?starttls=required",
                UrlError::UnknownParameter("starttls".into()),
            ),
            (
                "smtp://host?helo=bad%20host",
                UrlError::InvalidParameter {
                    name: "helo".into(),
                    value: "bad host".into(),
                },
            ),
            (
                "smtp://host?helo=a..example",
                UrlError::InvalidParameter {
                    name: "helo".into(),
                    value: "a..example".into(),
                },
            ),
            (
                "smtp://host?helo=a%0d%0aRCPT",
                UrlError::InvalidParameter {
                    name: "helo".into(),
                    value: "a\r\nRCPT".into(),
                },
            ),
            ("smtp://host#x", UrlError::Fragment),
            ("smtp://u:%zz@host", UrlError::InvalidPercentEncoding),
            ("smtp://u:%4@host", UrlError::InvalidPercentEncoding),
            ("smtp://u:%00@host", UrlError::InvalidCredentials),
            ("smtp://u:a%0d%0a@host", UrlError::InvalidCredentials),
            ("smtp://u:%ff@host", UrlError::InvalidCredentials),
            ("smtp://:pass@host", UrlError::InvalidCredentials),
            (
                "lmtp:///tmp/s?tls=required",
                UrlError::InvalidParameter {
                    name: "tls".into(),
                    value: "(TLS over a Unix socket)".into(),
                },
            ),
            (
                "smtps://host?tls=off",
                UrlError::InvalidParameter {
                    name: "tls".into(),
                    value: "(smtps:// is always implicit TLS)".into(),
                },
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(ServerUrl::parse(url).as_ref(), Err(expected), "{url}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%41%6a%2F").unwrap(), b"aAj/");
        assert_eq!(percent_decode("").unwrap(), b"");
        assert!(percent_decode("%").is_err());
        assert!(percent_decode("%g0").is_err());
    }
}
