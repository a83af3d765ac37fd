"""Reading and writing clips, stills and mask folders.

Videos go through PyAV (FFmpeg); stills and masks through OpenCV. Everything returned is in ComfyUI's
IMAGE layout, ``(T, H, W, 3)`` float32 in 0..1 RGB (masks ``(T, H, W)`` float32 in 0..1), so the
library, the command line and the nodes share one layout.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import torch

from .errors import InputError
from .outputs import staging_name
from .optional import require
from .values import counted

logger = logging.getLogger(__name__)

# The official mask folders name frame k "<k as %04d>.png" (docs/official_code.md §c, apply_mask_to_video).
MASK_NAME_PATTERN = re.compile(r"^(\d{4})\.png$")
MASK_NAME_FORMAT = "{:04d}.png"
# libx264 quality: 18 is visually lossless for most content and keeps files small.
DEFAULT_CRF = 18
# Containers the writer can put H.264 in, by suffix (the writer picks the format from the file name).
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Fps given as a float is stored as a fraction; 1001 keeps NTSC rates such as 29.97 = 30000/1001 exact.
FPS_DENOMINATOR_LIMIT = 1001
# The FFmpeg demuxers read as videos (PyAV's ``container.format.name``) → the name users know. FFmpeg opens
# much else as a "video": a text file through its tty demuxer (it renders the text), a still image as one frame
# (image2 and the *_pipe image demuxers), subtitles, lavfi graphs; none of those is a clip, so only real video
# containers are read. Animated GIFs are clips (every frame decoded with its delay), so GIF is among them; a
# one-frame GIF is then a one-frame clip, like a one-frame MP4 (stills go through read_image).
VIDEO_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV",
    "matroska,webm": "MKV/WebM",
    "avi": "AVI",
    "flv": "FLV",
    "mpegts": "MPEG-TS",
    "mpeg": "MPEG-PS",
    "ogg": "Ogg",
    "asf": "WMV/ASF",
    "mxf": "MXF",
    "gif": "GIF",
}


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist or is not a file.")


def _decode_still(path: Path, flags: int) -> np.ndarray:
    """Decode an image file with OpenCV, reading bytes through numpy so non-ASCII paths work on Windows."""
    _require_file(path, "image")
    cv2 = require("cv2", "reading still images and masks")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as error:
        raise InputError(f"{path} cannot be read ({error.strerror or error}); check its permissions.") from error
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InputError(f"{path} is not an image OpenCV can read (expected PNG, JPEG, TIFF, WebP, ...).")
    return image


def _to_unit_range(image: np.ndarray, path: Path) -> np.ndarray:
    """Integer images to float32 0..1 by their dtype's maximum; float images are kept as stored."""
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise InputError(f"{path} has pixel type {image.dtype}, expected an integer or float image.")


def read_image(path: str | Path) -> torch.Tensor:
    """Read a still image (8- or 16-bit, grey, RGB or RGBA) as a one-frame clip.

    Args:
        path: the image file.

    Returns:
        (1, H, W, 3) float32 RGB in 0..1; an alpha channel is dropped, grey is repeated to three channels.

    Raises:
        InputError: the file is missing or is not an image.
    """
    path = Path(path)
    cv2 = require("cv2", "reading still images")
    image = _to_unit_range(_decode_still(path, cv2.IMREAD_UNCHANGED), path)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise InputError(f"{path} has {image.shape[2]} channels, expected 1 (grey), 3 (RGB) or 4 (RGBA).")
    return torch.from_numpy(np.ascontiguousarray(np.clip(image, 0.0, 1.0)))[None]


def read_mask(path: str | Path) -> torch.Tensor:
    """Read one grey-scale mask (255, or 65535 for 16-bit files, = foreground).

    Colour files are converted to grey as OpenCV's ``IMREAD_GRAYSCALE`` does (what the official code reads).
    A file with an alpha channel that is not fully opaque is a cut-out: its alpha is the mask (its colour
    channels often hold the subject's pixels, or nothing at all).

    Returns:
        (H, W) float32 in 0..1.

    Raises:
        InputError: the file is missing or is not an image.
    """
    path = Path(path)
    cv2 = require("cv2", "reading masks")
    image = _decode_still(path, cv2.IMREAD_UNCHANGED)
    opaque = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
    if image.ndim == 3 and image.shape[2] == 4 and image[..., 3].min() < opaque:
        image = image[..., 3]
    elif image.ndim == 3:
        image = _decode_still(path, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    return torch.from_numpy(np.clip(_to_unit_range(image, path), 0.0, 1.0))


def mask_folder_files(folder: str | Path, count: int, allow_extra: bool = False) -> list[Path]:
    """The mask files of ``count`` frames in the official layout (``0000.png`` …), checked but not read.

    Raises:
        InputError: as :func:`read_mask_folder`, for everything but the masks' contents.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"mask folder {folder} does not exist or is not a folder.")
    if count < 1:
        raise InputError(f"count must be at least 1 frame, got {count}.")
    numbered = sorted(int(m.group(1)) for name in os.listdir(folder) if (m := MASK_NAME_PATTERN.match(name)))
    if len(numbered) != count and not (allow_extra and len(numbered) > count):
        raise InputError(
            f"mask folder {folder} holds {counted(len(numbered), 'mask')} named %04d.png, but the video has {counted(count, 'frame')}; "
            "every frame needs exactly one mask."
        )
    missing = sorted(set(range(count)) - set(numbered))
    if missing:
        names = ", ".join(MASK_NAME_FORMAT.format(k) for k in missing[:3]) + (", …" if len(missing) > 3 else "")
        raise InputError(
            f"mask folder {folder} lacks the masks of {counted(len(missing), 'frame')} ({names}); "
            f"expected 0000.png to {MASK_NAME_FORMAT.format(count - 1)}."
        )
    return [folder / MASK_NAME_FORMAT.format(k) for k in range(count)]


def read_mask_folder(folder: str | Path, count: int, allow_extra: bool = False) -> torch.Tensor:
    """Read the official mask layout: ``0000.png`` … ``<count-1 as %04d>.png`` in ``folder``, one per frame.

    Unlike the official reader, which silently skips frames whose mask is missing, every frame must
    have its mask and the folder must hold exactly ``count`` of them.

    Args:
        folder: the mask folder.
        count: the number of frames of the matching video.
        allow_extra: accept masks beyond ``count`` (for a clip cut short on purpose, e.g. ``max_frames``).

    Returns:
        (count, H, W) float32 in 0..1, 1 = foreground.

    Raises:
        InputError: the folder is missing, holds a different number of masks than ``count`` (both numbers
            are named), lacks the mask of some frame, holds an unreadable mask, or masks of different sizes.
    """
    masks = [read_mask(path) for path in mask_folder_files(folder, count, allow_extra)]
    sizes = {tuple(mask.shape) for mask in masks}
    if len(sizes) > 1:
        raise InputError(f"masks in {folder} must all have one size, found sizes (H, W) {sorted(sizes)}.")
    return torch.stack(masks)


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[torch.Tensor, float]:
    """Decode the first video stream of a file.

    Args:
        path: the video file, in one of :data:`VIDEO_CONTAINERS` (mp4, mov, mkv, webm, ...).
        max_frames: read at most this many frames from the start (None: all).

    Returns:
        frames: (T, H, W, 3) float32 RGB in 0..1;
        fps: the stream's average frame rate (0.0 when the container does not say).

    Raises:
        InputError: the file is missing, is not a video (e.g. text or a still image), or holds no frame;
            ``max_frames`` < 1.
    """
    path = Path(path)
    _require_file(path, "video")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be at least 1 (or None for all frames), got {max_frames}.")
    av = require("av", "reading videos")
    frames: list[np.ndarray] = []
    try:
        with _open_video(path) as container:
            stream = _video_stream(container, path)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except PermissionError as error:
        raise InputError(f"video {path} cannot be read ({error.strerror or error}); check its permissions.") from error
    except av.FFmpegError as error:
        raise InputError(f"{path} is not a video FFmpeg can decode ({error}).") from error
    if not frames:
        raise InputError(f"{path} holds no decodable frame.")
    stacked = torch.from_numpy(np.stack(frames))
    return stacked.to(torch.float32).div_(255.0), fps


def _frames_to_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T, H, W, 3) 0..1 → uint8, rounded (the official writer truncates; rounding is the unbiased choice).

    Raises:
        InputError: NaN or infinite values (they would turn silently into black or white pixels).
    """
    if isinstance(frames, torch.Tensor):
        array = frames.detach().to("cpu", torch.float32).numpy()
    else:
        array = np.asarray(frames, np.float32)
    if not np.isfinite(array).all():
        raise InputError("the frames to write contain NaN or infinite values; nothing was written.")
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p halves the chroma resolution, so H.264 needs even sizes; repeat the last row/column if odd."""
    height, width = frames.shape[1:3]
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))
    if any(after for _, after in pad):
        logger.info("padding %dx%d frames to even size for yuv420p by repeating the last row/column", width, height)
        return np.pad(frames, pad, mode="edge")
    return frames


def write_video(path: str | Path, frames: torch.Tensor | np.ndarray, fps: float, crf: int = DEFAULT_CRF) -> Path:
    """Write frames as H.264 (libx264, yuv420p) in an mp4 (or ``.m4v``/``.mov``/``.mkv``), atomically.

    The file is written under a temporary name in the destination folder and renamed when complete,
    so a failure never leaves a half-written file at ``path`` (an existing file there is replaced
    only on success). Odd sizes are padded by one repeated row/column, as yuv420p requires even sizes.

    Args:
        path: the output file; its folder must exist; its suffix picks the container (:data:`VIDEO_FORMATS`).
        frames: (T, H, W, 3) RGB in 0..1 (tensor or array), finite; values are clamped and rounded to 8 bits.
        fps: frames per second, > 0.
        crf: libx264 constant rate factor (0 lossless … 51 worst; default 18).

    Returns:
        The path written.

    Raises:
        InputError: no frames, a wrong layout, NaN or infinite values, fps <= 0, a suffix no container
            matches, or a missing destination folder.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be (T, H, W, 3) RGB, got shape {tuple(frames.shape)}.")
    if frames.shape[0] == 0:
        raise InputError("frames must hold at least 1 frame to write a video, got 0.")
    if not fps > 0 or not np.isfinite(fps):
        raise InputError(f"fps must be a finite number > 0, got {fps}.")
    container_format = VIDEO_FORMATS.get(path.suffix.lower())
    if container_format is None:
        raise InputError(f"cannot write {path}: the video writer makes {', '.join(VIDEO_FORMATS)} files.")
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist.")
    av = require("av", "writing videos")
    pixels = _pad_to_even(_frames_to_uint8(frames))
    # A fresh hidden name beside the target (created by FFmpeg, so it gets the user's usual permissions).
    temporary = str(staging_name(path))
    try:
        with av.open(temporary, mode="w", format=container_format) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(FPS_DENOMINATOR_LIMIT))
            stream.width, stream.height = pixels.shape[2], pixels.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf)}
            for image in pixels:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode(None))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("wrote %d frames (%dx%d, %.3g fps) to %s", len(pixels), pixels.shape[2], pixels.shape[1], fps, path)
    return path


def write_mask_folder(folder: str | Path, masks: torch.Tensor) -> Path:
    """Write masks in the official folder layout (``0000.png`` …, 8-bit grey, 255 = subject).

    Args:
        folder: created if missing.
        masks: (T, H, W) in 0..1.

    Returns:
        The folder.
    """
    cv2 = require("cv2", "writing mask images")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, mask in enumerate(masks):
        pixels = np.clip(np.rint(mask.detach().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)
        cv2.imencode(".png", pixels)[1].tofile(str(folder / MASK_NAME_FORMAT.format(index)))
    return folder


# --- frame budget: decode only the frames kept, each brought to its target size as it is decoded ----------
#
# RAM per kept frame: one decoded source frame at a time (W·H·3 bytes, plus W·H·3·4 as float while it is
# fitted), and the fitted frame (w·h·3·4 bytes) kept; the whole-clip path holds every source frame as float
# (W·H·3·4 bytes each, twice while ComfyUI stacks them).

VideoSource = Union[str, Path, BinaryIO]
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
PRINTF_FIELD = re.compile(r"%(0?)(\d*)d")
TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a clip to keep: skip the first ``skip``, then keep every ``stride``-th, at most ``limit``.

    Attributes:
        skip: frames dropped from the start (>= 0).
        stride: keep one frame in ``stride`` (>= 1).
        limit: keep at most this many frames (None: all).

    Raises:
        InputError: a negative skip, a stride < 1 or a limit < 1.
    """

    skip: int = 0
    stride: int = 1
    limit: int | None = None

    def __post_init__(self):
        if self.skip < 0:
            raise InputError(f"skip_first_frames must be >= 0, got {self.skip}.")
        if self.stride < 1:
            raise InputError(f"frame_stride must be >= 1, got {self.stride}.")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"max_frames must be >= 1 (or all), got {self.limit}.")

    def keeps(self, index: int) -> bool:
        """Whether source frame ``index`` is among the kept ones (ignoring ``limit``)."""
        return index >= self.skip and (index - self.skip) % self.stride == 0

    def indices(self, count: int) -> range:
        """The kept indices of a clip of ``count`` frames."""
        kept = range(self.skip, count, self.stride)
        return kept if self.limit is None else kept[: self.limit]


@dataclass(frozen=True)
class VideoInfo:
    """A video stream's size, frame count and rate, read without decoding a frame."""

    width: int
    height: int
    frame_count: int
    fps: float


def _open_video(source: VideoSource):
    """Open ``source`` with PyAV, as a video container (:data:`VIDEO_CONTAINERS`); every reader opens videos here.

    Raises:
        InputError: the file is missing, or FFmpeg reads it as something else (text, a still image, subtitles).
        av.FFmpegError: FFmpeg cannot read it at all (each caller turns it into an InputError naming the file).
    """
    av = require("av", "reading videos")
    if isinstance(source, (str, Path)):
        _require_file(Path(source), "video")
        container = av.open(str(source))
    else:
        source.seek(0)
        container = av.open(source)
    if container.format.name not in VIDEO_CONTAINERS:
        container.close()
        raise InputError(
            f"{_source_name(source)} is a {container.format.long_name} ({container.format.name}) file, not a "
            f"video; expected a video file ({', '.join(VIDEO_CONTAINERS.values())})."
        )
    return container


def _video_stream(container, source: VideoSource):
    if not container.streams.video:
        raise InputError(f"{_source_name(source)} holds no video stream.")
    return container.streams.video[0]


def _source_name(source: VideoSource) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the video"


def probe_video(source: VideoSource) -> VideoInfo:
    """Size, frame count and fps of the first video stream (packets are counted when the header has no count).

    Raises:
        InputError: the file is missing or is not a video.
    """
    av = require("av", "reading videos")
    try:
        with _open_video(source) as container:
            stream = _video_stream(container, source)
            count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(stream.width, stream.height, int(count), float(rate) if rate else 0.0)
    except av.FFmpegError as error:
        raise InputError(f"{_source_name(source)} is not a video FFmpeg can decode ({error}).") from error


def read_video_frames(
    source: VideoSource,
    selection: FrameSelection = FrameSelection(),
    fit: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, float]:
    """Decode only the kept frames of a video, each passed through ``fit`` as soon as it is decoded.

    Memory follows the output: frames that are skipped are decoded (inter-coded video needs them) but never
    converted, and a kept frame is fitted before the next is read.

    Args:
        source: a video file path or an open binary file (e.g. ComfyUI VIDEO's ``get_stream_source()``).
        selection: which frames to keep.
        fit: maps one frame (1, H, W, 3) float32 0..1 to its target size, e.g. a geometry plan; None keeps it.

    Returns:
        frames: (T, h, w, 3) float32 RGB in 0..1; fps: the stream's rate divided by the stride.

    Raises:
        InputError: the file is missing, is not a video, or holds no frame the selection keeps.
    """
    av = require("av", "reading videos")
    kept: list[torch.Tensor] = []
    try:
        with _open_video(source) as container:
            stream = _video_stream(container, source)
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            for index, frame in enumerate(container.decode(stream)):
                if not selection.keeps(index):
                    continue
                image = torch.from_numpy(frame.to_ndarray(format="rgb24"))[None].float().div_(255.0)
                kept.append(image[0] if fit is None else fit(image)[0])
                if selection.limit is not None and len(kept) >= selection.limit:
                    break
    except av.FFmpegError as error:
        raise InputError(f"{_source_name(source)} is not a video FFmpeg can decode ({error}).") from error
    if not kept:
        raise InputError(
            f"{_source_name(source)} has no frame left after skipping {selection.skip} (stride {selection.stride})."
        )
    return torch.stack(kept), (float(rate) / selection.stride if rate else 0.0)


def _numbered_files(spec: Path) -> dict[int, Path]:
    """Frame number → file of a folder, a printf pattern (``%04d``) or a glob (``*``, ``?``)."""
    text = str(spec)
    field = PRINTF_FIELD.search(spec.name)
    if spec.is_dir():
        candidates = sorted(p for p in spec.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
        return _unique_numbers((TRAILING_NUMBER.search(p.stem), p) for p in candidates)
    if field is not None:
        digits = rf"\d{{{field.group(2)}}}" if field.group(1) and field.group(2) else r"\d+"
        name = re.compile(re.escape(spec.name[: field.start()]) + f"({digits})" + re.escape(spec.name[field.end() :]))
        if not spec.parent.is_dir():
            raise InputError(f"the folder {spec.parent} of mask pattern {text} does not exist.")
        return _unique_numbers((name.fullmatch(p.name), p) for p in sorted(spec.parent.iterdir()))
    if any(char in text for char in "*?["):
        return _unique_numbers((TRAILING_NUMBER.search(Path(p).stem), Path(p)) for p in sorted(glob.glob(text)))
    raise InputError(f"mask sequence {text} is neither a folder, a %04d pattern nor a glob such as mask/*.png.")


def _unique_numbers(matches) -> dict[int, Path]:
    """(number match or None, path) pairs → number → path; files without a number are ignored."""
    numbered: dict[int, Path] = {}
    for match, path in matches:
        if match is None:
            continue
        number = int(match.group(1))
        if number in numbered:
            raise InputError(f"{numbered[number].name} and {path.name} both hold frame {number}; keep one of them.")
        numbered[number] = path
    return numbered


def mask_sequence_files(spec: str | Path, expected_count: int | None = None) -> list[Path]:
    """The files of a numbered mask sequence, in frame order, with every frame present.

    Args:
        spec: a folder (its images, numbered by the digits that end their names), a printf pattern such as
            ``mask/%04d.png`` or a glob such as ``mask/*.png``.
        expected_count: the clip's frame count; the sequence must hold exactly this many masks.

    Raises:
        InputError: nothing matches, a number is missing between the first and the last, two files hold one
            number, or the count differs from ``expected_count`` (each in one sentence).
    """
    spec = Path(spec)
    numbered = _numbered_files(spec)
    if not numbered:
        raise InputError(f"mask sequence {spec} matches no numbered image ({', '.join(MASK_SUFFIXES)}).")
    first, last = min(numbered), max(numbered)
    missing = [k for k in range(first, last + 1) if k not in numbered]
    if missing:
        shown = ", ".join(str(k) for k in missing[:3]) + (", …" if len(missing) > 3 else "")
        raise InputError(f"mask sequence {spec} lacks {len(missing)} frame(s) between {first} and {last} ({shown}).")
    if expected_count is not None and len(numbered) != expected_count:
        kind = "more" if len(numbered) > expected_count else "fewer"
        raise InputError(
            f"mask sequence {spec} holds {counted(len(numbered), 'mask')}, {kind} than the video's {counted(expected_count, 'frame')}; "
            "every frame needs exactly one mask."
        )
    return [numbered[k] for k in range(first, last + 1)]


def _mask_pixels(image: np.ndarray, use_alpha: bool, path: Path) -> np.ndarray:
    """One decoded mask file → (H, W) float32 0..1: alpha (opaque = subject) or grey of the colour."""
    cv2 = require("cv2", "reading masks")
    if image.ndim == 3 and image.shape[2] == 4 and use_alpha:
        return _to_unit_range(np.ascontiguousarray(image[:, :, 3]), path)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    return _to_unit_range(image, path)


def read_mask_sequence(
    spec: str | Path, selection: FrameSelection = FrameSelection(), expected_count: int | None = None
) -> torch.Tensor:
    """Read the kept masks of a numbered sequence (see :func:`mask_sequence_files`).

    Cut-outs with transparency are read by their alpha (opaque = subject) when any kept file has a
    non-opaque alpha; otherwise the grey of the colour (white = subject) is used, so RGBA files saved fully
    opaque still read as drawn.

    Returns:
        (T, H, W) float32 in 0..1, 1 = subject.

    Raises:
        InputError: see :func:`mask_sequence_files`; masks of different sizes; nothing left after the selection.
    """
    cv2 = require("cv2", "reading masks")
    files = mask_sequence_files(spec, expected_count)
    kept = [files[k] for k in selection.indices(len(files))]
    if not kept:
        raise InputError(f"mask sequence {spec} has no mask left after skipping {selection.skip}.")
    images = [_decode_still(path, cv2.IMREAD_UNCHANGED) for path in kept]
    use_alpha = any(
        image.ndim == 3 and image.shape[2] == 4 and image[:, :, 3].min() < np.iinfo(image.dtype).max
        for image in images
        if np.issubdtype(image.dtype, np.integer)
    )
    masks = [_mask_pixels(image, use_alpha, path) for image, path in zip(images, kept, strict=True)]
    sizes = {mask.shape for mask in masks}
    if len(sizes) > 1:
        raise InputError(f"masks of {spec} must all have one size, found sizes (H, W) {sorted(sizes)}.")
    return torch.from_numpy(np.clip(np.stack(masks), 0.0, 1.0))
