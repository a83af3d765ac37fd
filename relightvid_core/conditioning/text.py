"""Prompt embeddings through transformers' CLIP, as the official ``FrozenCLIPEmbedder`` computes them.

Official (docs/official_code.md §c): SD1.5's tokenizer and CLIP ViT-L/14 text model, 77 tokens padded to max
length, output ``last_hidden_state`` (after the final LayerNorm: no clip-skip), uncond = the empty prompt.
Here prompts longer than 75 tokens are not truncated: they are split into chunks of 75, each framed
as BOS + chunk + EOS/padding (77 tokens), encoded separately and concatenated on the token axis.

This is the command-line path; ComfyUI nodes receive CONDITIONING from the host's own CLIP instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # transformers is imported where a text encoder is loaded: it costs seconds
    from transformers import CLIPTextModel, CLIPTokenizer

from ..errors import InputError, MissingFileError, UnreadableFileError, WeightFormatError
from ..weights.files import open_source
from ..weights.validate import check_shapes

logger = logging.getLogger(__name__)

# CLIP ViT-L/14 text model, as in openai/clip-vit-large-patch14's config.json (text_config), which is
# SD1.5's text encoder; kept here so a single-file checkpoint loads without any download.
CLIP_L_TEXT_CONFIG: dict = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "projection_dim": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "initializer_factor": 1.0,
    "bos_token_id": 0,
    "pad_token_id": 1,
    "eos_token_id": 2,
}
MAX_LENGTH = 77  # CLIP's context: BOS + 75 tokens + EOS
CHUNK_TOKENS = MAX_LENGTH - 2
UNCOND_PROMPT = ""  # the official uncond (docs/official_code.md §c)
# Checkpoint keys that are buffers, not weights, in transformers' CLIPTextModel.
IGNORED_SUFFIXES = ("position_ids",)
TEXT_MODEL_PREFIX = "text_model."
TOKENIZER_FILES = ("vocab.json", "merges.txt")
TEXT_ENCODER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_HELP = (
    "give tokenizer_dir: the tokenizer/ folder of a diffusers SD1.5 model "
    "(e.g. stable-diffusion-v1-5/stable-diffusion-v1-5 on Hugging Face) or ComfyUI's comfy/sd1_tokenizer folder, "
    "holding vocab.json and merges.txt"
)


class TextEncoder:
    """A CLIP tokenizer and text model; :meth:`encode` turns a prompt into cross-attention context."""

    def __init__(self, tokenizer: CLIPTokenizer, model: CLIPTextModel):
        self.tokenizer = tokenizer
        self.model = model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def token_chunks(self, prompt: str) -> torch.Tensor:
        """Token ids, (k, 77) int64: BOS + up to 75 tokens + EOS, padded with the tokenizer's pad token.

        A prompt of at most 75 tokens gives exactly what ``tokenizer(prompt, padding="max_length",
        max_length=77, truncation=True)`` gives; the empty prompt gives one chunk.
        """
        ids = self.tokenizer(prompt, add_special_tokens=False, truncation=False)["input_ids"]
        bos, eos, pad = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        chunks = [ids[start : start + CHUNK_TOKENS] for start in range(0, len(ids), CHUNK_TOKENS)] or [[]]
        rows = [[bos, *chunk, eos] + [pad] * (CHUNK_TOKENS - len(chunk)) for chunk in chunks]
        if len(rows) > 1:
            logger.info("prompt of %d tokens split into %d chunks of 77 (upstream truncates)", len(ids), len(rows))
        return torch.tensor(rows, dtype=torch.long)

    @torch.no_grad()
    def encode(self, prompt: str) -> torch.Tensor:
        """Prompt → ``last_hidden_state`` of each 77-token chunk, concatenated.

        Returns:
            (1, 77·k, D) in the model's dtype and device (D = 768 for SD1.5); k = 1 up to 75 tokens.
        """
        if not isinstance(prompt, str):
            raise InputError(f"prompt must be a string, got {type(prompt).__name__}.")
        ids = self.token_chunks(prompt).to(self.device)
        # No attention mask, as upstream: padding positions are encoded like any token (causal mask only).
        hidden = self.model(input_ids=ids).last_hidden_state
        return hidden.reshape(1, -1, hidden.shape[-1])

    def encode_uncond(self) -> torch.Tensor:
        """The official unconditional context: the empty prompt, (1, 77, D)."""
        return self.encode(UNCOND_PROMPT)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WeightFormatError(f"{path} is not a text file; expected {what}") from None
    except OSError as error:
        raise UnreadableFileError(f"{path} cannot be read ({error.strerror or error}); check its permissions") from error


def _read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``, or one sentence saying why the file is not ``what``."""
    try:
        data = json.loads(_read_text(path, what))
    except json.JSONDecodeError as error:
        raise WeightFormatError(f"{path} is not valid JSON ({error}); expected {what}") from None
    if not isinstance(data, dict):
        raise WeightFormatError(f"{path} holds a JSON {type(data).__name__}, not an object; expected {what}")
    return data


def _load_tokenizer(folder: Path) -> CLIPTokenizer:
    missing = [name for name in TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"tokenizer folder {folder} lacks {', '.join(missing)}; {TOKENIZER_HELP}.")
    # Read with our own checks first, so a damaged file gets a sentence instead of a tokenizer traceback.
    _read_json(folder / "vocab.json", "the CLIP tokenizer's vocabulary (token -> id)")
    _read_text(folder / "merges.txt", "the CLIP tokenizer's BPE merges (text)")
    from transformers import CLIPTokenizer

    try:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as error:
        raise WeightFormatError(f"tokenizer folder {folder} does not load as a CLIP tokenizer ({error})") from error


def _with_prefix(key: str, prefix: str) -> str:
    """Checkpoints say ``text_model.embeddings…``; transformers 5's CLIPTextModel has no ``text_model`` level."""
    return prefix + key.removeprefix(TEXT_MODEL_PREFIX)


def _rebuild_meta_buffers(model: CLIPTextModel) -> None:
    """Non-persistent buffers are not in state dicts, so after a meta-device build they must be recreated."""
    for name, buffer in list(model.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, leaf = name.rpartition(".")
        if leaf != "position_ids":
            raise WeightFormatError(f"CLIPTextModel buffer {name} is not in the checkpoint and cannot be rebuilt")
        positions = torch.arange(buffer.shape[-1]).expand(buffer.shape).clone()
        model.get_submodule(owner_name).register_buffer(leaf, positions, persistent=False)


def _model_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: Mapping, source_name: str
) -> CLIPTextModel:
    """CLIPTextModel from CLIP weights keyed ``text_model.*`` (or without that level), validated before loading."""
    from transformers import CLIPTextConfig, CLIPTextModel

    try:
        text_config = CLIPTextConfig.from_dict(dict(config))
    except (TypeError, ValueError, KeyError) as error:
        raise WeightFormatError(f"the config of {source_name} is not a CLIP text model config ({error})") from error
    # Build on the meta device: a random initialisation of 123 M parameters would be thrown away.
    with torch.device("meta"):
        model = CLIPTextModel(text_config)
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    prefix = TEXT_MODEL_PREFIX if any(key.startswith(TEXT_MODEL_PREFIX) for key in expected) else ""
    weights = {
        _with_prefix(key, prefix): value for key, value in state_dict.items() if not key.endswith(IGNORED_SUFFIXES)
    }
    shapes = {key: tuple(value.shape) for key, value in weights.items()}
    check_shapes(shapes, expected, source_name, "CLIP text encoder")
    model.load_state_dict(weights, strict=True, assign=True)
    _rebuild_meta_buffers(model)
    return model


def _model_from_folder(folder: Path) -> CLIPTextModel:
    """CLIPTextModel from a transformers folder (``config.json`` + ``model.safetensors``/``pytorch_model.bin``),
    read through this package's own weight reader (no download, no progress bar, one sentence per damage)."""
    config = _read_json(folder / "config.json", "the text encoder's config (JSON)")
    weights = next((folder / name for name in TEXT_ENCODER_WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise MissingFileError(f"{folder} holds no {' or '.join(TEXT_ENCODER_WEIGHTS)}; expected a text_encoder folder.")
    source = open_source(weights)
    try:
        state_dict = {key: source.read(key) for key in source.shapes()}
    finally:
        source.close()
    return _model_from_state_dict(state_dict, config, f"{folder.name}/{source.name}")


def _text_weights_from_checkpoint(checkpoint: str | Path | Mapping[str, torch.Tensor]) -> tuple[dict, str]:
    """The text encoder of a single-file SD1.5 checkpoint, renamed to transformers' keys."""
    from diffusers.loaders.single_file_utils import LDM_CLIP_PREFIX_TO_REMOVE, convert_ldm_clip_checkpoint

    source = open_source(checkpoint)
    try:
        keys = [key for key in source.shapes() if key.startswith(tuple(LDM_CLIP_PREFIX_TO_REMOVE))]
        if not keys:
            raise WeightFormatError(
                f"{source.name} holds no text encoder (no keys starting with {LDM_CLIP_PREFIX_TO_REMOVE[0]}); "
                "expected a single-file SD1.5 checkpoint or a diffusers SD1.5 folder"
            )
        return convert_ldm_clip_checkpoint({key: source.read(key) for key in keys}), source.name
    finally:
        source.close()


def load_text_encoder(
    path_or_dir: str | Path | Mapping[str, torch.Tensor],
    tokenizer_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: Mapping | None = None,
) -> TextEncoder:
    """Load SD1.5's CLIP text encoder and tokenizer, without network access.

    Args:
        path_or_dir: a diffusers SD1.5 folder (with ``text_encoder/`` and ``tokenizer/``), a ``text_encoder/``
            folder itself, a single-file SD1.5 checkpoint (``.safetensors``/``.ckpt`` with keys
            ``cond_stage_model.transformer.text_model.*``), or such a state dict in memory.
        tokenizer_dir: folder with ``vocab.json`` and ``merges.txt`` (a diffusers ``tokenizer/`` folder or
            ComfyUI's ``comfy/sd1_tokenizer``); defaults to ``<path_or_dir>/tokenizer`` for diffusers folders
            and is required otherwise.
        dtype, device: where the model runs (upstream: fp16 on CUDA).
        config: ``CLIPTextConfig`` arguments for single-file weights (default ``CLIP_L_TEXT_CONFIG``).

    Returns:
        A :class:`TextEncoder`.

    Raises:
        InputError: no usable tokenizer folder (the message says where to get one), or a missing path.
        WeightFormatError: the weights are not a CLIP text encoder of the configured size.
    """
    if isinstance(path_or_dir, Mapping):
        model_dir = None
    else:
        path_or_dir = Path(path_or_dir).expanduser()
        if not path_or_dir.exists():
            raise InputError(f"text encoder path {path_or_dir} does not exist.")
        model_dir = path_or_dir if path_or_dir.is_dir() else None
    if tokenizer_dir is None and model_dir is not None and (model_dir / "tokenizer").is_dir():
        tokenizer_dir = model_dir / "tokenizer"
    if tokenizer_dir is None:
        raise InputError(f"no tokenizer was given for the text encoder; {TOKENIZER_HELP}.")
    tokenizer = _load_tokenizer(Path(tokenizer_dir).expanduser())

    if model_dir is not None:
        folder = model_dir / "text_encoder" if (model_dir / "text_encoder").is_dir() else model_dir
        if not (folder / "config.json").is_file():
            raise InputError(f"{model_dir} has no text_encoder/config.json; expected a diffusers SD1.5 folder.")
        model = _model_from_folder(folder)
    else:
        weights, name = _text_weights_from_checkpoint(path_or_dir)
        model = _model_from_state_dict(weights, dict(config or CLIP_L_TEXT_CONFIG), name)
    return TextEncoder(tokenizer, model.to(device=device, dtype=dtype))
