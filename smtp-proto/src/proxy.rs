//! The PROXY protocol, versions 1 and 2 (HAProxy's "The PROXY protocol",
//! 2020-03-05): the header a load balancer or TCP proxy sends before
//! anything else, naming the client it accepted the connection from.
//!
//! Behind a proxy every connection comes from the proxy's address, which
//! would make the `Received:` field, the per-client limits, SPF and the logs
//! all about the proxy. With the PROXY protocol the proxy prepends one
//! header to the stream; the server reads it *before* the greeting (and
//! before an implicit-TLS handshake, whose first byte follows it) and from
//! then on treats the named address as the client's.
//!
//! Anyone who can send the header can claim any address, so a server reads
//! it only from configured, trusted proxies; the [`Cidr`] type here is for
//! that list. A connection from elsewhere, or whose header is malformed,
//! is closed without a greeting: the spec forbids guessing ("the receiver
//! must not try to guess whether the protocol header is present or not").
//!
//! # Wire formats
//!
//! Version 1 is one text line of at most 107 octets, CRLF included:
//!
//! ```text
//! "PROXY" SP ( "TCP4" | "TCP6" ) SP src-ip SP dst-ip SP src-port SP dst-port CRLF
//! "PROXY" SP "UNKNOWN" [ SP anything ] CRLF
//! ```
//!
//! Version 2 is binary: the 12-octet signature `\r\n\r\n\0\r\nQUIT\n`, a
//! version/command octet (`0x20` LOCAL, `0x21` PROXY), an address
//! family/transport octet (`0x11` TCP over IPv4, `0x21` TCP over IPv6, …),
//! a 16-bit big-endian length, then that many octets: the addresses and
//! ports, then optional TLVs (skipped here).
//!
//! # Use
//!
//! [`parse`] is sans-IO: hand it the bytes at the start of the connection
//! (a transport can *peek* them, so that nothing after the header is taken
//! from the socket) and it says how long the header is, or that more bytes
//! are needed, or that this is not a valid header. It decides as early as
//! the bytes allow: the first octet that cannot start a header fails at
//! once, and a v1 line is never waited for past 107 octets.
//!
//! ```
//! use smtp_proto::proxy::{self, Header};
//!
//! let input = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\nEHLO";
//! let (header, len) = proxy::parse(input).unwrap().unwrap();
//! assert_eq!(len, 44);
//! assert_eq!(
//!     header,
//!     Header::Proxied {
//!         source: "192.0.2.1:56324".parse().unwrap(),
//!         destination: "198.51.100.7:25".parse().unwrap(),
//!     }
//! );
//! assert_eq!(proxy::parse(b"PROXY TCP4 192.0.2.1"), Ok(None)); // more, please
//! assert!(proxy::parse(b"EHLO x\r\n").is_err()); // no header: refuse
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// The longest version 1 header, CRLF included (the spec's 107).
pub const V1_MAX: usize = 107;
/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a version 2 header: signature, version/command,
/// family/transport, length.
pub const V2_FIXED: usize = 16;

/// What a PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Header {
    /// The proxy relays a TCP connection from `source` to `destination`:
    /// the client is `source`.
    Proxied {
        /// The client's address and port.
        source: SocketAddr,
        /// The address and port the client connected to (on the proxy).
        destination: SocketAddr,
    },
    /// The connection is the proxy's own (v2 `LOCAL`, e.g. a health check)
    /// or of an unknown kind (v1 `UNKNOWN`, v2 `UNSPEC`/`UNIX` families):
    /// the spec says to use the real connection's endpoints.
    Local,
}

/// A malformed header. The connection is closed without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The stream does not start with a PROXY header (v1 `PROXY ` or the
    /// v2 signature).
    #[error("no PROXY protocol header")]
    Missing,
    /// A version 1 line longer than 107 octets, or without CRLF.
    #[error("PROXY v1 line too long")]
    TooLong,
    /// A version 1 line that does not follow the grammar.
    #[error("malformed PROXY v1 header")]
    MalformedV1,
    /// A version 2 header with a version other than 2, an unknown command,
    /// an address block shorter than its family needs, or a transport
    /// other than a stream for an IP family.
    #[error("malformed PROXY v2 header")]
    MalformedV2,
}

/// Parses the PROXY header at the start of `input`.
///
/// `Ok(Some((header, len)))`: the header is `input[..len]`; what follows is
/// the proxied stream. `Ok(None)`: a header may be starting, more bytes are
/// needed (at most [`V1_MAX`] for v1, `16 + length` for v2).
///
/// # Errors
///
/// [`ProxyError`] as soon as `input` cannot start a valid header.
pub fn parse(input: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let Some(&first) = input.first() else {
        return Ok(None);
    };
    match first {
        b'P' => parse_v1(input),
        b'\r' => parse_v2(input),
        _ => Err(ProxyError::Missing),
    }
}

/// Version 1: `PROXY TCP4|TCP6|UNKNOWN ... CRLF`.
fn parse_v1(input: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    const PREFIX: &[u8] = b"PROXY ";
    let known = input.len().min(PREFIX.len());
    if input.get(..known) != PREFIX.get(..known) {
        return Err(ProxyError::Missing);
    }
    let window = input.get(..input.len().min(V1_MAX)).unwrap_or(input);
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if input.len() >= V1_MAX {
            Err(ProxyError::TooLong)
        } else {
            Ok(None)
        };
    };
    // The line must end in CRLF, and hold no other CR.
    let Some(line) = window.get(..lf).and_then(|l| l.strip_suffix(b"\r")) else {
        return Err(ProxyError::MalformedV1);
    };
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::MalformedV1)?;
    let rest = line.strip_prefix("PROXY ").ok_or(ProxyError::Missing)?;
    let len = lf + 1;
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        // "the receiver must ignore anything presented before the CRLF".
        return Ok(Some((Header::Local, len)));
    }
    let mut fields = rest.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::MalformedV1);
    };
    let (source, destination): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            Ipv4Addr::from_str(src)
                .map_err(|_| ProxyError::MalformedV1)?
                .into(),
            Ipv4Addr::from_str(dst)
                .map_err(|_| ProxyError::MalformedV1)?
                .into(),
        ),
        "TCP6" => (
            Ipv6Addr::from_str(src)
                .map_err(|_| ProxyError::MalformedV1)?
                .into(),
            Ipv6Addr::from_str(dst)
                .map_err(|_| ProxyError::MalformedV1)?
                .into(),
        ),
        _ => return Err(ProxyError::MalformedV1),
    };
    Ok(Some((
        Header::Proxied {
            source: SocketAddr::new(source, port(sport)?),
            destination: SocketAddr::new(destination, port(dport)?),
        },
        len,
    )))
}

/// A v1 port: decimal, 0 to 65535, no sign and no leading zero.
fn port(text: &str) -> Result<u16, ProxyError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(ProxyError::MalformedV1);
    }
    text.parse().map_err(|_| ProxyError::MalformedV1)
}

/// Version 2: signature, version/command, family/transport, length,
/// addresses, TLVs.
fn parse_v2(input: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let known = input.len().min(V2_SIGNATURE.len());
    if input.get(..known) != V2_SIGNATURE.get(..known) {
        return Err(ProxyError::Missing);
    }
    let Some(fixed) = input.get(..V2_FIXED) else {
        // Check the version/command octet as soon as it is there.
        if let Some(&ver_cmd) = input.get(12) {
            command(ver_cmd)?;
        }
        return Ok(None);
    };
    let (ver_cmd, fam, hi, lo) = match fixed {
        [.., a, b, c, d] => (*a, *b, *c, *d),
        _ => return Ok(None),
    };
    let local = command(ver_cmd)?;
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    let Some(block) = input.get(V2_FIXED..len) else {
        return Ok(None);
    };
    if local {
        // "the receiver must accept this connection as valid and must use
        // the real connection endpoints and discard the protocol block".
        return Ok(Some((Header::Local, len)));
    }
    let (family, transport) = (fam >> 4, fam & 0x0f);
    let header = match family {
        // AF_INET, AF_INET6: a stream (TCP) is all SMTP runs over.
        1 | 2 if transport != 1 => return Err(ProxyError::MalformedV2),
        1 => match block {
            [a, b, c, d, e, f, g, h, sp0, sp1, dp0, dp1, ..] => Header::Proxied {
                source: SocketAddr::new(
                    Ipv4Addr::new(*a, *b, *c, *d).into(),
                    u16::from_be_bytes([*sp0, *sp1]),
                ),
                destination: SocketAddr::new(
                    Ipv4Addr::new(*e, *f, *g, *h).into(),
                    u16::from_be_bytes([*dp0, *dp1]),
                ),
            },
            _ => return Err(ProxyError::MalformedV2),
        },
        2 => {
            let (Some(src), Some(dst), Some(ports)) =
                (block.get(..16), block.get(16..32), block.get(32..36))
            else {
                return Err(ProxyError::MalformedV2);
            };
            let ip = |b: &[u8]| -> Result<Ipv6Addr, ProxyError> {
                let octets: [u8; 16] = b.try_into().map_err(|_| ProxyError::MalformedV2)?;
                Ok(Ipv6Addr::from(octets))
            };
            let (sp, dp) = match ports {
                [a, b, c, d] => (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])),
                _ => return Err(ProxyError::MalformedV2),
            };
            Header::Proxied {
                source: SocketAddr::new(ip(src)?.into(), sp),
                destination: SocketAddr::new(ip(dst)?.into(), dp),
            }
        }
        // UNSPEC, UNIX and anything newer: no client IP to take; the spec
        // lets the receiver use the real endpoints.
        0 | 3 => Header::Local,
        _ => return Err(ProxyError::MalformedV2),
    };
    Ok(Some((header, len)))
}

/// The version/command octet: version 2, command LOCAL (`true`) or PROXY.
fn command(ver_cmd: u8) -> Result<bool, ProxyError> {
    match ver_cmd {
        0x20 => Ok(true),
        0x21 => Ok(false),
        _ => Err(ProxyError::MalformedV2),
    }
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a
/// single address): the trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A [`Cidr`] that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not an address or network in CIDR notation: {0:?}")]
pub struct CidrError(String);

impl Cidr {
    /// The network `addr/prefix` (host bits are cleared); `None` if the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= bits).then(|| Self {
            network: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `addr` is inside the network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, what a dual-stack socket reports) counts as its
    /// IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        matches!(
            (self.network, addr),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        ) && mask(addr, self.prefix) == self.network
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let err = || CidrError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let p: u8 = p.parse().map_err(|_| err())?;
                (IpAddr::from_str(a).map_err(|_| err())?, Some(p))
            }
            None => (IpAddr::from_str(s).map_err(|_| err())?, None),
        };
        let prefix = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        Self::new(addr, prefix).ok_or_else(err)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `addr` with all but the first `prefix` bits cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(fam);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let (h, n) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\nX")
            .unwrap()
            .unwrap();
        assert_eq!(n, 44);
        assert_eq!(
            h,
            Header::Proxied {
                source: "[2001:db8::1]:65535".parse().unwrap(),
                destination: "[2001:db8::2]:0".parse().unwrap(),
            }
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((Header::Local, 15))));
        assert_eq!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
            Ok(Some((Header::Local, 35)))
        );
    }

    #[test]
    fn v1_malformed() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n"[..],
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
            b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
            b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
            b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
            b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", bad.escape_ascii());
        }
        assert_eq!(parse(b"PROXX"), Err(ProxyError::Missing));
        assert_eq!(parse(b"EHLO"), Err(ProxyError::Missing));
        assert_eq!(parse(&[b'P'; 200]), Err(ProxyError::Missing));
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX, b'x');
        assert_eq!(parse(&long), Err(ProxyError::TooLong));
        long.truncate(V1_MAX - 1);
        assert_eq!(parse(&long), Ok(None));
    }

    #[test]
    fn v2_tcp4_tcp6_local_and_tlvs() {
        let mut block = vec![192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0, 25];
        block.extend_from_slice(&[0x04, 0, 1, 0]); // a NOOP TLV, skipped
        let h = v2(0x21, 0x11, &block);
        let (header, n) = parse(&[&h[..], b"rest"].concat()).unwrap().unwrap();
        assert_eq!(n, h.len());
        assert_eq!(
            header,
            Header::Proxied {
                source: "192.0.2.1:56324".parse().unwrap(),
                destination: "198.51.100.7:25".parse().unwrap(),
            }
        );
        let mut block = [0u8; 36];
        block[15] = 1;
        block[31] = 2;
        block[32..].copy_from_slice(&[0, 80, 1, 0]);
        let (header, _) = parse(&v2(0x21, 0x21, &block)).unwrap().unwrap();
        assert_eq!(
            header,
            Header::Proxied {
                source: "[::1]:80".parse().unwrap(),
                destination: "[::2]:256".parse().unwrap(),
            }
        );
        assert_eq!(parse(&v2(0x20, 0x00, &[])), Ok(Some((Header::Local, 16))));
        // Every proper prefix asks for more.
        let h = v2(0x21, 0x21, &block);
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(None), "{cut}");
        }
    }

    #[test]
    fn v2_malformed() {
        assert_eq!(
            parse(&v2(0x11, 0x11, &[0; 12])),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(
            parse(&v2(0x22, 0x11, &[0; 12])),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(
            parse(&v2(0x21, 0x11, &[0; 11])),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(
            parse(&v2(0x21, 0x21, &[0; 35])),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(
            parse(&v2(0x21, 0x12, &[0; 12])),
            Err(ProxyError::MalformedV2)
        );
        // The version octet fails as soon as it arrives.
        assert_eq!(
            parse(&[&V2_SIGNATURE[..], &[0x31]].concat()),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(parse(b"\r\n\r\nX"), Err(ProxyError::Missing));
    }

    #[test]
    fn cidr_contains() {
        let net: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Cidr = "2001:db8::5".parse().unwrap();
        assert!(one.contains("2001:db8::5".parse().unwrap()));
        assert!(!one.contains("2001:db8::6".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}
