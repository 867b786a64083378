"""What serving without the padding saves (`core/nlu/unpad.py`): the bare forward pass of
DistilBERT-base's shape (the model `bench/nlu.py` serves, random weights) on the same batches of
32 real messages, padded to each batch's longest as before and packed to the real tokens, in fp32
and int8. The four models run in turns on every batch and each batch's fastest of --rounds is
kept, so the ratios hold on a noisy machine. Also prints how far the packed model's
probabilities are from the padded one's on those batches.

    python bench/unpad.py                  (the bot's held-out messages)
    python bench/unpad.py --clinc ../shared/data/clinc150/train_val.json   (CLINC150 `val`)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.nlu import production_shape  # noqa: E402
from core.nlu import artifacts  # noqa: E402
from core.nlu.data import load_clinc, load_data  # noqa: E402
from core.nlu.predictor import Batch, Predictor  # noqa: E402

KINDS = [("fp32", False), ("int8", True)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clinc", type=Path, help="CLINC150 train_val.json: time on its `val` texts")
    ap.add_argument("--batches", type=int, default=40, help="batches of 32 messages (default 40)")
    ap.add_argument("--rounds", type=int, default=5, help="runs of each batch (default 5)")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench", help="model directory")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model_dir = production_shape(args.out / "production-shape", load_data(ROOT / "flows"))
    if args.clinc:
        texts, source = [e.text for e in load_clinc(args.clinc, "val")], "CLINC150 val"
    else:
        texts, source = [e.text for e in load_data(ROOT / "flows" / "heldout")], "bot held-out"
    rng = random.Random(0)
    groups = [rng.sample(texts, 32) for _ in range(args.batches)]

    models: dict[str, Predictor] = {}
    for kind, quantize in KINDS:
        for packed in (False, True):
            loaded = artifacts.load(model_dir, quantize=quantize, packed=packed)
            models[f"{kind} {'packed' if packed else 'padded'}"] = Predictor(loaded)
    any_model = next(iter(models.values()))
    encoded = [any_model.encode(g) for g in groups]
    real = sum(int(b.attention_mask.sum()) for b in encoded)
    padded = sum(b.attention_mask.numel() for b in encoded)
    print(
        f"{source}: {len(groups)} batches of 32, {real / len(groups) / 32:.1f} real tokens a "
        f"message, {padded / len(groups) / 32:.1f} with the padding ({100 * real / padded:.0f}% "
        "real)",
        flush=True,
    )
    best = time_all(models, encoded, args.rounds)
    print(table(models, encoded, best))
    return 0


def time_all(
    models: dict[str, Predictor], encoded: list[Batch], rounds: int
) -> dict[str, list[float]]:
    for model in models.values():  # warm-up
        for batch in encoded[:3]:
            model.forward(batch)
    best = {name: [float("inf")] * len(encoded) for name in models}
    order = list(models)
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", flush=True)
        for i, batch in enumerate(encoded):
            random.shuffle(order)
            for name in order:
                start = time.perf_counter()
                models[name].forward(batch)
                best[name][i] = min(best[name][i], time.perf_counter() - start)
    return best


def table(models: dict[str, Predictor], encoded: list[Batch], best: dict[str, list[float]]) -> str:
    n = 32 * len(encoded)
    lines = [
        "| model | padded msgs/s | packed msgs/s | packed / padded | max prob. difference "
        "| same top intent |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, _ in KINDS:
        a, b = f"{kind} padded", f"{kind} packed"
        diffs, same = [], 0
        for batch in encoded:
            p, q = models[a].forward(batch), models[b].forward(batch)
            diffs.append(float((p - q).abs().max()))
            same += int((p.argmax(-1) == q.argmax(-1)).sum())
        pad_rate, pack_rate = n / sum(best[a]), n / sum(best[b])
        lines.append(
            f"| {kind} | {pad_rate:.0f} | {pack_rate:.0f} | {pack_rate / pad_rate:.2f}x "
            f"| {max(diffs):.2g} (median {statistics.median(diffs):.2g}) | {100 * same / n:.1f}% |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
