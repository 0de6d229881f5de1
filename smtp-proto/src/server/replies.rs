//! The replies the server gives on its own, each with the RFC that decides
//! its code.
//!
//! Enhanced status codes (RFC 3463) are added when the session negotiated
//! them: `ENHANCEDSTATUSCODES` offered and the client greeted with `EHLO` or
//! `LHLO` (RFC 2034 §3; the greeting and the `EHLO` reply itself carry
//! none). All texts are constants without CR or LF, and the only dynamic
//! parts are the validated hostname and numbers, so encoding cannot fail.

use crate::reply::{EnhancedStatusCode as Esc, ReplyCode};

/// A fixed reply: code, enhanced code, text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Canned {
    pub(crate) code: ReplyCode,
    pub(crate) status: Option<Esc>,
    pub(crate) text: &'static str,
}

const fn code(n: u16) -> ReplyCode {
    match ReplyCode::new(n) {
        Ok(c) => c,
        Err(_) => panic!("invalid reply code constant"),
    }
}

const fn esc(class: u8, subject: u16, detail: u16) -> Esc {
    match Esc::new(class, subject, detail) {
        Ok(c) => c,
        Err(_) => panic!("invalid enhanced status code constant"),
    }
}

const fn canned(code: ReplyCode, status: Esc, text: &'static str) -> Canned {
    Canned {
        code,
        status: Some(status),
        text,
    }
}

/// `214`: help (RFC 5321 §4.1.1.8).
pub(crate) const HELP: Canned = canned(
    code(214),
    Esc::SUCCESS,
    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH (RFC 5321)",
);
/// `250` to NOOP and RSET (RFC 5321 §4.1.1.5, §4.1.1.9).
pub(crate) const OK: Canned = canned(ReplyCode::OK, Esc::SUCCESS, "Ok");
/// `250 2.1.0` to an accepted MAIL (RFC 3463 §3.2: X.1.0 other address status).
pub(crate) const MAIL_OK: Canned = canned(ReplyCode::OK, Esc::ADDRESS_OK, "Sender ok");
/// `250 2.1.5` to an accepted RCPT (RFC 3463 §3.2: X.1.5 destination valid).
pub(crate) const RCPT_OK: Canned = canned(ReplyCode::OK, Esc::DESTINATION_VALID, "Recipient ok");
/// `250 2.0.0` to an accepted message.
pub(crate) const MESSAGE_OK: Canned = canned(ReplyCode::OK, Esc::SUCCESS, "Message accepted");
/// `354` to an accepted DATA (RFC 5321 §4.1.1.4). RFC 2034 §3 puts no
/// enhanced code on intermediate replies.
pub(crate) const DATA_GO: Canned = Canned {
    code: ReplyCode::START_MAIL_INPUT,
    status: None,
    text: "End data with <CR><LF>.<CR><LF>",
};
/// `252` to VRFY/EXPN the application does not want to answer (RFC 5321
/// §3.5.3).
pub(crate) const CANNOT_VERIFY: Canned = canned(
    ReplyCode::CANNOT_VERIFY,
    Esc::SUCCESS,
    "Cannot VRFY user, but will accept message and attempt delivery",
);
/// `220 2.0.0` to STARTTLS (RFC 3207 §4).
pub(crate) const TLS_GO: Canned =
    canned(ReplyCode::SERVICE_READY, Esc::SUCCESS, "Ready to start TLS");
/// `235 2.7.0` (RFC 4954 §6).
pub(crate) const AUTH_OK: Canned = canned(
    ReplyCode::AUTH_SUCCEEDED,
    Esc::SECURITY_OK,
    "Authentication successful",
);

/// `500 5.5.2`: unknown verb (RFC 5321 §4.2.4 "500 ... command
/// unrecognized"; RFC 3463 §3.6 X.5.2 covers unrecognized commands).
pub(crate) const UNKNOWN_COMMAND: Canned = canned(
    ReplyCode::SYNTAX_ERROR,
    Esc::SYNTAX_ERROR,
    "Command unrecognized",
);
/// `500 5.5.2`: over-long command line (RFC 5321 §4.5.3.1.10 "500 Line too
/// long").
pub(crate) const LINE_TOO_LONG: Canned =
    canned(ReplyCode::SYNTAX_ERROR, Esc::SYNTAX_ERROR, "Line too long");
/// `500 5.5.2`: a command line holding a bare CR or LF (RFC 5321 §2.3.8).
pub(crate) const BARE_LINE_ENDING_COMMAND: Canned = canned(
    ReplyCode::SYNTAX_ERROR,
    Esc::SYNTAX_ERROR,
    "Bare CR or LF in command",
);
/// `500 5.5.6`: over-long SASL line (RFC 4954 §4, §6).
pub(crate) const AUTH_LINE_TOO_LONG: Canned = canned(
    ReplyCode::SYNTAX_ERROR,
    esc(5, 5, 6),
    "Authentication Exchange line is too long",
);
/// `502 5.5.1`: a known command that is not offered (RFC 5321 §4.2.4).
pub(crate) const NOT_IMPLEMENTED: Canned = canned(
    ReplyCode::COMMAND_NOT_IMPLEMENTED,
    Esc::INVALID_COMMAND,
    "Command not implemented",
);
/// `503 5.5.1`: a command before the greeting command (RFC 5321 §4.1.4).
pub(crate) const SEND_EHLO: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Send EHLO/HELO first",
);
/// `503 5.5.1`: LMTP before LHLO (RFC 2033 §4.1).
pub(crate) const SEND_LHLO: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Send LHLO first",
);
/// `503 5.5.1`: MAIL inside a transaction (RFC 5321 §4.1.1.2, §3.3).
pub(crate) const NESTED_MAIL: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Nested MAIL command",
);
/// `503 5.5.1`: RCPT, DATA or BDAT outside a transaction (RFC 5321 §3.3).
pub(crate) const NEED_MAIL: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Need MAIL command",
);
/// `503 5.5.1`: DATA or BDAT before any RCPT (RFC 5321 §3.3).
pub(crate) const NEED_RCPT: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Need RCPT command",
);
/// `554 5.5.1`: DATA or BDAT after every RCPT was refused (RFC 5321 §3.3
/// allows 503 or "554 no valid recipients"; Postfix uses 554).
pub(crate) const NO_VALID_RECIPIENTS: Canned = canned(
    ReplyCode::TRANSACTION_FAILED,
    Esc::INVALID_COMMAND,
    "No valid recipients",
);
/// `503 5.5.1`: DATA after BDAT in one transaction (RFC 3030 §2).
pub(crate) const DATA_AFTER_BDAT: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "DATA not allowed after BDAT",
);
/// `503 5.5.1`: DATA for a `BODY=BINARYMIME` transaction (RFC 3030 §3).
pub(crate) const BINARYMIME_NEEDS_BDAT: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "BINARYMIME requires BDAT",
);
/// `503 5.5.1`: STARTTLS under TLS (RFC 3207 §4.2: offered only once).
pub(crate) const TLS_ACTIVE: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "TLS already active",
);
/// `503 5.5.1`: STARTTLS or AUTH inside a transaction (RFC 4954 §4: "The
/// AUTH command is not permitted during a mail transaction").
pub(crate) const IN_TRANSACTION: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Not permitted during a mail transaction",
);
/// `503 5.5.1`: AUTH after a successful AUTH (RFC 4954 §4).
pub(crate) const ALREADY_AUTHENTICATED: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "Already authenticated",
);
/// `503 5.5.1`: anything but QUIT after a `554` greeting (RFC 5321 §3.1).
pub(crate) const NO_SERVICE: Canned = canned(
    ReplyCode::BAD_SEQUENCE,
    Esc::INVALID_COMMAND,
    "No SMTP service here",
);
/// `555 5.5.4`: a MAIL/RCPT parameter not offered or unknown (RFC 5321
/// §4.1.1.11; RFC 3463 §3.6 X.5.4 invalid command arguments).
pub(crate) const PARAMETER_NOT_OFFERED: Canned = canned(
    ReplyCode::PARAMETERS_NOT_RECOGNIZED,
    Esc::INVALID_ARGUMENTS,
    "Parameter not recognized or not implemented",
);
/// `552 5.3.4`: declared SIZE above the limit (RFC 1870 §6.1).
pub(crate) const SIZE_EXCEEDS_LIMIT: Canned = canned(
    ReplyCode::EXCEEDED_STORAGE,
    Esc::MESSAGE_TOO_BIG,
    "Message size exceeds fixed maximum message size",
);
/// `552 5.3.4`: actual content above the limit (RFC 5321 §4.5.3.1.10, RFC
/// 1870 §6.3).
pub(crate) const MESSAGE_TOO_BIG: Canned = canned(
    ReplyCode::EXCEEDED_STORAGE,
    Esc::MESSAGE_TOO_BIG,
    "Message too big",
);
/// `452 4.5.3`: recipient limit reached (RFC 5321 §4.5.3.1.10: "MUST use a
/// response code of 452").
pub(crate) const TOO_MANY_RECIPIENTS: Canned = canned(
    ReplyCode::INSUFFICIENT_STORAGE,
    Esc::TOO_MANY_RECIPIENTS_TEMPORARY,
    "Too many recipients",
);
/// `553 5.6.7`: a non-ASCII address without the SMTPUTF8 parameter (RFC
/// 6531 §3.7.4.1, enhanced code X.6.7 from RFC 5248).
pub(crate) const SMTPUTF8_REQUIRED: Canned = canned(
    ReplyCode::MAILBOX_NAME_NOT_ALLOWED,
    Esc::NON_ASCII_ADDRESS_NOT_PERMITTED,
    "Non-ASCII address requires SMTPUTF8",
);
/// `530 5.7.0`: MAIL before AUTH where AUTH is required (RFC 4954 §6).
pub(crate) const AUTH_REQUIRED: Canned = canned(
    ReplyCode::AUTH_REQUIRED,
    Esc::SECURITY_POLICY,
    "Authentication required",
);
/// `530 5.7.0`: a mail or authentication command before STARTTLS where
/// TLS is required (RFC 3207 §4: "530 Must issue a STARTTLS command
/// first"; Postfix's `smtpd_tls_security_level = encrypt` says the same).
pub(crate) const STARTTLS_REQUIRED: Canned = canned(
    ReplyCode::AUTH_REQUIRED,
    Esc::SECURITY_POLICY,
    "Must issue a STARTTLS command first",
);
/// `538 5.7.11`: AUTH before TLS where TLS is required (RFC 4954 §6).
pub(crate) const ENCRYPTION_REQUIRED: Canned = canned(
    code(538),
    Esc::ENCRYPTION_REQUIRED,
    "Encryption required for requested authentication mechanism",
);
/// `504 5.5.4`: a SASL mechanism not offered (RFC 4954 §4).
pub(crate) const UNKNOWN_MECHANISM: Canned = canned(
    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
    Esc::INVALID_ARGUMENTS,
    "Unrecognized authentication type",
);
/// `501 5.7.0`: the client cancelled the exchange with `*` (RFC 4954 §4:
/// "it MUST reject the AUTH command by sending a 501 reply").
pub(crate) const AUTH_CANCELLED: Canned = canned(
    ReplyCode::PARAMETER_SYNTAX_ERROR,
    Esc::SECURITY_POLICY,
    "Authentication cancelled",
);
/// `501 5.5.2`: a SASL response that is not base64 (RFC 4954 §4: "501 ...
/// enhanced status code of 5.5.2").
pub(crate) const BAD_BASE64: Canned = canned(
    ReplyCode::PARAMETER_SYNTAX_ERROR,
    Esc::SYNTAX_ERROR,
    "Cannot decode base64 response",
);
/// `501 5.5.2`: a PLAIN or LOGIN response that does not follow RFC 4616
/// (two NULs, non-empty identity and password, UTF-8).
pub(crate) const BAD_CREDENTIALS_FORMAT: Canned = canned(
    ReplyCode::PARAMETER_SYNTAX_ERROR,
    Esc::SYNTAX_ERROR,
    "Malformed authentication response",
);
/// `550 5.5.2`: a DATA message with a bare CR or LF, refused at its real
/// end (Postfix's `smtpd_forbid_bare_newline = reject` answers
/// `550 5.5.2 ... bare <LF> received`).
pub(crate) const BARE_LINE_ENDING: Canned = canned(
    ReplyCode::MAILBOX_UNAVAILABLE,
    Esc::SYNTAX_ERROR,
    "Message refused: bare CR or LF received",
);

/// `550 5.6.0`: a message with a NUL (RFC 2045 §2.7–2.8: not in 7bit or
/// 8bit data; RFC 3463 X.6.0 other media error), refused at its real end
/// like a bare line ending.
pub(crate) const NUL_RECEIVED: Canned = canned(
    ReplyCode::MAILBOX_UNAVAILABLE,
    esc(5, 6, 0),
    "Message refused: NUL received",
);
/// `554 5.5.0`: the client sent on where it had to wait for a reply
/// (RFC 2920 §3.1; Postfix's `smtpd_forbid_unauth_pipelining` text); the
/// connection closes after it.
pub(crate) const SYNCHRONIZATION: Canned = canned(
    code(554),
    esc(5, 5, 0),
    "Error: SMTP protocol synchronization",
);

/// `421` texts, which start with the hostname (RFC 5321 §4.2: "421
/// \<domain\> Service not available").
pub(crate) struct Closing {
    pub(crate) status: Esc,
    pub(crate) text: &'static str,
}

/// `421 4.4.2`: idle timeout (RFC 5321 §4.5.3.2.7; RFC 3463 X.4.2 bad
/// connection; Postfix "Error: timeout exceeded").
pub(crate) const TIMEOUT: Closing = Closing {
    status: Esc::BAD_CONNECTION,
    text: "Error: timeout exceeded",
};
/// `421 4.7.0`: the hard error limit (Postfix `smtpd_hard_error_limit`).
pub(crate) const TOO_MANY_ERRORS: Closing = Closing {
    status: Esc::SECURITY_TEMPORARY,
    text: "Error: too many errors",
};
/// `421 4.3.2`: the application shuts down (RFC 3463 X.3.2 system not
/// accepting network messages).
pub(crate) const SHUTDOWN: Closing = Closing {
    status: esc(4, 3, 2),
    text: "Service shutting down",
};

/// Appends one reply line: `code [status] text CRLF`.
fn put(out: &mut Vec<u8>, code: ReplyCode, status: Option<Esc>, parts: &[&[u8]]) {
    out.extend_from_slice(&code.to_ascii());
    out.push(b' ');
    if let Some(status) = status {
        status.encode(out);
        out.push(b' ');
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a canned reply.
pub(crate) fn write(out: &mut Vec<u8>, canned: Canned, enhanced: bool) {
    let status = canned.status.filter(|_| enhanced);
    put(out, canned.code, status, &[canned.text.as_bytes()]);
}

/// Appends `421 [status] <hostname> text`.
pub(crate) fn write_closing(out: &mut Vec<u8>, closing: &Closing, hostname: &str, enhanced: bool) {
    let status = Some(closing.status).filter(|_| enhanced);
    put(
        out,
        ReplyCode::SERVICE_NOT_AVAILABLE,
        status,
        &[hostname.as_bytes(), b" ", closing.text.as_bytes()],
    );
}

/// Appends `221 [2.0.0] <hostname> Service closing transmission channel`
/// (RFC 5321 §4.2.2).
pub(crate) fn write_quit(out: &mut Vec<u8>, hostname: &str, enhanced: bool) {
    let status = Some(Esc::SUCCESS).filter(|_| enhanced);
    put(
        out,
        ReplyCode::SERVICE_CLOSING,
        status,
        &[
            hostname.as_bytes(),
            b" Service closing transmission channel",
        ],
    );
}

/// Appends `250 [2.0.0] <n> octets received` for a BDAT chunk (RFC 3030 §2).
pub(crate) fn write_chunk_ok(out: &mut Vec<u8>, size: u64, enhanced: bool) {
    let status = Some(Esc::SUCCESS).filter(|_| enhanced);
    put(
        out,
        ReplyCode::OK,
        status,
        &[size.to_string().as_bytes(), b" octets received"],
    );
}

/// Appends the default greeting `220 <hostname> ESMTP|LMTP` (RFC 5321
/// §4.3.1; no enhanced code, RFC 2034 §3).
pub(crate) fn write_greeting(out: &mut Vec<u8>, hostname: &str, lmtp: bool) {
    let proto: &[u8] = if lmtp { b" LMTP" } else { b" ESMTP" };
    put(
        out,
        ReplyCode::SERVICE_READY,
        None,
        &[hostname.as_bytes(), proto],
    );
}

/// Appends `250 <hostname>`: the HELO reply (RFC 5321 §4.1.1.1).
pub(crate) fn write_helo(out: &mut Vec<u8>, hostname: &str) {
    put(out, ReplyCode::OK, None, &[hostname.as_bytes()]);
}

/// Appends a `334` SASL challenge, base64-encoded (RFC 4954 §4).
pub(crate) fn write_challenge(out: &mut Vec<u8>, challenge: &[u8]) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(challenge);
    put(out, ReplyCode::AUTH_CHALLENGE, None, &[encoded.as_bytes()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_replies_encode_with_and_without_enhanced_codes() {
        let mut out = Vec::new();
        write(&mut out, NEED_MAIL, true);
        write(&mut out, NEED_MAIL, false);
        write(&mut out, DATA_GO, true);
        assert_eq!(
            out,
            b"503 5.5.1 Need MAIL command\r\n503 Need MAIL command\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn enhanced_classes_match_reply_classes() {
        for c in [
            HELP,
            OK,
            MAIL_OK,
            RCPT_OK,
            MESSAGE_OK,
            CANNOT_VERIFY,
            TLS_GO,
            AUTH_OK,
            UNKNOWN_COMMAND,
            LINE_TOO_LONG,
            BARE_LINE_ENDING_COMMAND,
            AUTH_LINE_TOO_LONG,
            NOT_IMPLEMENTED,
            SEND_EHLO,
            SEND_LHLO,
            NESTED_MAIL,
            NEED_MAIL,
            NEED_RCPT,
            NO_VALID_RECIPIENTS,
            DATA_AFTER_BDAT,
            BINARYMIME_NEEDS_BDAT,
            TLS_ACTIVE,
            IN_TRANSACTION,
            ALREADY_AUTHENTICATED,
            NO_SERVICE,
            PARAMETER_NOT_OFFERED,
            SIZE_EXCEEDS_LIMIT,
            MESSAGE_TOO_BIG,
            TOO_MANY_RECIPIENTS,
            SMTPUTF8_REQUIRED,
            AUTH_REQUIRED,
            ENCRYPTION_REQUIRED,
            UNKNOWN_MECHANISM,
            AUTH_CANCELLED,
            BAD_BASE64,
            BAD_CREDENTIALS_FORMAT,
            BARE_LINE_ENDING,
            SYNCHRONIZATION,
            NUL_RECEIVED,
        ] {
            if let Some(status) = c.status {
                assert_eq!(status.class(), c.code.first_digit(), "{}", c.text);
            }
            assert!(!c.text.contains(['\r', '\n', '\0']));
            // Each must be a valid reply for the codec.
            let mut out = Vec::new();
            write(&mut out, c, true);
            assert!(crate::reply::Reply::parse(&out).is_ok_and(|r| r.is_some()));
        }
    }
}
