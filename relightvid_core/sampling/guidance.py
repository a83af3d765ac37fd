"""Classifier-free guidance for RelightVid: 3-way image/text guidance, the optional HDR 4th branch, the
Illumination-Invariant Ensemble (IIE) and guidance rescale, as a wrapper turning a :data:`BranchFn` into a
:data:`ModelFn`.

Official rule (docs/official_code.md §c, InstructPix2Pix style), one U-Net batch per step in the order
[zeros | uncond text, image | uncond text, image | cond text]::

    ε = ε₁ + s_img·(ε₂ − ε₁) + s_txt·(ε₃ − ε₂)

evaluated left to right in fp32. With HDR tokens (paper; weights unreleased) a fourth branch adds
``+ s_hdr·(ε₄ − ε₃)``; the first three branches then get zero HDR tokens, the trained HDR "uncond".
IIE: with N image conditions (one per brightness factor) the image and image+text branches run once per
condition while ε₁, which sees no image, is shared: 1 + 2N batch items, not 3N; the N guided predictions
are averaged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .branches import Branch, BranchFn

ModelFn = Callable[[torch.Tensor, torch.Tensor, "Conditions"], torch.Tensor]
"""``model_fn(x, t, cond) -> eps``: the sampler's one model contract. x: (B, F, 4, h, w) variance-preserving
latents (after ``scale_model_input``), t: the scheduler's timestep (0-d), eps: (B, F, 4, h, w) float32."""


@dataclass(frozen=True)
class Conditions:
    """Everything a step is conditioned on, already on the U-Net's device and dtype.

    Attributes:
        images: one (B, F, C_img, h, w) image condition (fg ‖ bg latents) per IIE factor; one for plain sampling.
        text: (B, tokens, D) prompt embeddings.
        text_uncond: (B, tokens, D) embeddings of the empty prompt.
        hdr: (B, F, n, D) per-frame HDR tokens, or None.
    """

    images: tuple[torch.Tensor, ...]
    text: torch.Tensor
    text_uncond: torch.Tensor
    hdr: torch.Tensor | None = None

    def frames(self, index: torch.Tensor) -> Conditions:
        """The same conditions for the frames ``index`` (1-D long tensor): every per-frame tensor is sliced."""
        return Conditions(
            images=tuple(image[:, index] for image in self.images),
            text=self.text,
            text_uncond=self.text_uncond,
            hdr=None if self.hdr is None else self.hdr[:, index],
        )


def rescale_guidance(eps: torch.Tensor, reference: torch.Tensor, amount: float) -> torch.Tensor:
    """Blend ``eps`` with itself rescaled to the per-clip std of ``reference`` (Lin et al. 2023, §3.4).

    Official RelightVid takes the std of ε₁ (the unconditional branch) as the reference, over every axis but
    the batch (frames included), with torch's default unbiased estimator.
    """
    dims = tuple(range(1, eps.ndim))
    rescaled = eps * (reference.std(dim=dims, keepdim=True) / eps.std(dim=dims, keepdim=True))
    return amount * rescaled + (1 - amount) * eps


@dataclass(frozen=True)
class Guidance:
    """Guidance scales.

    Attributes:
        text_cfg: s_txt, pull from the image-only branch toward the prompt (official 7.5).
        img_cfg: s_img, pull from the unconditional branch toward the fg/bg condition (official 1.2).
        hdr_cfg: s_hdr, pull toward the HDR tokens when they are given (paper 7.5).
        rescale: guidance rescale amount in 0..1; 0 (official default) skips it.
    """

    text_cfg: float = 7.5
    img_cfg: float = 1.2
    hdr_cfg: float = 7.5
    rescale: float = 0.0

    def branches(self, cond: Conditions) -> list[Branch]:
        """[uncond] then, per image condition, [image, image+text(, image+text+HDR)]."""
        no_hdr = None if cond.hdr is None else torch.zeros_like(cond.hdr)
        branches = [Branch(None, cond.text_uncond, no_hdr)]
        for image in cond.images:
            branches += [Branch(image, cond.text_uncond, no_hdr), Branch(image, cond.text, no_hdr)]
            if cond.hdr is not None:
                branches.append(Branch(image, cond.text, cond.hdr))
        return branches

    def combine(
        self, uncond: torch.Tensor, image: torch.Tensor, text: torch.Tensor, hdr: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The guided prediction of one image condition, left to right as upstream."""
        eps = uncond + self.img_cfg * (image - uncond) + self.text_cfg * (text - image)
        if hdr is not None:
            eps = eps + self.hdr_cfg * (hdr - text)
        if self.rescale > 0:
            eps = rescale_guidance(eps, uncond, self.rescale)
        return eps

    def wrap(self, branch_fn: BranchFn) -> ModelFn:
        """A :data:`ModelFn` evaluating every branch in one ``branch_fn`` call and averaging the IIE members."""

        def guided(x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
            uncond, *rest = branch_fn(x, t, self.branches(cond))
            per_image = len(rest) // len(cond.images)
            members = [self.combine(uncond, *rest[i : i + per_image]) for i in range(0, len(rest), per_image)]
            # The mean of one member is that member bit for bit: one factor of 1.0 equals plain sampling.
            return torch.stack(members).mean(dim=0)

        return guided
