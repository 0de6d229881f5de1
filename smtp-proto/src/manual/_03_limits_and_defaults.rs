//! # Limits and defaults of the server session
//!
//! Every buffer is bounded, every wait has a deadline, and every default
//! has a reason. The values live in [`server::Config`](crate::server::Config);
//! this page collects them.
//!
//! ## Sizes
//!
//! | what | default | why |
//! |---|---|---|
//! | command line | 2048 octets | RFC 5321 §4.5.3.1.4 sets 512 and lets extensions raise it; SIZE, DSN and AUTH= parameters do. Postfix uses 2048. Never below 512. |
//! | AUTH exchange line | 12288 octets | RFC 4954 §4. An over-long line fails the exchange with `500 5.5.6`. |
//! | over-long command | `500 5.5.2 Line too long` | RFC 5321 §4.5.3.1.10. The rest of the line is dropped as it arrives; the next line is read normally. |
//! | input buffer | 64 KiB | Holds pipelined commands and body bytes not yet handed out. When full, `wants_read()` is false: TCP flow control does the rest. |
//! | output buffer | 16 KiB | A client that does not read its replies stops being served instead of growing this queue. |
//! | message size | 10 240 000 octets, advertised as `SIZE` | Postfix's `message_size_limit`. Declared larger at MAIL: `552 5.3.4` (RFC 1870 §6.1). Actually larger: read to the end, then one `552 5.3.4`. |
//! | recipients | 100 per transaction | RFC 5321 §4.5.3.1.8: at least 100 MUST be accepted. More get `452 4.5.3` (§4.5.3.1.10). |
//!
//! The message body is never held: it streams out as `Event::Body` pieces.
//! After a large body the input buffer is shrunk back, so an idle session
//! holds a few KiB at most.
//!
//! ## Time
//!
//! | timer | default | source |
//! |---|---|---|
//! | next command | 5 min | RFC 5321 §4.5.3.2.7 (server timeout) |
//! | next content octets | 5 min | Postfix `smtpd_timeout`; the RFC's 3-minute "data block" bounds the client's own sends |
//! | replies not taken by the peer | 5 min | then the connection is dropped without a reply |
//! | TLS handshake | 1 min | |
//! | error delay | 1 s per error past the soft limit | Postfix `smtpd_error_sleep_time` |
//!
//! A timeout while reading sends `421 4.4.2 <host> Error: timeout
//! exceeded` and closes. Time only enters through the `now` arguments, so
//! tests run timeouts on a virtual clock.
//!
//! ## Errors
//!
//! Automatic refusals (unknown commands, syntax errors, bad sequences,
//! parameters not offered, over-long lines) count as errors. After 10
//! (Postfix's `smtpd_soft_error_limit`) each further error reply is held
//! back for the error delay — a sans-IO core cannot sleep, so it holds its
//! output, reads nothing, and asks to be woken at the deadline. At 20
//! (`smtpd_hard_error_limit`) the server answers `421 4.7.0 <host> Error:
//! too many errors` and closes. Refusals chosen by the application are its
//! policy, not the client's protocol errors, and do not count.
//!
//! ## What is offered by default
//!
//! `PIPELINING`, `8BITMIME`, `SMTPUTF8`, `ENHANCEDSTATUSCODES`, `CHUNKING`
//! and `SIZE`. `DSN` (it promises notifications the application must send),
//! `BINARYMIME` and `REQUIRETLS` are off. `STARTTLS` is off because the core
//! cannot know whether the transport has a certificate. `AUTH` is off (no
//! mechanisms), and when configured it is offered only under TLS unless
//! `require_tls` is cleared (RFC 4954 §4); before TLS it is answered
//! `538 5.7.11`.
//!
//! ## Reply codes the server chooses
//!
//! | situation | reply | source |
//! |---|---|---|
//! | unknown verb | `500 5.5.2` | RFC 5321 §4.2.4; RFC 3463 X.5.2 |
//! | bad arguments | `501` with the parser's enhanced code (5.5.2, 5.5.4, 5.1.7, 5.1.3) | RFC 5321 §4.2.2 |
//! | command known but not offered (`STARTTLS`, `AUTH`, `BDAT`) | `502 5.5.1` | RFC 5321 §4.2.4 |
//! | bad sequence (MAIL before EHLO, RCPT before MAIL, nested MAIL, DATA before RCPT, AUTH in a transaction or twice, STARTTLS under TLS) | `503 5.5.1` | RFC 5321 §3.3, §4.1.4; RFC 4954 §4; RFC 3207 |
//! | DATA/BDAT when every RCPT was refused | `554 5.5.1 No valid recipients` | RFC 5321 §3.3 |
//! | MAIL/RCPT parameter not offered or unknown | `555 5.5.4` | RFC 5321 §4.1.1.11 |
//! | non-ASCII address without `SMTPUTF8` | `553 5.6.7` | RFC 6531 §3.7.4.1 |
//! | MAIL without AUTH where required | `530 5.7.0` | RFC 4954 §6 |
//! | AUTH before TLS where TLS is required | `538 5.7.11` | RFC 4954 §6 |
//! | unknown SASL mechanism | `504 5.5.4` | RFC 4954 §4 |
//! | `*` during AUTH | `501 5.7.0` | RFC 4954 §4 |
//! | bad base64 during AUTH | `501 5.5.2` | RFC 4954 §4 |
//! | message with bare CR/LF (reject policy) | `550 5.5.2` | Postfix `smtpd_forbid_bare_newline = reject` |
//! | BDAT chunk | `250 2.0.0 <n> octets received` | RFC 3030 §2 |
//!
//! Enhanced status codes appear in automatic replies once the client sent
//! `EHLO`/`LHLO` and `ENHANCEDSTATUSCODES` is offered (RFC 2034 §3); the
//! greeting and the `EHLO` reply carry none. Replies the application gives
//! are sent exactly as given.
//!
//! ## Known limits of a sans-IO server
//!
//! - The error delay holds output instead of sleeping; the transport sees a
//!   `Wait` with the deadline.
//! - A `BDAT` line whose size cannot be parsed gets `501`; the octets that
//!   follow are then read as command lines (they come from the same client,
//!   so they can do nothing it could not do directly, and the error limit
//!   ends a stream of garbage).
//! - Nothing stops a client from pipelining commands that RFC 2920 says
//!   must end a group; Postfix's `smtpd_forbid_unauth_pipelining` is not
//!   implemented. Replies are still given strictly in order.
