#!/usr/bin/env python3
"""Drives dkimpy, the DKIM reference implementation, for the cross-checks in
tests/tests/dkim_dkimpy.rs.

    dkimpy_helper.py sign KEY.pem DOMAIN SELECTOR ALGORITHM CANON MESSAGE
        prints the DKIM-Signature field dkimpy makes for MESSAGE (a file);
        ALGORITHM is rsa-sha256 or ed25519-sha256, CANON e.g. relaxed/simple.
        KEY.pem: an RSA key in PKCS#1 PEM (what dkimpy reads), or an Ed25519
        key in PKCS#8 PEM (its seed is passed on to PyNaCl).
    dkimpy_helper.py verify MESSAGE NAME=RECORD...
        verifies every DKIM-Signature of MESSAGE, answering key lookups for
        NAME (e.g. sel._domainkey.example.org) with RECORD through dkimpy's
        dnsfunc; prints one line per signature, "pass" or "fail: why",
        and exits 0 only if all passed.
    dkimpy_helper.py batch JOBS RESULTS
        runs many of the above in one process (Python and dkimpy start up
        once). JOBS has one job per line, fields separated by tabs, binary
        fields in base64:
            sign <key pem, b64> <domain> <selector> <algorithm> <canon> <message, b64>
            verify <message, b64> <name>=<record, b64>...
        RESULTS gets one line per job:
            field <the DKIM-Signature field, b64>
            results <"pass" or "fail: why", one per signature, tab-separated>
            error <what went wrong>

No network: a name without a record is answered as NXDOMAIN.
"""

import base64
import logging
import re
import sys

import dkim


def signing_key(pem, algorithm):
    """The key as dkimpy's sign() takes it."""
    if algorithm == "ed25519-sha256":
        body = "".join(
            line for line in pem.splitlines() if line and not line.startswith("-----")
        )
        der = base64.b64decode(body)
        # PKCS#8 OneAsymmetricKey for Ed25519 (RFC 8410 §7): the 32-octet
        # seed ends the structure.
        return base64.b64encode(der[-32:])
    return pem.encode("ascii")


def sign(pem, domain, selector, algorithm, canon, message):
    header_canon, body_canon = canon.split("/")
    field = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        signing_key(pem, algorithm),
        signature_algorithm=algorithm.encode(),
        canonicalize=(header_canon.encode(), body_canon.encode()),
    )
    return field


def verify(message, records):
    """One "pass" or "fail: reason" per DKIM-Signature field, top first."""

    def dnsfunc(name, timeout=5):
        key = name.decode("ascii").rstrip(".").lower()
        record = records.get(key)
        return record.encode("ascii") if record is not None else None

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("dkimpy-helper")
    logger.setLevel(logging.DEBUG)
    logger.handlers = [Collect()]
    count = len(re.findall(rb"(?im)^dkim-signature\s*:", message.split(b"\r\n\r\n", 1)[0]))
    out = []
    for idx in range(count):
        messages.clear()
        try:
            ok = dkim.DKIM(message, logger=logger).verify(idx=idx, dnsfunc=dnsfunc)
            out.append("pass" if ok else "fail: " + (messages[-1] if messages else "signature did not verify"))
        except dkim.DKIMException as e:
            out.append("fail: " + str(e))
    return out


def clean(text):
    return re.sub(r"[\t\r\n]+", " ", text)


def batch(jobs_path, results_path):
    with open(jobs_path) as f:
        jobs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    results = []
    for job in jobs:
        try:
            if job[0] == "sign":
                pem = base64.b64decode(job[1]).decode("ascii")
                message = base64.b64decode(job[6])
                field = sign(pem, job[2], job[3], job[4], job[5], message)
                results.append("field " + base64.b64encode(field).decode())
            elif job[0] == "verify":
                message = base64.b64decode(job[1])
                records = {}
                for arg in job[2:]:
                    name, record = arg.split("=", 1)
                    records[name.rstrip(".").lower()] = base64.b64decode(record).decode("ascii")
                results.append("results " + "\t".join(clean(r) for r in verify(message, records)))
            else:
                results.append("error unknown job " + clean(job[0]))
        except Exception as e:  # reported per job, the batch goes on
            results.append("error " + clean("%s: %s" % (type(e).__name__, e)))
    with open(results_path, "w") as f:
        f.write("\n".join(results) + "\n")


def main(argv):
    if len(argv) == 8 and argv[1] == "sign":
        with open(argv[2]) as f:
            pem = f.read()
        with open(argv[7], "rb") as f:
            message = f.read()
        sys.stdout.buffer.write(sign(pem, argv[3], argv[4], argv[5], argv[6], message))
        return 0
    if len(argv) >= 3 and argv[1] == "verify":
        with open(argv[2], "rb") as f:
            message = f.read()
        records = dict(arg.split("=", 1) for arg in argv[3:])
        records = {k.rstrip(".").lower(): v for k, v in records.items()}
        lines = verify(message, records)
        print("\n".join(lines))
        return 0 if lines and all(line == "pass" for line in lines) else 1
    if len(argv) == 4 and argv[1] == "batch":
        batch(argv[2], argv[3])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
