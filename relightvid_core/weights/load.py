"""Build a ready :class:`RelightVidUNet` from the files users bring: detect → convert → validate → load.

Tensors are streamed one at a time (read, merged in fp32, cast, placed on the device) into a model built
on the meta device and adopted with ``assign=True``, so the weights are never held twice. The pickled
motion file is processed first and released before the spatial pass, so its memory map never coexists
with the whole spatial model.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from safetensors.torch import save_file

from ..errors import WeightFormatError
from ..models.configs import FULL_FBC, MotionVariant, config_for_variant
from ..outputs import publish
from .convert import (
    MOTION_FORMATS,
    add_iclight_offset,
    is_motion_key,
    motion_key_map,
    motion_tensor,
    motion_variant as variant_of_detection,
    spatial_key_map,
)
from .detect import WeightFormat, detect_format, resolve_motion_variant
from .files import TensorSource, open_source
from .validate import check_shapes, require_format

if TYPE_CHECKING:  # the networks import diffusers (seconds): loaded by the functions that build them
    from ..models.hdr_encoder import HDREncoder
    from ..models.unet3d import RelightVidUNet

logger = logging.getLogger(__name__)

WeightsLike = Union[str, Path, Mapping[str, torch.Tensor], TensorSource]
MERGED_FORMAT_TAG = "relightvid-unet"
METADATA_FORMAT = "format"
METADATA_CONFIG = "relightvid.config"


@dataclass
class MotionWeights:
    """Temporal weights in our key space, ready to attach to a spatial U-Net.

    Attributes:
        state_dict: motion-module key → tensor (target dtype and device), ``pe`` recomputed.
        variant: the network behaviour these modules expect (mid block, PE length, GroupNorm).
        source_name: the file they came from, for messages.
        spatial_overrides: spatial tensors the file also holds (the HF Space's full U-Net), applied over
            the base + IC-Light merge.
    """

    state_dict: dict[str, torch.Tensor]
    variant: MotionVariant
    source_name: str
    spatial_overrides: dict[str, torch.Tensor] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _expected_shapes_cached(config_json: str) -> dict[str, tuple[int, ...]]:
    from ..models.unet3d import RelightVidUNet

    with torch.device("meta"):
        model = RelightVidUNet.from_config(json.loads(config_json))
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Key → shape of the U-Net ``config`` describes (built on the meta device, no memory used)."""
    return dict(_expected_shapes_cached(json.dumps(config, sort_keys=True)))


def _split(shapes: Mapping[str, tuple[int, ...]], motion: bool) -> dict[str, tuple[int, ...]]:
    return {key: shape for key, shape in shapes.items() if is_motion_key(key) == motion}


def _place(tensor: torch.Tensor, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    # One copy does cast, move and re-layout; convolution weights go channels-last like the activations.
    memory_format = torch.channels_last if tensor.ndim == 4 else torch.contiguous_format
    return tensor.to(device=device, dtype=dtype, memory_format=memory_format, copy=True)


def _merge_and_place(key: str, base: torch.Tensor, offset: torch.Tensor, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """The IC-Light merge of one tensor, in ``dtype`` on ``device``.

    fp16 files loaded as fp16 are added as half tensors: PyTorch adds them in fp32 and rounds once, which is
    bit for bit the fp32 merge followed by the cast, without the fp32 round trip that made the fp16 load
    2.2× slower than bf16 (converting fp32 to fp16 is the slowest of the casts on the CPU).
    """
    if dtype == base.dtype == offset.dtype == torch.float16 and base.shape == offset.shape:
        memory_format = torch.channels_last if base.ndim == 4 else torch.contiguous_format
        merged = torch.add(base, offset, out=torch.empty_like(base, memory_format=memory_format))
        return merged.to(device)
    return _place(add_iclight_offset(key, base, offset), dtype, device)


def load_motion_weights(
    motion: WeightsLike,
    *,
    dtype: torch.dtype = torch.float16,
    device: torch.device | str = "cpu",
    config: dict[str, Any] | None = None,
    motion_variant: str | None = None,
) -> MotionWeights:
    """Read temporal weights: relvid_mm_sd15_fbc (.pth/.safetensors), the Space's full U-Net, AnimateDiff v1/v2/v3.

    ``motion_variant`` (``relightvid`` or ``animatediff_v3``) settles a file whose keys cannot tell the two
    apart (:func:`~relightvid_core.weights.detect.resolve_motion_variant`); other files ignore it.

    Raises:
        WeightFormatError: the file is not a motion-module file for an SD1.5 U-Net.
    """
    source = open_source(motion)
    try:
        shapes = source.shapes()
        detection = resolve_motion_variant(detect_format(shapes), motion_variant)
        detection = require_format(detection, set(MOTION_FORMATS), source.name, "motion")
        variant = variant_of_detection(detection)
        expected = expected_shapes(config_for_variant(config or FULL_FBC, variant))
        key_map = motion_key_map(detection, list(shapes))
        check_shapes({key: shapes[name] for key, name in key_map.items()}, _split(expected, True), source.name, "temporal modules")
        state_dict = {key: _place(motion_tensor(key, source.read(name)), dtype, device) for key, name in key_map.items()}
        overrides = {}
        if detection.format is WeightFormat.RELIGHTVID_SPACE_UNET:
            spatial_map = spatial_key_map(detection, list(shapes))
            spatial_expected = _split(expected, False)
            check_shapes(
                {key: shapes[name] for key, name in spatial_map.items()},
                {key: spatial_expected[key] for key in spatial_map if key in spatial_expected},
                source.name,
                "spatial U-Net",
            )
            overrides = {key: _place(source.read(name), dtype, device) for key, name in spatial_map.items()}
    finally:
        source.close()
    logger.info("%s: %s, %d motion tensors, variant %s", source.name, detection.format.value, len(state_dict), variant.name)
    return MotionWeights(state_dict, variant, source.name, overrides)


def load_spatial_weights(
    base: WeightsLike,
    iclight: WeightsLike,
    *,
    dtype: torch.dtype = torch.float16,
    device: torch.device | str = "cpu",
    config: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """The inflated fbc U-Net's spatial weights: SD1.5 base + IC-Light fbc offsets, conv_in widened to 12.

    Args:
        base: SD1.5 weights: a diffusers folder, a single-file checkpoint (LDM keys), a U-Net file, or an
            in-memory state dict (e.g. a ComfyUI MODEL's ``diffusion_model.state_dict()``).
        iclight: ``iclight_sd15_fbc.safetensors`` (diffusers keys) or an LDM-keyed conversion of it.

    Returns:
        Our spatial key → tensor in ``dtype`` on ``device``.

    Raises:
        WeightFormatError: a file is of the wrong kind (IC-Light fc, SDXL, ...) or does not fit SD1.5.
    """
    config = config or FULL_FBC
    expected = _split(expected_shapes(config), False)
    expected_base = _split(expected_shapes({**config, "in_channels": 4}), False)
    base_source, offset_source = open_source(base), open_source(iclight)
    try:
        base_shapes, offset_shapes = base_source.shapes(), offset_source.shapes()
        base_detection = require_format(detect_format(base_shapes), {WeightFormat.SD15_UNET}, base_source.name, "base")
        offset_detection = require_format(
            detect_format(offset_shapes), {WeightFormat.ICLIGHT_FBC}, offset_source.name, "iclight"
        )
        base_map = spatial_key_map(base_detection, list(base_shapes))
        offset_map = spatial_key_map(offset_detection, list(offset_shapes))
        check_shapes({key: base_shapes[name] for key, name in base_map.items()}, expected_base, base_source.name, "SD1.5 U-Net")
        check_shapes({key: offset_shapes[name] for key, name in offset_map.items()}, expected, offset_source.name, "IC-Light fbc offsets")
        return {
            key: _merge_and_place(key, base_source.read(name), offset_source.read(offset_map[key]), dtype, device)
            for key, name in base_map.items()
        }
    finally:
        base_source.close()
        offset_source.close()


def _log_overrides(spatial: Mapping[str, torch.Tensor], motion: MotionWeights) -> None:
    if not motion.spatial_overrides:
        return
    changed = [key for key, value in motion.spatial_overrides.items() if not torch.equal(spatial[key], value)]
    logger.info(
        "%s replaces %d spatial tensors of the base + IC-Light merge; %d of them differ (first: %s)",
        motion.source_name,
        len(motion.spatial_overrides),
        len(changed),
        changed[:3],
    )


def build_unet(
    spatial: Mapping[str, torch.Tensor], motion: MotionWeights, config: dict[str, Any] | None = None
) -> RelightVidUNet:
    """Adopt spatial and motion tensors into a U-Net of the motion file's variant (no copies).

    Raises:
        WeightFormatError: the tensors do not form the network ``config`` describes.
    """
    config = config_for_variant(config or FULL_FBC, motion.variant)
    _log_overrides(spatial, motion)
    state_dict = {**spatial, **motion.spatial_overrides, **motion.state_dict}
    check_shapes(
        {key: tuple(value.shape) for key, value in state_dict.items()}, expected_shapes(config), motion.source_name, "RelightVid U-Net"
    )
    return _adopt(config, state_dict)


def _adopt(config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> RelightVidUNet:
    from ..models.unet3d import RelightVidUNet

    with torch.device("meta"):
        model = RelightVidUNet.from_config(config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.requires_grad_(False).eval()


def _load_merged(source: TensorSource, dtype: torch.dtype, device: torch.device | str, config: dict[str, Any] | None) -> RelightVidUNet:
    stored_config = source.metadata.get(METADATA_CONFIG)
    if stored_config is None and config is None:
        raise WeightFormatError(
            f"{source.name} is a merged U-Net without the config this pack's converter stores; pass config= explicitly"
        )
    config = json.loads(stored_config) if stored_config is not None else config
    shapes = source.shapes()
    check_shapes(shapes, expected_shapes(config), source.name, "RelightVid U-Net")
    return _adopt(config, {key: _place(source.read(key), dtype, device) for key in shapes})


def load_relightvid_unet(
    base: WeightsLike,
    iclight: WeightsLike | None = None,
    motion: WeightsLike | None = None,
    *,
    dtype: torch.dtype = torch.float16,
    device: torch.device | str = "cpu",
    config: dict[str, Any] | None = None,
    motion_variant: str | None = None,
) -> RelightVidUNet:
    """Load the complete RelightVid U-Net from the official files, or from one merged file.

    Args:
        base: SD1.5 weights (see :func:`load_spatial_weights`), or a merged file from :func:`save_merged_unet`
            (then ``iclight`` and ``motion`` are not needed).
        iclight: IC-Light fbc offsets.
        motion: temporal weights (see :func:`load_motion_weights`).
        dtype: torch.float32, float16 or bfloat16; the merge itself is computed in float32.
        device: where the weights are placed, tensor by tensor.
        config: the U-Net config (official keys); defaults to the released network, ``FULL_FBC``.
        motion_variant: see :func:`load_motion_weights`.

    Raises:
        WeightFormatError: a file is of the wrong kind, damaged, or does not fit.
        MissingFileError: a path does not exist.
    """
    base_source = open_source(base)
    if detect_format(base_source.shapes()).format is WeightFormat.RELIGHTVID_MERGED:
        try:
            return _load_merged(base_source, dtype, device, config)
        finally:
            base_source.close()
    if iclight is None or motion is None:
        base_source.close()
        raise WeightFormatError(
            f"{base_source.name} is not a merged RelightVid U-Net, so the IC-Light fbc offsets and the temporal "
            "weights are needed too (iclight=..., motion=...)"
        )
    motion_weights = load_motion_weights(motion, dtype=dtype, device=device, config=config, motion_variant=motion_variant)
    spatial = load_spatial_weights(base_source, iclight, dtype=dtype, device=device, config=config)
    return build_unet(spatial, motion_weights, config)


def save_merged_unet(model: RelightVidUNet, path: str | Path) -> Path:
    """Write ``model`` as one safetensors file (with its config) that :func:`load_relightvid_unet` accepts.

    The file is written next to ``path`` and renamed into place (:func:`~relightvid_core.outputs.publish`), so
    a failure leaves no partial file; missing folders are created, and the file gets the umask's mode.
    """
    path = Path(path)
    config = {key: value for key, value in dict(model.config).items() if not key.startswith("_")}
    metadata = {METADATA_FORMAT: MERGED_FORMAT_TAG, METADATA_CONFIG: json.dumps(config)}
    tensors = {key: value.contiguous() for key, value in model.state_dict().items()}
    publish([(path, lambda staged: save_file(tensors, str(staged), metadata=metadata))])
    return path


def load_hdr_encoder(
    weights: WeightsLike, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", **config: int
) -> HDREncoder:
    """Load the paper's HDR token encoder from a file or state dict (``mlp.{0,2,4,6}.{weight,bias}``).

    Its weights were never released, so nothing loads it by default; this is for users who have them.
    ``config`` overrides the full sizes (``hidden_size``, ...).

    Raises:
        WeightFormatError: the file does not hold the encoder's keys and shapes.
        MissingFileError: the path does not exist.
    """
    source = open_source(weights)
    try:
        state_dict = {key: _place(source.read(key), dtype, device) for key in source.shapes()}
    finally:
        source.close()
    return hdr_encoder_from_state_dict(state_dict, source.name, **config)


def hdr_encoder_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source_name: str = "the HDR encoder state dict", **config
) -> HDREncoder:
    """Build an :class:`~relightvid_core.models.hdr_encoder.HDREncoder` holding ``state_dict`` (tensors are
    adopted, not copied), after checking its keys and shapes.

    Pure: opening files is :func:`load_hdr_encoder`'s job. ``config`` overrides the full sizes (tests use tiny ones).

    Raises:
        WeightFormatError: naming missing, unexpected and mismatched keys.
    """
    from ..models.hdr_encoder import HDREncoder, expected_hdr_encoder_shapes

    check_shapes(
        {key: tuple(value.shape) for key, value in state_dict.items()},
        expected_hdr_encoder_shapes(**config),
        source_name,
        "HDR encoder (mlp.0/2/4/6 weights and biases)",
    )
    # Build on the meta device so the 4096-wide random initialisation is never computed.
    with torch.device("meta"):
        encoder = HDREncoder(**config)
    encoder.load_state_dict(dict(state_dict), strict=True, assign=True)
    return encoder.eval()
