"""The RelightVid node pack: node id → class and display names (ComfyUI's V1 registration)."""

from . import host
from .conditioning import (
    RelightVidBackground,
    RelightVidFitFrames,
    RelightVidForeground,
    RelightVidHDRMap,
    RelightVidLightPreset,
    RelightVidTextConditioning,
)
from .loaders import RelightVidTemporalLoader, RelightVidUNetLoader
from .metrics import RelightVidTemporalMetrics
from .native_model import RelightVidApplyModel
from .native_sampling import (
    RelightVidContextWindows,
    RelightVidIIEGuider,
    RelightVidNativeConditioning,
    RelightVidSchedule,
)
from .sampler import RelightVidSampler
from .video_inputs import RelightVidLoadMaskSequence

NODE_DISPLAY_NAME_MAPPINGS = {
    "RelightVidUNetLoader": "Load RelightVid U-Net (SD1.5 + IC-Light fbc)",
    "RelightVidTemporalLoader": "Load RelightVid Temporal Weights",
    "RelightVidFitFrames": "RelightVid Fit Frames",
    "RelightVidForeground": "RelightVid Foreground",
    "RelightVidBackground": "RelightVid Background Video",
    "RelightVidLightPreset": "RelightVid Light Preset",
    "RelightVidHDRMap": "RelightVid HDR Map",
    "RelightVidTextConditioning": "RelightVid Text Conditioning",
    "RelightVidSampler": "RelightVid Sampler (IIE)",
    "RelightVidTemporalMetrics": "RelightVid Temporal Metrics",
    "RelightVidLoadMaskSequence": "RelightVid Load Mask Sequence",
    "RelightVidApplyModel": "Apply RelightVid (native MODEL)",
    "RelightVidNativeConditioning": "RelightVid Conditioning (native)",
    "RelightVidSchedule": "RelightVid Schedule (SIGMAS)",
    "RelightVidIIEGuider": "RelightVid IIE Guider",
    "RelightVidContextWindows": "RelightVid Context Windows (native)",
}
NODE_CLASS_MAPPINGS = {
    "RelightVidUNetLoader": RelightVidUNetLoader,
    "RelightVidTemporalLoader": RelightVidTemporalLoader,
    "RelightVidFitFrames": RelightVidFitFrames,
    "RelightVidForeground": RelightVidForeground,
    "RelightVidBackground": RelightVidBackground,
    "RelightVidLightPreset": RelightVidLightPreset,
    "RelightVidHDRMap": RelightVidHDRMap,
    "RelightVidTextConditioning": RelightVidTextConditioning,
    "RelightVidSampler": RelightVidSampler,
    "RelightVidTemporalMetrics": RelightVidTemporalMetrics,
    "RelightVidLoadMaskSequence": RelightVidLoadMaskSequence,
    "RelightVidApplyModel": RelightVidApplyModel,
    "RelightVidNativeConditioning": RelightVidNativeConditioning,
    "RelightVidSchedule": RelightVidSchedule,
    "RelightVidIIEGuider": RelightVidIIEGuider,
    "RelightVidContextWindows": RelightVidContextWindows,
}
# ComfyUI shows a failing node's error by its class name alone (host.reports_errors).
for _node_class in NODE_CLASS_MAPPINGS.values():
    host.report_node_errors(_node_class)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
