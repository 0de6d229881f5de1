"""Runs pyspf (the SPF reference implementation) over zones held in memory.

Reads one JSON document on stdin:

    {"zone": {"name": [["TXT", "v=spf1 ..."], ["A", "192.0.2.1"],
                       ["MX", "mx.example"], ["PTR", "host.example"],
                       ["AAAA", "2001:db8::1"], ["TIMEOUT", ""]], ...},
     "cases": [{"ip": "192.0.2.1", "sender": "user@example", "helo": "h.example"}, ...]}

and writes one JSON line per case: [result, explanation-or-null]. Names not
in the zone are NXDOMAIN; a name whose list has a TIMEOUT entry times out
for every type, as in the suite's own driver. The explanation is null
unless the result is fail and the domain's exp= gave one.
"""
import json
import socket
import sys

import spf

ZONE = {}


def lookup(name, qtype, strict=True, timeout=None, level=0):
    name = name.rstrip('.').lower()
    if any(len(label) > 63 for label in name.split('.')):
        raise spf.TempError('DNS label too long')
    records = ZONE.get(name)
    if records is None:
        return
    for rtype, value in records:
        if rtype == 'TIMEOUT':
            raise spf.TempError('DNS timeout')
    for rtype, value in records:
        if rtype != qtype:
            continue
        if rtype == 'AAAA':
            value = bytes(socket.inet_pton(socket.AF_INET6, value))
        elif rtype == 'TXT':
            value = (value.encode('utf-8'),)
        elif rtype == 'MX':
            value = (0, value)
        yield ((name, rtype), value)


spf.DNSLookup = lookup


def main():
    global ZONE
    doc = json.load(sys.stdin)
    ZONE = {k.lower(): v for k, v in doc['zone'].items()}
    out = []
    for case in doc['cases']:
        q = spf.query(i=case['ip'], s=case['sender'], h=case['helo'], strict=True)
        q.set_default_explanation('DEFAULT')
        result, _code, exp = q.check()
        result = {'unknown': 'permerror', 'error': 'temperror'}.get(result, result)
        out.append([result, exp if result == 'fail' and exp != 'DEFAULT' else None])
    for line in out:
        sys.stdout.write(json.dumps(line) + '\n')


if __name__ == '__main__':
    main()
