"""Ingress benchmark: requests per second and p50/p99 latency of `POST /webhooks/slack` with
validly signed, unique Slack events, driven by `wrk` on 127.0.0.1, against three servers, each in
its own process, in one run:

  bare     a bare aiohttp handler that reads the body and answers 200 (the ceiling)
  bolt     slack-bolt's AsyncApp behind its aiohttp server: signature verification and ack
  gateway  this gateway: signature check, parse, dedupe, enqueue, answer (`serve` without
           its worker, on the in-memory queue; a consumer takes and acknowledges each event
           as the worker would, without running the turn)

All three run side by side on the same event loop (`--loop`, default uvloop as the gateway's
EVENT_LOOP), so the comparison is of the code, not the runtime, and they take turns: one short
slice of load each (`--slice`, 2 s), cycle after cycle in a rotated order, until each has had
`--duration` seconds (24). A burst of the shared machine's noise then falls on all three alike.
Each server runs as four processes (`--copies`) that take the cycles in turn: processes of the
same code differed by up to 10% in interleaved runs here (nothing in the code differs; where
their memory landed and which core they ran on do), more than a target's margin, so the figures
are over all of them.

    .venv/bin/python -m bench.ingress [--duration 24] [--slice 2] [--copies 4] [--connections 32]

Every request is signed with a fresh timestamp and carries its own event_id and ts, so the
gateway's dedupe sees new events (each cycle's requests are signed just before it, since wrk's
Lua has no HMAC, so all are inside Slack's 5-minute window). Targets: gateway ≥ 50% of bare's
throughput and ≥ 3× bolt's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-bench-token"
PATH = "/webhooks/slack"
SERVERS = ("bare", "bolt", "gateway")

LUA = r"""
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local all = dofile(os.getenv("INGRESS_DATA"))
  local step = tonumber(os.getenv("INGRESS_THREADS"))
  reqs = {}
  for i = tid + 1, #all, step do
    local r = all[i]
    reqs[#reqs + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-Slack-Request-Timestamp"] = r[1],
      ["X-Slack-Signature"] = r[2],
    }, r[3])
  end
  idx = 0
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# -- the signed requests ------------------------------------------------------------------


def signed_events(n: int, tag: str, first: int = 0) -> list[tuple[str, str, str]]:
    """`n` signed message events numbered from `first`: the number makes the event id and the
    message's ts (the gateway's dedupe key is channel + ts), so two sets with disjoint numbers
    never repeat an event."""
    stamp = str(int(time.time()))
    out = []
    for i in range(first, first + n):
        ts = f"{1700000000 + i // 1000}.{i % 1000:06d}"
        body = json.dumps(
            {
                "token": "XXYYZZ",
                "team_id": "T123ABC456",
                "api_app_id": "A123ABC456",
                "type": "event_callback",
                "event_id": f"Ev{tag}{i:08d}",
                "event_time": int(stamp),
                "event": {
                    "type": "message",
                    "channel": f"D{i % 500:08d}",
                    "user": "U2147483697",
                    "text": "where is my order A1B2C3?",
                    "ts": ts,
                    "event_ts": ts,
                    "channel_type": "im",
                },
                "authorizations": [{"team_id": "T123ABC456", "user_id": "UBOT", "is_bot": True}],
            },
            separators=(",", ":"),
        )
        base = f"v0:{stamp}:{body}".encode()
        sig = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
        out.append((stamp, sig, body))
    return out


def write_lua_data(path: Path, events: list[tuple[str, str, str]], chunk: int = 10_000) -> None:
    """A Lua file returning the list of (timestamp, signature, body): in chunks of `chunk`
    entries, one function each, since one Lua function holds at most 65 536 constants."""
    with path.open("w", encoding="utf-8") as f:
        f.write("local all = {}\n")
        for start in range(0, len(events), chunk):
            f.write("do local part = (function() return {\n")
            for stamp, sig, body in events[start : start + chunk]:
                assert "]==]" not in body
                f.write(f'{{"{stamp}","{sig}",[==[{body}]==]}},\n')
            f.write("} end)()\nfor _, r in ipairs(part) do all[#all + 1] = r end end\n")
        f.write("return all\n")


# -- the servers (each runs in its own process: `--serve NAME`) ---------------------------


def serve_bare(port: int, loop: str) -> None:
    from aiohttp import web

    from gateway.commands._common import new_event_loop

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post(PATH, handler)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=new_event_loop(loop)
    )


def serve_bolt(port: int, loop: str) -> None:
    """Bolt's own server; its one `auth.test` (made lazily on the first event, then cached) is
    answered by a route in the same process, since there is no Slack here."""
    from aiohttp import web
    from slack_bolt.app.async_app import AsyncApp
    from slack_bolt.app.async_server import AsyncSlackAppServer
    from slack_sdk.web.async_client import AsyncWebClient

    from gateway.commands._common import new_event_loop

    async def auth_test(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": "T123ABC456",
                "user": "bench",
                "team": "bench",
                "url": "https://bench.slack.test/",
            }
        )

    async def main() -> None:
        api = web.Application()
        api.router.add_post("/api/auth.test", auth_test)
        api_runner = web.AppRunner(api, access_log=None)
        await api_runner.setup()
        api_site = web.TCPSite(api_runner, "127.0.0.1", 0)
        await api_site.start()
        api_url = f"http://127.0.0.1:{api_runner.addresses[0][1]}/api/"
        bolt = AsyncApp(
            signing_secret=SECRET,
            client=AsyncWebClient(token=TOKEN, base_url=api_url),
            request_verification_enabled=True,
            # AsyncApp has no token_verification_enabled: it checks the token once, lazily, with
            # auth.test (answered above, then cached), never at start.
        )

        @bolt.event("message")
        async def on_message(ack: Any) -> None:
            await ack()

        server = AsyncSlackAppServer(port=port, path=PATH, app=bolt, host="127.0.0.1")
        runner = web.AppRunner(server.web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
        runner.run(main())


def serve_gateway(port: int, log_level: str, loop: str) -> None:
    """As `serve --no-worker` runs it: the same app, logging, event loop and start-up."""
    from aiohttp import web

    from config.logging import configure
    from config.settings import Settings
    from core.ports import NluResult
    from core.redact import mask
    from gateway.app import create_app
    from gateway.build import build_gateway
    from gateway.commands._common import run_web

    class Unused:
        """This process only takes webhooks; no turn runs here."""

        async def parse(self, text: str) -> NluResult:
            raise AssertionError("no turns in a webhook-only process")

        def ready(self) -> bool:
            return True

        async def step(self, *args: Any) -> Any:
            raise AssertionError("no turns in a webhook-only process")

    settings = Settings(
        slack_signing_secret=SECRET,
        slack_bot_token=TOKEN,
        slack_api_url="http://127.0.0.1:9/api/",
        data_dir=Path(tempfile.mkdtemp(prefix="ingress-")),
        log_level=log_level,
        log_format="json",
        embedded_worker="off",
        event_loop=loop,  # type: ignore[arg-type]
    )
    configure(settings.log_level, settings.log_format, mask=mask, cache=True)  # as `serve` does
    services = build_gateway(
        settings,
        "serve",
        nlu=Unused(),
        dialogue=Unused(),
        with_worker=False,  # type: ignore[arg-type]
    )
    app = create_app(services)

    async def drain(_app: web.Application) -> AsyncIterator[None]:
        """The workers' side of the queue, minus the turns: each event is taken and
        acknowledged as it arrives, as the embedded worker takes it, so the queue stays short
        (an undrained queue of 60 000 events costs the garbage collector more than the webhooks
        do). Its CPU counts against the gateway."""
        queue = services.storage.queue

        async def consume() -> None:
            while True:
                taken = await queue.take(256, 1.0)
                if taken:
                    await queue.ack(taken)

        task = asyncio.create_task(consume())
        yield
        task.cancel()

    app.cleanup_ctx.append(drain)
    run_web(app, host="127.0.0.1", port=port, ready="listening", loop=loop)


# -- the run ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port} after {timeout}s")


def run_wrk(
    wrk: str, port: int, script: Path, data: Path, args: argparse.Namespace, duration: float
) -> dict[str, Any]:
    env = {**os.environ, "INGRESS_DATA": str(data), "INGRESS_THREADS": str(args.threads)}
    cmd = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    out = done.stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: the cost per request, whatever else the shared
    machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def servers(args: argparse.Namespace) -> Iterator[dict[str, list[tuple[int, int]]]]:
    """All three servers, `--copies` processes of each, running side by side for the whole run:
    name -> [(port, pid) of each copy]."""
    procs: dict[tuple[str, int], tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for name, copy in itertools.product(SERVERS, range(args.copies)):
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "bench.ingress",
                "--serve",
                name,
                "--port",
                str(port),
                "--log-level",
                args.log_level,
                "--loop",
                args.loop,
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs[name, copy] = (port, proc)
        for port, proc in procs.values():
            wait_listening(port, proc)
        yield {
            name: [(port, proc.pid) for (n, _), (port, proc) in procs.items() if n == name]
            for name in SERVERS
        }
    finally:
        for _, proc in procs.values():
            proc.terminate()
        for _, proc in procs.values():
            proc.wait(10)


def run_slices(args: argparse.Namespace, wrk: str, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    """The servers take turns, one short slice each, cycle after cycle (each cycle in a rotated
    order): a burst of the shared machine's noise then falls on all three alike, instead of on
    whichever server happened to be measured. Each cycle's events are signed just before it, so
    every request is inside Slack's 5-minute window, and numbered apart from every other
    cycle's (and the warm-up's), so the gateway never sees one twice."""
    script, data = tmp / "sign.lua", tmp / "data.lua"
    script.write_text(LUA)
    cycles = max(args.copies, round(args.duration / args.slice))
    slices: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    with servers(args) as running:
        write_lua_data(
            data, signed_events(args.slice_events, "W", first=cycles * args.slice_events)
        )
        for port, _ in itertools.chain.from_iterable(running.values()):
            run_wrk(wrk, port, script, data, args, args.warmup)
        for c in range(cycles):
            write_lua_data(data, signed_events(args.slice_events, "M", first=c * args.slice_events))
            for name in SERVERS[c % len(SERVERS) :] + SERVERS[: c % len(SERVERS)]:
                copy = c % args.copies
                port, pid = running[name][copy]
                cpu = cpu_seconds(pid)
                result = run_wrk(wrk, port, script, data, args, args.slice)
                result["cpu_s"] = cpu_seconds(pid) - cpu
                result["copy"] = copy
                slices[name].append(result)
            print(
                f"cycle {c + 1}/{cycles}: "
                + ", ".join(f"{name} {slices[name][-1]['rps']:.0f}" for name in SERVERS)
                + " req/s",
                flush=True,
            )
    return slices


def summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One server over all its slices: throughput and CPU per request over the whole measured
    time, the median slice's p50 and p99."""
    requests = sum(r["requests"] for r in runs)
    return {
        "server": name,
        "rps": requests / (sum(r["duration_us"] for r in runs) / 1e6),
        "p50_us": statistics.median(r["p50_us"] for r in runs),
        "p99_us": statistics.median(r["p99_us"] for r in runs),
        "cpu_us_per_req": sum(r["cpu_s"] for r in runs) / requests * 1e6,
        "requests": requests,
        "non2xx": sum(r["non2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "max_slice_requests": max(r["requests"] for r in runs),
        "slices": len(runs),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--duration", type=float, default=24.0, help="seconds measured per server (default 24)"
    )
    p.add_argument(
        "--slice",
        type=float,
        default=2.0,
        help="seconds per turn (default 2): the servers take turns slice by slice",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    p.add_argument(
        "--copies",
        type=int,
        default=4,
        help="processes of each server (default 4), taking the cycles in turn: processes of the "
        "same server can differ by up to 10%%, and each figure is over all copies",
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--slice-events",
        type=int,
        default=50_000,
        help="distinct signed events per cycle (default 50 000; more than a slice takes)",
    )
    p.add_argument("--log-level", default="info", help="the gateway's LOG_LEVEL (default info)")
    p.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the event loop of all three servers (default uvloop, the gateway's EVENT_LOOP "
        "default; all three run on the same one, so the comparison is of the code)",
    )
    p.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args()
    if args.serve:
        if args.serve == "bare":
            serve_bare(args.port, args.loop)
        elif args.serve == "bolt":
            serve_bolt(args.port, args.loop)
        else:
            serve_gateway(args.port, args.log_level, args.loop)
        return 0
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    if not Path(wrk).exists():
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="ingress-") as tmp:
        slices = run_slices(args, wrk, Path(tmp))
    results = [summary(name, slices[name]) for name in SERVERS]
    print_table(results, slices, args)
    if args.json:
        print(json.dumps({"servers": results, "slices": slices}, indent=2))
    return 0


def copy_rps(runs: list[dict[str, Any]], copy: int) -> float:
    """One copy's throughput over its own slices."""
    mine = [r for r in runs if r["copy"] == copy]
    return sum(r["requests"] for r in mine) / (sum(r["duration_us"] for r in mine) / 1e6)


def print_table(
    results: list[dict[str, Any]],
    slices: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
) -> None:
    by = {r["server"]: r for r in results}
    bare, bolt, gw = by["bare"]["rps"], by["bolt"]["rps"], by["gateway"]["rps"]
    print(
        f"POST {PATH}, signed unique events, wrk -t{args.threads} -c{args.connections} on "
        f"127.0.0.1, {by['gateway']['slices']} turns of {args.slice:g} s per server, taken in "
        f"turn; {os.cpu_count()} CPUs (shared), gateway LOG_LEVEL={args.log_level}, event loop "
        f"{args.loop} (all three)"
    )
    print("| server | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx | requests |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['server']} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | "
            f"{r['p99_us'] / 1000:.2f} | {r['cpu_us_per_req']:.0f} | {r['non2xx']} | "
            f"{r['requests']} |"
        )
    print()
    print("| ratio | value | target |")
    print("|---|---:|---:|")
    print(
        f"| gateway / bare | {gw / bare:.2f} | ≥ 0.50 {'met' if gw / bare >= 0.5 else 'NOT met'} |"
    )
    print(f"| gateway / bolt | {gw / bolt:.2f} | ≥ 3.00 {'met' if gw / bolt >= 3 else 'NOT met'} |")
    cpu = {r["server"]: r["cpu_us_per_req"] for r in results}
    print(f"| CPU per request, bare / gateway | {cpu['bare'] / cpu['gateway']:.2f} | |")
    print(f"| CPU per request, bolt / gateway | {cpu['bolt'] / cpu['gateway']:.2f} | |")
    for base in ("bare", "bolt"):
        ratios = sorted(
            g["rps"] / b["rps"] for g, b in zip(slices["gateway"], slices[base], strict=True)
        )
        print(
            f"gateway / {base}, cycle by cycle: lowest {ratios[0]:.2f}, median "
            f"{statistics.median(ratios):.2f}, highest {ratios[-1]:.2f}"
        )
    if args.copies > 1:
        print(
            "each copy alone, req/s: "
            + "; ".join(
                f"{name} "
                + " / ".join(f"{copy_rps(slices[name], copy):.0f}" for copy in range(args.copies))
                for name in SERVERS
            )
        )
    if by["gateway"]["max_slice_requests"] > args.slice_events:
        print(
            f"(a gateway turn took more than {args.slice_events} requests: later ones repeated "
            "event ids and were answered as duplicates; raise --slice-events)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
