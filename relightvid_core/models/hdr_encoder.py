"""The paper's HDR token encoder: an environment-map image per frame → 3 extra cross-attention tokens.

Architecture from the unreleased training code (docs/official_code.md §d): per frame, Gaussian blur (15x15,
sigma 10) → area resize to 32x32 → uint8 → ``/255·2−1`` → flatten channel-major (3, 32, 32) → 3072
→ MLP ``Linear 3072→4096, LeakyReLU(0.01), 4096→4096, LeakyReLU, 4096→4096, LeakyReLU, 4096→2304`` →
3 tokens of 768, appended after the 77 text tokens of every spatial cross-attention.

**Its weights were never released**, so nothing in this pack uses it unless a caller builds one
explicitly from weights they have; it is off by default everywhere. The two strided convolutions
defined (but unused) upstream are not reproduced.

State-dict keys (``mlp`` is an ``nn.Sequential``; activations hold no weights):

============== ============== =============================
key            shape (full)   layer
============== ============== =============================
mlp.0.weight   (4096, 3072)   Linear 1
mlp.0.bias     (4096,)
mlp.2.weight   (4096, 4096)   Linear 2
mlp.2.bias     (4096,)
mlp.4.weight   (4096, 4096)   Linear 3
mlp.4.bias     (4096,)
mlp.6.weight   (2304, 4096)   Linear 4 (3 tokens x 768)
mlp.6.bias     (2304,)
============== ============== =============================
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import InputError
from ..optional import require

# Pre-processing constants of the unreleased HDRCtrlModel (docs/official_code.md §d).
BLUR_KERNEL = (15, 15)
BLUR_SIGMA = 10.0
GRID_SIZE = 32
IN_FEATURES = 3 * GRID_SIZE * GRID_SIZE  # 3072
# MLP sizes and activation slope (docs/official_code.md §d).
HIDDEN_SIZE = 4096
NUM_TOKENS = 3
TOKEN_DIM = 768  # SD1.5's cross-attention width
NEGATIVE_SLOPE = 0.01
LINEAR_INDICES = (0, 2, 4, 6)  # positions of the Linear layers inside ``mlp``


class HDREncoder(ModelMixin, ConfigMixin):
    """Tokens from pre-processed environment maps (see :func:`hdr_encoder_input`). Off by default: no weights exist."""

    @register_to_config
    def __init__(
        self,
        in_features: int = IN_FEATURES,
        hidden_size: int = HIDDEN_SIZE,
        num_tokens: int = NUM_TOKENS,
        token_dim: int = TOKEN_DIM,
        negative_slope: float = NEGATIVE_SLOPE,
    ):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden_size),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden_size, hidden_size),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden_size, hidden_size),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden_size, num_tokens * token_dim),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (b, f, in_features) in -1..1 → tokens (b, f, num_tokens, token_dim)."""
        if features.ndim != 3 or features.shape[-1] != self.config.in_features:
            raise InputError(
                f"features must be (b, f, {self.config.in_features}) from hdr_encoder_input, "
                f"got shape {tuple(features.shape)}."
            )
        tokens = self.mlp(features)
        return tokens.reshape(*features.shape[:2], self.config.num_tokens, self.config.token_dim)


def hdr_encoder_input(env_frames: torch.Tensor) -> torch.Tensor:
    """Pre-process environment-map images into encoder features, as the training code did.

    Per frame: Gaussian blur (15x15, sigma 10, OpenCV's reflected border) → area resize to 32x32 →
    truncate to uint8 → ``/255·2−1`` → flatten channel-major.

    Args:
        env_frames: (b, f, 3, H, W) RGB; uint8 is read as 0..255, float as 0..1 (e.g. the
            ``(f, H, W, 3)`` output of ``conditioning.env_map_panoramas`` permuted and given a batch axis).
            Training used LDR 256x256 images.

    Returns:
        (b, f, 3072) float32 in -1..1, on ``env_frames``' device.

    Raises:
        InputError: a wrong layout.
    """
    if env_frames.ndim != 5 or env_frames.shape[2] != 3:
        raise InputError(f"env_frames must be (b, f, 3, H, W) RGB, got shape {tuple(env_frames.shape)}.")
    cv2 = require("cv2", "the HDR map's token encoder")
    scale = 1.0 if env_frames.dtype == torch.uint8 else 255.0
    images = (env_frames.detach().to("cpu", torch.float32) * scale).permute(0, 1, 3, 4, 2).numpy()
    batch, frames = images.shape[:2]
    grids = np.empty((batch, frames, GRID_SIZE, GRID_SIZE, 3), dtype=np.float32)
    for b in range(batch):
        for f in range(frames):
            blurred = cv2.GaussianBlur(np.ascontiguousarray(images[b, f]), BLUR_KERNEL, BLUR_SIGMA)
            grids[b, f] = cv2.resize(blurred, (GRID_SIZE, GRID_SIZE), interpolation=cv2.INTER_AREA)
    # The training code cast the float result to uint8 (truncation) before normalising.
    quantised = np.floor(np.clip(grids, 0.0, 255.0))
    features = torch.from_numpy(quantised / 255.0 * 2.0 - 1.0).float().permute(0, 1, 4, 2, 3)
    return features.reshape(batch, frames, IN_FEATURES).to(env_frames.device)


def expected_hdr_encoder_shapes(**config) -> dict[str, tuple[int, ...]]:
    """Key → shape of an :class:`HDREncoder` state dict (full size by default; ``config`` overrides sizes)."""
    sizes = {
        "in_features": IN_FEATURES,
        "hidden_size": HIDDEN_SIZE,
        "num_tokens": NUM_TOKENS,
        "token_dim": TOKEN_DIM,
        **config,
    }
    widths = [sizes["in_features"], sizes["hidden_size"], sizes["hidden_size"], sizes["hidden_size"]]
    outs = [sizes["hidden_size"]] * 3 + [sizes["num_tokens"] * sizes["token_dim"]]
    shapes = {}
    for index, width, out in zip(LINEAR_INDICES, widths, outs):
        shapes[f"mlp.{index}.weight"] = (out, width)
        shapes[f"mlp.{index}.bias"] = (out,)
    return shapes
