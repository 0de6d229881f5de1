"""Helpers shared by the loopback benchmark scripts of this folder: ports,
the Postfix tools and their environment, timed runs, A/B pairs and the
ratio line."""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def free_port():
    """A port free on 127.0.0.1 when asked."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name="server"):
    """Waits until 127.0.0.1:port accepts connections; exits if `proc`
    dies first or nothing listens after 20 s."""
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{name} did not start")


def postfix_env():
    """The environment with Postfix's private libraries ($POSTFIX_LIB) on
    the loader path, for tools unpacked from the .deb."""
    env = dict(os.environ)
    lib = os.environ.get("POSTFIX_LIB")
    if lib:
        env["LD_LIBRARY_PATH"] = lib + ":" + env.get("LD_LIBRARY_PATH", "")
    return env


def run_load(cmd, messages):
    """Runs a load generator to completion: messages per second over its
    wall time, and its standard output. Exits on failure."""
    start = time.perf_counter()
    out = subprocess.run(cmd, env=postfix_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=600)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"load failed ({out.returncode}): {' '.join(cmd)}\n"
                 f"{out.stdout.decode(errors='replace')}{out.stderr.decode(errors='replace')}")
    return messages / elapsed, out.stdout.decode(errors="replace")


def load_parser(doc, pairs):
    """An argument parser (its help text `doc`) with the load options both
    A/B benchmarks take: -k pairs (default `pairs`), -m messages per run,
    -s connections, -l message size."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", type=int, default=pairs, help="A/B pairs")
    parser.add_argument("-m", type=int, default=20_000, help="messages per run")
    parser.add_argument("-s", type=int, default=20, help="concurrent connections")
    parser.add_argument("-l", type=int, default=4096, help="message size")
    return parser


def postfix_tools():
    """($SMTP_SINK, $SMTP_SOURCE); exits when either is unset."""
    sink, source = os.environ.get("SMTP_SINK"), os.environ.get("SMTP_SOURCE")
    if not (sink and source):
        sys.exit("set SMTP_SINK and SMTP_SOURCE (source target/peers/env)")
    return sink, source


def sink_command(sink, port, backlog):
    """smtp-sink listening on 127.0.0.1:port (as nobody when run as root,
    which smtp-sink refuses to stay)."""
    cmd = [sink]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    return cmd + [f"127.0.0.1:{port}", str(backlog)]


def alternate(k, ours, peer, note=lambda: ""):
    """Runs `k` pairs of `ours()` and `peer()` (each returns messages per
    second), the order swapped every other pair, and prints each pair's
    rates (and `note()`). Returns the lists of ours' rates, the peer's and
    their ratios."""
    ours_rates, peer_rates, ratios = [], [], []
    for i in range(k):
        order = [("ours", ours), ("peer", peer)]
        if i % 2:
            order.reverse()
        rates = {who: run() for who, run in order}
        ours_rates.append(rates["ours"])
        peer_rates.append(rates["peer"])
        ratios.append(rates["ours"] / rates["peer"])
        print(f"  pair {i + 1}: ours={rates['ours']:.0f} peer={rates['peer']:.0f} "
              f"ratio={ratios[-1]:.3f}" + note(), flush=True)
    return ours_rates, peer_rates, ratios


def print_ratio(name, ours_rates, peer_rates, ratios, details):
    """The `ratio <name> ours=… peer=… speedup=…` line, from medians, with
    the spread of the pair ratios and `details` (the load) after it."""
    o, q = statistics.median(ours_rates), statistics.median(peer_rates)
    print(f"ratio {name} ours={o:.0f} peer={q:.0f} speedup={o / q:.3f} "
          f"(median pair ratio {statistics.median(ratios):.3f}, "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}, {details})", flush=True)
