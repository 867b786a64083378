"""The from-scratch tokenizer knows its words; the n-gram features are stable."""

from pathlib import Path

import pytest
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
    g = grams("Track order a")
    assert {"w:track", "w:order", "w:track order", "c: t", "c:der ", "c: a "} <= set(g)
    assert "w:a" not in g  # one-character tokens are not words (as sklearn's token pattern)


def test_vocab_encodes_known_grams_and_reserves_zero() -> None:
    vocab = NgramVocab.fit(TEXTS)
    ids = vocab.encode("where is my parcel")
    assert 0 not in ids and len(ids) == len(set(ids))
    assert vocab.encode("😀") == [0]
    assert vocab.encode("") == [0]
    bag = vocab.bag(["hello there", "😀"])
    assert bag.offsets.tolist() == [0, len(vocab.encode("hello there"))]
    first = bag.weights[: bag.offsets[1]]
    assert abs(float((first**2).sum()) - 2.0) < 1e-5  # two groups, each of unit length


def test_features_are_sklearns_tfidf_pair() -> None:
    """The regression's input equals the baseline's TfidfVectorizer union (word 1-2 grams,
    char_wb 2-5 grams, sublinear TF) column for column, repeats and odd text included."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    from core.nlu.sparse import features

    fit = [*TEXTS, "order order ORDER status", "a b c", "zz\ttop\n  hat"]
    texts = [*fit, "", "😀", "status status of my order!", "Где заказ", "x"]
    ref = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    ).fit(fit)
    names = [f"w:{n}" for n in ref.transformer_list[0][1].get_feature_names_out()]
    names += [f"c:{n}" for n in ref.transformer_list[1][1].get_feature_names_out()]
    vocab = NgramVocab.fit(fit)
    assert sorted(names) == sorted(vocab.index)
    ours = features(vocab, texts).toarray()[:, [vocab.index[n] for n in names]]
    assert np.allclose(ours, ref.transform(texts).toarray(), atol=1e-6)  # float32, as served


def test_a_batch_bag_is_each_texts_vector() -> None:
    vocab = NgramVocab.fit(TEXTS)
    texts = ["", "where is my parcel", "😀", "parcel parcel", "hello there"]
    bag = vocab.bag(texts)
    ends = [*bag.offsets.tolist()[1:], len(bag.ids)]
    for t, start, end in zip(texts, bag.offsets.tolist(), ends, strict=True):
        ids, weights = vocab.vector(t)
        assert bag.ids[start:end].tolist() == ids
        assert bag.weights[start:end].tolist() == pytest.approx(weights)
