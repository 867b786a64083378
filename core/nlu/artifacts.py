"""The model directory: what is written after training and checked before serving.

config.json            the encoder's transformers config
model.safetensors      all weights: the encoder, the n-gram logistic regression (`ngram.weight`,
                       `ngram_bias`) and `mix`, the encoder's weight in the ensemble
tokenizer.json, tokenizer_config.json
labels.json            class index → intent name
ngrams.json            {"grams": [...], "idf": [...]}: the n-gram vocabulary (index order from 1)
                       and each gram's IDF (index 0, no known gram, first)
fingerprint.json       what the model was trained from (data digest, base model, settings,
                       the ensemble's weights)
threshold.json         the confidence threshold chosen on validation data, with its figures
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from core.errors import ModelDirError
from core.nlu import int8, unpad
from core.nlu.network import IntentNet
from core.nlu.ngrams import NgramVocab

FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "labels.json",
    "ngrams.json",
    "fingerprint.json",
    "threshold.json",
)


@dataclass
class Loaded:
    """A model directory read into memory, ready for the predictor."""

    net: IntentNet
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    vocab: NgramVocab
    fingerprint: dict[str, Any]
    threshold: float
    max_len: int
    temperature: float = 1.0
    """Fitted on validation data at training (threshold.json); 1.0 for older models."""


def save(
    out: Path,
    net: IntentNet,
    tokenizer: PreTrainedTokenizerBase,
    labels: list[str],
    vocab: NgramVocab,
    fingerprint: dict[str, Any],
    threshold: dict[str, Any],
) -> None:
    """Written into a sibling temp dir, then swapped in, so a crash never leaves half a model."""
    out = out.resolve()
    tmp = out.with_name(out.name + ".tmp")
    _rmtree(tmp)
    tmp.mkdir(parents=True)
    net.encoder.config.save_pretrained(tmp)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    tokenizer.save_pretrained(tmp)
    ngrams = sorted(vocab.index, key=vocab.index.__getitem__)
    _write(tmp / "labels.json", labels)
    _write(tmp / "ngrams.json", {"grams": ngrams, "idf": vocab.idf})
    _write(tmp / "fingerprint.json", fingerprint)
    _write(tmp / "threshold.json", threshold)
    old = out.with_name(out.name + ".old")
    _rmtree(old)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    _rmtree(old)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelDirError(f"{path}: missing; retrain with `python -m gateway train`") from None
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{path}: unreadable ({exc}); retrain the model") from None


def read_fingerprint(model_dir: Path) -> dict[str, Any] | None:
    """None when there is no model here at all; ModelDirError when there is a broken one."""
    if not model_dir.exists() or (model_dir.is_dir() and not any(model_dir.iterdir())):
        return None
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: not a directory; point MODEL_DIR at a model directory")
    fp = read_json(model_dir / "fingerprint.json")
    if not isinstance(fp, dict):
        raise ModelDirError(f"{model_dir / 'fingerprint.json'}: not a JSON object")
    return fp


@dataclass(frozen=True, slots=True)
class Checked:
    """What `check` read of a model directory without its weights."""

    config: Any
    labels: list[str]
    vocab: NgramVocab
    fingerprint: dict[str, Any]
    threshold: float
    temperature: float = 1.0


def check(model_dir: Path) -> Checked:
    """Everything but reading the weights: files, JSON, config, label map, and the safetensors
    header against the network the config describes (built on the meta device, no memory).
    Any problem is a ModelDirError naming the file and the reason."""
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: no model directory; run `python -m gateway train`")
    missing = [f for f in FILES if not (model_dir / f).is_file()]
    if missing:
        raise ModelDirError(f"{model_dir}: not a complete model ({', '.join(missing)} missing)")
    labels = read_json(model_dir / "labels.json")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelDirError(f"{model_dir / 'labels.json'}: expected a list of intent names")
    vocab = _vocab(model_dir / "ngrams.json")
    fingerprint = read_fingerprint(model_dir) or {}
    thr = read_json(model_dir / "threshold.json")
    try:
        threshold = float(thr["threshold"])
        temperature = float(thr.get("temperature", 1.0))
        if not 0.01 <= temperature <= 100:
            raise ValueError(f"temperature {temperature} out of range")
        config = AutoConfig.from_pretrained(model_dir)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelDirError(f"{model_dir}: cannot read the model's config ({exc})") from None
    if getattr(config, "num_labels", None) != len(labels):
        raise ModelDirError(
            f"{model_dir}: config.json has {config.num_labels} labels, labels.json {len(labels)}"
        )
    with torch.device("meta"):
        expected = {
            k: tuple(v.shape) for k, v in _network(config, vocab, labels).state_dict().items()
        }
    path = model_dir / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelDirError(f"{path}: unusable ({_first_line(exc)})") from None
    if found != expected:
        diff = sorted(set(found.items()) ^ set(expected.items()))[:3]
        raise ModelDirError(f"{path}: weights do not fit config.json (e.g. {diff})")
    return Checked(config, labels, vocab, fingerprint, threshold, temperature)


def _vocab(path: Path) -> NgramVocab:
    data = read_json(path)
    grams = data.get("grams") if isinstance(data, dict) else None
    idf = data.get("idf") if isinstance(data, dict) else None
    if not isinstance(grams, list) or not isinstance(idf, list):
        raise ModelDirError(f'{path}: expected {{"grams": [...], "idf": [...]}}')
    if len(idf) != len(grams) + 1 or not all(isinstance(x, int | float) for x in idf):
        raise ModelDirError(f"{path}: {len(idf)} IDF numbers for {len(grams)} n-grams (+1)")
    return NgramVocab({str(g): i + 1 for i, g in enumerate(grams)}, [float(x) for x in idf])


def load(model_dir: Path, *, quantize: bool | None = False, packed: bool = True) -> Loaded:
    """The model, ready to serve; `quantize`: int8 (True), fp32 (False), or as the check made
    at training decided (None); `packed`: its layers run on the real tokens only (`unpad`;
    False only to measure what that saves)."""
    c = check(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelDirError(f"{model_dir}: cannot read the tokenizer ({exc})") from None
    net = _network(c.config, c.vocab, c.labels)
    try:
        _read_weights(net, model_dir / "model.safetensors")
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ModelDirError(
            f"{model_dir / 'model.safetensors'}: unusable ({_first_line(exc)})"
        ) from None
    net.eval()
    if int8.wanted(quantize, c.fingerprint):
        net = int8.quantize(net)
        give_back_memory()  # the fp32 matrices just freed
    if packed:
        unpad.pack(net.encoder)
    max_len = int(c.fingerprint.get("train", {}).get("max_len", 64))
    return Loaded(
        net, tokenizer, c.labels, c.vocab, c.fingerprint, c.threshold, max_len, c.temperature
    )


def give_back_memory() -> None:
    """Returns the C heap's free pages to the system (glibc's malloc_trim): large freed blocks
    otherwise stay in the process's resident memory. Nothing where there is no glibc."""
    gc.collect()  # modules replaced by others can sit in reference cycles until collected
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _read_weights(net: IntentNet, path: Path) -> None:
    """Tensor by tensor into the network's own (the header was checked against it), so the
    weights are never in memory twice."""
    own = net.state_dict()
    with torch.no_grad(), safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            own[key].copy_(f.get_tensor(key))


def _network(config: Any, vocab: NgramVocab, labels: list[str]) -> IntentNet:
    from_config = cast(
        Callable[[object], PreTrainedModel], AutoModelForSequenceClassification.from_config
    )
    return IntentNet(from_config(config), len(vocab), len(labels))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _rmtree(path: Path) -> None:
    import shutil

    if path.exists():
        shutil.rmtree(path)
