"""End-to-end benchmark: signed webhooks from a load generator on 127.0.0.1, through `serve` and
`worker` processes and Redis, to a fake platform API; beside the in-memory single process.

    .venv/bin/python -m bench.e2e [--model both|production-size|default] [--messages 400]
        [--precision both|fp32|int8]

Each message opens its own conversation, so a reply belongs to exactly one webhook (no backlog is
coalesced) and the latency is webhook sent → first reply received by the fake platform. Per
set-up: a burst (all messages, `--concurrency` webhooks in flight) gives the throughput; then a
paced run at 70% of it gives the latencies at a load the set-up sustains.

The brain is the product's (`gateway.model_and_flows.load_model_and_flows`: flows and intent model)
with one of two models, each row naming it. `default`: the model `python -m gateway train` builds
offline into `--model-dir` (for a bot this small, a 2-layer 64-dim encoder). `production-size`: an
encoder of DistilBERT-base's shape (6 layers, 768 dim, 12 heads, 3072 hidden: the product's base
model, which cannot be downloaded here), trained from scratch on the bot's flows by the product's
own training for one epoch into `var/bench/model-production-size` (kept for the next run while the
flows and the shape stay the same). One epoch is not the fine-tuned product's accuracy, but the cost
of a forward pass depends on the shape, not on the weights, so its msgs/s are the product's. It is
served twice, in fp32 and in int8 (NLU_QUANTIZE off / on; `--precision`), side by side. Each model's
own batched msgs/s (`model_rate`) is measured in the same run, and the serve and worker processes'
resident memory after each burst.
`--brain double` uses the test doubles instead: those figures measure the plumbing, not the
product.

Per worker, NLU_THREADS is the machine's cores divided by the model-serving processes (unless
`--nlu-threads`), so two workers on two cores do not fight over them; CONCURRENCY is the
gateway's default unless `--engine-concurrency`. The CPU column is the CPU time per message of the
burst, by process (from /proc): where the pipeline's cost lies. As the machine may be shared,
each model's own rate is measured before and after its set-ups, and the summary also gives the
model's share of the CPU each set-up spends per message (what the ratio would be on a machine
of our own, where both are CPU-bound).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.core.redis.cluster import Cluster, Recorder, payload, post, wait_workers
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
    model: str
    run: str
    messages: int
    msgs_per_s: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    ack_p99_ms: float
    failed: int
    cpu: str = ""
    """CPU ms per message by role: serve / worker(s) / load generator and fake platform /
    redis-server."""
    cpu_ms: float = 0.0
    """All of them together."""
    rss: str = ""
    """Resident memory (MB) after the burst: serve / worker(s)."""


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
            if s.at >= t_start and s.chat.startswith(f"{tag}-") and s.chat not in first:
                first[s.chat] = s.at
        if len(first) >= n - failed:
            break
        cluster.check_alive()
        await asyncio.sleep(0.02)
    lat = [first[c] - sent_at[c] for c in first if c in sent_at]
    end = max(first.values()) if first else time.monotonic()
    return len(first) / max(1e-9, end - t_start), lat, acks, failed + (n - failed - len(first))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def measure(
    name: str, cluster: Cluster, model: str, redis_pid: int, args: argparse.Namespace
) -> list[Row]:
    if cluster.redis_url:  # measured once the workers share the partitions
        await wait_workers(cluster, timeout=180)
    else:
        await cluster.wait_ready(timeout=180)
    _, warm, _, bad = await wave(cluster, f"{name}-warm", 16, concurrency=4, rate=None, timeout=120)
    if len(warm) < 16:
        raise RuntimeError(f"{name}: warm-up replies missing ({len(warm)}/16, {bad} failed)")
    rows = []
    roles = {
        "serve": [p.pid for p in cluster.procs if p.role == "serve"],
        "worker": [p.pid for p in cluster.procs if p.role == "worker"],
        "redis": [redis_pid] if cluster.redis_url else [],
    }
    before = {role: sum(map(cpu_seconds, pids)) for role, pids in roles.items()}
    client_before = time.process_time()
    rate, lat, acks, failed = await wave(
        cluster,
        f"{name}-burst",
        args.messages,
        concurrency=args.concurrency,
        rate=None,
        timeout=300,
    )
    spent_by_role = (
        *(sum(map(cpu_seconds, roles[r])) - before[r] for r in ("serve", "worker")),
        time.process_time() - client_before,
        sum(map(cpu_seconds, roles["redis"])) - before["redis"],
    )
    rows.append(
        Row(
            name,
            model,
            "burst",
            args.messages,
            rate,
            pct(lat, 50),
            pct(lat, 99),
            pct(acks, 99),
            failed,
            " / ".join(f"{1000 * spent / args.messages:.2f}" for spent in spent_by_role),
            1000 * sum(spent_by_role) / args.messages,
            " / ".join(f"{rss_mb(pid):.0f}" for pid in roles["serve"] + roles["worker"]),
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
            model,
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


PRODUCTION_SHAPE: dict[str, Any] = {"layers": 6, "dim": 768, "heads": 12, "hidden": 3072}
"""distilbert-base-uncased, the product's base model: the shape that sets the cost of a forward
pass (the vocabulary and the classifier head cost next to nothing)."""
BRIEF_TRAINING: dict[str, Any] = {
    "small_below": 0,
    "epochs": 1,
    "min_steps": 0,
    "patience": 1,
    "refit": False,
    "cv_folds": 0,
}
"""One epoch, one validation split, no refit: the bench needs the model's speed, not its
accuracy. (A key the training settings do not have is left out.)"""


@dataclass(frozen=True)
class Model:
    label: str
    model_dir: Path
    quantize: str = "auto"
    """NLU_QUANTIZE of the processes serving it."""


def model_fits(model_dir: Path, config: Any = None, keys: Iterable[str] = ()) -> bool:
    """True when `model_dir` holds a model of the current flows that `load_model_and_flows`
    accepts as it is (a bench must not start a training run by surprise) and, for `keys`, was
    trained with `config`'s values of them."""
    from config.settings import load_settings
    from core.nlu import artifacts
    from core.nlu.data import load_data
    from core.nlu.train import fingerprint, matches
    from gateway.nlu_loader import train_config

    settings = load_settings(model_dir=model_dir)
    config = config or train_config(settings)
    saved = artifacts.read_fingerprint(model_dir)
    if saved is None:
        return False
    wanted = fingerprint(load_data(settings.flows_dir), train_config(settings))
    trained = saved.get("train") or {}
    return matches(saved, wanted) and all(trained.get(k) == getattr(config, k) for k in keys)


def production_model(bench_dir: Path) -> Model:
    """The DistilBERT-base-shaped model of the bot's flows: trained once (a few minutes), then
    reused while the flows and the shape stay the same."""
    from config.settings import load_settings
    from gateway.nlu_loader import train_config, train_now

    out = bench_dir / "model-production-size"
    settings = load_settings(model_dir=out)
    base = train_config(settings)
    brief = {k: v for k, v in BRIEF_TRAINING.items() if hasattr(base, k)}
    config = base.with_(**PRODUCTION_SHAPE, **brief)
    shape = "{layers} layers x {dim} dim, {heads} heads, {hidden} hidden".format(**PRODUCTION_SHAPE)
    if model_fits(out, config, [*PRODUCTION_SHAPE, *brief]):
        print(f"production-size model ({shape}): reusing {out}", flush=True)
    else:
        print(
            f"production-size model ({shape}): training from scratch for one epoch into {out} "
            "(throughput depends on the shape, not on accuracy)",
            flush=True,
        )
        result = train_now(settings, out=out, config=config, progress=True)
        print(
            f"  trained in {result.seconds:.0f} s ({result.encoder} encoder, validation accuracy "
            f"{100 * result.val_accuracy:.1f}% after one epoch: the bench measures its speed)",
            flush=True,
        )
    return Model(f"production-size ({PRODUCTION_SHAPE['layers']}x{PRODUCTION_SHAPE['dim']})", out)


def precisions(model: Model, which: str) -> list[Model]:
    """The model served in fp32 and/or int8 (NLU_QUANTIZE off / on), each its own row."""
    wanted = {"both": ("fp32", "int8"), "fp32": ("fp32",), "int8": ("int8",)}[which]
    return [
        Model(f"{model.label} {name}", model.model_dir, "off" if name == "fp32" else "on")
        for name in wanted
    ]


@dataclass(frozen=True)
class Rate:
    msgs_per_s: float
    cpu_ms: float
    """CPU time per message (all threads)."""


async def model_rate(n: int, model_dir: Path, threads: int, quantize: str = "auto") -> Rate:
    """The intent model's own batched msgs/s and CPU per message: `n` parse calls in flight
    together, after a warm-up, in this process with `threads` torch threads."""
    from config.settings import load_settings
    from gateway.lifecycle import run_parts
    from gateway.model_and_flows import load_model_and_flows

    settings = load_settings(model_dir=model_dir, nlu_threads=threads, nlu_quantize=quantize)
    brain = load_model_and_flows(settings, progress=False)
    async with run_parts(brain.parts(background=False)):
        texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
        await asyncio.gather(*(brain.nlu.parse(t) for t in texts[:64]))
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(brain.nlu.parse(t) for t in texts))
        return Rate(n / (time.perf_counter() - t0), 1000 * (time.process_time() - cpu0) / n)


def table(rows: list[Row]) -> str:
    head = (
        "| set-up | model | run | msgs | msgs/s | e2e p50 ms | e2e p99 ms | ack p99 ms | failed "
        "| CPU ms/msg: serve / workers / client / redis | RSS MB: serve / workers |"
    )
    out = [head, "|" + "---|" * 11]
    for r in rows:
        out.append(
            f"| {r.setup} | {r.model} | {r.run} | {r.messages} | {r.msgs_per_s:.1f} | "
            f"{r.e2e_p50_ms:.0f} | {r.e2e_p99_ms:.0f} | {r.ack_p99_ms:.1f} | {r.failed} "
            f"| {r.cpu} | {r.rss} |"
        )
    return "\n".join(out)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def models(args: argparse.Namespace) -> list[Model] | None:
    """The models to measure, in order; None when the default one is missing (`--brain auto`
    goes on without it)."""
    out = []
    if args.model in ("both", "production-size"):
        out += precisions(production_model(Path(args.bench_dir)), args.precision)
    if args.model in ("both", "default"):
        model_dir = Path(args.model_dir)
        if model_fits(model_dir):
            out.append(Model(f"default ({model_dir.name})", model_dir))
        else:
            print(
                f"no trained model of the current flows in {model_dir}; train it first "
                "(python -m gateway train) or pass --model-dir",
                file=sys.stderr,
            )
            if args.brain == "real":
                return None
    return out


async def run_setups(
    model: Model | None,
    redis: RedisServer,
    recorder: Recorder,
    work: Path,
    args: argparse.Namespace,
) -> list[Row]:
    """The three set-ups with one brain: `model`, or the test doubles when None."""
    setups: list[tuple[str, str | None, list[tuple[str, tuple[str, ...]]]]] = [
        ("memory, 1 process", None, [("serve", ("--worker",))]),
        ("redis, 1 serve + 1 worker", redis.url, [("serve", ()), ("worker", ())]),
        ("redis, 1 serve + 2 workers", redis.url, [("serve", ()), ("worker", ()), ("worker", ())]),
    ]
    rows: list[Row] = []
    assert redis.proc is not None
    redis_pid = redis.proc.pid
    for name, url, procs in setups:
        redis.cli("FLUSHALL")
        recorder.sent.clear()  # chats are named by set-up: the previous model's are not these
        engines = sum(1 for role, extra in procs if role == "worker" or "--worker" in extra)
        threads = args.nlu_threads or max(1, cores() // engines)
        env = {"CLAIM_IDLE_MS": "30000", "NLU_THREADS": str(threads)}
        if args.engine_concurrency:
            env["CONCURRENCY"] = str(args.engine_concurrency)
        if model is not None:
            env["MODEL_DIR"] = str(model.model_dir.resolve())
            env["NLU_QUANTIZE"] = model.quantize
        brain = "real" if model is not None else "double"
        # Its own DATA_DIR: the chats and event ids are named by set-up, so a second model's
        # set-up would otherwise find the first one's events already handled in the embedded
        # dedupe keys and conversation store, and answer none of them.
        own = work / f"setup-{len(list(work.iterdir()))}"
        own.mkdir()
        cluster = Cluster(url, recorder, own, env=env, brain=brain)
        for role, extra in procs:
            cluster.spawn(role, *extra)
        try:
            label = model.label if model is not None else "DOUBLE"
            rows += await measure(
                f"{name} (NLU_THREADS={threads})", cluster, label, redis_pid, args
            )
        finally:
            cluster.stop()
        print(table(rows[-2:]), flush=True)
    return rows


async def main(args: argparse.Namespace) -> int:
    chosen: list[Model | None] = [None]
    if args.brain != "double":
        found = models(args)
        if found is None:
            return 2
        chosen = list(found)
    rates: dict[str, list[Rate]] = {}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work)
        redis.start()
        recorder = Recorder()
        await recorder.start()
        try:
            for model in chosen:
                if model is None:
                    rows += await run_setups(model, redis, recorder, work, args)
                    continue
                # the machine may be shared: the model is measured before and after its set-ups
                measured = rates[model.label] = [
                    await model_rate(512, model.model_dir, cores(), model.quantize)
                ]
                print(
                    f"{model.label}: the model alone, batched: {measured[0].msgs_per_s:.1f} msgs/s"
                )
                rows += await run_setups(model, redis, recorder, work, args)
                measured.append(await model_rate(512, model.model_dir, cores(), model.quantize))
                print(f"{model.label}: the model alone, again: {measured[1].msgs_per_s:.1f} msgs/s")
        finally:
            await recorder.stop()
            redis.stop()
    print()
    print(table(rows))
    print()
    for label, (before, after) in rates.items():
        rate = (before.msgs_per_s + after.msgs_per_s) / 2
        cpu = (before.cpu_ms + after.cpu_ms) / 2
        print(
            f"{label}: the model alone, batched ({cores()} threads): {rate:.1f} msgs/s (before "
            f"{before.msgs_per_s:.1f}, after {after.msgs_per_s:.1f}), {cpu:.2f} CPU ms/msg"
        )
        mine = [r for r in rows if r.model == label and r.run == "burst"]
        for r in mine:
            print(
                f"  {r.setup}: {r.msgs_per_s:.1f} msgs/s = {100 * r.msgs_per_s / rate:.0f}% of "
                f"the model; CPU {r.cpu_ms:.2f} ms/msg, the model's share of it "
                f"{100 * cpu / r.cpu_ms:.0f}%"
            )
        best = max(r.msgs_per_s for r in mine if r.setup.startswith("redis"))
        print(f"  best Redis set-up = {100 * best / rate:.0f}% of the model (target >= 80%)")
    for label in rates:
        if label.endswith(" int8") and (fp32 := label.removesuffix(" int8") + " fp32") in rates:
            q8, f32 = rates[label], rates[fp32]
            alone = sum(r.msgs_per_s for r in q8) / sum(r.msgs_per_s for r in f32)
            print(f"{label.removesuffix(' int8')}: int8 / fp32, the model alone: {alone:.2f}x")
            for setup in dict.fromkeys(r.setup for r in rows if r.model == label):
                a = [
                    r.msgs_per_s
                    for r in rows
                    if (r.model, r.setup, r.run) == (label, setup, "burst")
                ]
                b = [
                    r.msgs_per_s
                    for r in rows
                    if (r.model, r.setup, r.run) == (fp32, setup, "burst")
                ]
                if a and b:
                    print(f"  {setup}: {a[0] / b[0]:.2f}x")
    if not rates:
        print(
            "brain: test DOUBLES (KeywordNlu + EchoDialogue): these figures measure the queue, "
            "processes and HTTP, not the intent model."
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps(
                {
                    "model": {k: [asdict(r) for r in v] for k, v in rates.items()},
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--brain", choices=["auto", "real", "double"], default="auto")
    p.add_argument(
        "--model",
        choices=["both", "production-size", "default"],
        default="both",
        help="production-size: DistilBERT-base's shape, trained briefly into --bench-dir; "
        "default: the model in --model-dir",
    )
    p.add_argument(
        "--precision",
        choices=["both", "fp32", "int8"],
        default="both",
        help="the production-size model served in fp32 and int8 side by side (NLU_QUANTIZE)",
    )
    p.add_argument("--messages", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=32, help="webhooks in flight (burst)")
    p.add_argument("--paced-seconds", type=float, default=5.0)
    p.add_argument("--model-dir", default="var/model", help="the trained default model")
    p.add_argument("--bench-dir", default="var/bench", help="where the production-size model is")
    p.add_argument(
        "--nlu-threads", type=int, default=0, help="torch threads per process (0: cores / engines)"
    )
    p.add_argument(
        "--engine-concurrency", type=int, default=0, help="CONCURRENCY of the gateway (0: default)"
    )
    p.add_argument("--out", default="var/bench/e2e.json")
    sys.exit(asyncio.run(main(p.parse_args())))
