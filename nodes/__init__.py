"""The RelightVid node pack: node id → class and display names (ComfyUI's V1 registration).

The node classes are declarations (inputs, outputs, tooltips) over the work of the modules beside them:
loading/ (files → MODEL), model_patch/ (the MODEL's patches), conditioning/ (clips, lights, text),
sampling/ (guidance, samplers, windows) and previews/ (the animated preview, metrics).
"""

from . import host
from .conditioning.nodes import (
    RelightVidBackground,
    RelightVidFitFrames,
    RelightVidForeground,
    RelightVidHDRMap,
    RelightVidLightPreset,
    RelightVidTextConditioning,
)
from .conditioning.video_inputs import RelightVidLoadMaskSequence
from .loading.nodes import (
    RelightVidApplyModel,
    RelightVidTemporalLoader,
    RelightVidUNetLoader,
)
from .previews.metrics import RelightVidTemporalMetrics
from .sampling.nodes import (
    RelightVidContextWindows,
    RelightVidIIEGuider,
    RelightVidNativeConditioning,
    RelightVidOfficialSampler,
    RelightVidSampler,
    RelightVidSchedule,
)

NODE_DISPLAY_NAME_MAPPINGS = {
    "RelightVidUNetLoader": "Load RelightVid U-Net (SD1.5 + IC-Light fbc)",
    "RelightVidTemporalLoader": "Load RelightVid Temporal Weights",
    "RelightVidApplyModel": "Apply RelightVid (SD1.5 MODEL)",
    "RelightVidFitFrames": "RelightVid Fit Frames",
    "RelightVidForeground": "RelightVid Foreground",
    "RelightVidBackground": "RelightVid Background Video",
    "RelightVidLightPreset": "RelightVid Light Preset",
    "RelightVidHDRMap": "RelightVid HDR Map",
    "RelightVidTextConditioning": "RelightVid Text Conditioning",
    "RelightVidSampler": "RelightVid Sampler (IIE)",
    "RelightVidNativeConditioning": "RelightVid Conditioning",
    "RelightVidSchedule": "RelightVid Schedule (SIGMAS)",
    "RelightVidOfficialSampler": "RelightVid Official Sampler (DDPM/DDIM)",
    "RelightVidIIEGuider": "RelightVid IIE Guider",
    "RelightVidContextWindows": "RelightVid Context Windows",
    "RelightVidTemporalMetrics": "RelightVid Temporal Metrics",
    "RelightVidLoadMaskSequence": "RelightVid Load Mask Sequence",
}
NODE_CLASS_MAPPINGS = {
    "RelightVidUNetLoader": RelightVidUNetLoader,
    "RelightVidTemporalLoader": RelightVidTemporalLoader,
    "RelightVidApplyModel": RelightVidApplyModel,
    "RelightVidFitFrames": RelightVidFitFrames,
    "RelightVidForeground": RelightVidForeground,
    "RelightVidBackground": RelightVidBackground,
    "RelightVidLightPreset": RelightVidLightPreset,
    "RelightVidHDRMap": RelightVidHDRMap,
    "RelightVidTextConditioning": RelightVidTextConditioning,
    "RelightVidSampler": RelightVidSampler,
    "RelightVidNativeConditioning": RelightVidNativeConditioning,
    "RelightVidSchedule": RelightVidSchedule,
    "RelightVidOfficialSampler": RelightVidOfficialSampler,
    "RelightVidIIEGuider": RelightVidIIEGuider,
    "RelightVidContextWindows": RelightVidContextWindows,
    "RelightVidTemporalMetrics": RelightVidTemporalMetrics,
    "RelightVidLoadMaskSequence": RelightVidLoadMaskSequence,
}
# ComfyUI shows a failing node's error by its class name alone (host.reports_errors).
for _node_class in NODE_CLASS_MAPPINGS.values():
    host.report_node_errors(_node_class)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
