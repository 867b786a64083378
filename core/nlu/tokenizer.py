"""The WordPiece tokenizer the from-scratch encoder uses, its vocabulary learned from the
examples. The vocabulary is built here rather than by `tokenizers`' WordPiece trainer, whose
ties are broken in hash order (two runs on the same data give different vocabularies): a fixed
seed must give the same model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import cast

from tokenizers import normalizers, pre_tokenizers
from transformers import DistilBertTokenizerFast, PreTrainedTokenizerBase

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_MAX_PIECE = 12


def learn_vocab(texts: Sequence[str], vocab_size: int) -> list[str]:
    """Specials, every character seen (alone and as a `##` continuation), then the pieces that
    cover the most text: whole words, word-initial prefixes and `##` continuations, scored by
    frequency × length, ties broken alphabetically."""
    norm = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for t in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    base = [*SPECIALS, *chars, *(f"##{c}" for c in chars)]
    pieces: Counter[str] = Counter()
    for w, n in words.items():
        for j in range(2, min(len(w), _MAX_PIECE) + 1):
            pieces[w[:j]] += n
        for i in range(1, len(w)):
            for j in range(i + 2, min(len(w), i + _MAX_PIECE) + 1):
                pieces[f"##{w[i:j]}"] += n
    scored = sorted(pieces, key=lambda p: (-pieces[p] * len(p.removeprefix("##")), p))
    return base + scored[: max(vocab_size - len(base), 0)]


def train_wordpiece(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """Built from `vocab=` (not `vocab_file=`): transformers 5 maps every token of a
    `vocab_file` tokenizer to [UNK] without a word."""
    vocab = {t: i for i, t in enumerate(learn_vocab(texts, vocab_size))}
    built = cast(PreTrainedTokenizerBase, DistilBertTokenizerFast(vocab=vocab))
    check_tokenizer(built, texts)
    return built


def unknown_share(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """The share of word pieces that come out as [UNK]."""
    unk = tokenizer.unk_token_id
    total = hits = 0
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        total += len(ids)
        hits += sum(1 for i in ids if i == unk)
    return hits / total if total else 0.0


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> None:
    sample = list(texts[:200])
    share = unknown_share(tokenizer, sample)
    if sample and share > 0.05:
        raise RuntimeError(f"the tokenizer maps {share:.0%} of the training text to [UNK]")
