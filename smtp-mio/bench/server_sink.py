#!/usr/bin/env python3
"""Throughput of `mail-server --sink` against Postfix's `smtp-sink`, same load,
alternating runs (A/B/A/B...) so that drift on a shared machine hits both.

Load: Postfix `smtp-source` with 20 sessions of 4 KiB messages, each session
reusing its connection (`-d`, like a busy relay). smtp-source is lock-step
(no PIPELINING), so it measures round trips as much as parsing; with
--pipe PATH a pipelining load generator (e.g. shared/tools' smtp-pipe-source,
same flags) runs too.

Prints, per load:

    ratio server_sink ours=<msgs/s> peer=<msgs/s> speedup=<ours/peer>

with medians over K pairs, and the per-pair ratios.

Needs: the release example (cargo build --release -p smtp-mio --example
mail-server), and SMTP_SINK / SMTP_SOURCE / POSTFIX_LIB (source
target/peers/env after .ci/install-peers). Loopback only.
"""
import argparse
import os
import statistics
import subprocess
import sys

from benchlib import TARGET, free_port, postfix_env, run_load, wait_port











def main():
    p = argparse.ArgumentParser()
    p.add_argument("-k", type=int, default=7, help="A/B pairs per load")
    p.add_argument("-m", type=int, default=20_000, help="messages per run")
    p.add_argument("-s", type=int, default=20, help="sessions")
    p.add_argument("-l", type=int, default=4096, help="message size")
    p.add_argument("--threads", type=int, default=0, help="mail-server loops (0: default)")
    target = TARGET
    p.add_argument("--server", default=os.path.join(target, "release/examples/mail-server"))
    p.add_argument("--pipe", default=os.environ.get("PIPE_SOURCE"),
                   help="pipelining load generator (smtp-pipe-source)")
    a = p.parse_args()
    sink, source = os.environ.get("SMTP_SINK"), os.environ.get("SMTP_SOURCE")
    if not (sink and source):
        sys.exit("set SMTP_SINK and SMTP_SOURCE (source target/peers/env)")

    ours_port, peer_port = free_port(), free_port()
    ours_cmd = [a.server, "--sink", "--no-tls", "--listen", f"127.0.0.1:{ours_port}",
                "--max-connections", "100000"]
    if a.threads:
        ours_cmd += ["--threads", str(a.threads)]
    peer_cmd = [sink]
    if os.geteuid() == 0:
        peer_cmd += ["-u", "nobody"]
    peer_cmd += [f"127.0.0.1:{peer_port}", "1024"]
    # smtp-sink logs nothing per message; ours neither (its INFO line per
    # message and connection is the operator's, not the benchmark's).
    ours = subprocess.Popen(ours_cmd, env=dict(os.environ, RUST_LOG="warn"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = subprocess.Popen(peer_cmd, env=postfix_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(ours_port, ours)
        wait_port(peer_port, peer)
        loads = {
            "server_sink": lambda port: [source, "-d", "-s", str(a.s), "-l", str(a.l),
                                         "-m", str(a.m), f"127.0.0.1:{port}"],
        }
        if a.pipe:
            loads["server_sink_pipelining"] = lambda port: [
                a.pipe, "-s", str(a.s), "-l", str(a.l), "-m", str(a.m), f"127.0.0.1:{port}"]
        for name, load in loads.items():
            run_load(load(ours_port), a.m)  # warm-up
            run_load(load(peer_port), a.m)
            ours_rates, peer_rates, ratios = [], [], []
            for i in range(a.k):
                order = [("ours", ours_port), ("peer", peer_port)]
                if i % 2:
                    order.reverse()
                rates = {who: run_load(load(port), a.m)[0] for who, port in order}
                ours_rates.append(rates["ours"])
                peer_rates.append(rates["peer"])
                ratios.append(rates["ours"] / rates["peer"])
                print(f"  pair {i + 1}: ours={rates['ours']:.0f} peer={rates['peer']:.0f} "
                      f"ratio={ratios[-1]:.3f}", flush=True)
            o, q = statistics.median(ours_rates), statistics.median(peer_rates)
            print(f"ratio {name} ours={o:.0f} peer={q:.0f} speedup={o / q:.3f} "
                  f"(median pair ratio {statistics.median(ratios):.3f}, "
                  f"min {min(ratios):.3f}, max {max(ratios):.3f}, k={a.k})", flush=True)
    finally:
        for proc in (ours, peer):
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
