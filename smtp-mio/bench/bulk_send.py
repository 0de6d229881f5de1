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
import argparse
import os
import re
import statistics
import subprocess
import sys

from benchlib import TARGET, free_port, postfix_env, run_load, wait_port











def main():
    p = argparse.ArgumentParser()
    p.add_argument("-k", type=int, default=5, help="A/B pairs")
    p.add_argument("-m", type=int, default=20_000, help="messages per run")
    p.add_argument("-s", type=int, default=20, help="concurrent connections")
    p.add_argument("-l", type=int, default=4096, help="message size")
    target = TARGET
    p.add_argument("--bulk-send", default=os.path.join(target, "release/examples/bulk-send"))
    a = p.parse_args()
    sink, source = os.environ.get("SMTP_SINK"), os.environ.get("SMTP_SOURCE")
    if not (sink and source):
        sys.exit("set SMTP_SINK and SMTP_SOURCE (source target/peers/env)")
    if not os.path.exists(a.bulk_send):
        sys.exit(f"{a.bulk_send} missing: cargo build --release -p smtp-mio --example bulk-send")

    port = free_port()
    sink_cmd = [sink]
    if os.geteuid() == 0:
        sink_cmd += ["-u", "nobody"]
    sink_cmd += [f"127.0.0.1:{port}", "1000"]
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
        ours_rates, peer_rates, ratios, reported = [], [], [], []
        for i in range(a.k):
            order = [("ours", ours_cmd), ("peer", peer_cmd)]
            if i % 2:
                order.reverse()
            rates = {}
            for who, cmd in order:
                rate, stdout = run_load(cmd, a.m)
                rates[who] = rate
                if who == "ours":
                    m = re.search(r"^rate:\s+([0-9.]+) msgs/s", stdout, re.M)
                    if m:
                        reported.append(float(m.group(1)))
            ours_rates.append(rates["ours"])
            peer_rates.append(rates["peer"])
            ratios.append(rates["ours"] / rates["peer"])
            print(f"  pair {i + 1}: ours={rates['ours']:.0f} peer={rates['peer']:.0f} "
                  f"ratio={ratios[-1]:.3f}"
                  + (f" (ours reported {reported[-1]:.0f})" if reported else ""), flush=True)
        o, q = statistics.median(ours_rates), statistics.median(peer_rates)
        print(f"ratio bulk_send ours={o:.0f} peer={q:.0f} speedup={o / q:.3f} "
              f"(median pair ratio {statistics.median(ratios):.3f}, "
              f"min {min(ratios):.3f}, max {max(ratios):.3f}, k={a.k}, m={a.m}, "
              f"s={a.s}, l={a.l})", flush=True)
        if reported:
            print(f"bulk-send's own rate (median): {statistics.median(reported):.0f} msgs/s",
                  flush=True)
    finally:
        sink_proc.kill()
        sink_proc.wait()


if __name__ == "__main__":
    main()
