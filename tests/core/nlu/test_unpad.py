"""Serving without the padding (`core/nlu/unpad.py`): a packed encoder gives every text of a
padded batch what the padded forward pass gives it, and what the text gives alone, for each
architecture it packs; it leaves the others alone, survives a failed batch and runs on two
threads at once; the parser serves packed models."""

from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path

import pytest
import torch
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    PretrainedConfig,
    PreTrainedModel,
    RobertaConfig,
)

from core.nlu import artifacts, unpad
from core.nlu.int8 import quantized
from core.nlu.parser import ModelParser, ServeConfig
from core.nlu.predictor import Predictor

LENGTHS = [3, 9, 5, 9, 2, 7]
SENTENCES = [
    "hi",
    "where is my order 12345, it should have arrived last week",
    "reset my password please",
    "I want my money back for the broken kettle I bought",
]
PAD = {"distilbert": 0, "bert": 0, "roberta": 1}


def config(kind: str) -> PretrainedConfig:
    small = {"vocab_size": 120, "num_labels": 4, "max_position_embeddings": 40}
    if kind == "distilbert":
        return DistilBertConfig(n_layers=2, dim=32, n_heads=4, hidden_dim=64, **small)
    layers = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4}
    shape = {**small, **layers, "intermediate_size": 64, "pad_token_id": PAD.get(kind, 0)}
    if kind == "bert":
        return BertConfig(**shape)
    if kind == "roberta":
        return RobertaConfig(**shape)
    return AlbertConfig(embedding_size=16, **shape)


def model(kind: str) -> PreTrainedModel:
    torch.manual_seed(0)
    net: PreTrainedModel = AutoModelForSequenceClassification.from_config(config(kind))
    return net.eval()


def texts(kind: str, lengths: list[int] = LENGTHS) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(5, 120, (n,), generator=gen) for n in lengths]


def padded(kind: str, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), PAD[kind])
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask


def logits(net: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return net(input_ids=ids, attention_mask=mask).logits  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["distilbert", "bert", "roberta"])
def test_a_packed_batch_gives_each_text_what_it_gets_alone(kind: str) -> None:
    plain = model(kind)
    packed = copy.deepcopy(plain)
    assert unpad.pack(packed)
    assert packed.config._attn_implementation == unpad.NAME
    assert plain.config._attn_implementation == "sdpa"  # the copy's config is its own
    rows = texts(kind)
    ids, mask = padded(kind, rows)
    alone = torch.cat(
        [logits(plain, r[None], torch.ones(1, len(r), dtype=torch.long)) for r in rows]
    )
    torch.testing.assert_close(logits(plain, ids, mask), alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits(packed, ids, mask), alone, atol=1e-5, rtol=1e-4)
    assert unpad._rows.index is None  # nothing left behind for the next batch


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_packing_the_int8_model_changes_only_the_rounding(kind: str) -> None:
    """Dynamic int8 scales each layer's activations by their range: over the real tokens alone
    once packed, so the logits move a little, never the answer on a clear margin."""
    q8 = quantized(model(kind))
    packed = copy.deepcopy(q8)
    assert unpad.pack(packed)
    ids, mask = padded(kind, texts(kind))
    before, after = logits(q8, ids, mask), logits(packed, ids, mask)
    assert (before - after).abs().max() < 0.05
    margin = before.topk(2).values
    clear = (margin[:, 0] - margin[:, 1]) > 0.1
    assert torch.equal(before.argmax(-1)[clear], after.argmax(-1)[clear])


def test_a_batch_without_padding_runs_as_it_is() -> None:
    plain = model("distilbert")
    packed = copy.deepcopy(plain)
    unpad.pack(packed)
    ids, mask = padded("distilbert", texts("distilbert", [6, 6, 6]))
    torch.testing.assert_close(logits(packed, ids, mask), logits(plain, ids, mask))


def test_packing_twice_is_packing_once() -> None:
    plain, packed = model("bert"), model("bert")
    assert unpad.pack(packed) and unpad.pack(packed)
    ids, mask = padded("bert", texts("bert"))
    torch.testing.assert_close(
        logits(packed, ids, mask), logits(plain, ids, mask), atol=1e-5, rtol=1e-4
    )


def test_other_architectures_are_left_alone() -> None:
    net = model("albert")
    assert not unpad.pack(net)
    assert net.config._attn_implementation != unpad.NAME
    assert not net._forward_pre_hooks


def test_a_failed_batch_leaves_nothing_behind() -> None:
    plain = model("distilbert")
    packed = copy.deepcopy(plain)
    unpad.pack(packed)
    ids, mask = padded("distilbert", texts("distilbert"))
    bad = ids.clone()
    bad[0, 0] = 10_000  # outside the vocabulary: the embedding lookup fails mid-forward
    with pytest.raises(IndexError):
        logits(packed, bad, mask)
    assert unpad._rows.index is None
    torch.testing.assert_close(
        logits(packed, ids, mask), logits(plain, ids, mask), atol=1e-5, rtol=1e-4
    )


def test_two_threads_pack_their_own_batches() -> None:
    plain = model("distilbert")
    packed = copy.deepcopy(plain)
    unpad.pack(packed)
    batches = [
        padded("distilbert", texts("distilbert", lengths)) for lengths in ([3, 9, 5], [12, 2])
    ]
    want = [logits(plain, ids, mask) for ids, mask in batches]
    wrong: list[str] = []

    def run(which: int) -> None:
        for _ in range(30):
            got = logits(packed, *batches[which])
            if not torch.allclose(got, want[which], atol=1e-5, rtol=1e-4):
                wrong.append(f"batch {which}")

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_a_loaded_model_is_packed_and_scores_as_before(fixture_model_dir: Path) -> None:
    """The encoder's own logits (the n-gram half of the ensemble does not see the padding)."""
    plain, packed = (artifacts.load(fixture_model_dir, packed=p) for p in (False, True))
    assert packed.net.encoder.config._attn_implementation == unpad.NAME
    assert plain.net.encoder.config._attn_implementation != unpad.NAME
    batch = Predictor(plain).encode(SENTENCES)
    assert not bool(batch.attention_mask.all())  # the batch is padded
    with torch.inference_mode():
        want = plain.net.encoder_logits(batch.input_ids, batch.attention_mask)
        got = packed.net.encoder_logits(batch.input_ids, batch.attention_mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


async def test_the_parser_serves_packed_models(fixture_model_dir: Path) -> None:
    answers = {}
    for packed in (False, True):
        parser = ModelParser(fixture_model_dir, ServeConfig(threads=1, packed=packed))
        await parser.start()
        try:
            assert parser.predictor is not None
            config = parser.predictor.loaded.net.encoder.config
            assert (config._attn_implementation == unpad.NAME) is packed
            # together, so that they share one padded batch
            answers[packed] = await asyncio.gather(*(parser.parse(s) for s in SENTENCES))
        finally:
            await parser.close()
    for a, b in zip(answers[False], answers[True], strict=True):
        assert a.intent == b.intent
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
