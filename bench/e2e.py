"""End-to-end benchmark: signed webhooks from a load generator on 127.0.0.1, through `serve` and
`worker` processes and Redis, to a fake platform API; beside the in-memory single process.

    .venv/bin/python -m bench.e2e [--brain auto|real|double] [--messages 400] [--concurrency 32]

Each message opens its own conversation, so a reply belongs to exactly one webhook (no backlog is
coalesced) and the latency is webhook sent → first reply received by the fake platform. Per
set-up: a burst (all messages, `--concurrency` webhooks in flight) gives the throughput; then a
paced run at 70% of it gives the latencies at a load the set-up sustains. The brain is the
product's (`gateway.brain.load_brain`) when it loads; otherwise the test doubles, and every line
printed says so: those figures measure the plumbing, not the product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from tests.redis.cluster import Cluster, Recorder, payload, post
from tests.support.redis_server import RedisServer

TEXTS = [
    "hi there",
    "where is my order A1B2C3",
    "has order Z9Y8X7 shipped yet?",
    "I want to talk to a person",
    "what are your opening hours",
    "thanks, bye",
    "can I return something I bought last week",
    "my parcel never arrived",
]


@dataclass
class Row:
    setup: str
    brain: str
    run: str
    messages: int
    msgs_per_s: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    ack_p99_ms: float
    failed: int


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] * 1000


async def wave(
    cluster: Cluster, tag: str, n: int, *, concurrency: int, rate: float | None, timeout: float
) -> tuple[float, list[float], list[float], int]:
    """Send `n` webhooks (at most `concurrency` in flight, or paced at `rate`/s) and wait for
    every reply: (msgs/s, e2e latencies, ack latencies, webhooks not answered 200)."""
    rec = cluster.recorder
    ports = [p.port or 0 for p in cluster.serves()]
    sent_at: dict[str, float] = {}
    acks: list[float] = []
    failed = 0
    gate = asyncio.Semaphore(concurrency)
    t_start = time.monotonic()

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        nonlocal failed
        chat = f"{tag}-{i}"
        body = payload(f"{chat}-e", chat, TEXTS[i % len(TEXTS)])
        async with gate:
            sent_at[chat] = time.monotonic()
            status, ack = await post(http, ports[i % len(ports)], body)
        acks.append(ack)
        if status != 200:
            failed += 1

    conn = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=conn) as http:
        tasks = []
        for i in range(n):
            if rate:
                delay = t_start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(http, i)))
        await asyncio.gather(*tasks)
    first: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in rec.sent:
            if s.chat.startswith(f"{tag}-") and s.chat not in first:
                first[s.chat] = s.at
        if len(first) >= n - failed:
            break
        cluster.check_alive()
        await asyncio.sleep(0.02)
    lat = [first[c] - sent_at[c] for c in first if c in sent_at]
    end = max(first.values()) if first else time.monotonic()
    return len(first) / max(1e-9, end - t_start), lat, acks, failed + (n - failed - len(first))


async def measure(name: str, cluster: Cluster, brain: str, args: argparse.Namespace) -> list[Row]:
    await cluster.wait_ready(timeout=180)
    _, warm, _, bad = await wave(cluster, f"{name}-warm", 16, concurrency=4, rate=None, timeout=120)
    if len(warm) < 16:
        raise RuntimeError(f"{name}: warm-up replies missing ({len(warm)}/16, {bad} failed)")
    rows = []
    rate, lat, acks, failed = await wave(
        cluster,
        f"{name}-burst",
        args.messages,
        concurrency=args.concurrency,
        rate=None,
        timeout=300,
    )
    rows.append(
        Row(
            name,
            brain,
            "burst",
            args.messages,
            rate,
            pct(lat, 50),
            pct(lat, 99),
            pct(acks, 99),
            failed,
        )
    )
    paced = max(1.0, 0.7 * rate)
    n = max(50, int(paced * args.paced_seconds))
    r2, lat, acks, failed = await wave(
        cluster, f"{name}-paced", n, concurrency=args.concurrency * 4, rate=paced, timeout=300
    )
    rows.append(
        Row(
            name,
            brain,
            f"paced {paced:.0f}/s",
            n,
            r2,
            pct(lat, 50),
            pct(lat, 99),
            pct(acks, 99),
            failed,
        )
    )
    return rows


def model_fits(model_dir: str) -> bool:
    """True when `model_dir` holds a model of the current flows, so `load_brain` will not train
    (a bench must not start a training run by surprise)."""
    from config.settings import load_settings
    from core.nlu import artifacts
    from core.nlu.data import load_data
    from core.nlu.train import fingerprint, matches
    from gateway.nlu_loader import train_config

    settings = load_settings(model_dir=model_dir)
    saved = artifacts.read_fingerprint(Path(model_dir))
    wanted = fingerprint(load_data(settings.flows_dir), train_config(settings))
    return saved is not None and matches(saved, wanted)


async def model_rate(n: int, model_dir: str) -> float:
    """The intent model's own batched msgs/s: `n` parse calls in flight together, after a
    warm-up, in this process."""
    from config.settings import load_settings
    from gateway.brain import load_brain

    brain = load_brain(load_settings(model_dir=model_dir), progress=False)
    await brain.start(background=False)
    try:
        texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
        await asyncio.gather(*(brain.nlu.parse(t) for t in texts[:64]))
        t0 = time.perf_counter()
        await asyncio.gather(*(brain.nlu.parse(t) for t in texts))
        return n / (time.perf_counter() - t0)
    finally:
        await brain.stop()


def table(rows: list[Row]) -> str:
    head = (
        "| set-up | brain | run | msgs | msgs/s | e2e p50 ms | e2e p99 ms | ack p99 ms | failed |"
    )
    out = [head, "|" + "---|" * 9]
    for r in rows:
        out.append(
            f"| {r.setup} | {r.brain} | {r.run} | {r.messages} | {r.msgs_per_s:.1f} | "
            f"{r.e2e_p50_ms:.0f} | {r.e2e_p99_ms:.0f} | {r.ack_p99_ms:.1f} | {r.failed} |"
        )
    return "\n".join(out)


async def main(args: argparse.Namespace) -> int:
    model: float | None = None
    brain = "double"
    if args.brain != "double":
        if model_fits(args.model_dir):
            brain = "real"
            model = await model_rate(512, args.model_dir)
        elif args.brain == "real":
            print(
                f"no trained model of the current flows in {args.model_dir}; train it first "
                "(python -m gateway train) or pass --model-dir",
                file=sys.stderr,
            )
            return 2
    label = f"real ({Path(args.model_dir).name})" if brain == "real" else "DOUBLE"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work)
        redis.start()
        recorder = Recorder()
        await recorder.start()
        setups: list[tuple[str, str | None, list[tuple[str, tuple[str, ...]]]]] = [
            ("memory, 1 process", None, [("serve", ("--worker",))]),
            ("redis, 1 serve + 1 worker", redis.url, [("serve", ()), ("worker", ())]),
            (
                "redis, 1 serve + 2 workers",
                redis.url,
                [("serve", ()), ("worker", ()), ("worker", ())],
            ),
        ]
        try:
            for name, url, procs in setups:
                redis.cli("FLUSHALL")
                env = {"CLAIM_IDLE_MS": "30000", "MODEL_DIR": str(Path(args.model_dir).resolve())}
                cluster = Cluster(url, recorder, work, env=env, brain=brain)
                for role, extra in procs:
                    cluster.spawn(role, *extra)
                try:
                    rows += await measure(name, cluster, label, args)
                finally:
                    cluster.stop()
                print(table(rows[-2:]), flush=True)
        finally:
            await recorder.stop()
            redis.stop()
    print()
    print(table(rows))
    if model is not None:
        best = max(r.msgs_per_s for r in rows if r.setup.startswith("redis"))
        print(
            f"\nintent model alone, batched: {model:.1f} msgs/s; best Redis set-up "
            f"{best:.1f} msgs/s = {100 * best / model:.0f}% of it (target >= 80%)"
        )
    else:
        print(
            "\nbrain: test DOUBLES (KeywordNlu + EchoDialogue; no trained model given): these "
            "figures measure the queue, processes and HTTP, not the intent model."
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({"model_msgs_per_s": model, "rows": [asdict(r) for r in rows]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n")[0])
    p.add_argument("--brain", choices=["auto", "real", "double"], default="auto")
    p.add_argument("--messages", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--paced-seconds", type=float, default=5.0)
    p.add_argument("--model-dir", default="var/model", help="the trained intent model")
    p.add_argument("--out", default="var/bench/e2e.json")
    sys.exit(asyncio.run(main(p.parse_args())))
