"""torch's dynamic int8 against ONNX Runtime's int8 on DistilBERT-base's shape (6 layers, 768
dim, random weights: a forward pass costs what its shape costs), fp32 of each beside them, on
the same batch, rounds alternating so that a busy machine slows each alike.

    pip install -e '.[onnx]'        (onnxruntime and onnx: not in the lock, only this bench)
    python bench/nlu_onnx.py [--batch 32] [--length 16] [--threads 2] [--rounds 7]

Prints each runtime's median time per batch, messages/s and its largest logit difference from
torch fp32 (how far int8 moves the outputs; accuracy itself is `nlu.py`'s int8 column)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=16, help="tokens a message")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("onnxruntime is not installed: pip install -e '.[onnx]'")
        return 2
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=8000, num_labels=20))
    model.eval()
    ids = torch.randint(5, 8000, (args.batch, args.length))
    mask = torch.ones_like(ids)
    tmp = Path(tempfile.mkdtemp())
    fp32_path, int8_path = tmp / "model.onnx", tmp / "model-int8.onnx"
    axes = {0: "batch", 1: "length"}
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32_path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes},
        dynamo=False,
    )
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)

    def session(path: Path) -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    from core.nlu.int8 import quantized

    q = quantized(model)
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    s32, s8 = session(fp32_path), session(int8_path)

    def torch_run(m: nn.Module) -> Callable[[], np.ndarray]:
        return lambda: m(input_ids=ids, attention_mask=mask).logits.numpy()

    runs: dict[str, Callable[[], np.ndarray]] = {
        "torch fp32": torch_run(model),
        "torch int8 (dynamic)": torch_run(q),
        "onnxruntime fp32": lambda: s32.run(None, feeds)[0],
        "onnxruntime int8 (dynamic)": lambda: s8.run(None, feeds)[0],
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        ref = runs["torch fp32"]()
        diff = {k: float(np.abs(f() - ref).max()) for k, f in runs.items()}
        for _ in range(args.rounds):
            for k, f in runs.items():
                start = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - start)
    print(
        f"batch {args.batch} x {args.length} tokens, {args.threads} threads, {args.rounds} rounds"
    )
    print("| runtime | median ms a batch | msgs/s | max logit diff vs torch fp32 |")
    print("|---|---|---|---|")
    for k, v in times.items():
        med = statistics.median(v)
        print(f"| {k} | {1000 * med:.1f} | {args.batch / med:.0f} | {diff[k]:.4f} |")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
