"""Model files: find them in a models folder (or take them one by one), download what is missing, open them.

The models folder has the official layout (docs/official_code.md §c, ``configs/inference_fbc.yaml``)::

    models/
      realistic-vision-v51/            SD1.5 base, diffusers layout: unet/ vae/ text_encoder/ tokenizer/
      iclight_sd15_fbc.safetensors     IC-Light fbc offsets
      relvid_mm_sd15_fbc.pth           RelightVid temporal modules
      relightvid_unet.safetensors      optional: the merged U-Net `relightvid convert` writes; when present
                                       it replaces the SD U-Net, the IC-Light file and the temporal file

Files missing from the models folder are downloaded into it with ``huggingface_hub.hf_hub_download``
(never at import, only when :func:`locate_model_files` is called with ``download=True``). Files the user
names one by one are never downloaded. When something is still missing — offline, or downloads off — one
:class:`~relightvid_core.MissingFileError` lists every missing file, the folder searched and where each
file comes from.
"""

from __future__ import annotations

import logging
import shutil
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from .conditioning import load_text_encoder
from .errors import InputError, MissingFileError, WeightFormatError
from .outputs import make_folders, remove_folders
from .pipeline import Components
from .weights import load_relightvid_unet, save_merged_unet
from .weights.detect import WeightFormat, detect_format
from .weights.files import open_source
from .weights.load import METADATA_CONFIG
from .weights.validate import require_format

logger = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("models")  # the official layout, relative to the current folder
SD_FOLDER = "realistic-vision-v51"
MERGED_NAME = "relightvid_unet.safetensors"
ICLIGHT_NAME = "iclight_sd15_fbc.safetensors"
MOTION_NAME = "relvid_mm_sd15_fbc.pth"
SD_REPOS = ("stablediffusionapi/realistic-vision-v51",)
ICLIGHT_REPOS = ("lllyasviel/ic-light",)
# The official README points to relightvid_models; its loader downloads from RelightVid.
MOTION_REPOS = ("aleafy/relightvid_models", "aleafy/RelightVid")
HUB_URL = "https://huggingface.co"
HUB_PROBE_SECONDS = 5.0  # one quick connection attempt instead of the Hub client's retries (~30 s offline)
HUB_CACHE = (".cache", "huggingface")  # the Hub client's locks and metadata inside a download folder


@dataclass(frozen=True)
class Needed:
    """One file a run needs: its acceptable names relative to the folder searched (e.g. ``.bin`` beside
    ``.safetensors``) and the Hugging Face repositories holding it under its first name, the one downloaded
    (local layouts mirror the repositories', so the two paths are the same)."""

    names: tuple[str, ...]
    repos: tuple[str, ...] = ()

    def found(self, folder: Path) -> Path | None:
        return next((folder / name for name in self.names if (folder / name).is_file()), None)

    @property
    def source(self) -> str:
        if not self.repos:
            return "you gave this path yourself"
        return " or ".join(f"{HUB_URL}/{repo} ({self.names[0]})" for repo in self.repos)


class _HubUnreachable(Exception):
    """The Hugging Face Hub cannot be reached (offline mode or no network): stop trying further files."""


# Parts of a diffusers SD1.5 folder that are loaded, as (acceptable names, needed only for the U-Net); the
# first name of each is the one downloaded.
SD_PARTS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin"), True),
    (("vae/config.json",), False),
    (("vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin"), False),
    (("text_encoder/config.json",), False),
    (("text_encoder/model.safetensors", "text_encoder/pytorch_model.bin"), False),
    (("tokenizer/vocab.json",), False),
    (("tokenizer/merges.txt",), False),
)


@dataclass(frozen=True)
class ModelFiles:
    """Where a run's weights are.

    Attributes:
        sd: a diffusers SD1.5 folder; its ``vae/``, ``text_encoder/`` and ``tokenizer/`` are always used,
            its ``unet/`` only without ``merged``.
        iclight: IC-Light fbc offsets (None with ``merged``).
        motion: RelightVid temporal weights (None with ``merged``).
        merged: a merged U-Net from :func:`convert_to_merged`, or None.
    """

    sd: Path
    iclight: Path | None = None
    motion: Path | None = None
    merged: Path | None = None


def _sd_needs(folder: Path, with_unet: bool, downloadable: bool) -> list[tuple[Path, Needed]]:
    repos = SD_REPOS if downloadable else ()
    return [(folder, Needed(names, repos)) for names, for_unet in SD_PARTS if with_unet or not for_unet]


def _file_need(path: Path, repos: tuple[str, ...]) -> tuple[Path, Needed]:
    return path.parent, Needed((path.name,), repos)


def _check_hub_reachable() -> None:
    """One short connection to the Hub's host, so being offline costs seconds, not the client's retries.

    Raises:
        _HubUnreachable: offline mode is on, or the host cannot be reached.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise _HubUnreachable("HF_HUB_OFFLINE is set")
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_SECONDS).close()
    except OSError as error:
        raise _HubUnreachable(f"{endpoint.hostname}: {error}") from error


def _download(folder: Path, need: Needed) -> bool:
    """Try each repository in turn; True once the file is in ``folder``, False if none has it.

    Raises:
        _HubUnreachable: the Hub cannot be reached at all.
    """
    # Imported here: huggingface_hub is only needed when something is actually downloaded.
    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    for repo in need.repos:
        try:
            huggingface_hub.hf_hub_download(repo, need.names[0], local_dir=folder)
        except LocalEntryNotFoundError as error:  # what the Hub client raises when it cannot connect
            raise _HubUnreachable(str(error)) from error
        except (EntryNotFoundError, OSError) as error:  # not in this repository, gated, HTTP error: try the next
            logger.info("could not download %s from %s: %s", need.names[0], repo, error)
            continue
        logger.info("downloaded %s from %s into %s", need.names[0], repo, folder)
        return need.found(folder) is not None
    return False


def _download_missing(missing: list[tuple[Path, Needed]]) -> list[tuple[Path, Needed]]:
    """Download what can be downloaded; return what is still missing. Checks once that the Hub can be
    reached and stops at the first sign of being offline, so being offline costs seconds.

    The Hub client's lock and metadata folder (``.cache/huggingface``) and the folders made for the files
    are removed again when a file could not be downloaded (files downloaded whole are kept), and on
    interruption."""
    downloadable = [(folder, need) for folder, need in missing if need.repos]
    if not downloadable:
        return missing
    try:
        _check_hub_reachable()
    except _HubUnreachable as error:
        logger.info("the Hugging Face Hub cannot be reached (%s); not downloading", error)
        return missing
    still_missing = []
    created: list[Path] = []
    # The cache folders (outermost first) that do not exist yet: the Hub client makes them, we remove them.
    caches = {
        folder: [path for path in (folder / HUB_CACHE[0], folder.joinpath(*HUB_CACHE)) if not path.exists()]
        for folder, _ in downloadable
    }
    try:
        for index, (folder, need) in enumerate(missing):
            if need.repos:
                created += make_folders(folder)
            try:
                if need.repos and _download(folder, need):
                    continue
            except _HubUnreachable as error:
                logger.info("the Hugging Face Hub cannot be reached (%s); not downloading", error)
                still_missing += missing[index:]
                break
            still_missing.append((folder, need))
    except BaseException:
        still_missing = missing
        raise
    finally:
        if still_missing:
            for fresh in caches.values():
                if fresh:
                    shutil.rmtree(fresh[-1], ignore_errors=True)
                    remove_folders(fresh[:-1])
            remove_folders(created)
    return still_missing


def _missing_message(missing: list[tuple[Path, Needed]], models_dir: Path, download: bool) -> str:
    lines = [f"{len(missing)} model file(s) are missing (models folder searched: {models_dir.resolve()}):"]
    for folder, need in missing:
        lines.append(f"  - {folder / need.names[0]}  <- {need.source}")
    if download:
        lines.append(
            "Downloading them failed (offline?); download them by hand into those places, or pass --models DIR."
        )
    else:
        lines.append("Downloads are off; put the files in those places, or pass --models DIR (and allow downloads).")
    return "\n".join(lines)


def locate_model_files(
    models_dir: str | Path | None = None,
    *,
    sd: str | Path | None = None,
    iclight: str | Path | None = None,
    motion: str | Path | None = None,
    merged: str | Path | None = None,
    download: bool = True,
    use_merged: bool = True,
) -> ModelFiles:
    """Find every file a run needs, downloading what is missing from the models folder.

    Args:
        models_dir: the models folder (module docstring); default ``./models``.
        sd, iclight, motion, merged: individual paths, each overriding its place in the models folder.
            A merged U-Net (given, or ``relightvid_unet.safetensors`` in the folder when neither
            ``iclight`` nor ``motion`` is given) replaces the SD U-Net, IC-Light and temporal files.
        download: fetch files missing from the models folder with ``huggingface_hub``; paths given one by
            one are never downloaded.
        use_merged: pick up the models folder's merged U-Net; False insists on the three official files
            (what ``convert`` reads).

    Returns:
        :class:`ModelFiles`.

    Raises:
        MissingFileError: files are missing and could not be downloaded; the message lists each file, the
            folder searched and where to get it.
    """
    models = Path(models_dir if models_dir is not None else DEFAULT_MODELS_DIR).expanduser()
    if use_merged and merged is None and iclight is None and motion is None and (models / MERGED_NAME).is_file():
        merged = models / MERGED_NAME
    merged_path = None if merged is None else Path(merged).expanduser()
    sd_dir = Path(sd).expanduser() if sd is not None else models / SD_FOLDER
    if sd is not None and not sd_dir.is_dir():
        raise MissingFileError(
            f"{sd_dir} is not a folder; give a diffusers SD1.5 folder (vae/, text_encoder/, tokenizer/)."
        )
    unet_needs: dict[str, tuple[Path, Needed]] = {}
    if merged_path is not None:
        unet_needs["merged"] = _file_need(merged_path, ())
    else:
        unet_needs["iclight"] = (
            _file_need(Path(iclight).expanduser(), ()) if iclight else _file_need(models / ICLIGHT_NAME, ICLIGHT_REPOS)
        )
        unet_needs["motion"] = (
            _file_need(Path(motion).expanduser(), ()) if motion else _file_need(models / MOTION_NAME, MOTION_REPOS)
        )
    needs = _sd_needs(sd_dir, with_unet=merged_path is None, downloadable=sd is None) + list(unet_needs.values())

    missing = [(folder, need) for folder, need in needs if need.found(folder) is None]
    if download:
        missing = _download_missing(missing)
    if missing:
        raise MissingFileError(_missing_message(missing, models, download))
    return ModelFiles(sd=sd_dir, **{slot: need.found(folder) for slot, (folder, need) in unet_needs.items()})


@dataclass(frozen=True)
class ModelOptions:
    """Where a run's weights are, as the command line's model options say it (``--models``, ``--sd``,
    ``--iclight``, ``--motion``, ``--merged``, ``--motion-variant``, ``--no-download``); None: not given.
    """

    models: Path | None = None
    sd: Path | None = None
    iclight: Path | None = None
    motion: Path | None = None
    merged: Path | None = None
    motion_variant: str | None = None
    download: bool = True

    def absolute(self) -> ModelOptions:
        """The same options with every path made absolute (the models folder's default too), so another
        process with another working folder — a batch worker on another machine — finds the same files."""
        paths = {
            name: None if value is None else Path(value).expanduser().absolute()
            for name, value in (("sd", self.sd), ("iclight", self.iclight), ("motion", self.motion), ("merged", self.merged))
        }
        models = Path(self.models if self.models is not None else DEFAULT_MODELS_DIR).expanduser().absolute()
        return replace(self, models=models, **paths)

    def locate(self) -> ModelFiles:
        """:func:`locate_model_files` with these options."""
        return locate_model_files(
            self.models,
            sd=self.sd,
            iclight=self.iclight,
            motion=self.motion,
            merged=self.merged,
            download=self.download,
        )


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, else Apple MPS, else the CPU; any other name is checked with torch.

    Raises:
        InputError: an unknown device name, or a device this machine does not have.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise InputError(f"device {name!r} is not a torch device name (cpu, cuda, cuda:1, mps, ...).") from error
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name!r} is not one this tool runs on; use auto, cpu, cuda, cuda:N or mps.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for, but torch sees no CUDA GPU here; use --device cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s) here.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r} was asked for, but torch sees no Apple MPS device here; use --device cpu.")
    return device


DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 on GPUs (as the official run), fp32 on the CPU (where fp16 maths is slow or missing);
    otherwise ``fp16``, ``bf16`` or ``fp32``.

    Raises:
        InputError: an unknown name.
    """
    if name == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    try:
        return DTYPES[name]
    except KeyError:
        raise InputError(f"dtype must be auto, {', '.join(DTYPES)}; got {name!r}.") from None


VAE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _load_vae(folder: Path, dtype: torch.dtype, device: torch.device | str) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    weights = next((folder / name for name in VAE_WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise MissingFileError(f"{folder} holds no {' or '.join(VAE_WEIGHTS)}; expected a diffusers VAE folder.")
    # Opened once with our reader first: a damaged, unreadable or code-carrying file gets its own sentence.
    open_source(weights).close()
    try:
        # low_cpu_mem_usage=False: the default asks for `accelerate` and prints a warning block without it.
        vae = AutoencoderKL.from_pretrained(
            str(folder), local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        raise WeightFormatError(f"{folder} is not a diffusers AutoencoderKL folder that loads ({error}).") from error
    return vae.to(device).eval().requires_grad_(False)


def _check_merged(path: Path, config: dict[str, Any] | None) -> None:
    """Refuse, naming what it is, a file given as the merged U-Net that is not one, or lacks its config."""
    source = open_source(path)
    try:
        require_format(detect_format(source.shapes()), {WeightFormat.RELIGHTVID_MERGED}, source.name, "merged")
        if config is None and METADATA_CONFIG not in source.metadata:
            raise WeightFormatError(
                f"{source.name} is a merged U-Net without the config `relightvid convert` stores in the file "
                "(written by another tool?); merge it again with `relightvid convert` (from Python: pass config=)"
            )
    finally:
        source.close()


def load_unet(
    files: ModelFiles,
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    config: dict[str, Any] | None = None,
    motion_variant: str | None = None,
) -> torch.nn.Module:
    """The RelightVid U-Net from a merged file or from the three official files (``config``: their shape,
    default ``FULL_FBC``; a merged file carries its own; ``motion_variant``: see
    :func:`~relightvid_core.weights.load_motion_weights`)."""
    if files.merged is not None:
        _check_merged(files.merged, config)
        return load_relightvid_unet(files.merged, dtype=dtype, device=device, config=config)
    return load_relightvid_unet(
        files.sd, files.iclight, files.motion, dtype=dtype, device=device, config=config, motion_variant=motion_variant
    )


def load_components(
    files: ModelFiles,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: dict[str, Any] | None = None,
    motion_variant: str | None = None,
) -> Components:
    """Open U-Net, VAE and text encoder for :func:`~relightvid_core.pipeline.relight_clip`.

    ``config``: the U-Net shape of the three official files (default ``FULL_FBC``; ``TINY`` for the files
    ``relightvid convert --tiny-demo`` writes); ``motion_variant``: ``relightvid`` or ``animatediff_v3`` for a
    temporal file whose keys cannot tell (:func:`~relightvid_core.weights.load_motion_weights`).

    Raises:
        WeightFormatError: a file is of the wrong kind or damaged, or the text encoder's width does not
            match the U-Net's context width.
        UnreadableFileError: a file cannot be read.
        MissingFileError: a file vanished since it was located.
    """
    unet = load_unet(files, dtype=dtype, device=device, config=config, motion_variant=motion_variant)
    vae = _load_vae(files.sd / "vae", dtype, device)
    text = load_text_encoder(files.sd, dtype=dtype, device=device)
    width, context = text.model.config.hidden_size, unet.config.cross_attention_dim
    if width != context:
        raise WeightFormatError(
            f"the text encoder in {files.sd} gives {width}-wide embeddings but the U-Net expects {context}; "
            "use the SD1.5 folder the U-Net was made for."
        )
    return Components(unet=unet, vae=vae, text=text)


@dataclass(frozen=True)
class ConvertReport:
    """What :func:`convert_to_merged` did: the file written, its tensor count, size and dtype."""

    output: Path
    tensors: int
    bytes: int
    dtype: torch.dtype


def convert_to_merged(
    files: ModelFiles,
    output: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    config: dict[str, Any] | None = None,
) -> ConvertReport:
    """Merge the official files (SD1.5 U-Net + IC-Light fbc + temporal modules) into one safetensors file.

    Args:
        files: from :func:`locate_model_files`; with ``merged`` set, that file is re-saved in ``dtype``.
        output: the file to write (its folder must exist); written atomically.
        dtype: the stored precision.
        config: the U-Net shape (default ``FULL_FBC``); stored in the file.

    Raises:
        InputError: the output folder does not exist.
        WeightFormatError, MissingFileError: see :func:`~relightvid_core.load_relightvid_unet`.
    """
    output = Path(output).expanduser()
    if not output.parent.is_dir():
        raise InputError(f"the folder of the output file {output} does not exist; create it first.")
    unet = load_unet(files, dtype=dtype, device="cpu", config=config)
    save_merged_unet(unet, output)
    state = unet.state_dict()
    size = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    return ConvertReport(output, len(state), size, dtype)


def describe(files: ModelFiles) -> list[str]:
    """One line per file in use, for the command line's report."""
    rows = [("SD1.5 folder (VAE, text encoder)", files.sd)]
    if files.merged is not None:
        rows.append(("merged U-Net", files.merged))
    else:
        rows += [
            ("SD1.5 U-Net", files.sd / "unet"),
            ("IC-Light fbc", files.iclight),
            ("temporal modules", files.motion),
        ]
    return [f"{label}: {path}" for label, path in rows]
