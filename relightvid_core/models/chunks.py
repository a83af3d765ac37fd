"""Token chunks: the per-token layers of the large levels run a slice of the tokens at a time.

A transformer block's feed-forward widens every token eightfold (GEGLU: 2 × 4 × C) and its attentions
hold several token-sized tensors; run on all tokens of a 16 × 64² clip at once, those intermediates are
the forward's memory peak. Every layer inside the blocks is per token (LayerNorm, linear layers) or
mixes tokens only within a frame (spatial attention) or within a position (temporal attention), so
slicing over frames or positions changes which tokens share a kernel call, never what they compute.
"""

from __future__ import annotations

# About 16k tokens per slice: at the 64² level that is 4 frames (spatial) or 341 positions of 48
# folded frames (temporal); the levels below 64² mostly fit in one slice. A slice's GEGLU intermediate
# is then 80 MiB in fp16 whatever the clip size, while each kernel call stays large.
CHUNK_TOKENS = 2**14


def slices(total: int, tokens_per_item: int) -> list[slice]:
    """Consecutive slices of ``range(total)`` holding at most :data:`CHUNK_TOKENS` tokens each (at least one item)."""
    step = max(1, CHUNK_TOKENS // max(1, tokens_per_item))
    return [slice(start, min(start + step, total)) for start in range(0, total, step)]
