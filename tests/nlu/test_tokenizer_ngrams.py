"""The from-scratch tokenizer knows its words; the n-gram features are stable."""

from pathlib import Path

from transformers import AutoTokenizer

from core.nlu.ngrams import NgramVocab, grams
from core.nlu.tokenizer import train_wordpiece, unknown_share

TEXTS = ["where is my order", "track my package please", "reset my password", "hello there"] * 3


def test_wordpiece_tokens_are_not_unknown(tmp_path: Path) -> None:
    tok = train_wordpiece(TEXTS, 300)
    assert unknown_share(tok, TEXTS) == 0.0
    ids = tok("where is my order")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.unk_token_id not in ids
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("track my package")["input_ids"] == tok("track my package")["input_ids"]
    assert unknown_share(again, TEXTS) == 0.0


def test_unseen_script_is_unknown_not_an_error() -> None:
    tok = train_wordpiece(TEXTS, 300)
    assert unknown_share(tok, ["日本語のテキスト"]) > 0.5


def test_ngrams_words_bigrams_and_chars() -> None:
    g = grams("Track order")
    assert {"w:track", "w:order", "b:track order", "c:<tr", "c:der>"} <= set(g)


def test_vocab_encodes_known_grams_and_reserves_zero() -> None:
    vocab = NgramVocab.fit(TEXTS)
    ids = vocab.encode("where is my parcel")
    assert 0 not in ids and ids == sorted(set(ids))
    assert vocab.encode("😀") == [0]
    assert vocab.encode("") == [0]
    bag = vocab.bag(["hello there", "😀"])
    assert bag.offsets.tolist() == [0, len(vocab.encode("hello there"))]
    first = bag.weights[: bag.offsets[1]]
    assert abs(float((first**2).sum()) - 1.0) < 1e-5
