"""Benchmark of the intent model against a TF-IDF (word + char n-grams) + logistic-regression
baseline trained on the same data: CLINC150 (train on 90% of `train`, tune early stopping,
ensemble weight and threshold on the other 10% + `oos_train`, report on `val` + `oos_val`, which
nothing was tuned on) and the default bot (train on flows/, report on flows/heldout/). One run
prints one table: in-scope accuracy, out-of-scope recall at the chosen threshold, training time,
p50/p99 latency per message, messages/s at batch 1 and at 32 concurrent requests, the serving
path's overhead over the bare forward pass on the same batches, and peak memory. The
"distilbert" column is the product's model: the DistilBERT encoder averaged with its TF-IDF
n-gram logistic regression; its bare forward pass is both (encoder + regression) on the batches
the parser formed, so the overhead is tokenizing, batching and the thread hand-off.

Full run (CLINC150 up to 8 epochs from scratch, or 6 fine-tuning a pretrained --base-model,
early stopping; 15-40 minutes on 2 cores):
    python bench/nlu.py                      (or: python -m gateway bench nlu)
Shorter: --epochs 3 (CLINC150 epochs of either kind; a small bot always gets its step floor),
--quick (a 30-intent slice of CLINC150), --skip-clinc, --skip-bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline, make_union  # noqa: E402

from core.nlu.config import TrainConfig  # noqa: E402
from core.nlu.data import Example, in_scope, load_clinc, load_data, out_of_scope  # noqa: E402
from core.nlu.metrics import Scores, choose_threshold, report  # noqa: E402
from core.nlu.parser import ModelParser, ServeConfig  # noqa: E402
from core.nlu.predictor import Predictor  # noqa: E402
from core.nlu.train import split, train  # noqa: E402

CLINC = ROOT.parent / "shared" / "data" / "clinc150" / "train_val.json"


# -- memory ---------------------------------------------------------------------------------


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) of this process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the baseline ---------------------------------------------------------------------------


class Baseline:
    def __init__(self, train_set: Sequence[Example]):
        self.pipe = make_pipeline(
            make_union(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ),
            LogisticRegression(C=20, max_iter=2000),
        )
        self.pipe.fit([e.text for e in train_set], [e.intent for e in train_set])
        self.labels = list(self.pipe.classes_)

    def probs(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(self.pipe.predict_proba(list(texts))).float()


# -- timing ---------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def sync_latency(fn: Callable[[list[str]], object], texts: Sequence[str]) -> list[float]:
    out = []
    for t in texts:
        start = time.perf_counter()
        fn([t])
        out.append(time.perf_counter() - start)
    return out


async def through_parser(parser: ModelParser, texts: Sequence[str], clients: int) -> float:
    """`clients` concurrent senders, each awaiting its answer before sending the next: msgs/s."""
    work = list(texts)
    pos = 0

    async def client() -> None:
        nonlocal pos
        while pos < len(work):
            t = work[pos]
            pos += 1
            await parser.parse(t)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(work) / (time.perf_counter() - start)


async def serve_figures(
    model_dir: Path,
    texts: Sequence[str],
    n_lat: int,
    n_tp: int,
    quantize: bool = False,
    packed: bool = True,
) -> dict[str, Any]:
    cfg = ServeConfig(threads=2, quantize=quantize, packed=packed)
    gc.collect()
    rss_before = rss_mb()
    parser = ModelParser(model_dir, cfg)
    await parser.start()
    rss_loaded = rss_mb() - rss_before
    lat = []
    for t in texts[:n_lat]:
        start = time.perf_counter()
        await parser.parse(t)
        lat.append(time.perf_counter() - start)
    sample = (list(texts) * (n_tp // max(len(texts), 1) + 1))[:n_tp]
    single = ModelParser(model_dir, replace(cfg, max_batch=1))
    await single.start()
    b1 = await through_parser(single, sample, 32)
    await single.close()
    # micro-batching, with the batches it forms recorded to time the bare forward pass on them
    from core.nlu.parser import BatchLog

    # The machine may be shared: served and bare runs alternate in rounds, each round's bare
    # pass timed right after its served run on the same batches; the median round is kept.
    assert parser.predictor is not None
    pred = parser.predictor
    rounds = 5
    per = max(len(sample) // rounds, 1)
    served_s: list[float] = []
    bare_s: list[float] = []
    batches: list[list[str]] = []
    for r in range(rounds):
        part = sample[r * per : (r + 1) * per]
        parser.record = BatchLog()
        start = time.perf_counter()
        await through_parser(parser, part, 32)
        served_s.append(time.perf_counter() - start)
        formed, parser.record = parser.record.batches, None
        batches += formed
        encoded = [pred.encode(b) for b in formed]
        torch.set_num_threads(cfg.threads)  # as the serving thread runs
        for enc in encoded[:3]:  # warm-up, as the parser's load did for its thread
            pred.forward(enc)
        start = time.perf_counter()
        for enc in encoded:
            pred.forward(enc)
        bare_s.append(time.perf_counter() - start)
    ratios = sorted(s / b for s, b in zip(served_s, bare_s, strict=True))
    b32 = per * rounds / sum(served_s)
    bare = sum(bare_s)
    await parser.close()
    return {
        "p50_ms": 1000 * pct(lat, 50),
        "p99_ms": 1000 * pct(lat, 99),
        "msgs_s_batch1": b1,
        "msgs_s_32": b32,
        "mean_batch": statistics.mean(len(b) for b in batches),
        "overhead": ratios[len(ratios) // 2] - 1,
        "bare_msgs_s": sum(len(b) for b in batches) / bare,
        "model_mb": rss_loaded,
        "rss_mb": rss_mb(),
    }


def baseline_serve(base: Baseline, texts: Sequence[str], n_lat: int, n_tp: int) -> dict[str, Any]:
    lat = sync_latency(base.probs, texts[:n_lat])
    sample = (list(texts) * (n_tp // max(len(texts), 1) + 1))[:n_tp]
    start = time.perf_counter()
    for t in sample[: n_tp // 4]:
        base.probs([t])
    b1 = (n_tp // 4) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(sample), 32):
        base.probs(sample[i : i + 32])
    b32 = len(sample) / (time.perf_counter() - start)
    return {
        "p50_ms": 1000 * pct(lat, 50),
        "p99_ms": 1000 * pct(lat, 99),
        "msgs_s_batch1": b1,
        "msgs_s_32": b32,
        "mean_batch": 32.0,
        "overhead": None,
    }


# -- one dataset ----------------------------------------------------------------------------


def run_dataset(
    name: str,
    train_set: list[Example],
    tune: list[Example] | None,
    evaluate: list[Example],
    config: TrainConfig,
    out: Path,
    n_lat: int,
    n_tp: int,
) -> dict[str, dict[str, Any]]:
    """`tune` (validation: early stopping and threshold) defaults to a stratified split."""
    print(
        f"[{name}] {len(in_scope(train_set))} training examples, {len(evaluate)} to evaluate",
        flush=True,
    )
    texts = [e.text for e in evaluate]
    if tune is None:
        fit_set, tune_set = split(in_scope(train_set), config.val_fraction, config.seed)
        tune_set += out_of_scope(train_set)
    else:
        fit_set, tune_set = in_scope(train_set), tune
    results: dict[str, dict[str, Any]] = {}

    reset_peak()
    start = time.perf_counter()
    base = Baseline(fit_set)
    base_train = time.perf_counter() - start
    thr = choose_threshold(
        Scores.of(tune_set, base.probs([e.text for e in tune_set]), base.labels), len(base.labels)
    )["threshold"]
    rep = report(Scores.of(evaluate, base.probs(texts), base.labels), thr, len(base.labels))
    results["tfidf+lr"] = {
        **rep,
        "train_s": base_train,
        **baseline_serve(base, texts, n_lat, n_tp),
        "peak_mb": peak_mb(),
    }
    print(f"[{name}] baseline done: accuracy {rep['accuracy']:.4f}", flush=True)
    del base

    reset_peak()
    start = time.perf_counter()
    res = train(
        fit_set,
        out,
        config,
        validation=tune_set,
        progress=sys.stderr.isatty(),
        on_epoch=lambda e, a: print(f"[{name}] epoch {e}: validation accuracy {a:.4f}", flush=True),
    )
    ours_train = time.perf_counter() - start
    from core.nlu import artifacts

    train_peak = peak_mb()
    for column, quantize in (("distilbert", False), ("distilbert int8", True)):
        loaded = artifacts.load(out, quantize=quantize)
        probs = Predictor(loaded).predict(texts)
        labels, threshold = loaded.labels, loaded.threshold
        del loaded
        rep = report(Scores.of(evaluate, probs, labels), threshold, len(labels))
        serve = asyncio.run(serve_figures(out, texts, n_lat, n_tp, quantize))
        results[column] = {
            **rep,
            "train_s": ours_train,
            "epochs": res.epochs,
            "encoder": res.encoder,
            **serve,
            "peak_mb": train_peak,
        }
        print(f"[{name}] {column} done: accuracy {rep['accuracy']:.4f}", flush=True)
    return results


def time_shape_training(
    train_set: list[Example], config: TrainConfig, checkpoint: Path, out: Path
) -> dict[str, Any]:
    """Fine-tuning time and peak memory of `distilbert-base-uncased`'s shape (random weights from
    `bench/distilbert_shape.py`) on the same split `run_dataset` trains on: what the product's
    default base model costs to fine-tune here, where it cannot be downloaded. Its accuracy
    means nothing and is not reported."""
    fit_set, tune_set = split(in_scope(train_set), config.val_fraction, config.seed)
    tune_set += out_of_scope(train_set)
    reset_peak()
    start = time.perf_counter()
    res = train(
        fit_set,
        out,
        config.with_(base_model=str(checkpoint)),
        validation=tune_set,
        progress=sys.stderr.isatty(),
        on_epoch=lambda e, a: print(f"[shape] epoch {e} done", flush=True),
    )
    seconds = time.perf_counter() - start
    print(f"[shape] fine-tuned in {seconds:.0f} s ({res.epochs} epochs)", flush=True)
    return {"train_s": seconds, "epochs": res.epochs, "encoder": res.encoder, "peak_mb": peak_mb()}


# -- serving the production-size model ----------------------------------------------------


def production_shape(out: Path, examples: Sequence[Example]) -> Path:
    """A model directory of DistilBERT-base's shape (6 layers, 768 dim, 12 heads, 3072 hidden:
    the product's base model, which cannot be downloaded here) with random weights, the bot's
    labels, a WordPiece vocabulary and n-gram regression of the bot's examples, served as the
    product serves it. The cost of a forward pass depends on the shape, not on the weights."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from core.nlu import artifacts
    from core.nlu.network import IntentNet
    from core.nlu.ngrams import NgramVocab
    from core.nlu.tokenizer import train_wordpiece

    if (out / "model.safetensors").is_file():
        return out
    inside = in_scope(examples)
    texts = [e.text for e in inside]
    labels = sorted({e.intent for e in inside})
    tok = train_wordpiece(texts, 8000)
    torch.manual_seed(0)
    labelled: dict[str, Any] = {"num_labels": len(labels), "pad_token_id": tok.pad_token_id}
    config = DistilBertConfig(vocab_size=len(tok), **labelled)
    vocab = NgramVocab.fit(texts)
    net = IntentNet(DistilBertForSequenceClassification(config), len(vocab), len(labels))
    with torch.no_grad():
        net.ngram.weight.normal_(0, 0.1)
        net.mix.fill_(0.5)  # both halves run, as in a trained model
    net.eval()
    fp = {"encoder": "random weights", "train": {"max_len": TrainConfig().max_len}}
    artifacts.save(out, net, tok, labels, vocab, fp, {"threshold": 0.5})
    return out


def run_production_shape(
    out: Path, examples: Sequence[Example], evaluate: Sequence[Example], n_lat: int, n_tp: int
) -> dict[str, dict[str, Any]]:
    """The production-size model served in fp32 and int8, one after the other in this run, and
    before them in fp32 with every message padded to its batch's longest, as it was served
    before `core/nlu/unpad.py`: the baseline of the serving speed-up."""
    model_dir = production_shape(out, examples)
    texts = [e.text for e in evaluate]
    results: dict[str, dict[str, Any]] = {}
    for column, quantize, packed in SHAPE_COLUMNS:
        print(f"[production shape] serving {column}", flush=True)
        results[column] = asyncio.run(
            serve_figures(model_dir, texts, n_lat, n_tp, quantize, packed)
        )
    return results


SHAPE_COLUMNS = [
    ("fp32 padded (before)", False, False),
    ("fp32", False, True),
    ("int8", True, True),
]
"""(column, int8, packed): the production shape's serving runs."""


# -- the table ------------------------------------------------------------------------------

ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("in-scope accuracy", "accuracy", lambda v: f"{100 * v:.2f}%"),
    ("macro-F1", "macro_f1", lambda v: f"{100 * v:.2f}%"),
    ("OOS recall @ threshold", "oos_recall", lambda v: "n/a" if v is None else f"{100 * v:.1f}%"),
    ("accuracy with threshold", "accuracy_with_threshold", lambda v: f"{100 * v:.2f}%"),
    ("threshold (chosen on tuning data)", "threshold", lambda v: f"{v:.3f}"),
    ("training time", "train_s", lambda v: f"{v:.0f} s"),
    ("latency p50 (1 client)", "p50_ms", lambda v: f"{v:.2f} ms"),
    ("latency p99 (1 client)", "p99_ms", lambda v: f"{v:.2f} ms"),
    ("msgs/s batch-1 serving, 32 conc.", "msgs_s_batch1", lambda v: f"{v:.0f}"),
    ("msgs/s micro-batched, 32 conc.", "msgs_s_32", lambda v: f"{v:.0f}"),
    ("mean batch formed", "mean_batch", lambda v: f"{v:.1f}"),
    (
        "serving overhead vs bare forward",
        "overhead",
        lambda v: "n/a" if v is None else f"{100 * v:+.1f}%",
    ),
    ("bare forward msgs/s, same batches", "bare_msgs_s", lambda v: f"{v:.0f}"),
    ("peak RSS while training", "peak_mb", lambda v: f"{v:.0f} MB"),
    ("RSS serving (process)", "rss_mb", lambda v: f"{v:.0f} MB"),
]


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    cols = [(ds, model) for ds in results for model in results[ds]]
    heads = [f"{ds}: {m}" for ds, m in cols]
    width = max(len(r[0]) for r in ROWS)
    cw = max(14, *(len(h) for h in heads))
    lines = [f"| {'':<{width}} | " + " | ".join(f"{h:>{cw}}" for h in heads) + " |"]
    lines.append(f"|{'-' * (width + 2)}|" + "|".join("-" * (cw + 2) for _ in heads) + "|")
    for label, key, fmt in ROWS:
        cells = [fmt(results[ds][m].get(key)) if key in results[ds][m] else "n/a" for ds, m in cols]
        lines.append(f"| {label:<{width}} | " + " | ".join(f"{c:>{cw}}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="30 CLINC intents, 4 epochs, fewer requests"
    )
    ap.add_argument("--skip-clinc", action="store_true")
    ap.add_argument("--skip-bot", action="store_true")
    ap.add_argument(
        "--skip-shape",
        action="store_true",
        help="skip serving DistilBERT-base's shape (random weights) in fp32 and int8",
    )
    ap.add_argument("--only-shape", action="store_true", help="only that serving comparison")
    ap.add_argument(
        "--shape-training",
        action="store_true",
        help="also time fine-tuning distilbert-base-uncased's shape (random weights, its 30k "
        "vocabulary from the `make pretrained` checkpoint) on the bot",
    )
    ap.add_argument("--clinc", type=Path, default=CLINC, help="CLINC150 train_val.json")
    ap.add_argument("--flows", type=Path, default=ROOT / "flows")
    ap.add_argument(
        "--epochs", type=int, help="override the training epochs (from scratch and pretrained)"
    )
    ap.add_argument("--requests", type=int, default=2000, help="messages per throughput run")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench", help="models and JSON")
    ap.add_argument(
        "--base-model",
        default="distilbert-base-uncased",
        help="BASE_MODEL to fine-tune: a hub name or a local checkpoint directory (default "
        "distilbert-base-uncased; offline, training falls back to an encoder from scratch)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    config = TrainConfig(base_model=args.base_model, threads=2)
    if args.epochs:
        config = config.with_(epochs=args.epochs, pretrained_epochs=args.epochs)
    n_tp = 400 if args.quick else args.requests
    n_lat = 100 if args.quick else 300
    results: dict[str, dict[str, dict[str, Any]]] = {}
    held = args.flows / "heldout"
    if args.only_shape:
        args.skip_bot = args.skip_clinc = True
    if not args.skip_shape and held.is_dir():
        shape = run_production_shape(
            args.out / "production-shape",
            load_data(args.flows),
            load_data(held),
            n_lat,
            n_tp,
        )
        results["DistilBERT-base shape"] = shape
    if not args.skip_bot and held.is_dir():
        results["bot heldout"] = run_dataset(
            "bot",
            load_data(args.flows),
            None,
            load_data(held),
            config,
            args.out / "bot",
            n_lat,
            n_tp,
        )
    if args.shape_training and held.is_dir():
        from bench.distilbert_shape import make, minilm

        vocab = minilm()
        if vocab is None:
            print("--shape-training needs `make pretrained` (the vocabulary)", file=sys.stderr)
            return 2
        checkpoint = make(args.out / "distilbert-base-shape", vocab)
        results.setdefault("bot heldout", {})["distilbert-base shape (time)"] = time_shape_training(
            load_data(args.flows), config, checkpoint, args.out / "bot-shape"
        )
    if not args.skip_clinc:
        tr = load_clinc(args.clinc, "train") + load_clinc(args.clinc, "oos_train")
        va = load_clinc(args.clinc, "val") + load_clinc(args.clinc, "oos_val")
        if args.quick:
            keep = set(sorted({e.intent for e in tr})[:30])
            oos = [e for e in tr if e.intent == "out_of_scope"]
            tr = [e for e in tr if e.intent in keep] + oos
            va = [e for e in va if e.intent in keep] + [e for e in va if e.intent == "out_of_scope"]
            config = config.with_(epochs=args.epochs or 4, pretrained_epochs=args.epochs or 4)
        results["CLINC150 val"] = run_dataset(
            "clinc150", tr, None, va, config, args.out / "clinc150", n_lat, n_tp
        )
    args.out.mkdir(parents=True, exist_ok=True)
    slim = {
        ds: {m: {k: v for k, v in r.items() if k != "per_intent"} for m, r in d.items()}
        for ds, d in results.items()
    }
    (args.out / "nlu.json").write_text(json.dumps(slim, indent=1))
    print()
    print(table(results))
    if "DistilBERT-base shape" in results:
        shape = results["DistilBERT-base shape"]
        q8 = shape["int8"]
        for column in ("fp32 padded (before)", "fp32"):
            f32 = shape[column]
            print(
                f"DistilBERT-base shape, int8 / {column}: "
                f"micro-batched {q8['msgs_s_32'] / f32['msgs_s_32']:.2f}x, "
                f"bare forward {q8['bare_msgs_s'] / f32['bare_msgs_s']:.2f}x"
            )
        print(
            "(resident memory of each: python bench/nlu_memory.py "
            f"{args.out / 'production-shape'}; padded against packed: python bench/unpad.py)"
        )
    print(f"\n(figures: {args.out / 'nlu.json'})")
    return 0


if __name__ == "__main__":
    random.seed(0)
    raise SystemExit(main())
