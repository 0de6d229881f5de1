#!/usr/bin/env python3
"""Resident memory of the mail-server holding N idle plaintext connections.

Starts `mail-server --sink --no-tls` (release build of the example), opens N
connections that each read the greeting and then stay silent, and compares
the server's VmRSS before and after. Prints

    memory idle_connections=N rss_before=B rss_after=A bytes_per_connection=(A-B)/N

Usage: smtp-mio/bench/idle_memory.py [-n 10000] [--server PATH] [--threads 1]
Loopback only; the server is killed at the end.
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time

from benchlib import TARGET, free_port



def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")




def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    target = TARGET
    p.add_argument("--server", default=os.path.join(target, "release/examples/mail-server"))
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    port = free_port()
    server = subprocess.Popen(
        [a.server, "--sink", "--no-tls", "--listen", f"127.0.0.1:{port}",
         "--threads", str(a.threads), "--max-connections", str(a.n + 10)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("server did not start")
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss(server.pid)
        for _ in range(a.n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(s)
        for s in conns:
            greeting = s.recv(512)
            if not greeting.startswith(b"220"):
                sys.exit(f"unexpected greeting {greeting!r}")
        time.sleep(1.0)
        after = rss(server.pid)
        per = (after - before) / a.n
        print(f"memory idle_connections={a.n} rss_before={before} rss_after={after} "
              f"bytes_per_connection={per:.0f}")
    finally:
        for s in conns:
            s.close()
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
