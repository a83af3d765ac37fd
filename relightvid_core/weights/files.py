"""The only place that opens weight files: uniform, lazy access to safetensors, pickles, diffusers
folders and in-memory state dicts.

A :class:`TensorSource` lists keys and shapes without reading tensor data, and reads one tensor at a time,
so a loader can convert and place each tensor before reading the next. Safetensors files are re-opened
every few hundred megabytes read: a long-lived memory map would keep every page it touched resident,
adding the whole file to the process's memory. Pickles are read with ``torch.load(weights_only=True)`` only — memory-mapped
when they are zip archives — so a checkpoint that carries code is refused, never executed.
"""

from __future__ import annotations

import abc
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import MissingFileError, UnreadableFileError, WeightFormatError

SAFETENSORS_SUFFIXES = {".safetensors", ".sft"}
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}
DIFFUSERS_UNET_FILES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
# Training checkpoints wrap the weights in a dict.
CONTAINER_KEYS = ("state_dict", "module")
ZIP_MAGIC = b"PK\x03\x04"  # PyTorch's pickles since 1.6 are zip archives


class TensorSource(abc.ABC):
    """Read-only, lazy view of one state dict. ``name`` identifies it in messages."""

    name: str

    @abc.abstractmethod
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Key → shape of every tensor, without reading tensor data."""

    @abc.abstractmethod
    def read(self, key: str) -> torch.Tensor:
        """The tensor stored under ``key`` (CPU, stored dtype)."""

    @property
    def metadata(self) -> dict[str, str]:
        """Free-form string metadata (safetensors header); empty for other sources."""
        return {}

    def close(self) -> None:
        """Release file mappings; the source must not be read afterwards."""


class InMemorySource(TensorSource):
    """A state dict in memory: given by the caller (e.g. a ComfyUI MODEL's weights) or a memory-mapped pickle.
    Non-tensor entries (a checkpoint's ``global_step``) are ignored."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor], name: str = "the in-memory state dict"):
        self.name = name
        self._tensors = {key: value for key, value in state_dict.items() if isinstance(value, torch.Tensor)}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in self._tensors.items()}

    def read(self, key: str) -> torch.Tensor:
        return self._tensors[key]

    def close(self) -> None:
        self._tensors = {}


class SafetensorsSource(TensorSource):
    """A ``.safetensors`` file, re-opened after every ``REOPEN_BYTES`` read so touched pages are released."""

    REOPEN_BYTES = 64 * 2**20

    def __init__(self, path: Path):
        self.name = path.name
        self._path = path
        self._handle = None
        self._bytes_since_open = 0
        if _head(path, len(ZIP_MAGIC)) == ZIP_MAGIC:
            raise WeightFormatError(
                f"{path} is a PyTorch checkpoint (a zip archive), not a safetensors file as its name says; "
                "rename it to .pth"
            )
        try:
            with safe_open(str(path), framework="pt") as handle:
                self._shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
                self._metadata = handle.metadata() or {}
        except (SafetensorError, OSError) as error:
            raise WeightFormatError(f"{path} is truncated or not a safetensors file ({error})") from error

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._metadata)

    def read(self, key: str) -> torch.Tensor:
        if self._handle is None or self._bytes_since_open > self.REOPEN_BYTES:
            self.close()
            self._handle = safe_open(str(self._path), framework="pt")
        tensor = self._handle.get_tensor(key)
        self._bytes_since_open += tensor.numel() * tensor.element_size()
        return tensor

    def close(self) -> None:
        # Dropping the handle unmaps the file.
        self._handle = None
        self._bytes_since_open = 0


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch pickle (.ckpt/.pth/.bin), loaded with ``weights_only=True`` and memory-mapped
    when it is a zip archive, unwrapped from a training checkpoint's ``state_dict`` if needed."""
    is_zip = zipfile.is_zipfile(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        raise WeightFormatError(
            f"refused to load {path}: it holds Python objects besides tensors, and unpickling them could run "
            "code; use a .safetensors version of this file"
        ) from error
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError... for damaged archives
        raise WeightFormatError(f"{path} is truncated or not a PyTorch checkpoint ({error})") from error
    for container in CONTAINER_KEYS:
        if isinstance(loaded, Mapping) and isinstance(loaded.get(container), Mapping):
            loaded = loaded[container]
    if not isinstance(loaded, Mapping):
        raise WeightFormatError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors")
    return dict(loaded)


def _resolve_diffusers_folder(folder: Path) -> Path:
    for candidate in (folder / "unet", folder):
        for filename in DIFFUSERS_UNET_FILES:
            if (candidate / filename).is_file():
                return candidate / filename
    raise MissingFileError(
        f"folder {folder} has no unet/diffusion_pytorch_model.safetensors (or .bin); "
        "expected a diffusers SD1.5 folder or a single weight file"
    )


def _head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of a file.

    Raises:
        UnreadableFileError: the file cannot be opened or read (permissions, a folder or a device).
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as error:
        raise UnreadableFileError(f"{path} cannot be read ({error.strerror or error}); check its permissions") from error


def _is_safetensors(path: Path) -> bool:
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return True
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return False
    # Unknown suffix: safetensors starts with an 8-byte header length followed by a JSON object.
    head = _head(path, 9)
    return len(head) == 9 and head[8:9] == b"{"


def open_source(weights: str | Path | Mapping[str, torch.Tensor] | TensorSource) -> TensorSource:
    """Open a weight file, a diffusers folder (its ``unet/``), or wrap an in-memory state dict.

    Raises:
        MissingFileError: the path does not exist.
        UnreadableFileError: the file cannot be read.
        WeightFormatError: the file is damaged, not a weight file, or a pickle carrying code.
    """
    if isinstance(weights, TensorSource):
        return weights
    if isinstance(weights, Mapping):
        return InMemorySource(weights)
    path = Path(weights).expanduser()
    if not path.exists():
        raise MissingFileError(f"weight file {path} does not exist")
    if path.is_dir():
        path = _resolve_diffusers_folder(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path} is not a regular file (a device or a pipe?); give a weight file")
    _head(path, 1)
    if _is_safetensors(path):
        return SafetensorsSource(path)
    return InMemorySource(_read_pickle(path), name=path.name)
