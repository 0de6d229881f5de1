//! DKIM benchmark: our `smtp_proto::dkim` against Stalwart's `mail-auth`
//! 0.13.3 (its `ring` backend, the same crypto as ours), on the same
//! messages with the same keys, in the same process.
//!
//! Workloads, each for a 4 KiB and a 100 KiB message (a header section of
//! seven fields, a body of 76-column text lines with some white-space runs
//! and trailing spaces for `relaxed` to work on):
//! - `dkim_sign_rsa_*`, `dkim_sign_ed25519_*`: sign with RSA-2048 or
//!   Ed25519, `relaxed/relaxed`, the seven fields, `t=`; one op = parse the
//!   message, hash its body, sign, and produce the header field text.
//! - `dkim_verify_rsa_*`, `dkim_verify_ed25519_*`: verify a message
//!   carrying one such signature; one op = read the message, hash the body,
//!   take the key (ours: parse the TXT record, handed in as a DNS answer
//!   would be; mail-auth: a parsed key from its resolver cache, so it does
//!   a little less), and check the signature.
//!
//! Before timing, each side's signed messages are verified by the other
//! side: a second Rust peer cross-check.
//!
//! Method and output: `smtp_tests::timing` (alternating rounds, medians),
//! one line per workload:
//!
//! `ratio <workload> ours=<ns per op> peer=<ns per op> speedup=<peer/ours>`

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey as PeerSigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::{Canonicalization as PeerCanon, DkimSigner, Done};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use smtp_proto::dkim::{
    Canonicalization, HeaderList, KeyLookup, Signer, SigningKey, SystemRandom, Verdict, Verifier,
    VerifierConfig,
};
use smtp_proto::dns::Name;
use smtp_tests::timing::{self, Comparison};

const RSA_PKCS8: &str = include_str!("../../smtp-proto/src/dkim/testdata/rsa2048.pem");
const ED25519_PKCS8: &str = include_str!("../../smtp-proto/src/dkim/testdata/ed25519.pem");

const DOMAIN: &str = "example.org";
const HEADERS: [&str; 7] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
];

fn message(size: usize) -> Vec<u8> {
    let mut out = b"From: Alice Example <alice@example.org>\r\n\
To: Bob Example <bob@example.net>\r\n\
Subject: The quarterly figures, as promised\r\n\
Date: Tue, 06 Oct 2026 12:00:00 +0000\r\n\
Message-ID: <20261006120000.4711@mail.example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n"
        .to_vec();
    let lines: [&[u8]; 4] = [
        b"The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet xyz\r\n",
        b"Figures for the quarter:  revenue up,  costs down, and   margins steady.  \r\n",
        b"\r\n",
        b"Kind regards, and see you at the meeting on Thursday afternoon at three.\r\n",
    ];
    let mut i = 0;
    while out.len() < size {
        out.extend_from_slice(lines[i % lines.len()]);
        i += 1;
    }
    out
}

fn now() -> SystemTime {
    SystemTime::now()
}

// ------------------------------------------------------------------- ours

struct Ours {
    signer: Signer,
    record: String,
    name: Name,
    rng: SystemRandom,
}

impl Ours {
    fn new(pem: &str, selector: &str) -> Self {
        let key = SigningKey::from_pem(pem).unwrap();
        let mut headers = HeaderList::new();
        for h in HEADERS {
            headers = headers.sign(h);
        }
        let record = key.dns_record();
        let signer = Signer::new(key, DOMAIN, selector)
            .unwrap()
            .with_canonicalization(Canonicalization::Relaxed, Canonicalization::Relaxed)
            .with_headers(headers)
            .unwrap();
        Self {
            name: Name::parse(&format!("{selector}._domainkey.{DOMAIN}")).unwrap(),
            signer,
            record,
            rng: SystemRandom::new(),
        }
    }

    fn sign(&self, message: &[u8]) -> String {
        self.signer
            .sign_message(message, now(), &self.rng)
            .unwrap()
            .as_str()
            .to_owned()
    }

    fn verify(&self, signed: &[u8]) -> bool {
        let mut verifier = Verifier::new(VerifierConfig::default());
        verifier.update(signed);
        verifier.finish(now());
        verifier.handle_key(
            &self.name,
            KeyLookup::Records(vec![self.record.as_bytes().to_vec()]),
        );
        let results = verifier.into_results();
        results.len() == 1 && results[0].verdict() == Verdict::Pass
    }
}

// ------------------------------------------------------------------- peer

/// mail-auth's resolver cache, filled with the parsed key before timing.
struct KeyCache(RefCell<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for KeyCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow_mut().remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _: Instant) {
        self.0.borrow_mut().insert(key, value);
    }
}

/// Runs a future that never waits (every key is in the cache): mail-auth's
/// verification is async, but with a cache hit it does no I/O.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("mail-auth went to the network"),
    }
}

enum PeerKey {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// The peer's signer for `key`: our domain, `selector`, our header list,
/// relaxed/relaxed, as ours signs in the comparison.
fn relaxed_signer<T: PeerSigningKey>(key: T, selector: &str) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(DOMAIN)
        .selector(selector)
        .headers(HEADERS)
        .header_canonicalization(PeerCanon::Relaxed)
        .body_canonicalization(PeerCanon::Relaxed)
}

struct Peer {
    signer: PeerKey,
    cache: KeyCache,
    authenticator: MessageAuthenticator,
}

impl Peer {
    fn new(pem: &str, selector: &str, record: &str, rsa: bool) -> Self {
        let der = pem_der(pem);
        let signer = if rsa {
            #[allow(deprecated)]
            let key = RsaKey::<Sha256>::from_pkcs8_der(&der).unwrap();
            PeerKey::Rsa(relaxed_signer(key, selector))
        } else {
            let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).unwrap();
            PeerKey::Ed25519(relaxed_signer(key, selector))
        };
        let cache = KeyCache(RefCell::new(HashMap::new()));
        let key = Txt::from(DomainKey::parse(record.as_bytes()).unwrap());
        for name in [
            format!("{selector}._domainkey.{DOMAIN}."),
            format!("{selector}._domainkey.{DOMAIN}"),
        ] {
            cache.insert(
                name.into_boxed_str(),
                key.clone(),
                Instant::now() + Duration::from_secs(86_400),
            );
        }
        Self {
            signer,
            cache,
            authenticator: MessageAuthenticator::new_cloudflare().unwrap(),
        }
    }

    fn sign(&self, message: &[u8]) -> String {
        match &self.signer {
            PeerKey::Rsa(s) => s.sign(message).unwrap().to_header(),
            PeerKey::Ed25519(s) => s.sign(message).unwrap().to_header(),
        }
    }

    fn verify(&self, signed: &[u8]) -> bool {
        let message = AuthenticatedMessage::parse(signed).unwrap();
        let outputs = run(self
            .authenticator
            .verify_dkim(Parameters::new(&message).with_txt_cache(&self.cache)));
        outputs.len() == 1 && outputs[0].result() == &DkimResult::Pass
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

// ------------------------------------------------------------------- main

fn main() {
    let rounds = timing::rounds();
    // `DKIM_BENCH_ONLY=verify_rsa_4k` runs the workloads whose name holds
    // it (for profiling one).
    let only = std::env::var("DKIM_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| name.contains(only.as_str());
    let mut results: Vec<Comparison> = Vec::new();
    for (alg, pem, selector, rsa) in [
        ("rsa", RSA_PKCS8, "rsa", true),
        ("ed25519", ED25519_PKCS8, "ed", false),
    ] {
        let ours = Ours::new(pem, selector);
        let peer = Peer::new(pem, selector, &ours.record, rsa);
        for (size_name, size) in [("4k", 4 * 1024), ("100k", 100 * 1024)] {
            let message = message(size);

            // Cross-check: each side verifies the other's signature.
            let ours_signed = [ours.sign(&message).as_bytes(), &message].concat();
            let peer_signed = [peer.sign(&message).as_bytes(), &message].concat();
            assert!(ours.verify(&ours_signed), "ours verifies ours");
            assert!(peer.verify(&peer_signed), "mail-auth verifies mail-auth");
            assert!(
                ours.verify(&peer_signed),
                "ours verifies mail-auth's {alg} {size_name}"
            );
            assert!(
                peer.verify(&ours_signed),
                "mail-auth verifies ours {alg} {size_name}"
            );

            let name = format!("dkim_sign_{alg}_{size_name}");
            if wanted(&name) {
                results.push(timing::compare(
                    &name,
                    rounds,
                    1,
                    || ours.sign(&message).len(),
                    || peer.sign(&message).len(),
                ));
            }
            // Both verify the same bytes (signed by mail-auth).
            let name = format!("dkim_verify_{alg}_{size_name}");
            if wanted(&name) {
                results.push(timing::compare(
                    &name,
                    rounds,
                    1,
                    || usize::from(ours.verify(&peer_signed)),
                    || usize::from(peer.verify(&peer_signed)),
                ));
            }
        }
    }
    println!();
    for r in &results {
        println!("{}", r.ratio_line());
    }
}
