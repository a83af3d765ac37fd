"""Sampling: schedulers by name, 3-way guidance with IIE and HDR branches, context windows, the loop."""

from .branches import Branch, UNetBranches
from .context import FUSIONS, MAX_WINDOW_FRAMES, ContextWindows, fusion_weights, window_indices
from .guidance import Conditions, Guidance, rescale_guidance
from .iie import DEFAULT_IIE_FACTORS, iie_image_conditions
from .sample import StepInfo, guided_model, sample
from .schedulers import SCHEDULER_NAMES, build_scheduler, noise_levels, predict_x0

__all__ = [
    "DEFAULT_IIE_FACTORS",
    "FUSIONS",
    "MAX_WINDOW_FRAMES",
    "SCHEDULER_NAMES",
    "Branch",
    "Conditions",
    "ContextWindows",
    "Guidance",
    "StepInfo",
    "UNetBranches",
    "build_scheduler",
    "fusion_weights",
    "guided_model",
    "iie_image_conditions",
    "noise_levels",
    "predict_x0",
    "rescale_guidance",
    "sample",
    "window_indices",
]
