"""Random full-size weight files for the integration tests, written once into a cache folder.

ComfyUI's Load Checkpoint only recognises a real SD1.5-shaped checkpoint (its model detection needs 320
channels and a 768-d context, and its CLIP and VAE are built at their real sizes), so the files cannot be
tiny. They are random fp16 tensors with the exact key layouts users' files have:

* ``checkpoints/rv_random_sd15.safetensors`` — single-file SD1.5 checkpoint: U-Net (LDM keys), CLIP-L text
  encoder (``cond_stage_model.transformer.…``) and VAE (diffusers keys under ``first_stage_model.``, which
  ComfyUI converts), about 2.1 GB;
* ``relightvid/iclight_sd15_fbc.safetensors`` — IC-Light fbc offsets (diffusers keys, 12-channel conv_in), 1.7 GB;
* ``relightvid/relvid_mm_sd15_fbc.pth`` — temporal modules with the ``unet.`` prefix, 0.8 GB;
* ``relightvid/iclight_sd15_fc.safetensors`` — an fc-shaped file (8-channel conv_in) that must be refused,
  with only the key that tells it apart written at full size (a few tensors, tiny);
* ``controlnet/rv_random_controlnet_sd15.safetensors`` — an SD1.5 ControlNet (LDM keys ``control_model.…``:
  the U-Net's encoder, the hint encoder and the zero convolutions), 0.7 GB, for the native templates.

Random values are N(0, 0.02²) (norm scales 1, as a freshly initialised network), from a fixed seed.

A second set, :data:`GENTLE` (its U-Net's values N(0, 0.005²), in its own folder), is for the parity of
ComfyUI's sampling with the library and the command line (:func:`ensure_diffusers_folder` gives the command
line the same checkpoint as an SD1.5 diffusers folder): with 0.02 the 4-step guided trajectory is so sensitive that the
library's own fp32 result is about 1e-2 from its fp64 result (a 1e-7 relative change of the starting noise
moves it nearly as far), which no comparison of two fp32 computations can get under; with 0.005 that error
is about 2e-4.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch
from _support.tiny_weights import to_ldm
from safetensors.torch import load_file, save_file

from relightvid_core import FULL_FBC, RelightVidUNet

CACHE = Path(os.environ.get("RELIGHTVID_TEST_CACHE", "/tmp/relightvid-test-cache"))
CHECKPOINT = "rv_random_sd15.safetensors"
ICLIGHT = "iclight_sd15_fbc.safetensors"
ICLIGHT_FC = "iclight_sd15_fc.safetensors"
MOTION = "relvid_mm_sd15_fbc.pth"
CONTROLNET = "rv_random_controlnet_sd15.safetensors"
# The ControlNet's hint encoder (3x3 convolutions, every other layer) and one 1x1 zero convolution per
# encoder output, as in ControlNet 1.0/1.1 for SD1.5.
HINT_CHANNELS = (3, 16, 16, 32, 32, 96, 96, 256, 320)
ZERO_CONV_CHANNELS = (320,) * 4 + (640,) * 3 + (1280,) * 5
CONTROLNET_UNET_PARTS = ("input_blocks.", "middle_block.", "time_embed.")
DONE_MARKER = ".complete-v1"
STD = 0.02
GENTLE_STD = 0.005
GENTLE = CACHE / "gentle"  # the gentle set's cache folder
DIFFUSERS_FOLDER = "sd15-diffusers"  # the checkpoint as a diffusers folder, for `relightvid relight --sd`
UNET_PREFIX, CLIP_PREFIX, VAE_PREFIX = "model.diffusion_model.", "cond_stage_model.transformer.", "first_stage_model."

CLIP_L = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "block_out_channels": (128, 256, 512, 512),
    "sample_size": 512,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def _unet_shapes(in_channels: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return _shapes(RelightVidUNet.from_config({**FULL_FBC, "in_channels": in_channels}))


def _clip_shapes() -> dict[str, tuple[int, ...]]:
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        return _shapes(CLIPTextModel(CLIPTextConfig(**CLIP_L)))


def _vae_shapes() -> dict[str, tuple[int, ...]]:
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        return _shapes(AutoencoderKL(**SD_VAE))


def _random(shapes: dict[str, tuple[int, ...]], generator: torch.Generator, std: float) -> dict[str, torch.Tensor]:
    tensors = {}
    for key, shape in shapes.items():
        if re.search(r"(norm\w*|ln_\w+|layer_norm\d*)\.weight$", key) and len(shape) == 1:
            tensors[key] = torch.ones(shape, dtype=torch.float16)
        elif key.endswith("position_ids"):
            tensors[key] = torch.arange(shape[-1]).expand(shape).clone()
        else:
            tensors[key] = (torch.randn(shape, generator=generator) * std).half()
    return tensors


def _split(shapes: dict[str, tuple[int, ...]], motion: bool) -> dict[str, tuple[int, ...]]:
    return {k: s for k, s in shapes.items() if (".motion_modules." in k) == motion}


def _controlnet_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        unet = to_ldm({k: torch.empty(s) for k, s in _split(_unet_shapes(4), False).items()})
    shapes = {key: tuple(value.shape) for key, value in unet.items() if key.startswith(CONTROLNET_UNET_PARTS)}
    for index, (source, target) in enumerate(zip(HINT_CHANNELS, HINT_CHANNELS[1:])):
        shapes[f"input_hint_block.{2 * index}.weight"] = (target, source, 3, 3)
        shapes[f"input_hint_block.{2 * index}.bias"] = (target,)
    for index, channels in enumerate(ZERO_CONV_CHANNELS):
        shapes[f"zero_convs.{index}.0.weight"] = (channels, channels, 1, 1)
        shapes[f"zero_convs.{index}.0.bias"] = (channels,)
    shapes["middle_block_out.0.weight"], shapes["middle_block_out.0.bias"] = (1280, 1280, 1, 1), (1280,)
    return shapes


def ensure_controlnet(root: Path) -> None:
    """Write the random ControlNet once (its own check: caches made before it existed lack it)."""
    path = root / "controlnet" / CONTROLNET
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = _random(_controlnet_shapes(), torch.Generator().manual_seed(1), STD)
    partial = path.with_suffix(".partial")
    save_file({"control_model." + k: v for k, v in tensors.items()}, str(partial))
    partial.rename(path)


def ensure_weights(cache: Path = CACHE, unet_std: float = STD) -> Path:
    """Write the files once (about a minute, 5.1 GB); later calls return at once. Returns the models root.

    ``unet_std``: the spread of the U-Net's random values (base, IC-Light offsets, temporal modules); the text
    encoder, VAE and ControlNet keep :data:`STD`. A cache folder holds one set (:data:`CACHE` 0.02,
    :data:`GENTLE` :data:`GENTLE_STD`)."""
    root = cache / "models"
    if (cache / DONE_MARKER).is_file():
        ensure_controlnet(root)
        return root
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / "relightvid").mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    base_shapes = _unet_shapes(4)

    checkpoint = to_ldm(_random(_split(base_shapes, False), generator, unet_std), prefix=UNET_PREFIX)
    checkpoint.update({CLIP_PREFIX + k: v for k, v in _random(_clip_shapes(), generator, STD).items()})
    checkpoint.update({VAE_PREFIX + k: v for k, v in _random(_vae_shapes(), generator, STD).items()})
    save_file(checkpoint, str(root / "checkpoints" / CHECKPOINT))
    del checkpoint

    offsets = _random(_split(_unet_shapes(12), False), generator, unet_std)
    save_file(offsets, str(root / "relightvid" / ICLIGHT))
    fc = {"conv_in.weight": torch.zeros(320, 8, 3, 3, dtype=torch.float16), "conv_in.bias": offsets["conv_in.bias"]}
    save_file(fc, str(root / "relightvid" / ICLIGHT_FC))
    del offsets

    motion = _random(_split(base_shapes, True), generator, unet_std)
    torch.save({"unet." + k: v for k, v in motion.items()}, root / "relightvid" / MOTION)
    ensure_controlnet(root)
    (cache / DONE_MARKER).write_text("ok\n")
    return root


def _part(checkpoint: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in checkpoint.items() if key.startswith(prefix)}


def ensure_diffusers_folder(root: Path, tokenizer: Path) -> Path:
    """The checkpoint under ``root`` (from :func:`ensure_weights`) as the SD1.5 diffusers folder that
    ``relightvid relight --sd`` reads — the same tensors, so the command line and ComfyUI load one model — with
    the CLIP tokenizer files copied from ``tokenizer`` (ComfyUI's ``comfy/sd1_tokenizer``). Written once into
    ``root``; returns the folder."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig

    from relightvid_core.weights.convert import ldm_to_diffusers_key_map

    folder = root / DIFFUSERS_FOLDER
    if (folder / DONE_MARKER).is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted earlier attempt
    checkpoint = load_file(str(root / "checkpoints" / CHECKPOINT))
    for name in ("unet", "vae", "text_encoder"):
        (folder / name).mkdir(parents=True)
    unet = _part(checkpoint, UNET_PREFIX)
    diffusers_unet = {ours: unet[ldm] for ours, ldm in ldm_to_diffusers_key_map(list(unet)).items()}
    save_file(diffusers_unet, str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    with torch.device("meta"):
        AutoencoderKL(**SD_VAE).save_config(str(folder / "vae"))
    save_file(_part(checkpoint, VAE_PREFIX), str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    CLIPTextConfig(**CLIP_L).to_json_file(str(folder / "text_encoder" / "config.json"))
    save_file(_part(checkpoint, CLIP_PREFIX), str(folder / "text_encoder" / "model.safetensors"), {"format": "pt"})
    shutil.copytree(tokenizer, folder / "tokenizer")
    (folder / DONE_MARKER).write_text("ok\n")
    return folder


if __name__ == "__main__":
    print(ensure_weights())
