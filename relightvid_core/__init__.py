"""relightvid_core: RelightVid video relighting as a plain Python library (no ComfyUI import).

Layouts: frames are ComfyUI's IMAGE layout (T, H, W, 3) float in 0..1, masks (T, H, W); latents for the
sampler are (batch, frames, 4, h, w), scaled by 0.18215; the U-Net itself takes (batch, channels, frames, h, w).

The names below are imported from their modules on first use (see ``lazy.py``): ``import relightvid_core``
loads neither torch's companions (diffusers, transformers) nor OpenCV, OpenEXR or PyAV.
"""

from .lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        (
            "ICLIGHT_GRAY",
            "OFFICIAL_GRAY",
            "LengthPolicy",
            "SizePolicy",
            "composite_foreground",
            "env_map_plates",
            "fit_background",
            "fit_to_size",
            "light_plate",
            "load_text_encoder",
            "read_env_map",
            "read_official_clip",
        ),
        ".conditioning",
    ),
    **dict.fromkeys(
        (
            "InputError",
            "MissingDependencyError",
            "MissingFileError",
            "RelightVidError",
            "SamplingInterrupted",
            "WeightFormatError",
        ),
        ".errors",
    ),
    **dict.fromkeys(("FULL_FBC", "TINY", "RelightVidUNet", "get_config"), ".models"),
    **dict.fromkeys(
        (
            "DEFAULT_IIE_FACTORS",
            "FUSIONS",
            "SCHEDULER_NAMES",
            "ContextWindows",
            "StepInfo",
            "iie_image_conditions",
            "sample",
        ),
        ".sampling",
    ),
    **dict.fromkeys(("decode_latents", "encode_frames"), ".vae"),
    **dict.fromkeys(("read_image", "read_video", "write_video"), ".video_io"),
    **dict.fromkeys(("load_relightvid_unet", "merge_official_weights", "save_merged_unet"), ".weights"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
