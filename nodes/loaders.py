"""Loader nodes: the fbc U-Net's spatial weights, then the temporal weights that complete the RelightVid model."""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from dataclasses import dataclass

import torch

from ..relightvid_core.errors import InputError, MissingFileError, RelightVidError, WeightFormatError
from ..relightvid_core.model_files import DTYPES
from ..relightvid_core.models.configs import CONFIGS
from ..relightvid_core.weights import build_unet, load_motion_weights, load_spatial_weights, open_source
from ..relightvid_core.weights.convert import MOTION_FORMATS
from ..relightvid_core.weights.detect import CONV_IN_KEYS, WeightFormat, detect_format
from ..relightvid_core.weights.files import PICKLE_SUFFIXES, TensorSource
from . import checks, host
from .payloads import MODEL_TYPE, UNET_TYPE, SpatialWeights

logger = logging.getLogger(__name__)

CATEGORY = "RelightVid/loaders"
FROM_MODEL = "(connected MODEL)"
BASE_FOLDERS = ("checkpoints",)
ICLIGHT_FOLDERS = (host.RELIGHTVID_FOLDER, "diffusion_models")
MOTION_FOLDERS = (host.RELIGHTVID_FOLDER, host.ANIMATEDIFF_FOLDER)
DTYPE_CHOICES = ("auto", *DTYPES)
# Transformer families a user may connect by mistake, by a key only they have (detect.py knows the U-Nets).
TRANSFORMER_MARKERS = {"joint_blocks.": "an SD3 model", "double_blocks.": "a Flux model"}
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


def config_for_weights(source: TensorSource, what: str | None = None) -> dict:
    """The named U-Net config (``FULL_FBC`` for real SD1.5 files, ``TINY`` for test files) whose widths match
    the base weights' conv_in and text context; the spatial loader then checks every shape against it.

    Raises:
        WeightFormatError: not an SD1.5 U-Net (naming what it is, e.g. SDXL), or no named config has its widths.
    """
    problem = base_problem(source, what or source.name)
    if problem is not None:
        raise WeightFormatError(problem)
    shapes = source.shapes()
    detection = detect_format(shapes)
    conv_in = shapes.get(detection.prefix + CONV_IN_KEYS[detection.naming])
    context = next(
        (s[1] for k, s in shapes.items() if k.endswith("attn2.to_k.weight") and ".motion_modules." not in k), None
    )
    for config in CONFIGS.values():
        if (
            conv_in is not None
            and conv_in[0] == config["block_out_channels"][0]
            and context == config["cross_attention_dim"]
        ):
            return config
    raise WeightFormatError(
        f"{source.name} is not an SD1.5 U-Net (conv_in {conv_in}, text context {context}); "
        "expected an SD1.5 checkpoint (320 channels, 768-d text context)."
    )


class RelightVidUNetLoader:
    """SD1.5 base + IC-Light fbc offsets → the inflated U-Net's spatial weights."""

    DESCRIPTION = (
        "Builds RelightVid's spatial U-Net: an SD1.5 base (a checkpoint file, or the MODEL of a Load Checkpoint "
        "node, reused without copying its file again and never changed) plus IC-Light's fbc offsets "
        "(iclight_sd15_fbc.safetensors in models/relightvid or models/diffusion_models). Connect the result to "
        "Load RelightVid Temporal Weights."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (UNET_TYPE,)
    RETURN_NAMES = ("relightvid_unet",)
    OUTPUT_TOOLTIPS = ("The spatial weights of RelightVid's 12-channel U-Net (SD1.5 + IC-Light fbc).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "base_checkpoint": (
                    FileChoices([FROM_MODEL, *fitting_files(BASE_FOLDERS, BASE_FORMATS)]),
                    {
                        "tooltip": "SD1.5 checkpoint from models/checkpoints (Realistic Vision 5.1 upstream). "
                        f"Choose {FROM_MODEL} to take the U-Net of the MODEL input instead."
                    },
                ),
                "iclight_fbc": (
                    FileChoices(fitting_files(ICLIGHT_FOLDERS, ICLIGHT_FORMATS)),
                    {
                        "tooltip": "IC-Light fbc offsets (iclight_sd15_fbc.safetensors, 12-channel) from "
                        "models/relightvid "
                        "or models/diffusion_models. The fc (8-channel) file does not work here."
                    },
                ),
                "dtype": (
                    list(DTYPE_CHOICES),
                    {
                        "default": "auto",
                        "tooltip": "Weight dtype. auto: ComfyUI's U-Net dtype for your device (fp16/bf16 on GPUs, "
                        "fp32 on the CPU). The merge itself is computed in fp32.",
                    },
                ),
            },
            "optional": {
                "model": (
                    "MODEL",
                    {
                        "tooltip": "Optional SD1.5 MODEL (e.g. from Load Checkpoint): its U-Net, with any "
                        "LoRA applied, is used as the base when base_checkpoint is "
                        f"{FROM_MODEL}. It is read, never modified."
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @staticmethod
    def files_problem(base_checkpoint: str | None, iclight_fbc: str | None) -> str | bool:
        """Each file input's problem (:func:`base_file_problem`, :func:`file_problem`), or True."""
        return checks.every_problem(base_file_problem(base_checkpoint), file_problem(ICLIGHT_SLOT, iclight_fbc))

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        # Two file inputs: the node names only its hidden id (a message is filed under every input named) and
        # reads both from the queued prompt; their lists (FileChoices) pass ComfyUI's own list check.
        queued = host.queued_widget_values(settings, cls.__name__)
        if queued is None:
            return True
        return cls.files_problem(queued.get("base_checkpoint"), queued.get("iclight_fbc"))

    def load(self, base_checkpoint, iclight_fbc, dtype, model=None, settings=None):
        if base_checkpoint == FROM_MODEL:
            if model is None:
                raise InputError(
                    f"base_checkpoint is {FROM_MODEL} but no MODEL is connected; connect one or pick a checkpoint file."
                )
            base_path = None
        else:
            base_path = require_file(BASE_FOLDERS, base_checkpoint, base_file_problem(base_checkpoint))
        iclight = require_file(ICLIGHT_FOLDERS, iclight_fbc, file_problem(ICLIGHT_SLOT, iclight_fbc))
        base = host.model_weights(model) if base_path is None else open_source(base_path)
        what = base.name if base_checkpoint == FROM_MODEL else f"base_checkpoint {base_checkpoint!r}"
        config = config_for_weights(base, what)
        parameters = sum(torch.Size(shape).numel() for shape in base.shapes().values())
        torch_dtype = host.auto_unet_dtype(parameters) if dtype == "auto" else DTYPES[dtype]
        spatial = load_spatial_weights(base, iclight, dtype=torch_dtype, device=host.offload_device(), config=config)
        description = f"{base.name} + {iclight_fbc}"
        return (SpatialWeights(spatial, config, torch_dtype, description),)


class RelightVidTemporalLoader:
    """Temporal weights + spatial U-Net → the RelightVid model, managed by ComfyUI."""

    DESCRIPTION = (
        "Adds RelightVid's temporal modules (relvid_mm_sd15_fbc.pth in models/relightvid; AnimateDiff v1/v2 motion "
        "modules from models/animatediff_models work too) to the spatial U-Net, giving the model the RelightVid "
        "sampler runs. ComfyUI's model management moves it to the GPU when sampling and frees it when memory "
        "is needed."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("relightvid_model",)
    OUTPUT_TOOLTIPS = ("The complete RelightVid video U-Net, ready for the RelightVid Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "relightvid_unet": (UNET_TYPE, {"tooltip": "Spatial weights from Load RelightVid U-Net."}),
                "temporal_weights": (
                    fitting_files(MOTION_FOLDERS, frozenset(MOTION_FORMATS)),
                    {
                        "tooltip": "Temporal weights: relvid_mm_sd15_fbc.pth (or the HF Space's "
                        "relvid_mm_sd15_fbc_unet.pth) "
                        "from models/relightvid, or an AnimateDiff motion module from models/animatediff_models."
                    },
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, temporal_weights):
        # The one file input is named here, so ComfyUI skips its own list check and files this message once.
        return checks.first_problem(file_problem(MOTION_SLOT, temporal_weights))

    def load(self, relightvid_unet, temporal_weights):
        path = require_file(MOTION_FOLDERS, temporal_weights, file_problem(MOTION_SLOT, temporal_weights))
        motion = load_motion_weights(
            path, dtype=relightvid_unet.dtype, device=host.offload_device(), config=relightvid_unet.config
        )
        unet = build_unet(relightvid_unet.state_dict, motion, relightvid_unet.config)
        return (host.wrap_model(unet),)
