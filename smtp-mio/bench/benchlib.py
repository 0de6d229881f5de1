"""Helpers shared by the loopback benchmark scripts of this folder: ports,
the Postfix tools' environment, timed runs."""
import os
import socket
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
