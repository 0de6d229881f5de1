//! `dkim-keygen`: makes a DKIM signing key and prints the DNS TXT record
//! that publishes its public half.
//!
//! ```text
//! cargo run -p smtp-proto --features dkim --example dkim-keygen -- \
//!     --algorithm ed25519 --domain example.org --selector s2026 --out key.pem
//! cargo run -p smtp-proto --features dkim --example dkim-keygen -- \
//!     --domain example.org --selector r2026 --key existing-rsa.pem
//! ```
//!
//! Ed25519 keys (RFC 8463) are generated here, with ring, as PKCS#8 PEM,
//! written to a new file readable by its owner only (an existing file is
//! never replaced). ring cannot generate RSA keys, and this project uses
//! no other RSA implementation (the `rsa` crate's signing leaks the key
//! through timing, RUSTSEC-2023-0071), so for RSA make the key with
//! OpenSSL — `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
//! -out key.pem` — and give it with `--key` to get its record. `--key`
//! prints the record of any key `send --dkim-key` accepts.
//!
//! The record goes at `SELECTOR._domainkey.DOMAIN`; it is printed in zone
//! file syntax, split into character-strings of at most 255 octets (an
//! RSA-2048 record is longer, RFC 6376 §3.6.2.2), then on one line for
//! DNS hosting forms that take the text whole.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use smtp_proto::dkim::{Signer, SigningKey};

const USAGE: &str = "usage: dkim-keygen --domain D --selector S \
(--algorithm ed25519 --out FILE | --algorithm rsa | --key FILE)";

struct Args {
    domain: String,
    selector: String,
    algorithm: Option<String>,
    out: Option<String>,
    key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        domain: String::new(),
        selector: String::new(),
        algorithm: None,
        out: None,
        key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--domain" => args.domain = value,
            "--selector" => args.selector = value,
            "--algorithm" => args.algorithm = Some(value),
            "--out" => args.out = Some(value),
            "--key" => args.key = Some(value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if args.domain.is_empty() || args.selector.is_empty() {
        return Err(format!("--domain and --selector are required\n{USAGE}"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dkim-keygen: {message}");
            ExitCode::from(64)
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let key = match (&args.key, args.algorithm.as_deref(), &args.out) {
        (Some(path), None, None) => {
            let pem = std::fs::read_to_string(path).map_err(|e| format!("--key {path}: {e}"))?;
            SigningKey::from_pem(&pem).map_err(|e| format!("--key {path}: {e}"))?
        }
        (None, Some("ed25519"), Some(out)) => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| "the operating system's random source failed".to_owned())?;
            let key = SigningKey::from_pkcs8_der(pkcs8.as_ref()).map_err(|e| e.to_string())?;
            write_pem(out, pkcs8.as_ref())?;
            eprintln!("dkim-keygen: private key written to {out}");
            key
        }
        (None, Some("ed25519"), None) => return Err("--algorithm ed25519 needs --out FILE".into()),
        (None, Some("rsa"), _) => {
            return Err("ring cannot generate RSA keys; make one with \
                 `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem` \
                 and run again with --key key.pem"
                .to_owned());
        }
        (None, Some(other), _) => return Err(format!("--algorithm {other}: want ed25519 or rsa")),
        _ => return Err(USAGE.to_owned()),
    };
    // Checks the domain and selector as a signer would.
    let signer =
        Signer::new(key.clone(), &args.domain, &args.selector).map_err(|e| e.to_string())?;
    let record = key.dns_record();
    let strings: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    println!(
        "{}._domainkey.{}. IN TXT ( {} )",
        signer.selector(),
        signer.domain(),
        strings.join(" ")
    );
    println!("{record}");
    Ok(())
}

/// Writes `der` as a PKCS#8 PEM file that must not exist yet, readable by
/// its owner only.
fn write_pem(path: &str, der: &[u8]) -> Result<(), String> {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("--out {path}: {e}"))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("--out {path}: {e}"))
}
