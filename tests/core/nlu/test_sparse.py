"""The n-gram regression is sklearn's L2 logistic regression, fitted in float32 with less memory."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from core.nlu import sparse
from core.nlu.ngrams import NgramVocab

TRAIN = [
    ("where is my order", 0),
    ("track my parcel please", 0),
    ("has my package shipped", 0),
    ("reset my password", 1),
    ("i forgot my password", 1),
    ("cannot log in to my account", 1),
    ("i want my money back", 2),
    ("refund this order please", 2),
    ("how do i get a refund", 2),
]
PROBE = ["where is the parcel", "password help", "money back for my order", "😀", ""]


@pytest.mark.parametrize("labels", [2, 3])
def test_the_fit_is_sklearns_optimum(labels: int) -> None:
    """Same objective (C, unpenalised bias), same probabilities, binary included."""
    data = [(t, y) for t, y in TRAIN if y < labels]
    texts, y = [t for t, _ in data], [y for _, y in data]
    vocab = NgramVocab.fit(texts)
    weight, bias = sparse.fit(vocab, texts, y, labels, 20.0, 2000)
    ours = sparse.probs(vocab, weight, bias, PROBE[:3]).numpy()
    x = sparse.features(vocab, texts).astype(np.float64)
    ref = LogisticRegression(C=20.0, tol=1e-10, max_iter=10_000).fit(x, y)
    theirs = ref.predict_proba(sparse.features(vocab, PROBE[:3]).astype(np.float64))
    assert np.abs(ours - theirs).max() < 0.02
    assert ours.argmax(-1).tolist()[:labels] == list(range(labels))
    assert weight.dtype == bias.dtype == torch.float32
    assert float(weight[0].abs().sum()) == 0.0  # the "no known n-gram" row carries nothing


def test_a_label_without_examples_is_refused() -> None:
    vocab = NgramVocab.fit([t for t, _ in TRAIN])
    with pytest.raises(ValueError, match="classes"):
        sparse.fit(vocab, [t for t, _ in TRAIN], [y for _, y in TRAIN], 4, 20.0, 100)
