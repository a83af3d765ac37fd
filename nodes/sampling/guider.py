"""RelightVid's 3-way guidance with the Illumination-Invariant Ensemble as a ComfyUI GUIDER.

This module talks to ComfyUI: it subclasses ComfyUI's ``CFGGuider`` and is imported only inside ComfyUI, when a
sampling node first needs it. Guidance goes through ComfyUI's own ``cfg_function``, as core's DualCFGGuider
(style regular) does, so cfg patches on the MODEL (RescaleCFG, CFG++ and other ``sampler_cfg_function`` /
``sampler_post_cfg_function`` patches) apply to every member of the ensemble.
"""

from __future__ import annotations

import comfy.samplers
import node_helpers

from ..model_patch.wiring import NEGATIVE_COND


class IIEGuider(comfy.samplers.CFGGuider):
    """Per brightness factor a (middle, positive) pair — the image alone, the image with the prompt — and one shared
    negative (no image, empty prompt). Each step evaluates the 1 + 2N conds in ``calc_cond_batch`` (batched as
    memory allows); member i's prediction is ``cfg_function(middle_i, negative, image_scale) + text_scale ·
    (positive_i − middle_i)``, and the N predictions are averaged. One member is DualCFGGuider, bit for bit."""

    def set_scales(self, text_scale: float, image_scale: float) -> None:
        self.text_scale = text_scale
        self.image_scale = image_scale

    def set_conds(self, negative, members) -> None:
        """``members``: one (middle, positive) CONDITIONING pair per brightness factor."""
        conds = {NEGATIVE_COND: negative}
        for index, (middle, positive) in enumerate(members):
            # Tagged as DualCFGGuider tags its middle cond: an uncond-like branch for hooks and patches.
            conds[f"middle_{index}"] = node_helpers.conditioning_set_values(middle, {"prompt_type": "negative"})
            conds[f"positive_{index}"] = positive
        self.order = list(conds)
        self.inner_set_conds(conds)

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        conds = [self.conds.get(name) for name in self.order]
        uncond, *members = comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)
        negative = conds[0]
        guided = []
        for index in range(0, len(members), 2):
            middle, positive = members[index], members[index + 1]
            image_guided = comfy.samplers.cfg_function(
                self.inner_model,
                middle,
                uncond,
                self.image_scale,
                x,
                timestep,
                model_options=model_options,
                cond=conds[1 + index],
                uncond=negative,
            )
            guided.append(image_guided + (positive - middle) * self.text_scale)
        return guided[0] if len(guided) == 1 else sum(guided) / len(guided)


def iie_guider(model, negative, members, text_scale: float, image_scale: float) -> IIEGuider:
    """An :class:`IIEGuider` for ``model`` with its conds and scales set."""
    guider = IIEGuider(model)
    guider.set_scales(text_scale, image_scale)
    guider.set_conds(negative, members)
    return guider
