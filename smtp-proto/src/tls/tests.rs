//! The glue against rustls itself: configurations built here complete (or
//! refuse) real handshakes over an in-memory pair of rustls connections.

use std::io::{Read, Write};
use std::ops::DerefMut;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConnection, ConnectionCommon, RootCertStore, ServerConfig,
    ServerConnection, SupportedProtocolVersion,
};

use super::*;

// ---- client trust -----------------------------------------------------------

#[test]
fn server_names() {
    let cases: &[(&str, Option<&str>)] = &[
        ("mail.example.org", Some("DnsName(\"mail.example.org\")")),
        ("mail.example.org.", Some("DnsName(\"mail.example.org\")")),
        ("MX.Example.Org", Some("DnsName(\"mx.example.org\")")),
        ("127.0.0.1", Some("IpAddress(V4(Ipv4Addr([127, 0, 0, 1])))")),
        (
            "[127.0.0.1]",
            Some("IpAddress(V4(Ipv4Addr([127, 0, 0, 1])))"),
        ),
        ("::1", None),
        ("[::1]", None),
        ("2001:db8::25", None),
        ("bad name", None),
        ("under_score..example", None),
        ("", None),
    ];
    for (host, debug) in cases {
        let got = server_name(host);
        match (debug, host) {
            (Some(expected), _) => {
                assert_eq!(format!("{:?}", got.unwrap()), *expected, "{host}")
            }
            (None, h) if h.contains("::") => {
                assert!(matches!(got, Ok(ServerName::IpAddress(_))), "{host}")
            }
            (None, _) => assert!(
                matches!(&got, Err(ConfigError::InvalidServerName(h)) if h == host),
                "{host}: {got:?}"
            ),
        }
    }
}

#[test]
fn default_config_builds_and_is_not_dangerous() {
    let config = TlsConfig::default();
    assert!(!config.is_dangerous());
    assert!(format!("{config:?}").contains("dangerous_accept_any_certificate: false"));
    let insecure = accepting_any();
    assert!(insecure.is_dangerous());
    assert!(format!("{insecure:?}").contains("dangerous_accept_any_certificate: true"));
    // Choosing a trust again replaces the earlier choice.
    let back = TlsConfig::builder()
        .dangerous_accept_any_certificate()
        .webpki_roots()
        .build()
        .unwrap();
    assert!(!back.is_dangerous());
    let wrapped = TlsConfig::from_client_config(Arc::clone(insecure.client_config()));
    assert!(
        !wrapped.is_dangerous(),
        "the caller answers for a wrapped config"
    );
}

#[test]
fn ca_pem_without_certificates_is_refused() {
    let err = TlsConfig::builder().ca_pem(b"").unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate), "{err:?}");
    let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let err = TlsConfig::builder().ca_pem(key_only).unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate), "{err:?}");
    assert!(err.to_string().contains("no certificate"), "{err}");
}

#[test]
fn broken_ca_pem_is_refused() {
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
    let err = TlsConfig::builder().ca_pem(broken).unwrap_err();
    assert!(matches!(err, ConfigError::Pem(_)), "{err:?}");
    let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
    let err = TlsConfig::builder().ca_pem(unterminated).unwrap_err();
    assert!(matches!(err, ConfigError::Pem(_)), "{err:?}");
}

#[test]
fn ca_pem_with_garbage_der_is_an_unusable_certificate() {
    // Valid PEM and base64, but not a certificate.
    let garbage = pem_encode("CERTIFICATE", b"not DER at all");
    let err = TlsConfig::builder().ca_pem(garbage.as_bytes()).unwrap_err();
    assert!(matches!(err, ConfigError::BadCertificate(_)), "{err:?}");
}

#[test]
fn ca_pem_takes_every_certificate_and_skips_keys() {
    let a = identity("a.test");
    let b = identity("b.test");
    let pem = format!("{}{}{}", a.chain_pem(), a.key_pem(), b.chain_pem());
    assert_eq!(certificates_from_pem(pem.as_bytes()).unwrap().len(), 2);
    let config = TlsConfig::builder()
        .ca_pem(pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    // Both are trusted: a handshake with either server succeeds.
    for (id, name) in [(&a, "a.test"), (&b, "b.test")] {
        let (client, server) = connect_to(&config, id, name);
        handshake(client, server).unwrap();
    }
}

#[test]
fn certificate_errors_are_told_apart() {
    assert!(is_certificate_error(&rustls::Error::InvalidCertificate(
        CertificateError::UnknownIssuer
    )));
    assert!(is_certificate_error(
        &rustls::Error::NoCertificatesPresented
    ));
    assert!(!is_certificate_error(&rustls::Error::InvalidMessage(
        rustls::InvalidMessage::InvalidContentType
    )));
    assert!(!is_certificate_error(&rustls::Error::DecryptError));
}

// ---- server identity --------------------------------------------------------

#[test]
fn fingerprint_format_known_answer() {
    // SHA-256 of the empty string.
    let empty = Fingerprint::of(b"");
    assert_eq!(
        empty.to_string(),
        "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
         27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
    );
    assert_eq!(empty.as_bytes()[..2], [0xE3, 0xB0]);
    assert_eq!(format!("{empty:?}"), format!("Fingerprint({empty})"));
}

#[test]
fn pem_encoding_round_trips() {
    for len in [1usize, 2, 3, 47, 48, 49, 100, 1000] {
        let der: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back.as_ref(), &der[..], "{len}");
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }
}

#[test]
fn key_pem_without_a_key_says_so() {
    let id = identity("mx.example.org");
    let cert_pem = id.chain_pem();
    for input in [cert_pem.as_bytes(), b"", b"just some text\n"] {
        let err = private_key_from_pem(input).unwrap_err();
        assert!(matches!(err, ConfigError::NoPrivateKey), "{err:?}");
        assert!(err.to_string().contains("no private key"), "{err}");
        assert!(!err.to_string().contains("no items found"), "{err}");
    }
    // The certificate file given twice: the key is what is missing.
    let err = TlsIdentity::from_pem(cert_pem.as_bytes(), cert_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, ConfigError::NoPrivateKey), "{err:?}");
    // A broken key section is a PEM error, not a missing key.
    let broken = b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        private_key_from_pem(broken),
        Err(ConfigError::Pem(_))
    ));
}

#[test]
fn chain_pem_without_a_certificate_is_refused() {
    let id = identity("mx.example.org");
    let key_pem = id.key_pem();
    let err = TlsIdentity::from_pem(key_pem.as_bytes(), key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate), "{err:?}");
    let err = TlsIdentity::new(Vec::new(), id.key().clone_key()).unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate), "{err:?}");
}

#[test]
fn self_signed_identity_round_trips_through_pem() {
    let id = identity("mx.example.org");
    assert_eq!(id.chain().len(), 1);
    assert_eq!(id.fingerprint(), Fingerprint::of(id.chain()[0].as_ref()));
    // Cert and key in one text, as some tools write them.
    let both = format!("{}{}", id.chain_pem(), id.key_pem());
    let loaded = TlsIdentity::from_pem(both.as_bytes(), both.as_bytes()).unwrap();
    assert_eq!(loaded.fingerprint(), id.fingerprint());
    loaded.server_config().unwrap();
    // The Debug form shows the fingerprint, never the key.
    let debug = format!("{loaded:?}");
    assert!(debug.contains(&id.fingerprint().to_string()), "{debug}");
    let key_body: String = id.key_pem().lines().nth(1).unwrap().to_owned();
    assert!(!debug.contains(&key_body), "{debug}");
    // Two identities never share a key or a fingerprint.
    assert_ne!(identity("mx.example.org").fingerprint(), id.fingerprint());
}

#[test]
fn a_key_that_does_not_match_is_refused() {
    let a = identity("a.test");
    let b = identity("b.test");
    let err = a.with_key_of(&b).server_config().unwrap_err();
    assert!(matches!(err, ConfigError::Rustls(_)), "{err:?}");
}

/// The certificate is valid from a day before `now` to 90 days after, to
/// the second: checked by webpki, as a client would.
#[test]
fn self_signed_validity_window() {
    let now_secs = 1_750_000_000;
    let now = UNIX_EPOCH + Duration::from_secs(now_secs);
    let id = TlsIdentity::self_signed("mx.example.org", now).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(id.chain()[0].clone()).unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
        .build()
        .unwrap();
    let check = |at: u64| {
        verifier.verify_server_cert(
            &id.chain()[0],
            &[],
            &server_name("mx.example.org").unwrap(),
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(at)),
        )
    };
    let first = now_secs - SELF_SIGNED_BACKDATE.as_secs();
    let last = now_secs + SELF_SIGNED_LIFETIME.as_secs();
    assert_eq!(first, now_secs - 86_400);
    assert_eq!(last, now_secs + 90 * 86_400);
    for at in [first, now_secs, last] {
        check(at).unwrap_or_else(|e| panic!("not valid at {at}: {e}"));
    }
    // A second before the first valid one: not valid yet; a second after
    // the last: expired.
    for (at, expired) in [(first - 1, false), (last + 1, true)] {
        let err = check(at).unwrap_err();
        let why = match &err {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ) => Some(false),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => Some(true),
            _ => None,
        };
        assert_eq!(why, Some(expired), "{at}: {err:?}");
    }
}

#[test]
fn self_signed_times_out_of_range_are_refused() {
    // Before the Unix epoch is fine (a UTCTime in 1969).
    let before_epoch = UNIX_EPOCH - Duration::from_secs(10 * 86_400);
    TlsIdentity::self_signed("old.test", before_epoch).unwrap();
    // After year 9999 no certificate time exists.
    if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(400_000_000_000)) {
        let err = TlsIdentity::self_signed("far.test", far).unwrap_err();
        assert!(
            matches!(err, ConfigError::Validity(t) if t == far),
            "{err:?}"
        );
    }
}

// ---- handshakes: the client config against the server config ---------------

/// A core-built client that trusts only the self-signed certificate
/// completes a handshake for each name the certificate covers; both ends
/// report what was negotiated.
#[test]
fn handshake_for_every_name_with_info_from_both_ends() {
    let id = identity("mx.example.org");
    let server_config = id.server_config().unwrap();
    let client_config = trusting(&id);
    for name in [
        "localhost",
        "127.0.0.1",
        "::1",
        "[::1]",
        "mx.example.org",
        "MX.example.org.",
    ] {
        let (client, server) = connect(&client_config, &server_config, name);
        let (mut client, mut server) = handshake(client, server).unwrap();
        // Application data flows through.
        client.writer().write_all(b"EHLO x\r\n").unwrap();
        transfer(&mut client, &mut server);
        server.process_new_packets().unwrap();
        let mut got = [0u8; 8];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"EHLO x\r\n");

        let sni = match server_name(name).unwrap() {
            ServerName::DnsName(dns) => Some(dns.as_ref().to_owned()),
            _ => None,
        };
        let at_server = server_info(&server);
        let at_client = client_info(&client, &server_name(name).unwrap());
        for info in [&at_server, &at_client] {
            assert_eq!(info.protocol.as_deref(), Some("TLSv1.3"), "{name}");
            let cipher = info.cipher.as_deref().unwrap();
            assert!(cipher.starts_with("TLS13_"), "{name}: {cipher}");
            assert_eq!(info.server_name, sni, "{name}");
        }
        assert_eq!(at_server, at_client, "{name}");
    }
}

#[test]
fn tls12_is_negotiated_and_reported() {
    let id = identity("mx.example.org");
    let server_config = server_config_for(&id, &rustls::version::TLS12, id.key().clone_key());
    let client_config = trusting(&id);
    let (client, server) = connect(&client_config, &server_config, "mx.example.org");
    let (client, server) = handshake(client, server).unwrap();
    for info in [
        server_info(&server),
        client_info(&client, &server_name("mx.example.org").unwrap()),
    ] {
        assert_eq!(info.protocol.as_deref(), Some("TLSv1.2"));
        let cipher = info.cipher.unwrap();
        assert!(cipher.starts_with("TLS_ECDHE_ECDSA_WITH_"), "{cipher}");
        assert_eq!(info.server_name.as_deref(), Some("mx.example.org"));
    }
}

#[test]
fn info_before_the_handshake_is_empty_but_for_the_name() {
    let id = identity("mx.example.org");
    let (client, server) = connect_to(&trusting(&id), &id, "mx.example.org");
    let info = client_info(&client, &server_name("mx.example.org").unwrap());
    assert_eq!((info.protocol, info.cipher), (None, None));
    assert_eq!(server_info(&server), TlsInfo::default());
}

#[test]
fn verification_refuses_a_name_the_certificate_does_not_cover() {
    let id = identity("mx.example.org");
    client_refuses_the_certificate(&trusting(&id), &id, "other.example");
}

#[test]
fn the_webpki_roots_do_not_trust_a_self_signed_certificate() {
    let id = identity("mx.example.org");
    client_refuses_the_certificate(&TlsConfig::default(), &id, "mx.example.org");
}

#[test]
fn accept_any_takes_any_certificate_and_name() {
    let id = identity("mx.example.org");
    let insecure = accepting_any();
    for name in ["other.example", "192.0.2.1"] {
        let (client, server) = connect_to(&insecure, &id, name);
        handshake(client, server).unwrap();
    }
}

/// Accept-any still checks that the server holds the key of the certificate
/// it shows: a server that signs with another key fails the handshake, in
/// TLS 1.3 (CertificateVerify) and TLS 1.2 (ServerKeyExchange) alike.
#[test]
fn accept_any_still_refuses_a_bad_handshake_signature() {
    let shown = identity("mx.example.org");
    let impostor = identity("mx.example.org");
    let insecure = accepting_any();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // The control: the right key completes the handshake.
        let honest = server_config_for(&shown, version, shown.key().clone_key());
        let (client, server) = connect(&insecure, &honest, "mx.example.org");
        handshake(client, server).unwrap_or_else(|e| panic!("{version:?}: {e:?}"));

        let lying = server_config_for(&shown, version, impostor.key().clone_key());
        let (client, server) = connect(&insecure, &lying, "mx.example.org");
        match handshake(client, server) {
            Err(Failed::Client(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))) => {}
            other => panic!("{version:?}: expected a bad signature, got {other:?}"),
        }
    }
}

// ---- helpers ----------------------------------------------------------------

fn identity(hostname: &str) -> TlsIdentity {
    TlsIdentity::self_signed(hostname, SystemTime::now()).unwrap()
}

/// A client config that trusts `id`'s certificate and nothing else.
fn trusting(id: &TlsIdentity) -> TlsConfig {
    TlsConfig::builder()
        .ca_pem(id.chain_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// A client config that accepts any certificate for any name.
fn accepting_any() -> TlsConfig {
    TlsConfig::builder()
        .dangerous_accept_any_certificate()
        .build()
        .unwrap()
}

/// A handshake of `client` with a server showing `id`, for `name`, fails
/// because the client refuses the certificate.
fn client_refuses_the_certificate(client: &TlsConfig, id: &TlsIdentity, name: &str) {
    let (client, server) = connect_to(client, id, name);
    match handshake(client, server) {
        Err(Failed::Client(e)) => assert!(is_certificate_error(&e), "{e:?}"),
        other => panic!("expected the client to refuse: {other:?}"),
    }
}

/// A server config presenting `id`'s chain but signing with `key` (which
/// `with_single_cert` would refuse when they differ), for one version.
fn server_config_for(
    id: &TlsIdentity,
    version: &'static SupportedProtocolVersion,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    #[derive(Debug)]
    struct Fixed(Arc<CertifiedKey>);
    impl ResolvesServerCert for Fixed {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }
    let provider = crypto_provider();
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let certified = CertifiedKey::new(id.chain().to_vec(), signing_key);
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    Arc::new(config)
}

fn connect(
    client: &TlsConfig,
    server: &Arc<ServerConfig>,
    name: &str,
) -> (ClientConnection, ServerConnection) {
    let client = ClientConnection::new(
        Arc::clone(client.client_config()),
        server_name(name).unwrap(),
    )
    .unwrap();
    let server = ServerConnection::new(Arc::clone(server)).unwrap();
    (client, server)
}

/// [`connect`] to a server showing `id` with its own server config.
fn connect_to(
    client: &TlsConfig,
    id: &TlsIdentity,
    name: &str,
) -> (ClientConnection, ServerConnection) {
    connect(client, &id.server_config().unwrap(), name)
}

/// Which end refused the handshake.
#[derive(Debug)]
enum Failed {
    Client(rustls::Error),
    Server(#[expect(dead_code, reason = "shown by Debug when a test fails")] rustls::Error),
}

/// Runs a handshake to its end, moving records in memory.
fn handshake(
    mut client: ClientConnection,
    mut server: ServerConnection,
) -> Result<(ClientConnection, ServerConnection), Failed> {
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
        transfer(&mut client, &mut server);
        server.process_new_packets().map_err(Failed::Server)?;
        transfer(&mut server, &mut client);
        client.process_new_packets().map_err(Failed::Client)?;
    }
    panic!("the handshake did not finish in 10 rounds");
}

/// Moves every pending TLS record from one connection to the other.
fn transfer<A, B, DA, DB>(from: &mut A, to: &mut B)
where
    A: DerefMut<Target = ConnectionCommon<DA>>,
    B: DerefMut<Target = ConnectionCommon<DB>>,
{
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut slice = &buf[..];
    while !slice.is_empty() {
        to.read_tls(&mut slice).unwrap();
    }
}
