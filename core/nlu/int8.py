"""Serving in int8: the encoder's Linear layers quantized dynamically (weights int8, activations
quantized per batch; torch's CPU kernels), and the check, made once at training, that decides
whether a model may be served that way. Attention is already torch's fused
`scaled_dot_product_attention` (transformers' default implementation), float as it must be.

The check compares the fp32 and the int8 model on held-out examples; `NLU_QUANTIZE=auto` serves
int8 only when it loses at most `MAX_LOSS` of accuracy there and the encoder is wide enough for
int8 kernels to pay (small matrices gain nothing from them)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedModel

from core.nlu import unpad
from core.nlu.data import Example
from core.nlu.network import IntentNet

MAX_LOSS = 0.005
"""Accuracy points (as a fraction) int8 may lose against fp32 on the held-out check."""
MIN_DIM = 256
"""Narrower encoders are served in fp32 under `auto`: their forward pass is too small for the
int8 kernels' quantize/dequantize steps to be won back."""


def quantize(net: IntentNet) -> IntentNet:
    """The encoder's Linear layers in dynamic int8, in place: each fp32 matrix is freed as its
    int8 one is made, so loading never holds the encoder twice."""
    net.encoder = quantized(net.encoder, inplace=True)
    return net


def quantized(encoder: PreTrainedModel, *, inplace: bool = False) -> PreTrainedModel:
    """`encoder` with its Linear layers in dynamic int8 (a copy unless `inplace`), each weight
    matrix scaled per output channel: as fast as one scale a matrix, and its answers hold better
    (MiniLM on the bot: 96.23% in scope whatever the batch size, against 95.82–96.23% with one
    scale; fp32 96.65%). The API is deprecated in torch, still the CPU's fastest path without a
    graph export; its warning is silenced here."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = cast(Callable[..., PreTrainedModel], quantize_dynamic)
        spec = {nn.Linear: per_channel_dynamic_qconfig}
        return run(encoder, spec, dtype=torch.qint8, inplace=inplace)


def width(config: Any) -> int:
    """The encoder's hidden size, whatever the architecture calls it."""
    for key in ("dim", "hidden_size", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return 0


def check(
    net: IntentNet,
    probs: Callable[[IntentNet, Sequence[str]], torch.Tensor],
    examples: Sequence[Example],
    labels: list[str],
) -> dict[str, Any]:
    """fp32 against int8 on `examples` (in-scope ones count for accuracy; all for agreement):
    {"accuracy_fp32", "accuracy_int8", "agreement", "n_examples", "passed", "served"}.
    `probs(net, texts)` gives a network's probabilities. `net` itself is left in fp32."""
    if not examples:
        return {"passed": False, "served": False, "n_examples": 0}
    texts = [e.text for e in examples]
    gold = [labels.index(e.intent) if e.intent in labels else -1 for e in examples]
    full = probs(net, texts).argmax(-1)
    fp32 = net.encoder
    net.encoder = quantized(fp32)  # a copy of the encoder only, not of the n-grams
    unpad.pack(net.encoder)  # as it is served
    try:
        small = probs(net, texts).argmax(-1)
    finally:
        net.encoder = fp32
    known = torch.tensor([g >= 0 for g in gold])
    target = torch.tensor(gold)
    acc_fp32 = float((full == target)[known].float().mean()) if known.any() else 0.0
    acc_int8 = float((small == target)[known].float().mean()) if known.any() else 0.0
    passed = bool(known.any()) and acc_int8 >= acc_fp32 - MAX_LOSS
    return {
        "accuracy_fp32": round(acc_fp32, 6),
        "accuracy_int8": round(acc_int8, 6),
        "agreement": round(float((full == small).float().mean()), 6),
        "n_examples": len(examples),
        "passed": passed,
        "served": passed and width(net.encoder.config) >= MIN_DIM,
    }


def wanted(setting: bool | None, fingerprint: dict[str, Any]) -> bool:
    """Whether to serve int8: forced by `setting`, else (None, `auto`) as the training-time
    check decided."""
    if setting is not None:
        return setting
    return bool(fingerprint.get("int8", {}).get("served", False))
