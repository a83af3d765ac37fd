"""Stand-ins for the ComfyUI objects the node pack touches, for tests that run without ComfyUI.

* :func:`make_folder_paths` — a ``folder_paths`` module over a temporary ``models/`` and ``input/`` tree,
  with the calls the pack makes (same names and behaviour as ComfyUI's, on a much smaller scale).
* :class:`FakeVAE` — ``encode(IMAGE) -> unscaled latents``: 8x8 average pooling and a fixed 3→4 mix, so the
  latents depend on the pixels as a VAE's do.
* :class:`FakeCLIP` — ``tokenize``/``encode_from_tokens_scheduled`` giving CONDITIONING of the tiny U-Net's width.
* :class:`FakeModel` — the parts of a ComfyUI MODEL (ModelPatcher) the U-Net loader reads.
* :func:`load_pack` — import the repository root as a package under a unique name, as ComfyUI does.
* :func:`queue_time_filings` — what ComfyUI's queue-time validation of one node files, input by input.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib.util
import inspect
import os
import sys
import types
from pathlib import Path

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from relightvid_core import TINY

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "comfyui_relightvid_under_test"
SUPPORTED_PT_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
CONTEXT_WIDTH = TINY["cross_attention_dim"]
TOKENS = 77
# The tiny weight files the node tests write into the stand-in models folders.
BASE_FILE = "tiny_sd15.safetensors"
ICLIGHT_FILE = "iclight_sd15_fbc_tiny.safetensors"
FC_FILE = "iclight_sd15_fc_tiny.safetensors"
MOTION_FILE = "relvid_mm_sd15_fbc_tiny.pth"
ENV_MAP_FILE = "studio.hdr"


def make_folder_paths(base: Path) -> types.ModuleType:
    """A ``folder_paths`` module whose models live in ``base/models`` and inputs in ``base/input``."""
    module = types.ModuleType("folder_paths")
    module.base_path = str(base)
    module.models_dir = str(base / "models")
    module.supported_pt_extensions = set(SUPPORTED_PT_EXTENSIONS)
    module.folder_names_and_paths = {
        name: ([str(base / "models" / name)], module.supported_pt_extensions)
        for name in ("checkpoints", "diffusion_models", "vae", "text_encoders")
    }
    legacy = {"unet": "diffusion_models", "clip": "text_encoders"}

    def map_legacy(name):
        return legacy.get(name, name)

    def add_model_folder_path(name, path, is_default=False):
        name = map_legacy(name)
        if name in module.folder_names_and_paths:
            paths = module.folder_names_and_paths[name][0]
            if path not in paths:
                paths.insert(0, path) if is_default else paths.append(path)
        else:
            module.folder_names_and_paths[name] = ([path], set())

    def get_folder_paths(name):
        return list(module.folder_names_and_paths[map_legacy(name)][0])

    def get_filename_list(name):
        paths, extensions = module.folder_names_and_paths[map_legacy(name)]
        found = set()
        for root in paths:
            for folder, _dirs, files in os.walk(root):
                for file in files:
                    if not extensions or os.path.splitext(file)[1].lower() in extensions:
                        found.add(os.path.relpath(os.path.join(folder, file), root).replace(os.sep, "/"))
        return sorted(found)

    def get_full_path(name, filename):
        name = map_legacy(name)
        if name not in module.folder_names_and_paths:
            return None
        for root in module.folder_names_and_paths[name][0]:
            path = os.path.join(root, filename)
            if os.path.isfile(path):
                return path
        return None

    def get_input_directory():
        return str(base / "input")

    def get_annotated_filepath(name, default_dir=None):
        return os.path.join(get_input_directory(), name.removesuffix(" [input]"))

    for function in (
        map_legacy,
        add_model_folder_path,
        get_folder_paths,
        get_filename_list,
        get_full_path,
        get_input_directory,
        get_annotated_filepath,
    ):
        setattr(module, function.__name__, function)
    for folder in ("models/checkpoints", "models/diffusion_models", "models/relightvid", "input"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    return module


def load_pack(name: str = PACK_NAME) -> types.ModuleType:
    """Import the repository root as a package (ComfyUI loads a pack under a synthetic module name)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


QUEUED_NODE_ID = "1"
CONVERSIONS = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def queue_time_filings(pack_module, node_class, inputs: dict) -> list[tuple[str, str]]:
    """(input name, message) for each problem ComfyUI 0.3's ``validate_inputs`` would file for a node queued
    with ``inputs`` (widget values; a ``[node id, slot]`` list is a link), through POST /prompt.

    As there: the pack's on-prompt hook sees the prompt first; widget values are converted to their types in
    the prompt itself; inputs the node's ``VALIDATE_INPUTS`` does not name get ComfyUI's own min/max and combo
    checks; its result is filed under every input it names (hidden ones included), with "name - " before it.
    """
    prompt = {QUEUED_NODE_ID: {"class_type": node_class.__name__, "inputs": dict(inputs)}}
    values = prompt[QUEUED_NODE_ID]["inputs"]
    declared = node_class.INPUT_TYPES()
    specs = {**declared.get("required", {}), **declared.get("optional", {})}
    validate = getattr(node_class, "VALIDATE_INPUTS", None)
    named = list(inspect.signature(validate).parameters) if validate is not None else []
    filings = []
    for name, spec in specs.items():
        kind, options = spec[0], spec[1] if len(spec) > 1 else {}
        if name not in values or isinstance(values[name], list):
            continue
        if isinstance(kind, str) and kind in CONVERSIONS:
            try:
                values[name] = CONVERSIONS[kind](values[name])
            except (TypeError, ValueError, OverflowError) as error:
                filings.append((name, f"Failed to convert an input value to a {kind} value: {error}"))
                continue
        if name in named:
            continue
        value = values[name]
        if "min" in options and value < options["min"]:
            filings.append((name, f"Value {value} smaller than min of {options['min']}"))
        elif "max" in options and value > options["max"]:
            filings.append((name, f"Value {value} bigger than max of {options['max']}"))
        elif isinstance(kind, list) and value not in kind:
            filings.append((name, f"Value not in list: {name}: {value!r}"))

    def validate_when_queued():
        pack_module.nodes.host.remember_queued_prompt({"prompt": prompt})
        hidden = {name: QUEUED_NODE_ID for name, kind in declared.get("hidden", {}).items() if kind == "UNIQUE_ID"}
        # ComfyUI passes the named inputs the prompt has (a link as None) and the named hidden ones.
        arguments = {name: None if isinstance(values[name], list) else values[name] for name in named if name in values}
        arguments.update({name: hidden[name] for name in named if name in hidden})
        return validate(**arguments), arguments

    if validate is not None:
        # A fresh context, as each POST /prompt has its own: nothing is left behind for the next test.
        result, arguments = contextvars.copy_context().run(validate_when_queued)
        if result is not True:
            filings.extend((name, f"{name} - {result}") for name in arguments)
    return filings


class FakeVAE:
    """``encode(pixels (B, H, W, 3) in 0..1) -> (B, 4, H/8, W/8)`` unscaled latents; records every call."""

    MIX = torch.tensor([[1.0, 0.5, -0.5], [0.0, 1.0, 0.5], [0.5, -1.0, 1.0], [0.3, 0.3, 0.3]])

    def __init__(self):
        self.calls: list[tuple[int, ...]] = []

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(pixels.shape))
        pooled = F.avg_pool2d(pixels.movedim(-1, 1) * 2.0 - 1.0, 8)
        return torch.einsum("oc,bchw->bohw", self.MIX, pooled) * 5.0


class FakeCLIP:
    """Deterministic CONDITIONING per text: (1, 77, width) embeddings seeded by the text's hash."""

    def __init__(self, width: int = CONTEXT_WIDTH):
        self.width = width
        self.encoded: list[str] = []

    def tokenize(self, text: str) -> str:
        return text

    def encode_from_tokens_scheduled(self, tokens: str) -> list:
        self.encoded.append(tokens)
        seed = int.from_bytes(hashlib.sha256(tokens.encode()).digest()[:4], "little")
        generator = torch.Generator().manual_seed(seed)
        cond = torch.randn(1, TOKENS, self.width, generator=generator)
        return [[cond, {"pooled_output": cond[:, 0]}]]

    def encode(self, text: str) -> list:
        return self.encode_from_tokens_scheduled(self.tokenize(text))


class FakeModel:
    """A plain MODEL (no object patches) whose U-Net weights (LDM keys) are served as ComfyUI's
    ``get_key_patches`` serves them; ``model.model_config`` is an instance of a class named ``config_name``."""

    def __init__(self, ldm_state_dict: dict[str, torch.Tensor], config_name: str = "SD15"):
        self.state_dict = ldm_state_dict
        self.model = SimpleNamespace(model_config=type(config_name, (), {})())

    def get_model_object(self, name: str):
        return None

    def get_key_patches(self, filter_prefix=None):
        prefix = filter_prefix or ""
        return {prefix + key: [(value, lambda a, **kwargs: a)] for key, value in self.state_dict.items()}


def clip_frames(count: int = 2, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    """IMAGE frames (count, height, width, 3) in 0..1."""
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(seed))


def disc_masks(count: int, height: int, width: int) -> torch.Tensor:
    """MASK (count, height, width): a centred disc of 1s."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    disc = (((ys - height / 2) ** 2 + (xs - width / 2) ** 2) < (min(height, width) / 3) ** 2).float()
    return disc.expand(count, height, width).clone()
