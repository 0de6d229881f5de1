//! Arbitrary bytes into the PROXY protocol parser: no panic; a header is
//! never longer than the input (nor a v1 header than 107 octets); the
//! verdict depends only on the header's own bytes (what follows cannot
//! change it); every proper prefix of a header asks for more, never fails;
//! and a v1 line written from a parsed address parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::proxy::{self, Header, V1_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((header, len))) = proxy::parse(data) else {
        return;
    };
    assert!(len <= data.len());
    if data.first() == Some(&b'P') {
        assert!(len <= V1_MAX);
    }
    let own = &data[..len];
    assert_eq!(proxy::parse(own), Ok(Some((header, len))));
    for cut in 0..len {
        assert_eq!(proxy::parse(&own[..cut]), Ok(None), "prefix {cut}");
    }
    if let Header::Proxied {
        source,
        destination,
    } = header
    {
        let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
        if source.is_ipv4() == destination.is_ipv4() {
            let line = format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            );
            assert_eq!(
                proxy::parse(line.as_bytes()),
                Ok(Some((header, line.len())))
            );
        }
    }
});
