"""The model files the loader nodes list and open: where each comes from, which files fit an input, and the
one-sentence problem of a file that does not fit. Reads ComfyUI's model folders through :mod:`..host`."""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from dataclasses import dataclass

from ...relightvid_core.errors import (
    MissingFileError,
    RelightVidError,
    WeightFormatError,
)
from ...relightvid_core.weights import open_source
from ...relightvid_core.weights.convert import MOTION_FORMATS
from ...relightvid_core.weights.detect import WeightFormat, detect_format
from ...relightvid_core.weights.files import PICKLE_SUFFIXES, TensorSource
from .. import host

logger = logging.getLogger(__name__)

FROM_MODEL = "(connected MODEL)"
BASE_FOLDERS = ("checkpoints",)
ICLIGHT_FOLDERS = (host.RELIGHTVID_FOLDER, "diffusion_models")
MOTION_FOLDERS = (host.RELIGHTVID_FOLDER, host.ANIMATEDIFF_FOLDER)
# Transformer families a user may connect by mistake, by a key only they have (detect.py knows the U-Nets).
TRANSFORMER_MARKERS = {
    "joint_blocks.": "an SD3 model",
    "double_blocks.": "a Flux model",
}
SD15_ADVICE = "RelightVid needs an SD1.5 checkpoint (Realistic Vision 5.1 upstream)"
BASE_FORMATS = frozenset({WeightFormat.SD15_UNET})
ICLIGHT_FORMATS = frozenset({WeightFormat.ICLIGHT_FBC})
REFRESH_ADVICE = "then press R in ComfyUI to refresh the lists"


@dataclass(frozen=True)
class ModelSource:
    """Where a model file the pack needs comes from (README "Model files").

    Attributes:
        name: the file's usual name, the one the templates pick.
        folder: the folder under ComfyUI's ``models/`` it goes in (the frontend's ``directory``).
        url: a download address on Hugging Face, a host the frontend's missing-models dialog accepts.
        what: the file in a few words, for messages.
    """

    name: str
    folder: str
    url: str
    what: str

    @property
    def advice(self) -> str:
        return f"download {self.name} ({self.what}) from {self.url} into models/{self.folder}, {REFRESH_ADVICE}"


SD15_SOURCE = ModelSource(
    "realisticVisionV51_v51VAE.safetensors",
    BASE_FOLDERS[0],
    "https://huggingface.co/lllyasviel/fav_models/resolve/main/fav/realisticVisionV51_v51VAE.safetensors",
    "Realistic Vision 5.1 as upstream, or any SD1.5 checkpoint",
)
ICLIGHT_SOURCE = ModelSource(
    "iclight_sd15_fbc.safetensors",
    host.RELIGHTVID_FOLDER,
    "https://huggingface.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fbc.safetensors",
    "IC-Light's fbc offsets",
)
# The official code downloads it from aleafy/RelightVid; its README also names aleafy/relightvid_models.
MOTION_SOURCE = ModelSource(
    "relvid_mm_sd15_fbc.pth",
    host.RELIGHTVID_FOLDER,
    "https://huggingface.co/aleafy/RelightVid/resolve/main/relvid_mm_sd15_fbc.pth",
    "RelightVid's temporal weights",
)
MODEL_SOURCES = (SD15_SOURCE, ICLIGHT_SOURCE, MOTION_SOURCE)


@dataclass(frozen=True)
class FileSlot:
    """A model-file input of a loader node: its name, the folders it lists, the formats that fit it, the source."""

    input: str
    folders: tuple[str, ...]
    formats: frozenset[WeightFormat]
    source: ModelSource


ICLIGHT_SLOT = FileSlot("iclight_fbc", ICLIGHT_FOLDERS, ICLIGHT_FORMATS, ICLIGHT_SOURCE)
MOTION_SLOT = FileSlot("temporal_weights", MOTION_FOLDERS, frozenset(MOTION_FORMATS), MOTION_SOURCE)


def slot_choices(slot: FileSlot) -> FileChoices:
    """The combo list of ``slot``: the files of its folders that fit it."""
    return FileChoices(fitting_files(slot.folders, slot.formats))


def slot_path(slot: FileSlot, name: str) -> str:
    """The path of the file ``name`` chosen for ``slot``, refused in one sentence when missing or of another kind."""
    return require_file(slot.folders, name, file_problem(slot, name))


class FileChoices(list):
    """A combo's list of model files that lets every queued file name through ComfyUI's own list check.

    When a prompt is queued, ComfyUI refuses a combo value missing from the list with its stock "Value not in
    list", naming no folder, unless the node's ``VALIDATE_INPUTS`` names the input — and then it files the
    method's one message under every input named. A loader with two file inputs therefore names only its hidden
    node id (``checks.NODE_ID``) and checks each file input itself (:func:`file_problem`), and its lists are of
    this class: each missing or unfitting file is reported once, in the pack's sentence. Only the membership
    test differs from a list; ``/object_info`` sends the plain list to the frontend.
    """

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str)


@functools.lru_cache(maxsize=1024)
def _file_format(path: str, _mtime_ns: int, _size: int) -> WeightFormat | None:
    """What a weight file is, from its keys and shapes only; None when that cannot be told cheaply.

    Cached by path, modification time and size, so the combo lists (built on every page load) read each
    file's header once. A safetensors header and a zip pickle's key list (memory-mapped) are cheap; a
    legacy (non-zip) pickle would have to be read whole, so it is not classified.
    """
    if os.path.splitext(path)[1].lower() in PICKLE_SUFFIXES and not zipfile.is_zipfile(path):
        return None
    try:
        source = open_source(path)
    except RelightVidError as error:
        logger.debug("not listing %s: %s", path, error)
        return WeightFormat.UNKNOWN
    try:
        return detect_format(source.shapes()).format
    finally:
        source.close()


def file_format(path: str) -> WeightFormat | None:
    """What the weight file at ``path`` is (cached while the file is unchanged); None for a legacy pickle."""
    stat = os.stat(path)
    return _file_format(path, stat.st_mtime_ns, stat.st_size)


def fitting_files(folders: tuple[str, ...], formats: frozenset[WeightFormat]) -> list[str]:
    """The files of ``folders`` whose format is one of ``formats`` (plus legacy pickles, which are only told
    apart when loaded and then refused in one sentence if wrong)."""
    names = []
    for name in host.model_file_list(folders):
        found = file_format(host.find_model_file(folders, name))
        if found is None or found in formats:
            names.append(name)
    return names


def file_problem(slot: FileSlot, name: str | None) -> str | None:
    """One sentence when the file ``name`` chosen for ``slot`` is in none of its folders, or is a weight file of
    another kind (told from its header); it names the input, the folders, the file to get and where from.
    None when the file fits, when its kind is only known once loaded (a legacy pickle), or for a link (None)."""
    if name is None:
        return None
    path = host.find_model_file(slot.folders, name)
    if path is None:
        return f"{slot.input} {name!r} is not in {host.folder_locations(slot.folders)}: {slot.source.advice}."
    found = file_format(path)
    if found is None or found in slot.formats:
        return None
    return f"{slot.input} {name!r} is {found.value}, but {slot.input} needs {slot.source.what}: {slot.source.advice}."


def require_file(folders: tuple[str, ...], name: str, problem: str | None) -> str:
    """The path of the model file ``name`` in ``folders``, whose queue-time check found ``problem``.

    Raises:
        MissingFileError: the file is in none of the folders (``problem`` says which and where to get it).
        WeightFormatError: the file is there but ``problem`` says it does not fit.
    """
    path = host.find_model_file(folders, name)
    if path is None:
        raise MissingFileError(problem or f"{name!r} is not in {host.folder_locations(folders)}.")
    if problem is not None:
        raise WeightFormatError(problem)
    return path


def base_family(shapes) -> str | None:
    """What a base U-Net's weights are when they are not SD1.5 ('an SDXL model', 'a Flux model', ...), read
    from keys and shapes alone; None for an SD1.5 U-Net (whose widths :func:`config_for_weights` checks)."""
    for marker, family in TRANSFORMER_MARKERS.items():
        if any(marker in key for key in shapes):
            return family
    detected = detect_format(shapes).format
    return None if detected is WeightFormat.SD15_UNET else detected.value


def base_problem(source: TensorSource, what: str) -> str | None:
    """One sentence when ``source`` (named ``what`` in it) is not an SD1.5 U-Net, else None."""
    family = base_family(source.shapes())
    return None if family is None else f"{what} is {family}; {SD15_ADVICE}."


def base_file_problem(name: str | None) -> str | None:
    """Queue-time check of a base checkpoint file: present, and an SD1.5 U-Net if its header says so.

    Only a safetensors header can be read without loading the file; pickles are checked when the node runs.
    None for :data:`FROM_MODEL` and for a link (None).
    """
    if name is None or name == FROM_MODEL:
        return None
    path = host.find_model_file(BASE_FOLDERS, name)
    if path is None:
        return (
            f"base_checkpoint {name!r} is not in {host.folder_locations(BASE_FOLDERS)}: put an SD1.5 checkpoint "
            f"there ({SD15_SOURCE.name}: {SD15_SOURCE.url}) or choose {FROM_MODEL}, {REFRESH_ADVICE}."
        )
    if not path.lower().endswith((".safetensors", ".sft")):
        return None
    try:
        source = open_source(path)
    except RelightVidError as error:
        return host.shown_text(f"base_checkpoint {name!r} cannot be read: {str(error).rstrip('.')}.")
    try:
        return base_problem(source, f"base_checkpoint {name!r}")
    finally:
        source.close()
