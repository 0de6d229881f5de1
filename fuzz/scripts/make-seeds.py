#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/) from RFC 5321 examples and
the sessions of the transcript tests (tests/tests/server_*.rs).

Byte-input targets get the bytes themselves. The session targets take
`arbitrary` structures; for them this script writes the byte encoding that
arbitrary 1.x decodes into the intended value (integers little-endian, bool
= low bit of a byte, Option = bool then value, Vec = a "keep going" bool
before each element then a false, enum = u32 tag scaled by the variant
count). Check a seed with `cargo +nightly fuzz fmt TARGET FILE`."""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")

SEEDS = {
    "command_parse": [
        b"EHLO client.example",
        b"HELO [192.0.2.1]",
        b"LHLO [IPv6:2001:db8::1]",
        b"MAIL FROM:<Smith@bar.com> SIZE=1000 BODY=8BITMIME",
        b"MAIL FROM:<> RET=HDRS ENVID=QQ314159 AUTH=<>",
        b"MAIL FROM:<@a.example,@b.example:jo@c.example> SMTPUTF8 REQUIRETLS",
        b"RCPT TO:<Jones@foo.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Jones@foo.com",
        b"RCPT TO:<\"quoted\\ local\"@example.org>",
        b"RCPT TO:<Postmaster>",
        b"DATA",
        b"BDAT 86 LAST",
        b"BDAT 0",
        b"AUTH PLAIN AHRlc3QAdGVzdA==",
        b"AUTH LOGIN",
        b"STARTTLS",
        b"VRFY Smith",
        b"EXPN Example-People",
        b"HELP mail",
        b"NOOP",
        b"RSET",
        b"QUIT",
    ],
    "reply_parse": [
        b"220 foo.com Simple Mail Transfer Service Ready\r\n",
        b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        b"250 2.1.5 OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        b"550 No such user here\r\n",
        b"334 VXNlcm5hbWU6\r\n",
        b"421 4.3.2 Service not available, closing transmission channel\r\n",
        b"250-first\r\n250 \r\n",
        b"553-a\r\n553-b\r\n553 5.1.8 c\r\n",
    ],
    "ehlo_parse": [
        b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE 10240000\r\n250-DSN\r\n250 HELP\r\n",
        b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n",
        b"250-mx.example\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250-AUTH=LOGIN\r\n250-LIMITS RCPTMAX=100 MAILMAX=10\r\n250-MT-PRIORITY MIXER\r\n250-DELIVERBY 240\r\n250-FUTURERELEASE 604800 2026-12-31T00:00:00Z\r\n250 REQUIRETLS\r\n",
        b"250-smtp-sink.example\r\n250-PIPELINING\r\n250-XCLIENT NAME\r\n250 \r\n",
        b"250 mx.example\r\n",
    ],
    "address_parse": [
        b"<Smith@bar.com>",
        b"<>",
        b"<Postmaster>",
        b"<@hosta.int,@jkl.org:userc@d.bar.org>",
        b"<\"quoted\\ local\"@example.org>",
        b"<user@[192.0.2.1]>",
        b"<user@[IPv6:2001:db8::1]>",
        "<j\u00f6rg@b\u00fccher.example>".encode(),
        b"Smith@bar.com",
        b"sub.example.org",
    ],
}



def u8(n):
    return bytes([n & 0xFF])


def u16(n):
    return (n & 0xFFFF).to_bytes(2, "little")


def boolean(b):
    return b"\x01" if b else b"\x00"


def option(value):
    return b"\x00" if value is None else b"\x01" + value


def vec(items):
    return b"".join(b"\x01" + i for i in items) + b"\x00"


def bytestring(data):
    return vec([bytes([b]) for b in data])


def variant(i, n):
    """The u32 tag that arbitrary's derive maps to variant `i` of `n`."""
    tag = (i * 2**32 + n - 1) // n
    assert (tag * n) >> 32 == i
    return tag.to_bytes(4, "little")


# ---- server_session: (Setup, Vec<Step>) ------------------------------------
S_STEPS = 8  # Input, Commands, Answer, Defer, ShortWrite, Elapse, TlsEstablished, Eof
ANSWERS = 5  # Accept, Refuse(bool), Close, Challenge, AuthOk


def s_setup(lmtp=False, starttls=None, auth=False, chunking=False, max_size=None):
    return (boolean(lmtp) + option(None if starttls is None else boolean(starttls))
            + boolean(auth) + boolean(chunking)
            + option(None if max_size is None else u16(max_size)))


def s_input(data):
    return variant(0, S_STEPS) + bytestring(data)


def s_answer(kind=0, temp=False):
    body = variant(kind, ANSWERS) + (boolean(temp) if kind == 1 else b"")
    return variant(2, S_STEPS) + body


def s_tls():
    return variant(6, S_STEPS)


def s_eof():
    return variant(7, S_STEPS)


def server(setup, *steps):
    return setup + vec(list(steps))


ACCEPT = s_answer(0)
SERVER_SEEDS = [
    # RFC 5321 D.1, pipelined where the client may.
    server(s_setup(),
           s_input(b"EHLO bar.com\r\n"),
           s_input(b"MAIL FROM:<Smith@bar.com>\r\n"), ACCEPT,
           s_input(b"RCPT TO:<Jones@foo.com>\r\nRCPT TO:<Green@foo.com>\r\n"), ACCEPT,
           s_answer(1), s_input(b"DATA\r\n"), ACCEPT,
           s_input(b"Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n"), ACCEPT,
           s_input(b"QUIT\r\n")),
    # server_basic: HELO, SIZE refused without EHLO, NOOP, VRFY, RSET.
    server(s_setup(max_size=100),
           s_input(b"HELO client.example\r\nMAIL FROM:<a@example.org> SIZE=10\r\n"),
           s_input(b"NOOP\r\nVRFY Crispin\r\nRSET\r\nMAIL FROM:<>\r\n"), ACCEPT,
           s_input(b"RCPT TO:<Postmaster>\r\nDATA\r\n"), ACCEPT, ACCEPT,
           s_input(b"..dot\r\n.\r\n"), s_answer(1, True), s_eof()),
    # CHUNKING: BDAT chunks and LAST.
    server(s_setup(chunking=True),
           s_input(b"EHLO c.example\r\nMAIL FROM:<a@example.org> BODY=BINARYMIME\r\n"), ACCEPT,
           s_input(b"RCPT TO:<b@example.net>\r\nBDAT 5\r\nhelloBDAT 3 LAST\r\nbye"), ACCEPT,
           ACCEPT, ACCEPT, s_input(b"QUIT\r\n")),
    # STARTTLS, with a pipelined (injected) command after it.
    server(s_setup(starttls=True, auth=True),
           s_input(b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<evil@example.org>\r\n"),
           s_tls(), s_input(b"EHLO c.example\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
           s_answer(4), s_input(b"AUTH LOGIN\r\n"), s_answer(3), s_input(b"YWxpY2U=\r\n")),
    # SMTP smuggling: bare line endings around the dot (server_security).
    server(s_setup(lmtp=True),
           s_input(b"LHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                   b"RCPT TO:<c@example.net>\r\nDATA\r\n"), ACCEPT, ACCEPT, ACCEPT, ACCEPT,
           s_input(b"x\n.\nMAIL FROM:<evil@example.org>\r\nx\r.\r\nx\r\n.\n\r\n.\r\n"),
           ACCEPT, s_answer(1)),
]

# ---- client_session: (Setup, Vec<Step>) ------------------------------------
C_STEPS = 8  # Raw, Reply, Ehlo, TlsDone, ShortWrite, App, Elapse, Eof
CODE = {"220": 0, "250": 1, "354": 2, "334": 3, "334u": 4, "235": 5, "221": 6, "421": 7,
        "450": 8, "452": 9, "500": 10, "502": 11, "530": 12, "535": 13, "550": 14, "554": 15}
EXT = {"PIPELINING": 0, "CHUNKING": 1, "STARTTLS": 2, "AUTH": 3, "8BITMIME": 4, "SIZE": 5,
       "SMTPUTF8": 6, "DSN": 7, "ENHANCEDSTATUSCODES": 8}


def c_setup(lmtp=False, pipelining=True, data_only=False, tls=0, discard=False, auth=None,
            normalize=False, body_buffer=4096, bdat_chunk=1024, recipients=1, messages=0,
            writes=(), body=b""):
    a = None
    if auth is not None:
        a = b"".join(boolean(auth.get(k, False))
                     for k in ("password", "oauth", "sasl", "allow_plaintext", "respond"))
    return (boolean(lmtp) + boolean(pipelining) + boolean(data_only) + u8(tls) + boolean(discard)
            + option(a) + boolean(normalize) + u16(body_buffer) + u16(bdat_chunk)
            + u8(recipients) + u8(messages) + bytestring(bytes(writes)) + bytestring(body))


def c_raw(data):
    return variant(0, C_STEPS) + bytestring(data)


def c_reply(code, multiline=False):
    return variant(1, C_STEPS) + u8(CODE[code]) + boolean(multiline)


def c_ehlo(*exts):
    bits = 0
    for e in exts:
        bits |= 1 << EXT[e]
    return variant(2, C_STEPS) + u16(bits)


def c_tls():
    return variant(3, C_STEPS)


def client(setup, *steps):
    return setup + vec(list(steps))


RFC_BODY = b"Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n"
CLIENT_SEEDS = [
    # RFC 5321 D.1 from the server's side, lock-step, three recipients, DATA.
    client(c_setup(pipelining=False, recipients=2, body=RFC_BODY, writes=[7, 30]),
           c_raw(b"220 foo.com Simple Mail Transfer Service Ready\r\n"),
           c_raw(b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n"),
           c_raw(b"250 OK\r\n"), c_raw(b"250 OK\r\n"), c_raw(b"550 No such user here\r\n"),
           c_raw(b"250 OK\r\n"),
           c_raw(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"), c_raw(b"250 OK\r\n"),
           c_raw(b"221 foo.com Service closing transmission channel\r\n")),
    # PIPELINING and CHUNKING: MAIL, RCPT and BDAT LAST answered in one read.
    client(c_setup(body=b"Subject: hi\r\n\r\nhello\r\n", bdat_chunk=8),
           c_reply("220"), c_ehlo("PIPELINING", "CHUNKING", "8BITMIME"),
           c_raw(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 chunk\r\n250 2.0.0 chunk\r\n"
                 b"250 2.0.0 chunk\r\n250 2.0.0 queued\r\n"), c_reply("221")),
    # Opportunistic STARTTLS with a simulated handshake, then AUTH PLAIN.
    client(c_setup(tls=1, auth={"password": True}, body=b"hi\r\n.\r\n", data_only=True),
           c_reply("220"), c_ehlo("STARTTLS", "PIPELINING"), c_reply("220"), c_tls(),
           c_ehlo("AUTH", "PIPELINING"), c_reply("235"), c_reply("250"), c_reply("250"),
           c_reply("354"), c_reply("250"), c_reply("221")),
    # Required STARTTLS, and a server that injects a reply after its 220.
    client(c_setup(tls=2, discard=False, body=b"x"),
           c_reply("220"), c_ehlo("STARTTLS"),
           c_raw(b"220 go ahead\r\n250 injected\r\n"), c_tls(), c_ehlo()),
    # LMTP: one final reply per accepted recipient; a SASL mechanism.
    client(c_setup(lmtp=True, recipients=3, tls=0,
                   auth={"sasl": True, "allow_plaintext": True, "respond": True},
                   body=b"a\r\n..b\r\n"),
           c_reply("220"), c_ehlo("AUTH", "PIPELINING"), c_reply("334u"), c_reply("235"),
           c_raw(b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n"),
           c_raw(b"250 2.0.0 r0 ok\r\n452 4.2.2 r2 full\r\n")),
    # The first crash (tests/tests/fuzz_regressions.rs): implicit TLS,
    # pipelined BDAT, and a final reply whose first bytes ("250 \x01")
    # arrive before BDAT LAST is written.
    client(c_setup(tls=3, discard=True, normalize=True, body_buffer=266, bdat_chunk=269,
                   recipients=10, messages=1, body=b"\n"),
           c_reply("220"), c_ehlo("PIPELINING", "CHUNKING", "8BITMIME"), c_raw(b"250 lo\r\n"),
           c_reply("220"), c_ehlo("PIPELINING", "CHUNKING", "8BITMIME"),
           c_raw(b"250 \r\n250 \x01"), c_reply("220")),
]

# ---- framer, dot_stuffing: byte strings and cut lists ---------------------
def framer(limit, cuts, data):
    return u16(limit) + vec([u16(c) for c in cuts]) + bytestring(data)


FRAMER_SEEDS = [
    framer(512, [5, 9], b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n"),
    framer(16, [3], b"a line longer than sixteen octets\r\nshort\r\n"),
    framer(64, [1, 1, 1], b"bare\nlf\r\nbare\rcr\r\n\r\r\n"),
]


def dot(body, stuff_cuts, unstuff_cuts):
    return bytestring(body) + bytestring(bytes(stuff_cuts)) + bytestring(bytes(unstuff_cuts))


DOT_SEEDS = [
    dot(RFC_BODY, [5, 17], [3, 200]),
    dot(b".\r\n..\r\n\r\n.\r\n", [1, 1, 1], [2, 2]),
    dot(b"x\n.\nMAIL FROM:<evil@example.org>\r\nx\r.\r\n", [4], [1]),
    dot(b"", [], []),
]


# ---- mx_decode: a seed byte, then a DNS response ------------------------
def dns_name(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def dns_response(qid, rcode, answers, qname="example.org", qtype=15):
    header = (qid.to_bytes(2, "big") + (0x8180 | rcode).to_bytes(2, "big")
              + (1).to_bytes(2, "big") + len(answers).to_bytes(2, "big") + b"\x00\x00\x00\x00")
    question = dns_name(qname) + qtype.to_bytes(2, "big") + b"\x00\x01"
    return header + question + b"".join(answers)


def mx_record(pref, exchange):
    rdata = pref.to_bytes(2, "big") + dns_name(exchange)
    return (b"\xc0\x0c\x00\x0f\x00\x01" + (3600).to_bytes(4, "big")
            + len(rdata).to_bytes(2, "big") + rdata)


def a_record(ip):
    return (b"\xc0\x0c\x00\x01\x00\x01" + (300).to_bytes(4, "big") + b"\x00\x04" + bytes(ip))


MX_SEEDS = [
    b"\x07" + dns_response(0x1234, 0, [mx_record(10, "mx1.example.org"),
                                        mx_record(10, "mx2.example.org"),
                                        mx_record(20, "backup.example.net")]),
    b"\x00" + dns_response(0x0001, 0, [mx_record(0, ".")]),  # RFC 7505 null MX
    b"\x01" + dns_response(0xBEEF, 3, []),  # NXDOMAIN
    b"\x02" + dns_response(0x4242, 0, [a_record([192, 0, 2, 1])], qname="mx.example.org", qtype=1),
]

# ---- command_roundtrip, reply_roundtrip: values with strings ---------------
# A String's length is read from the *end* of the remaining data (one byte
# while at most 256 bytes remain), its bytes from the front; the last field
# of the top-level value takes all the rest. `Enc` keeps both ends.
class Enc:
    def __init__(self):
        self.front = b""
        self.back = b""

    def raw(self, b):
        self.front += b
        return self

    def string(self, text):
        data = text.encode()
        self.front += data
        self.back = bytes([len(data)]) + self.back
        return self

    def done(self):
        out = self.front + self.back
        assert len(out) <= 256, "keep seeds short: one-byte lengths"
        return out


SHAPES = 15  # Helo Ehlo Lhlo Mail Rcpt Data Rset Quit StartTls Vrfy Expn Help Noop Auth Bdat
COMMAND_RT_SEEDS = [
    variant(1, SHAPES) + b"client.example",
    Enc().raw(variant(3, SHAPES) + b"\x01").string("Smith").string("bar.com")
    .raw(option((1000).to_bytes(8, "little")) + u8(2) + boolean(False)
         + option(boolean(True)) + b"\x01").string("QQ314159").raw(boolean(True)).done(),
    Enc().raw(variant(4, SHAPES) + b"\x01").string("Jones").string("foo.com")
    .raw(option(boolean(True) + boolean(True) + boolean(False))).done(),
    Enc().raw(variant(13, SHAPES)).string("PLAIN")
    .raw(option(bytestring(b"\x00alice\x00secret"))).done(),
    variant(14, SHAPES) + (86).to_bytes(8, "little") + boolean(True),
    Enc().raw(variant(11, SHAPES) + b"\x01").string("mail").done(),
]


def reply_rt(code, enhanced, lines):
    e = Enc().raw(u16(code - 200) + option(None if enhanced is None
                                             else u16(enhanced[0]) + u16(enhanced[1])))
    for line in lines:
        e.raw(b"\x01").string(line)
    return e.raw(b"\x00").done()


REPLY_RT_SEEDS = [
    reply_rt(250, None, ["foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"]),
    reply_rt(550, (1, 1), ["No such user here"]),
    reply_rt(354, None, ["Start mail input; end with <CRLF>.<CRLF>"]),
    reply_rt(221, (0, 0), [""]),
]

# DKIM: RFC 8463 Appendix A (both signatures, both key records), and fields
# with every tag. dkim_verify's input is five control bytes, an arbitrary
# key record, then the message (see the target's doc): answers 0x84 give
# the RFC's first question (brisbane) the Ed25519 record of the RFC's seed,
# the second (test) the RFC's RSA record, so both signatures pass.
RFC8463_ED_SIG = (
    b" v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
)
RFC8463_RSA_SIG = (
    b" v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
)
RFC8463_MESSAGE = (
    b"DKIM-Signature:" + RFC8463_ED_SIG + b"DKIM-Signature:" + RFC8463_RSA_SIG +
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
RFC8463_ED_RECORD = b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_RSA_RECORD = (
    b"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQ"
    b"iY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+"
    b"2kryOTIKT+l/K4w3QIDAQAB"
)


def dkim_verify(answers, chunk, time, record, message):
    return bytes([answers, chunk, time]) + len(record).to_bytes(2, "big") + record + message


SEEDS["dkim_signature_parse"] = [
    RFC8463_ED_SIG,
    RFC8463_RSA_SIG,
    b"v=1; a=rsa-sha256; c=relaxed/simple; d=Example.ORG; s=sel; t=100; x=200;"
    b" i=jo=3Be@mail.example.org; l=12; q=dns/txt; h=From : To:subject;"
    b" z=From:a|To:b; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAEC\r\n AwQF; x-future=tag",
]
SEEDS["dkim_key_record"] = [
    RFC8463_ED_RECORD,
    RFC8463_RSA_RECORD,
    b"v=DKIM1; k=rsa; t=y:s; h=sha256:sha1; s=email:*; n=notes; p=",
    b"p=MIIBCgKCAQEAvGarbage==",
]
SEEDS["dkim_verify"] = [
    dkim_verify(0x84, 0, 0, b"", RFC8463_MESSAGE),
    dkim_verify(0x84, 7, 0, b"", RFC8463_MESSAGE),
    dkim_verify(0x0f, 1, 200, RFC8463_ED_RECORD, RFC8463_MESSAGE),
    dkim_verify(0x84, 0, 0, b"", RFC8463_MESSAGE.replace(b"hungry yet", b"hungry now")),
    dkim_verify(0x08, 0, 0, b"", RFC8463_MESSAGE.replace(b"Is dinner", b"Is lunch")),
]

SEEDS["command_roundtrip"] = COMMAND_RT_SEEDS
SEEDS["reply_roundtrip"] = REPLY_RT_SEEDS
SEEDS["framer"] = FRAMER_SEEDS
SEEDS["dot_stuffing"] = DOT_SEEDS
SEEDS["mx_decode"] = MX_SEEDS
SEEDS["server_session"] = SERVER_SEEDS
SEEDS["client_session"] = CLIENT_SEEDS

for target, seeds in SEEDS.items():
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for seed in seeds:
        name = "seed-" + hashlib.sha1(seed).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(seed)
    print(f"{target}: {len(seeds)} seeds")
