"""A complete relighting run on a fresh machine: tiny seeded networks and a procedural clip, no downloads.

Nothing here is trained: the U-Net, VAE and text encoder are tiny networks with seeded random weights, so
the relit video is noise-like. What the demo shows is that every stage runs end to end — files in, VAE,
text encoder, 3-way guidance with the Illumination-Invariant Ensemble, context windows, decoding, files
out — in seconds on a CPU.

Components (all built in code, deterministic for a seed, the global RNG untouched):

* U-Net: ``RelightVidUNet`` with the ``TINY`` config (32 channels, 32-wide text context), every weight
  drawn by :func:`~relightvid_core.models.random_init.randomize_weights`.
* VAE: a diffusers ``AutoencoderKL`` with 4 latent channels and 4 blocks (downscale 8, like SD's), 8–16
  channels wide.
* Text: a real ``TextEncoder`` — a 2-layer, 32-wide CLIP text model with a character-level CLIP tokenizer
  (printable ASCII, no merges) — so the demo runs the same text path as the real model.

:func:`write_tiny_models` writes the same kind of tiny networks as the *official* files (an SD1.5 diffusers
folder, IC-Light fbc offsets, a ``relvid_mm`` ``.pth`` with the ``unet.`` prefix) into a models folder, for
``relightvid convert --tiny-demo`` and for trying the ``relight`` command without real weights.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .conditioning import SizePolicy, TextEncoder
from .errors import InputError
from .model_files import ICLIGHT_NAME, MOTION_NAME, SD_FOLDER, ModelFiles
from .models import TINY, RelightVidUNet
from .models.random_init import randomize_weights
from .outputs import apply_umask, check_folder_writable, make_folders, remove_folders, staging_name
from .pipeline import BackgroundFile, Components, JobResult, SamplingSettings, VideoJob, run_video_job
from .sampling import DEFAULT_IIE_FACTORS, ContextWindows, StepInfo
from .values import SEED_MAX, check_seed
from .video_io import write_mask_folder, write_video
from .weights.convert import is_motion_key

DEMO_FOLDER = "relightvid-demo"
DEMO_SEED = 0
DEMO_FRAMES = 24
DEMO_SIZE = 64  # pixels; 8x8 latents
DEMO_FPS = 8.0  # the official clips' rate
DEMO_STEPS = 8
# 24 frames in windows of 16 with overlap 4: two windows, frames 8–15 blended.
DEMO_WINDOW = ContextWindows(length=16, overlap=4)

TINY_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 8, 16, 16],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": DEMO_SIZE,
}
# Character-level vocabulary: CLIP's byte-level pre-tokenizer leaves printable ASCII as is.
TOKENIZER_CHARACTERS = [chr(code) for code in range(33, 127)]
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
TINY_TEXT_CONFIG = {
    "vocab_size": 2 + 2 * len(TOKENIZER_CHARACTERS),
    "hidden_size": TINY["cross_attention_dim"],
    "intermediate_size": 64,
    "projection_dim": TINY["cross_attention_dim"],
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
}
OFFSET_SCALE = 0.05  # tiny IC-Light offsets are small next to the base weights, like the real ones
SEED_STRIDE = 1000  # separate seeds for the components built from one demo seed
DEMO_SEED_MAX = SEED_MAX - 2 * SEED_STRIDE  # every derived seed must stay a 64-bit seed


def tiny_vocabulary() -> dict[str, int]:
    """Token → id: BOS 0, EOS/pad 1, then every character, then every character ending a word (``</w>``)."""
    vocabulary = {BOS: 0, EOS: 1}
    for suffix in ("", "</w>"):
        for character in TOKENIZER_CHARACTERS:
            vocabulary[character + suffix] = len(vocabulary)
    return vocabulary


def tiny_unet(seed: int = DEMO_SEED, in_channels: int = TINY["in_channels"]) -> RelightVidUNet:
    """``TINY`` RelightVid U-Net, every weight seeded-random."""
    return randomize_weights(RelightVidUNet.from_config({**TINY, "in_channels": in_channels}), seed).eval()


def tiny_vae(seed: int = DEMO_SEED) -> AutoencoderKL:
    """A small ``AutoencoderKL``: 4 latent channels, downscale 8, diffusers' own initialisation."""
    with torch.random.fork_rng(devices=[]):  # seeded build without touching the caller's RNG
        torch.manual_seed(seed)
        return AutoencoderKL(**TINY_VAE_CONFIG).eval().requires_grad_(False)


def tiny_text_encoder(seed: int = DEMO_SEED) -> TextEncoder:
    """A 2-layer CLIP text model (32-wide) with a character-level CLIP tokenizer."""
    tokenizer = CLIPTokenizer(vocab=tiny_vocabulary(), merges=[])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG))
    return TextEncoder(tokenizer, model.requires_grad_(False))


def tiny_components(seed: int = DEMO_SEED) -> Components:
    """U-Net, VAE and text encoder for the demo, each from its own seed derived from ``seed``."""
    return Components(
        unet=tiny_unet(seed),
        vae=tiny_vae(seed + SEED_STRIDE),
        text=tiny_text_encoder(seed + 2 * SEED_STRIDE),
    )


# --- procedural clip ---


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (y, x), each (size, size) in 0..1."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    return torch.meshgrid(axis, axis, indexing="ij")


def procedural_clip(frames: int = DEMO_FRAMES, size: int = DEMO_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """A shaded ball rolling across a striped backdrop, and its matte.

    Returns:
        frames (T, size, size, 3) RGB in 0..1 and masks (T, size, size) in 0..1 (anti-aliased edge).
    """
    y, x = _grid(size)
    backdrop = torch.stack([0.35 + 0.3 * y, 0.45 + 0.1 * torch.sin(12 * math.pi * x) ** 2, 0.6 - 0.3 * y], dim=-1)
    radius = 0.22
    light = torch.tensor([-0.5, -0.5, 0.7071])  # from the upper left, towards the viewer
    colour = torch.tensor([0.9, 0.5, 0.3])
    clips, mattes = [], []
    for k in range(frames):
        phase = k / max(1, frames - 1)
        cx, cy = 0.3 + 0.4 * phase, 0.55 + 0.05 * math.sin(2 * math.pi * phase)
        dx, dy = (x - cx) / radius, (y - cy) / radius
        distance = torch.sqrt(dx**2 + dy**2)
        matte = ((1.0 - distance) * radius * size + 0.5).clamp(0.0, 1.0)  # one-pixel anti-aliased rim
        normal = torch.stack([dx, dy, torch.sqrt((1 - dx**2 - dy**2).clamp_min(0.0))], dim=-1)
        shade = 0.2 + 0.8 * (normal @ light).clamp_min(0.0)
        ball = shade[..., None] * colour
        clips.append(matte[..., None] * ball + (1 - matte[..., None]) * backdrop)
        mattes.append(matte)
    return torch.stack(clips).clamp(0.0, 1.0), torch.stack(mattes)


def procedural_background(frames: int = DEMO_FRAMES, size: int = DEMO_SIZE) -> torch.Tensor:
    """A coloured glow circling the frame, turning from warm to cool: (T, size, size, 3) in 0..1."""
    y, x = _grid(size)
    warm, cool = torch.tensor([1.0, 0.6, 0.3]), torch.tensor([0.3, 0.5, 1.0])
    plates = []
    for k in range(frames):
        phase = k / max(1, frames - 1)
        angle = 2 * math.pi * phase
        cx, cy = 0.5 + 0.35 * math.cos(angle), 0.5 + 0.35 * math.sin(angle)
        glow = torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.05)
        plates.append(0.05 + glow[..., None] * ((1 - phase) * warm + phase * cool))
    return torch.stack(plates).clamp(0.0, 1.0)


@dataclass(frozen=True)
class DemoResult:
    """The demo's files: the procedural inputs it wrote and the :class:`~relightvid_core.pipeline.JobResult`."""

    folder: Path
    input: Path
    mask: Path
    background: Path
    job: JobResult


def run_demo(
    folder: str | Path = DEMO_FOLDER,
    seed: int = DEMO_SEED,
    steps: int = DEMO_STEPS,
    callback: Callable[[StepInfo], None] | None = None,
) -> DemoResult:
    """Write a procedural clip, mask folder and background video into ``folder`` (created if needed), then
    relight them with tiny untrained networks: IIE over the default 5 brightness factors, 16-frame windows
    with overlap 4 (two windows over 24 frames), ``steps`` DDPM steps, writing ``relit.mp4`` and
    ``contact_sheet.png``.

    Everything is made in a hidden folder beside ``folder`` and moved in only when complete, so a failed or
    interrupted demo leaves nothing behind (and replaces none of an earlier demo's files); a ``folder`` that
    did not exist is created then.

    The output is noise-like: the weights are random (module docstring).

    Raises:
        InputError: ``folder`` is a file or cannot be written, or a bad ``seed`` or ``steps``.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"the demo folder {folder} is a file; give a folder name (it is created if needed).")
    check_folder_writable(folder, "demo folder")
    check_seed("seed", seed)
    settings = SamplingSettings(steps=steps, seed=seed, iie_factors=DEFAULT_IIE_FACTORS, window=DEMO_WINDOW)
    created = make_folders(folder.parent)
    staging = staging_name(folder)
    try:
        staging.mkdir()
        result = _demo_in(staging, settings, callback)
        created += _move_into(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_folders(created)
        raise
    job = replace(result.job, output=folder / result.job.output.name, contact_sheet=folder / "contact_sheet.png")
    return DemoResult(folder, folder / result.input.name, folder / result.mask.name, folder / result.background.name, job)


def _demo_in(folder: Path, settings: SamplingSettings, callback: Callable[[StepInfo], None] | None) -> DemoResult:
    frames, masks = procedural_clip()
    input_path, mask_path, background_path = folder / "input.mp4", folder / "mask", folder / "background.mp4"
    write_video(input_path, frames, DEMO_FPS)
    write_mask_folder(mask_path, masks)
    write_video(background_path, procedural_background(), DEMO_FPS)
    job = VideoJob(
        input=input_path,
        mask=mask_path,
        lighting=BackgroundFile(background_path),
        output=folder / "relit.mp4",
        contact_sheet=folder / "contact_sheet.png",
        size_policy=SizePolicy.CENTER_CROP,
        width=DEMO_SIZE,
        height=DEMO_SIZE,
    )
    result = run_video_job(job, settings, lambda: tiny_components(settings.seed), callback)
    return DemoResult(folder, input_path, mask_path, background_path, result)


def _move_into(staging: Path, folder: Path) -> list[Path]:
    """Move the finished demo files into ``folder``: the whole staging folder when ``folder`` is new (returned
    as created), else file by file, replacing an earlier demo's files of the same names."""
    if not folder.exists():
        os.replace(staging, folder)
        return [folder]
    for entry in staging.iterdir():
        target = folder / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
    return []


# --- tiny official-format files ---


def _save_text_encoder(folder: Path, text: TextEncoder) -> None:
    """``text_encoder/`` (config + safetensors) and ``tokenizer/`` (vocab.json, merges.txt) of a diffusers folder."""
    (folder / "text_encoder").mkdir(parents=True, exist_ok=True)
    text.model.config.to_json_file(str(folder / "text_encoder" / "config.json"))
    weights = {key: value.contiguous() for key, value in text.model.state_dict().items()}
    save_file(weights, str(folder / "text_encoder" / "model.safetensors"), metadata={"format": "pt"})
    (folder / "tokenizer").mkdir(exist_ok=True)
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps(tiny_vocabulary()), encoding="utf-8")
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def write_tiny_models(folder: str | Path, seed: int = DEMO_SEED) -> ModelFiles:
    """Write tiny networks in the official files' formats, in the models-folder layout of
    :mod:`~relightvid_core.model_files`: ``realistic-vision-v51/`` (SD1.5 diffusers folder: ``unet/``
    with 4 input channels, ``vae/``, ``text_encoder/``, ``tokenizer/``), ``iclight_sd15_fbc.safetensors``
    (12-channel offsets) and ``relvid_mm_sd15_fbc.pth`` (temporal weights under ``unet.``), all fp16
    like the released files except the VAE and text encoder. The U-Net shape is ``TINY``.

    Returns:
        The :class:`~relightvid_core.model_files.ModelFiles` of what was written.
    """
    folder = Path(folder).expanduser()
    sd = folder / SD_FOLDER
    (sd / "unet").mkdir(parents=True, exist_ok=True)
    base = {key: value.half().contiguous() for key, value in tiny_unet(seed, in_channels=4).state_dict().items()}
    offsets = tiny_unet(seed + 1).state_dict()
    unet_file = sd / "unet" / "diffusion_pytorch_model.safetensors"
    save_file({k: v for k, v in base.items() if not is_motion_key(k)}, str(unet_file))
    iclight = {k: (v * OFFSET_SCALE).half().contiguous() for k, v in offsets.items() if not is_motion_key(k)}
    save_file(iclight, str(folder / ICLIGHT_NAME))
    torch.save({"unet." + k: v for k, v in base.items() if is_motion_key(k)}, folder / MOTION_NAME)
    tiny_vae(seed + SEED_STRIDE).save_pretrained(str(sd / "vae"))
    _save_text_encoder(sd, tiny_text_encoder(seed + 2 * SEED_STRIDE))
    # safetensors (under save_pretrained too) makes private 0600 files; give what it wrote the umask's mode.
    for written in (unet_file, folder / ICLIGHT_NAME, sd / "vae", sd / "text_encoder"):
        apply_umask(written)
    return ModelFiles(sd=sd, iclight=folder / ICLIGHT_NAME, motion=folder / MOTION_NAME)
