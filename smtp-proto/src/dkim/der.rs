//! The little DER this module reads and writes: RSA public keys
//! (`RSAPublicKey`, RFC 8017 §A.1.1, and `SubjectPublicKeyInfo`, RFC 5280
//! §4.1), the algorithm of a PKCS#8 private key (RFC 5208 §5), and PEM
//! armour (RFC 7468). ring parses the private keys themselves.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// DER tags used here.
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;

/// `rsaEncryption`, 1.2.840.113549.1.1.1 (RFC 8017 §A.1), DER contents.
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-Ed25519`, 1.3.101.112 (RFC 8410 §3), DER contents.
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Reads one DER element: its tag, its contents, and what follows it.
/// Lengths must be minimal (DER, X.690 §10.1) and at most four octets.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets || rest[0] == 0 {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..octets] {
            len = len << 8 | usize::from(b);
        }
        if len < 0x80 {
            return None;
        }
        rest = &rest[octets..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads an element of `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = read_tlv(input)?;
    (t == tag).then_some((contents, rest))
}

/// The magnitude of a positive DER INTEGER, without leading zero octets;
/// `None` for a negative or empty one.
fn positive_integer(contents: &[u8]) -> Option<&[u8]> {
    let (&first, _) = contents.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    let start = contents.iter().position(|&b| b != 0)?;
    Some(&contents[start..])
}

/// An RSA public key: modulus and exponent, big-endian, no leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RsaComponents {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
}

impl RsaComponents {
    /// The modulus size in bits.
    pub(crate) fn bits(&self) -> u32 {
        // `n` has no leading zero octet and is at most a DNS message long.
        let len = u32::try_from(self.n.len()).unwrap_or(u32::MAX / 8);
        len * 8 - self.n.first().map_or(8, |b| b.leading_zeros())
    }
}

/// Reads an RSA public key from `SubjectPublicKeyInfo` (what `openssl rsa
/// -pubout` writes and what DKIM key records carry, RFC 6376 §3.6.1) or from
/// a bare PKCS#1 `RSAPublicKey` (which some records carry).
pub(crate) fn rsa_public_key(der: &[u8]) -> Option<RsaComponents> {
    let (outer, rest) = expect(der, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tag, _, _) = read_tlv(outer)?;
    let pkcs1 = if tag == SEQUENCE {
        // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier,
        //                                     subjectPublicKey BIT STRING }
        let (algorithm, rest) = expect(outer, SEQUENCE)?;
        let (oid, params) = expect(algorithm, OID)?;
        if oid != OID_RSA_ENCRYPTION {
            return None;
        }
        // The parameters are NULL (RFC 8017 §A.1); tolerate them absent.
        if !params.is_empty() {
            let (null, after) = expect(params, NULL)?;
            if !null.is_empty() || !after.is_empty() {
                return None;
            }
        }
        let (bits, after) = expect(rest, BIT_STRING)?;
        if !after.is_empty() {
            return None;
        }
        let (&unused, key) = bits.split_first()?;
        if unused != 0 {
            return None;
        }
        key
    } else {
        der
    };
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let (seq, rest) = expect(pkcs1, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = expect(seq, INTEGER)?;
    let (e, rest) = expect(rest, INTEGER)?;
    if !rest.is_empty() {
        return None;
    }
    Some(RsaComponents {
        n: positive_integer(n)?.to_vec(),
        e: positive_integer(e)?.to_vec(),
    })
}

/// Appends a DER length.
fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Checked: below 0x80.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        let octets = &bytes[skip..];
        // At most size_of::<usize>() octets: fits the 7-bit count.
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(octets);
    }
}

/// Appends one DER element.
fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    write_len(out, contents.len());
    out.extend_from_slice(contents);
}

/// Wraps a PKCS#1 `RSAPublicKey` into a `SubjectPublicKeyInfo`, the form
/// DKIM key records publish (RFC 6376 §3.6.1, the output of `openssl rsa
/// -pubout`).
pub(crate) fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut algorithm = Vec::with_capacity(15);
    write_tlv(&mut algorithm, OID, OID_RSA_ENCRYPTION);
    write_tlv(&mut algorithm, NULL, &[]);
    let mut bits = Vec::with_capacity(pkcs1.len() + 1);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut body = Vec::with_capacity(pkcs1.len() + 32);
    write_tlv(&mut body, SEQUENCE, &algorithm);
    write_tlv(&mut body, BIT_STRING, &bits);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, SEQUENCE, &body);
    out
}

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo` (v1 or v2, RFC 5208 §5,
/// RFC 5958 §2), to tell RSA from Ed25519 keys before ring parses them.
pub(crate) fn pkcs8_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (algorithm, _) = expect(rest, SEQUENCE)?;
    let (oid, _) = expect(algorithm, OID)?;
    Some(oid)
}

/// A decoded PEM block (RFC 7468): its label and contents.
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Why PEM text cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No `-----BEGIN ...-----` line.
    NoBlock,
    /// No matching `-----END ...-----` line.
    Unterminated,
    /// Encapsulated headers (`Proc-Type: 4,ENCRYPTED`): an encrypted
    /// legacy key.
    Encrypted,
    /// The contents are not base64.
    Base64,
}

/// Reads the first PEM block of `text` (RFC 7468 §2; text before it, such
/// as `openssl`'s explanatory lines, is skipped).
pub(crate) fn parse_pem(text: &str) -> Result<Pem, PemError> {
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        let line = lines.next().ok_or(PemError::NoBlock)?;
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            break label.to_owned();
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let der = STANDARD
                .decode(body.as_bytes())
                .map_err(|_| PemError::Base64)?;
            return Ok(Pem { label, der });
        }
        if line.contains(':') {
            return Err(PemError::Encrypted);
        }
        body.push_str(line);
    }
    Err(PemError::Unterminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trip_and_bits() {
        // RSAPublicKey { n = 0x00c1 (one significant octet after the sign
        // octet: 0xc1 is 8 bits), e = 65537 }.
        let pkcs1 = [0x30, 0x08, 0x02, 0x02, 0x00, 0xc1, 0x02, 0x02, 0x01, 0x01];
        let key = rsa_public_key(&pkcs1).unwrap();
        assert_eq!(key.n, [0xc1]);
        assert_eq!(key.e, [0x01, 0x01]);
        assert_eq!(key.bits(), 8);
        let spki = rsa_spki(&pkcs1);
        assert_eq!(rsa_public_key(&spki).unwrap(), key);
        // Trailing garbage, a negative modulus, a non-minimal length.
        let mut long = spki;
        long.push(0);
        assert!(rsa_public_key(&long).is_none());
        assert!(rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03]).is_none());
        assert!(rsa_public_key(&[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03]).is_none());
    }

    #[test]
    fn long_lengths() {
        let contents = vec![7u8; 300];
        let mut out = Vec::new();
        write_tlv(&mut out, OID, &contents);
        assert_eq!(&out[..4], &[OID, 0x82, 0x01, 0x2c]);
        let (tag, got, rest) = read_tlv(&out).unwrap();
        assert_eq!((tag, got, rest), (OID, &contents[..], &[][..]));
    }

    #[test]
    fn pem_blocks() {
        let pem =
            parse_pem("junk\n-----BEGIN TEST-----\nAAEC\nAw==\n-----END TEST-----\n").unwrap();
        assert_eq!(pem.label, "TEST");
        assert_eq!(pem.der, [0, 1, 2, 3]);
        assert_eq!(parse_pem("nothing").err(), Some(PemError::NoBlock));
        assert_eq!(
            parse_pem("-----BEGIN A-----\nAAEC\n").err(),
            Some(PemError::Unterminated)
        );
        assert_eq!(
            parse_pem("-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\n-----END A-----").err(),
            Some(PemError::Encrypted)
        );
    }
}
