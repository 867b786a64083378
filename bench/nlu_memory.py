"""Resident memory of loading and serving a model directory, each precision in a fresh process
(a process's freed memory is not always given back, so one process cannot measure two loads).

    python bench/nlu_memory.py var/bench/production-shape

Prints, for fp32 and int8: RSS before loading (the libraries), peak RSS while loading, RSS after
loading and one batch of 32.

    python bench/nlu_memory.py --ngram-fit ../shared/data/clinc150/train_val.json

Fits the n-gram regression (training's most memory-hungry step) on CLINC150's `train` and prints
RSS before it, its peak RSS and its time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model_dir: str, quantize: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import torch

    from core.nlu import artifacts
    from core.nlu.predictor import Predictor

    torch.set_num_threads(2)
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    pred = Predictor(artifacts.load(Path(model_dir), quantize=quantize))
    pred.predict(["where is my order, it has not arrived yet"] * 32)
    print(json.dumps({"libraries": base, "peak": status("VmHWM"), "after": status("VmRSS")}))


def ngram_fit(clinc: str) -> None:
    import time

    sys.path.insert(0, str(ROOT))
    import torch

    from core.nlu.config import TrainConfig
    from core.nlu.data import in_scope, load_clinc
    from core.nlu.train import _Sparse

    torch.set_num_threads(2)
    data = in_scope(load_clinc(Path(clinc), "train"))
    labels = sorted({e.intent for e in data})
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    fitted = _Sparse.fit(data, labels, TrainConfig())
    seconds = time.perf_counter() - start
    print(f"n-gram regression on {len(data)} examples, {len(fitted.vocab)} n-grams x {len(labels)}")
    print(f"RSS before {base:.0f} MB, peak {status('VmHWM'):.0f} MB, {seconds:.0f} s")


def main() -> int:
    model_dir = sys.argv[1]
    print("| precision | RSS libraries | peak RSS loading | RSS loaded | loaded - libraries |")
    print("|---|---|---|---|---|")
    for name, q in (("fp32", False), ("int8", True)):
        out = (
            subprocess.run(
                [sys.executable, __file__, "--child", model_dir, str(int(q))],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        m = json.loads(out)
        print(
            f"| {name} | {m['libraries']:.0f} MB | {m['peak']:.0f} MB | {m['after']:.0f} MB | "
            f"{m['after'] - m['libraries']:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--ngram-fit":
        ngram_fit(sys.argv[2])
        raise SystemExit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3] == "1")
        raise SystemExit(0)
    raise SystemExit(main())
