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
import os
import subprocess

from benchlib import TARGET, alternate, free_port, load_parser, postfix_env, postfix_tools
from benchlib import print_ratio, run_load, sink_command, wait_port


def main():
    p = load_parser(__doc__, pairs=7)
    p.add_argument("--threads", type=int, default=0, help="mail-server loops (0: default)")
    p.add_argument("--server", default=os.path.join(TARGET, "release/examples/mail-server"))
    p.add_argument("--pipe", default=os.environ.get("PIPE_SOURCE"),
                   help="pipelining load generator (smtp-pipe-source)")
    a = p.parse_args()
    sink, source = postfix_tools()

    ours_port, peer_port = free_port(), free_port()
    # smtp-sink authenticates nothing: compare like with like, with the
    # DKIM/SPF/DMARC checks (on by default, their cost measured apart in
    # tests/benches/PERFORMANCE.md) off.
    ours_cmd = [a.server, "--sink", "--no-tls", "--listen", f"127.0.0.1:{ours_port}",
                "--max-connections", "100000",
                "--dkim-verify", "off", "--spf", "off", "--dmarc", "off"]
    if a.threads:
        ours_cmd += ["--threads", str(a.threads)]
    peer_cmd = sink_command(sink, peer_port, 1024)
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
            rates = alternate(a.k, lambda: run_load(load(ours_port), a.m)[0],
                              lambda: run_load(load(peer_port), a.m)[0])
            print_ratio(name, *rates, f"k={a.k}")
    finally:
        for proc in (ours, peer):
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
