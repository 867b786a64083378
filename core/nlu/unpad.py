"""Serving without computing the padding. A micro-batch is padded to its longest message, and
messages are short and uneven (the bot's held-out texts: 7 tokens on average, 12 for the
longest of a batch of 32), so nearly half of what the encoder computes is padding.

`pack` makes an encoder run its transformer layers on the real tokens only: the batch's hidden
states are packed into one row of real tokens as they enter the layers and put back in the padded
shape as they leave (zeros where the padding was; the classifier reads each text's first token).
Everything in a layer acts on each token alone except attention, the only place where tokens
meet: there the packed queries, keys and values are spread back to the padded batch for torch's
fused attention, with the padding masked out as keys as before, and the result packed again.
The real tokens' results are those of the padded forward pass (to float rounding; in int8, each
Linear layer's activation scale is taken over the real tokens alone).

This uses transformers' documented extension point for attention (`AttentionInterface`), and is
applied only to architectures whose positions meet in attention alone (`PACKABLE`)."""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

NAME = "gateway_packed"
"""The attention implementation packed encoders use: torch's SDPA, on the padded batch."""
PACKABLE = frozenset({"bert", "distilbert", "roberta", "xlm-roberta"})
"""Encoders whose positions meet only in attention (no convolution or pooling across them)."""


class _Rows(threading.local):
    """The packed batch being run on this thread."""

    def __init__(self) -> None:
        self.index: torch.Tensor | None = None  # the real tokens' rows in the flattened batch
        self.shape: tuple[int, int] = (0, 0)  # (texts, padded length)
        self.mask: torch.Tensor | None = None  # [texts, 1, 1, length]: the real keys


_rows = _Rows()


def packable(encoder: PreTrainedModel) -> bool:
    return (
        getattr(encoder.config, "model_type", None) in PACKABLE
        and encoder.config._attn_implementation in ("sdpa", NAME)
        and _stack(encoder) is not None
    )


def pack(encoder: PreTrainedModel) -> bool:
    """Makes `encoder` run its layers on the real tokens only (after any quantization: the
    hooks hold on to no Linear layer). False, and nothing changed, where the architecture is not
    known to allow it."""
    stack = _stack(encoder)
    if stack is None or not packable(encoder):
        return False
    if encoder.config._attn_implementation == NAME:
        return True  # packed already
    encoder.config._attn_implementation = NAME
    encoder.register_forward_pre_hook(_begin, with_kwargs=True)
    encoder.register_forward_hook(_end, always_call=True)
    stack.register_forward_pre_hook(_enter, with_kwargs=True)
    stack.register_forward_hook(_leave)
    return True


def _stack(encoder: PreTrainedModel) -> nn.Module | None:
    """The module that runs the transformer layers, between the embeddings and the head."""
    base = getattr(encoder, "base_model", encoder)
    for name in ("transformer", "encoder"):
        stack = getattr(base, name, None)
        layers = getattr(stack, "layer", None)
        if isinstance(stack, nn.Module) and isinstance(layers, nn.ModuleList):
            return stack
    return None


def _begin(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _end()
    mask = kwargs.get("attention_mask")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or bool(mask.all()):
        return  # nothing padded: the layers run as they are
    keep = mask.bool()
    _rows.shape = (mask.shape[0], mask.shape[1])
    _rows.index = keep.reshape(-1).nonzero().squeeze(1)
    _rows.mask = keep[:, None, None, :]


def _end(*_: Any) -> None:
    _rows.index = _rows.mask = None


def _enter(
    _: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if _rows.index is None:
        return None
    if args:
        hidden, args = args[0], args[1:]
    else:
        hidden = kwargs.pop("hidden_states")
    if tuple(hidden.shape[:2]) != _rows.shape:  # not the batch the mask was read from
        _end()
        return None
    packed = hidden.reshape(-1, hidden.shape[-1]).index_select(0, _rows.index).unsqueeze(0)
    kwargs["attention_mask"] = None  # the real keys are in `_rows.mask`
    return (packed, *args), kwargs


def _leave(_: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
    if _rows.index is None:
        return None
    hidden = out[0]
    out_hidden = _spread(hidden[0]).view(*_rows.shape, hidden.shape[-1])
    if isinstance(out, dict):  # a ModelOutput: its items are its attributes
        out["last_hidden_state"] = out_hidden
        return out
    return (out_hidden, *out[1:])


def _spread(rows: torch.Tensor) -> torch.Tensor:
    """[real tokens, ...] -> [texts × length, ...], zeros where the padding is."""
    full = rows.new_zeros(_rows.shape[0] * _rows.shape[1], *rows.shape[1:])
    full.index_copy_(0, _rows.index, rows)  # type: ignore[arg-type]  # set while packed
    return full


def _attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA for packed layers: [1, heads, real tokens, d] in, [1, real tokens, heads, d] out."""
    if _rows.index is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    texts, length = _rows.shape

    def padded(x: torch.Tensor) -> torch.Tensor:
        heads, size = x.shape[1], x.shape[3]
        return _spread(x[0].transpose(0, 1)).view(texts, length, heads, size).transpose(1, 2)

    out, _ = sdpa_attention_forward(
        module, padded(query), padded(key), padded(value), _rows.mask, **kwargs
    )
    flat = out.reshape(texts * length, *out.shape[2:]).index_select(0, _rows.index)
    return flat.unsqueeze(0), None


AttentionInterface.register(NAME, _attention)
AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
