"""Parses DMARC records and finds organizational domains with checkdmarc.

Reads one JSON document on stdin, {"records": [...], "domains": [...]},
and writes one JSON line per record — null when checkdmarc refuses it,
else {"p", "sp", "np", "adkim", "aspf", "rua"} (rua as the list of
addresses) — then one line per domain with its base (organizational)
domain. No DNS: the report-destination checks that checkdmarc makes for
rua/ruf addresses (MX records, external authorization) are replaced by
stubs that accept, so only the record's own syntax and values count.
"""
import json
import sys

import checkdmarc.dmarc as dmarc
from checkdmarc.utils import get_base_domain

dmarc.get_mx_records = lambda *args, **kwargs: [{"preference": 10, "hostname": "mx.example"}]
dmarc.verify_dmarc_report_destination = lambda *args, **kwargs: True


def main():
    doc = json.load(sys.stdin)
    for record in doc["records"]:
        try:
            parsed = dmarc.parse_dmarc_record(record, "example.org")
        except Exception:  # every refusal, whatever its class
            print("null")
            continue
        tags = parsed["tags"]
        out = {k: tags[k]["value"] for k in ("p", "sp", "np", "adkim", "aspf")}
        out["rua"] = [u["address"] for u in tags.get("rua", {}).get("value", [])]
        print(json.dumps(out))
    for domain in doc["domains"]:
        print(json.dumps(get_base_domain(domain)))


if __name__ == "__main__":
    main()
