//! What a finished handshake negotiated, in the session's vocabulary.

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, CommonState, ProtocolVersion, ServerConnection};

use crate::TlsInfo;

/// The server side of a handshake: protocol version (`TLSv1.3`), cipher
/// suite (`TLS13_AES_256_GCM_SHA384`) and the name the client asked for
/// with SNI, if it sent one (clients send none for an IP address, RFC 6066
/// §3). For the session's `handle_tls_established` and trace headers.
pub fn server_info(conn: &ServerConnection) -> TlsInfo {
    negotiated(conn, conn.server_name().map(str::to_owned))
}

/// The client side of a handshake made for `server_name` (what was passed
/// to `ClientConnection::new`, which rustls does not hand back): protocol
/// version, cipher suite, and the DNS name sent as SNI — `None` for an IP
/// address, which is never sent (see [`server_name`](super::server_name)).
/// Every configuration of this module sends SNI; one of your own with
/// rustls' `enable_sni` turned off sends none, whatever this reports.
pub fn client_info(conn: &ClientConnection, server_name: &ServerName<'_>) -> TlsInfo {
    let sni = match server_name {
        ServerName::DnsName(name) => Some(name.as_ref().to_owned()),
        _ => None,
    };
    negotiated(conn, sni)
}

fn negotiated(state: &CommonState, server_name: Option<String>) -> TlsInfo {
    let protocol = state.protocol_version().map(version_name);
    let cipher = state
        .negotiated_cipher_suite()
        .map(|s| match s.suite().as_str() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", s.suite()),
        });
    TlsInfo::new(protocol, cipher, server_name)
}

/// `TLSv1.3`: the spelling of OpenSSL and of `Received:` headers.
fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        other => format!("{other:?}"),
    }
}
