#!/usr/bin/env python3
"""Client throughput: the `bulk-send` example (the smtp-mio delivery engine)
against Postfix's `smtp-source`, both delivering to one Postfix `smtp-sink`,
same load, alternating runs (A/B/A/B...) so that drift on a shared machine
hits both.

Load: M messages of L octets over S concurrent connections to the sink:

    ours: bulk-send --server 127.0.0.1:PORT --count M --concurrency S --size L --starttls off
    peer: smtp-source -d -s S -l L -m M 127.0.0.1:PORT

smtp-source keeps each session's connection (`-d`) and is lock-step (no
PIPELINING); bulk-send pipelines MAIL/RCPT/DATA (smtp-sink offers
PIPELINING) and, with the engine's default, QUITs and reconnects every 100
messages per connection. `--size` is the whole message; smtp-source's `-l`
is its body, to which it adds a few header lines, so the peer sends
slightly more.

Prints the per-pair rates and

    ratio bulk_send ours=<msgs/s> peer=<msgs/s> speedup=<ours/peer>

with medians over K pairs (rates from each process's wall time, start to
exit), plus the median of the rate bulk-send reports itself (first
submission to last result, without process start and the final QUITs).

Needs: the release example (cargo build --release -p smtp-mio --example
bulk-send), and SMTP_SINK / SMTP_SOURCE / POSTFIX_LIB (source
target/peers/env after .ci/install-peers). Loopback only.
"""
import os
import re
import statistics
import subprocess
import sys

from benchlib import TARGET, alternate, free_port, load_parser, postfix_env, postfix_tools
from benchlib import print_ratio, run_load, sink_command, wait_port


def main():
    p = load_parser(__doc__, pairs=5)
    p.add_argument("--bulk-send", default=os.path.join(TARGET, "release/examples/bulk-send"))
    a = p.parse_args()
    sink, source = postfix_tools()
    if not os.path.exists(a.bulk_send):
        sys.exit(f"{a.bulk_send} missing: cargo build --release -p smtp-mio --example bulk-send")

    port = free_port()
    sink_cmd = sink_command(sink, port, 1000)
    sink_proc = subprocess.Popen(sink_cmd, env=postfix_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    target_addr = f"127.0.0.1:{port}"
    ours_cmd = [a.bulk_send, "--server", target_addr, "--from", "bench@example.org",
                "--to", "sink@example.net", "--count", str(a.m), "--concurrency", str(a.s),
                "--size", str(a.l), "--starttls", "off"]
    peer_cmd = [source, "-d", "-s", str(a.s), "-l", str(a.l), "-m", str(a.m),
                "-f", "bench@example.org", "-t", "sink@example.net", target_addr]
    print("ours:", " ".join(ours_cmd), flush=True)
    print("peer:", " ".join(peer_cmd), flush=True)
    try:
        wait_port(port, sink_proc, "smtp-sink")
        run_load(ours_cmd, a.m)  # warm-up
        run_load(peer_cmd, a.m)
        reported = []

        def ours():
            rate, stdout = run_load(ours_cmd, a.m)
            m = re.search(r"^rate:\s+([0-9.]+) msgs/s", stdout, re.M)
            if m:
                reported.append(float(m.group(1)))
            return rate

        def note():
            return f" (ours reported {reported[-1]:.0f})" if reported else ""

        rates = alternate(a.k, ours, lambda: run_load(peer_cmd, a.m)[0], note)
        print_ratio("bulk_send", *rates, f"k={a.k}, m={a.m}, s={a.s}, l={a.l}")
        if reported:
            print(f"bulk-send's own rate (median): {statistics.median(reported):.0f} msgs/s",
                  flush=True)
    finally:
        sink_proc.kill()
        sink_proc.wait()


if __name__ == "__main__":
    main()
