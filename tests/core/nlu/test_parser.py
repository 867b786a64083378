"""The serving parser: micro-batching on its own thread, rankings, entities, odd input."""

import asyncio
import threading
from pathlib import Path

import pytest

from core.nlu.parser import BatchLog, ModelParser, ServeConfig, clean
from core.ports import Entity


@pytest.fixture
async def parser(fixture_model_dir: Path):
    p = ModelParser(fixture_model_dir, ServeConfig(threads=1, wait_ms=20, max_batch=8))
    await p.start()
    yield p
    await p.close()


async def test_not_ready_until_loaded(fixture_model_dir: Path) -> None:
    p = ModelParser(fixture_model_dir)
    assert not p.ready()
    early = await p.parse("where is my order")
    assert early.intent is None and early.confidence == 0.0
    await p.start()
    try:
        assert p.ready()
    finally:
        await p.close()
    assert not p.ready()


async def test_known_examples_get_their_intent(parser: ModelParser) -> None:
    res = await parser.parse("where is my order")
    assert res.intent == "order_status"
    assert res.confidence == res.ranking[0].confidence
    assert [r.confidence for r in res.ranking] == sorted(
        (r.confidence for r in res.ranking), reverse=True
    )
    assert {r.intent for r in res.ranking} == {
        "greet",
        "order_status",
        "password_reset",
        "refund",
    }
    assert (await parser.parse("reset my password")).intent == "password_reset"


async def test_concurrent_messages_share_a_forward_pass(parser: ModelParser) -> None:
    parser.record = BatchLog()
    texts = ["hello", "where is my order", "i want a refund", "reset my password"] * 4
    await parser.parse("warm the batcher: a lone message goes at once")
    results = await asyncio.gather(*(parser.parse(t) for t in texts))
    assert [r.text for r in results] == texts
    sizes = [len(b) for b in parser.record.batches[1:]]
    assert sum(sizes) == len(texts) and max(sizes) > 1
    assert max(sizes) <= 8
    assert results[1].intent == "order_status" and results[2].intent == "refund"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x" * 10_000,
        "where is my order " * 700,
        "😀😀😀🎉",
        "заказ 注文 where طلب",
        "order\x00\x07\x1b[31m status\u200b\ufeff",
        "\ud800 lone surrogate",
    ],
)
async def test_odd_input_gets_a_result_not_an_exception(parser: ModelParser, text: str) -> None:
    res = await parser.parse(text)
    assert res.text == text
    assert 0.0 <= res.confidence <= 1.0


async def test_empty_and_emoji_are_low_confidence(parser: ModelParser) -> None:
    assert (await parser.parse("")).intent is None


async def test_the_bots_model_is_not_sure_of_emoji_or_punctuation(trained_model_dir: Path) -> None:
    # The default bot's model, trained with its out-of-scope examples: the NLU tests' four
    # intents alone teach a model nothing about what is none of them.
    p = ModelParser(trained_model_dir, ServeConfig(threads=1))
    await p.start()
    try:
        for text in ("😀😀😀", "🙂", "?", "..."):
            assert (await p.parse(text)).confidence < p.threshold, text
    finally:
        await p.close()


def test_clean_keeps_offsets_and_cuts() -> None:
    assert clean("a\x00b\u200bc", 100) == "a b c"
    assert len(clean("x" * 10_000, 512)) == 512


async def test_entities_come_from_the_extractor(fixture_model_dir: Path) -> None:
    seen: list[str] = []

    def extract(text: str) -> tuple[Entity, ...]:
        seen.append(text)
        i = text.find("A1B2C3")
        return (Entity("order_id", "A1B2C3", "A1B2C3", i, i + 6),) if i >= 0 else ()

    p = ModelParser(fixture_model_dir, ServeConfig(threads=1), extract=extract)
    await p.start()
    try:
        res = await p.parse("where is order A1B2C3")
        assert res.entities == (Entity("order_id", "A1B2C3", "A1B2C3", 15, 21),)
        assert res.intent == "order_status"
        assert seen == ["where is order A1B2C3"]
    finally:
        await p.close()


async def test_a_failing_extractor_keeps_the_intent(fixture_model_dir: Path) -> None:
    def extract(text: str) -> tuple[Entity, ...]:
        raise ValueError("broken extractor")

    p = ModelParser(fixture_model_dir, ServeConfig(threads=1), extract=extract)
    await p.start()
    try:
        res = await p.parse("reset my password")
        assert res.intent == "password_reset" and res.entities == ()
    finally:
        await p.close()


async def test_entities_are_looked_for_beside_the_forward_pass_in_what_the_model_reads(
    fixture_model_dir: Path,
) -> None:
    release = threading.Event()
    seen: list[tuple[str, str]] = []

    def extract(text: str) -> tuple[Entity, ...]:
        seen.append((threading.current_thread().name, text))
        if "slow" in text:
            release.wait(10)
        return ()

    p = ModelParser(fixture_model_dir, ServeConfig(threads=1, max_chars=32), extract=extract)
    await p.start()
    try:
        slow = asyncio.ensure_future(p.parse("slow " * 20))
        quick = await asyncio.wait_for(p.parse("where is my order"), 5)
        assert quick.intent == "order_status" and quick.extracted and not slow.done()
        release.set()
        assert (await slow).extracted
        assert {len(text) for _, text in seen} <= {32, len("where is my order")}
        assert not {name for name, _ in seen} & {"nlu-inference", "MainThread"}
    finally:
        release.set()
        await p.close()


async def test_quantized_model_still_classifies(fixture_model_dir: Path) -> None:
    p = ModelParser(fixture_model_dir, ServeConfig(threads=1, quantize=True))
    await p.start()
    try:
        assert (await p.parse("where is my order")).intent == "order_status"
    finally:
        await p.close()


async def test_messages_during_the_load_wait_for_it(fixture_model_dir: Path) -> None:
    p = ModelParser(fixture_model_dir, ServeConfig(threads=1))
    loading = asyncio.ensure_future(p.start())
    await asyncio.sleep(0)
    assert not p.ready()
    res = await p.parse("where is my order")
    assert res.intent == "order_status"
    await loading
    await p.close()


async def test_a_failed_load_reports_and_parse_still_answers(tmp_path: Path) -> None:
    from core.errors import ModelDirError

    p = ModelParser(tmp_path / "missing", ServeConfig(threads=1))
    with pytest.raises(ModelDirError, match="missing: no model directory"):
        await p.start()
    assert (await p.parse("hello")).intent is None
    assert not p.ready()


@pytest.mark.parametrize("text", ["where is my order", "", "x" * 3000, "😀 заказ\u200b", "a\tb"])
def test_fast_encoder_gives_the_transformers_ids(fixture_model_dir: Path, text: str) -> None:
    """Serving calls the Rust tokenizer directly: same ids and mask as the transformers call
    (truncation to max_len, padding to the batch's longest)."""
    from core.nlu import artifacts
    from core.nlu.predictor import Predictor, encode

    loaded = artifacts.load(fixture_model_dir)
    texts = [text, "hello", "reset my password please now"]
    fast = Predictor(loaded).encode(texts)
    ref = encode(loaded.tokenizer, loaded.vocab, texts, loaded.max_len)
    assert fast.input_ids.tolist() == ref.input_ids.tolist()
    assert fast.attention_mask.tolist() == ref.attention_mask.tolist()
    assert fast.input_ids.shape[1] <= loaded.max_len


async def test_every_message_of_a_burst_gets_its_own_answer(parser: ModelParser) -> None:
    """Batches are answered with one wake-up of the loop: each future still gets the result of
    its own text, odd text included, and none is left waiting."""
    texts = ["where is my order", "", "😀", "reset my password", "\x00", "hello"] * 7
    results = await asyncio.wait_for(asyncio.gather(*(parser.parse(t) for t in texts)), 30)
    assert [r.text for r in results] == texts
    assert all(r.intent is None for r, t in zip(results, texts, strict=True) if not t.strip("\x00"))
    assert {r.intent for r, t in zip(results, texts, strict=True) if t == "reset my password"} == {
        "password_reset"
    }
