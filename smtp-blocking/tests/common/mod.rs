//! What only this crate's tests share; everything else (the test servers,
//! the fake DNS server, the test PKI, the peers) is in `smtp-tests`.

use std::time::Duration;

use smtp_blocking::Resolver;
use smtp_tests::fake_dns::FakeDns;

/// A resolver asking only `dns`, once, with a short timeout.
pub(crate) fn resolver(dns: &FakeDns) -> Resolver {
    Resolver::new(vec![dns.addr()])
        .timeout(Duration::from_millis(300))
        .attempts(1)
}
