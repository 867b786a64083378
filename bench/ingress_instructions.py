"""The ingress benchmark's servers counted in CPU instructions per request, a measure the shared
machine's noise does not move (`bench/ingress.py` measures time, which it does).

Each server (`bench.ingress --serve NAME`, as that benchmark runs it) runs alone under valgrind's
callgrind, 30-50 times slower than natively; wrk drives it with signed unique events (1 thread,
32 connections) for a warm-up, then the counters are zeroed, wrk runs `--duration` seconds, and
the instructions executed in that time are divided by the requests answered.

    .venv/bin/python -m bench.ingress_instructions [--duration 20]

Needs valgrind (`apt-get install valgrind`). Instructions are not time: code that waits on
memory costs more per instruction, and callgrind runs SHA-256 without the CPU's SHA extensions
(about 30 000 instructions for a Slack signature, where the hardware needs far fewer), which
weighs on the gateway and bolt alike.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ingress import (
    LUA,
    SERVERS,
    free_port,
    run_wrk,
    signed_events,
    wait_listening,
    write_lua_data,
)


def counted(name: str, args: argparse.Namespace, wrk: str, tmp: Path) -> tuple[int, int]:
    """(instructions, requests) of one server's measured run."""
    script, warm, data = tmp / "sign.lua", tmp / "warm.lua", tmp / "data.lua"
    out = tmp / f"callgrind.{name}"
    port = free_port()
    serve = [sys.executable, "-m", "bench.ingress", "--serve", name, "--port", str(port)]
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *serve],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc, timeout=600)
        write_lua_data(warm, signed_events(5000, "W", first=100_000))
        write_lua_data(data, signed_events(60_000, "M"))
        run_wrk(wrk, port, script, warm, args, args.warmup)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        result = run_wrk(wrk, port, script, data, args, args.duration)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        time.sleep(1)
        proc.terminate()
        proc.wait(60)
    dump = sorted(glob.glob(f"{out}.*"))[0]  # the dump taken after the measured run
    with open(dump, encoding="utf-8") as f:
        total = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
    return total, int(result["requests"])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds counted per server")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per server")
    args = p.parse_args()
    args.threads, args.connections = 1, 32
    wrk = shutil.which("wrk")
    if wrk is None or shutil.which("valgrind") is None:
        raise SystemExit("needs wrk and valgrind: apt-get install wrk valgrind")
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ingress-instr-") as tmp:
        Path(tmp, "sign.lua").write_text(LUA)
        for name in SERVERS:
            total, requests = counted(name, args, wrk, Path(tmp))
            per_request[name] = total / requests
            print(f"{name}: {per_request[name]:,.0f} instructions a request ({requests} requests)")
    bare, bolt, gw = (per_request[n] for n in SERVERS)
    print()
    print("| server | instructions per request |")
    print("|---|---:|")
    for name in SERVERS:
        print(f"| {name} | {per_request[name]:,.0f} |")
    print()
    print(f"bare / gateway: {bare / gw:.2f} (throughput target ≥ 0.50)")
    print(f"bolt / gateway: {bolt / gw:.2f} (throughput target ≥ 3.00)")
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    print(f"({version.strip()}, wrk -t1 -c32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
