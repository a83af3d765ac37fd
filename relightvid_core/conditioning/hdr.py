"""HDR environment maps: read ``.hdr``/``.exr``, tone-map, and render background plates from a virtual camera.

Conventions (equirectangular, also called lat-long, maps):

* Longitude runs left → right over the map's width, latitude top (+90°, straight up) → bottom (−90°).
  The map's centre column (u = 0.5) is longitude 0; u = 0 and u = 1 are the same meridian (±180°).
* The camera at yaw 0, pitch 0 looks at the map's centre, u = 0.5, v = 0.5 (the horizon).
* Positive ``yaw`` turns the camera to the right, toward larger u; positive ``pitch`` tilts it up, toward
  smaller v (the sky). ``yaw_speed`` adds that many degrees of yaw per frame (frame k: yaw + k·yaw_speed),
  so a positive speed pans right and the scene drifts left on screen.
* ``fov`` is the horizontal field of view in degrees; the vertical one follows from the aspect ratio
  (square pixels, pinhole camera, no roll).

Maps hold linear radiance; plates are tone-mapped to 0..1 after sampling (bilinear, wrapping in longitude).
"""

from __future__ import annotations

import enum
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..values import EXPOSURE_STOPS, Range, check_number
from ..optional import require

logger = logging.getLogger(__name__)

HDR_SUFFIXES = {".hdr", ".pic"}  # Radiance RGBE
EXR_SUFFIXES = {".exr"}
# Display gamma for plates: the sRGB curve is close to a 2.2 power.
DEFAULT_GAMMA = 2.2
# Radiance·2^exposure at and above this shows as exactly 1 under both operators (x/(1+x) rounds to 1 in
# float32 from 2^25 on), so tonemap clamps there before scaling and the product never overflows float32.
SATURATED = 2.0**32
# Map values are clamped here before they are averaged or interpolated, so that sums of texels stay finite in
# float32 (max ~2^128). Nothing visible changes: even at the lowest exposure, 2^-EXPOSURE_STOPS, a texel this
# bright saturates every plate pixel it weighs at least 2^-45 in, clamped or not.
RADIANCE_CEILING = 2.0**100


class ToneMap(str, enum.Enum):
    """How linear radiance (after exposure) becomes 0..1: ``reinhard`` x/(1+x) per channel; ``clip`` min(x, 1)."""

    REINHARD = "reinhard"
    CLIP = "clip"


def _sanitize(radiance: np.ndarray, source: str | Path) -> np.ndarray:
    """Replace NaN by 0, +inf by the largest finite value and negatives by 0, warning when anything changed."""
    finite = np.isfinite(radiance)
    if not finite.all():
        largest = float(radiance[finite].max()) if finite.any() else 0.0
        warnings.warn(
            f"{source}: {int((~finite).sum())} inf/NaN values in the environment map were clamped "
            f"(NaN → 0, +inf → {largest:.4g}).",
            RuntimeWarning,
            stacklevel=3,
        )
        radiance = np.nan_to_num(radiance, nan=0.0, posinf=largest, neginf=0.0)
    if (radiance < 0).any():
        logger.info("%s: negative radiance clamped to 0", source)
        radiance = np.maximum(radiance, 0.0)
    return radiance


def _read_radiance(path: Path) -> np.ndarray:
    cv2 = require("cv2", "reading Radiance .hdr maps")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a Radiance .hdr image OpenCV can read.")
    return cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2RGB)


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR  # required; imported when an .exr is read, so that importing the library stays cheap

    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {name: np.asarray(channel.pixels) for name, channel in exr.channels().items()}
    except RuntimeError as error:  # OpenEXR reports unreadable or non-EXR files as RuntimeError
        raise InputError(f"{path} is not an OpenEXR image that can be read ({error}).") from error
    if {"R", "G", "B"} <= channels.keys():
        planes = [channels[name] for name in ("R", "G", "B")]
    elif "Y" in channels:  # luminance-only EXR
        planes = [channels["Y"]] * 3
    else:
        raise InputError(f"{path} has channels {sorted(channels)}, expected R, G, B (or Y) at the top level.")
    return np.stack([plane.astype(np.float32) for plane in planes], axis=-1)


def read_env_map(path: str | Path) -> torch.Tensor:
    """Read an equirectangular environment map as linear radiance.

    Args:
        path: a Radiance ``.hdr``/``.pic`` (read with OpenCV) or OpenEXR ``.exr`` (read with ``OpenEXR``).
            LDR panoramas (PNG/JPEG) are not maps; read them with ``video_io.read_image`` and pass
            ``operator="clip", gamma=1.0`` to :func:`env_map_plates`.

    Returns:
        (H, W, 3) float32 RGB, linear, >= 0. Non-finite values are clamped with a ``RuntimeWarning``;
        a map that is not 2:1 is accepted with a logged warning.

    Raises:
        InputError: the file is missing, of another type, or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"environment map {path} does not exist or is not a file.")
    suffix = path.suffix.lower()
    if suffix in HDR_SUFFIXES:
        radiance = _read_radiance(path)
    elif suffix in EXR_SUFFIXES:
        radiance = _read_exr(path)
    else:
        raise InputError(f"{path} is not an environment map: expected a Radiance .hdr or OpenEXR .exr file.")
    height, width = radiance.shape[:2]
    if height < 2 or width < 2:
        raise InputError(f"{path} is {width}x{height} pixels; an environment map needs at least 2x2.")
    if abs(width - 2 * height) > 1:
        logger.warning("%s is %dx%d, not 2:1; reading it as equirectangular anyway", path, width, height)
    return torch.from_numpy(np.ascontiguousarray(_sanitize(radiance, path)))


def tonemap(
    radiance: torch.Tensor,
    exposure: float = 0.0,
    operator: ToneMap | str = ToneMap.REINHARD,
    gamma: float = DEFAULT_GAMMA,
) -> torch.Tensor:
    """Linear radiance → display values in 0..1: ``(op(radiance · 2^exposure))^(1/gamma)``.

    Args:
        radiance: any layout, linear, >= 0.
        exposure: in EV (stops): +1 doubles the light.
        operator: ``reinhard`` (default; x/(1+x) per channel, keeps highlights) or ``clip`` (hard clip at 1).
        gamma: display gamma (default 2.2; 1.0 leaves values linear).

    Raises:
        InputError: an unknown operator, gamma <= 0, or an exposure that is not finite in -30..30.
    """
    try:
        operator = ToneMap(operator)
    except ValueError as error:
        raise InputError(f"operator must be one of {', '.join(t.value for t in ToneMap)}, got {operator!r}.") from error
    check_number("gamma", gamma, Range(0.0, open_low=True))
    check_number("exposure", exposure, EXPOSURE_RANGE)
    gain = 2.0**exposure
    # Clamped before scaling: bright radiance times 2^30 would overflow to inf, and inf/(1+inf) is NaN.
    scaled = radiance.float().clamp(0.0, SATURATED / gain) * gain
    mapped = scaled / (1.0 + scaled) if operator is ToneMap.REINHARD else scaled.clamp(0.0, 1.0)
    return mapped.pow(1.0 / gamma) if gamma != 1.0 else mapped


ANGLE_RANGE = Range(-360.0, 360.0)
EXPOSURE_RANGE = Range(-EXPOSURE_STOPS, EXPOSURE_STOPS)


def check_view(yaw: float = 0.0, pitch: float = 0.0, fov: float = 60.0, yaw_speed: float = 0.0, exposure: float = 0.0) -> None:
    """Check the camera and exposure settings of :func:`env_map_plates` without reading a map.

    Raises:
        InputError: naming the setting that is not a finite number in its range.
    """
    check_number("yaw", yaw, ANGLE_RANGE)
    check_number("pitch", pitch, Range(-90.0, 90.0))
    check_number("fov", fov, Range(0.0, 180.0, open_low=True, open_high=True))
    check_number("yaw_speed", yaw_speed, ANGLE_RANGE)
    check_number("exposure", exposure, EXPOSURE_RANGE)


def _as_radiance(env: torch.Tensor | np.ndarray | str | Path) -> torch.Tensor:
    """The map as (He, We, 3) float32 radiance in 0..``RADIANCE_CEILING``, read from a path or checked."""
    if isinstance(env, (str, Path)):
        env = read_env_map(env)
    env = torch.as_tensor(env).float()
    if env.ndim != 3 or env.shape[-1] != 3 or min(env.shape[:2]) < 2:
        raise InputError(
            f"env must be an (H, W, 3) equirectangular map of at least 2x2, got shape {tuple(env.shape)}."
        )
    if not torch.isfinite(env).all() or (env < 0).any():
        env = torch.from_numpy(_sanitize(env.detach().cpu().numpy(), "the environment map"))
    return env.clamp_max(RADIANCE_CEILING)


def _shrink_for(env: torch.Tensor, texels_around: int) -> torch.Tensor:
    """Area-downscale the map so a plate pixel covers about one texel, avoiding aliasing from bilinear sampling."""
    height, width = env.shape[:2]
    if width <= texels_around:
        return env
    new_width = max(2, texels_around)
    new_height = max(2, round(height * new_width / width))
    return F.interpolate(env.permute(2, 0, 1)[None], size=(new_height, new_width), mode="area")[0].permute(1, 2, 0)


def sample_equirect(env: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of ``env`` (He, We, C) at map coordinates ``u``, ``v`` (same shape S, 0..1 = edges).

    Longitude wraps (u = 1.02 reads u = 0.02, and the seam interpolates across); latitude clamps at the poles.

    Returns:
        (*S, C).
    """
    height, width = env.shape[:2]
    # One wrapped column on each side makes bilinear interpolation continuous across the ±180° seam.
    padded = torch.cat([env[:, -1:], env, env[:, :1]], dim=1).permute(2, 0, 1)[None]
    x = torch.remainder(u * width - 0.5, width) + 1.0  # pixel-centre coordinate in the padded map
    y = (v * height - 0.5).clamp(0.0, height - 1.0)
    grid = torch.stack([x / (width + 1) * 2.0 - 1.0, y / (height - 1) * 2.0 - 1.0], dim=-1)
    flat = grid.reshape(1, 1, -1, 2).to(padded.dtype)
    sampled = F.grid_sample(padded, flat, mode="bilinear", padding_mode="border", align_corners=True)
    return sampled[0, :, 0].T.reshape(*u.shape, env.shape[2])


def camera_directions(height: int, width: int, yaw: float, pitch: float, fov: float) -> torch.Tensor:
    """Unit view rays of a pinhole camera, world axes x right, y up, z forward (longitude 0).

    Returns:
        (height, width, 3) float32.
    """
    half_width = math.tan(math.radians(fov) / 2.0)
    half_height = half_width * height / width
    xs = ((torch.arange(width, dtype=torch.float32) + 0.5) / width * 2.0 - 1.0) * half_width
    ys = (1.0 - (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2.0) * half_height
    x, y = torch.meshgrid(xs, ys, indexing="xy")
    z = torch.ones_like(x)
    # Pitch about the x axis (up is positive), then yaw about the y axis (right is positive).
    p, w = math.radians(pitch), math.radians(yaw)
    y, z = y * math.cos(p) + z * math.sin(p), -y * math.sin(p) + z * math.cos(p)
    x, z = x * math.cos(w) + z * math.sin(w), -x * math.sin(w) + z * math.cos(w)
    rays = torch.stack([x, y, z], dim=-1)
    return rays / rays.norm(dim=-1, keepdim=True)


def directions_to_uv(rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World directions (…, 3) → map coordinates u (longitude, 0.5 = forward), v (0 = up), both in 0..1."""
    longitude = torch.atan2(rays[..., 0], rays[..., 2])
    latitude = torch.asin(rays[..., 1].clamp(-1.0, 1.0))
    return longitude / (2.0 * math.pi) + 0.5, 0.5 - latitude / math.pi


def _check_clip(frames: int, height: int, width: int) -> None:
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}.")
    if height < 1 or width < 1:
        raise InputError(f"height and width must be positive, got {width}x{height}.")


def env_map_plates(
    env: torch.Tensor | np.ndarray | str | Path,
    frames: int,
    height: int,
    width: int,
    yaw: float = 0.0,
    pitch: float = 0.0,
    fov: float = 60.0,
    yaw_speed: float = 0.0,
    **tonemap_options,
) -> torch.Tensor:
    """Render a perspective background plate per frame from an environment map (module docstring: conventions).

    Args:
        env: (He, We, 3) linear equirectangular map (tensor or array), or a path for :func:`read_env_map`.
        frames: number of plates (>= 1).
        height, width: plate size in pixels.
        yaw: degrees, positive turns right; 0 looks at the map's centre column.
        pitch: degrees in -90..90, positive looks up.
        fov: horizontal field of view in degrees, in (0, 180).
        yaw_speed: degrees of yaw added per frame.
        **tonemap_options: ``exposure``, ``operator``, ``gamma`` of :func:`tonemap`.

    Returns:
        (frames, height, width, 3) float32 RGB in 0..1 (IMAGE layout).

    Raises:
        InputError: a bad map, or an argument out of range.
    """
    _check_clip(frames, height, width)
    check_view(yaw, pitch, fov, yaw_speed, tonemap_options.get("exposure", 0.0))
    radiance = _as_radiance(env)
    radiance = _shrink_for(radiance, math.ceil(width * 360.0 / fov))
    rays = torch.stack([camera_directions(height, width, yaw + k * yaw_speed, pitch, fov) for k in range(frames)])
    u, v = directions_to_uv(rays)
    return tonemap(sample_equirect(radiance, u, v), **tonemap_options).clamp(0.0, 1.0)


def env_map_panoramas(
    env: torch.Tensor | np.ndarray | str | Path,
    frames: int,
    height: int = 256,
    width: int = 256,
    yaw: float = 0.0,
    yaw_speed: float = 0.0,
    **tonemap_options,
) -> torch.Tensor:
    """Whole tone-mapped maps per frame, turned with the camera: the HDR encoder's input images.

    The map is rotated so the camera's forward direction (``yaw + k·yaw_speed``) sits at the centre column,
    and resampled to ``height`` x ``width`` (the unreleased training code used 256x256, squeezing the 2:1 map).

    Returns:
        (frames, height, width, 3) float32 RGB in 0..1 (IMAGE layout).
    """
    _check_clip(frames, height, width)
    radiance = _shrink_for(_as_radiance(env), 2 * width)
    u = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    v = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    turns = torch.tensor([(yaw + k * yaw_speed) / 360.0 for k in range(frames)])
    grid_u = (u[None, None, :] + turns[:, None, None]).expand(frames, height, width)
    grid_v = v[None, :, None].expand(frames, height, width)
    return tonemap(sample_equirect(radiance, grid_u, grid_v), **tonemap_options).clamp(0.0, 1.0)
