"""The only module of the pack that imports ComfyUI.

Everything the nodes need from the host — model folders, devices and dtypes, model management, progress,
latent previews, interruption, VAE encoding, the weights of a connected MODEL — is one function here.
Each has a plain fallback, so the nodes import and run in tests without ComfyUI: the fallbacks behave as a
CPU-only host with no progress display and no interruption. ``folder_paths`` is imported on its own, so
tests can put a stand-in module under that name and point the loaders at temporary files.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..relightvid_core.errors import RelightVidError, SamplingInterrupted
from ..relightvid_core.vae import SD_LATENT_SCALE
from ..relightvid_core.weights.files import InMemorySource, TensorSource

logger = logging.getLogger(__name__)

try:  # ComfyUI's model-folder registry (or a test's stand-in registered under the same name)
    import folder_paths
except ImportError:  # pragma: no cover - exercised only outside ComfyUI without a stand-in
    folder_paths = None

try:
    import comfy.latent_formats
    import comfy.lora
    import comfy.model_management as model_management
    import comfy.model_patcher
    import comfy.utils
    import latent_preview
except ImportError:
    model_management = None

HAS_COMFY = model_management is not None

try:  # the per-node progress registry of recent ComfyUI; without it previews show x̂₀'s first frame only
    from comfy_execution.progress import get_progress_state
    from comfy_execution.utils import get_executing_context
except ImportError:
    get_progress_state = get_executing_context = None

# Our model folder: models/relightvid (UPSTREAM.md §b names the files that go there).
RELIGHTVID_FOLDER = "relightvid"
ANIMATEDIFF_FOLDER = "animatediff_models"  # registered by AnimateDiff-Evolved, not by ComfyUI core
MODEL_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
ENV_MAP_EXTENSIONS = (".hdr", ".exr")
MEMORY_HEADROOM = 0.85  # use at most this share of the free memory for activations
PREVIEW_FRAME_RATE = 8.0  # frames per second of the animated preview (the official clips' rate)
MODEL_SOURCE_NAME = "the connected MODEL"
ENCODE_CHUNK = 16  # frames per VAE call when encoding for the sampler: progress moves between calls
# ComfyUI's own folders as messages name them (the models folders are named after their registered names).
SHOWN_FOLDERS = (("get_input_directory", "input"), ("get_output_directory", "output"), ("get_temp_directory", "temp"))


# --- model folders -------------------------------------------------------------------------------------


def register_model_folder() -> None:
    """Register ``models/relightvid`` with the model extensions, extending an entry that
    extra_model_paths.yaml may already have created (never replacing its paths), and create the folder,
    so the user finds where the files go (a read-only models folder is only logged)."""
    if folder_paths is None:
        return
    folder = os.path.join(folder_paths.models_dir, RELIGHTVID_FOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        logger.warning("could not create %s (%s); put the RelightVid files in another registered folder", folder, error)
    folder_paths.add_model_folder_path(RELIGHTVID_FOLDER, folder)
    _paths, extensions = folder_paths.folder_names_and_paths[RELIGHTVID_FOLDER]
    # A name first created by add_model_folder_path has an empty set, which would list every file.
    extensions.update(getattr(folder_paths, "supported_pt_extensions", MODEL_EXTENSIONS))


def _known_folders(folders: Iterable[str]) -> list[str]:
    if folder_paths is None:
        return []
    registered = getattr(folder_paths, "folder_names_and_paths", {})
    return [name for name in folders if name in registered or name in ("unet", "clip")]


def model_file_list(folders: Iterable[str]) -> list[str]:
    """Sorted, de-duplicated file names (relative paths) found in the named model folders that exist."""
    names: list[str] = []
    for folder in _known_folders(folders):
        names.extend(name for name in folder_paths.get_filename_list(folder) if name not in names)
    return sorted(names)


def folder_locations(folders: Iterable[str]) -> str:
    """The registered ones of the named folders, for messages: 'models/relightvid or models/diffusion_models'.

    Folders nobody registered (``animatediff_models`` without AnimateDiff-Evolved) are left out, and no
    absolute path of the server's disk is shown; an unregistered first folder is still named, as the place
    the pack's files go.
    """
    folders = list(folders)
    known = _known_folders(folders) or folders[:1]
    return " or ".join(f"models/{folder}" for folder in known)


def find_model_file(folders: Iterable[str], name: str) -> str | None:
    """Full path of ``name`` in the first of ``folders`` holding it, or None."""
    for folder in _known_folders(folders):
        path = folder_paths.get_full_path(folder, name)
        if path is not None:
            return path
    return None


def _shown_roots() -> list[tuple[str, str]]:
    """(absolute folder, how messages name it), longest first: every registered model folder as
    ``models/<its name>`` (or its place under ComfyUI's models folder), then input, output and temp."""
    if folder_paths is None:
        return []
    roots = []
    models_dir = getattr(folder_paths, "models_dir", None)
    models_dir = os.path.abspath(models_dir) if models_dir else None
    for name, entry in getattr(folder_paths, "folder_names_and_paths", {}).items():
        if name in ("custom_nodes", "configs"):
            continue
        for path in map(os.path.abspath, entry[0]):
            inside = models_dir is not None and os.path.commonpath([path, models_dir]) == models_dir
            roots.append((path, "models/" + os.path.relpath(path, models_dir) if inside else f"models/{name}"))
    if models_dir is not None:
        roots.append((models_dir, "models"))
    for getter, shown in SHOWN_FOLDERS:
        if hasattr(folder_paths, getter):
            roots.append((os.path.abspath(getattr(folder_paths, getter)()), shown))
    return sorted(((root, shown.replace(os.sep, "/")) for root, shown in roots), key=lambda r: len(r[0]), reverse=True)


def shown_text(text: str) -> str:
    """``text`` with every absolute path inside ComfyUI's model, input, output and temp folders written
    relative to them (``models/relightvid/x.pth``, ``input/clip.mp4``): messages never show the server's disk."""
    for root, shown in _shown_roots():
        text = re.sub(re.escape(root) + r"(?=$|[\\/\s'\"),;:\]]|\.(?:\s|$))", lambda _match, shown=shown: shown, text)
    return text


def input_files(extensions: tuple[str, ...]) -> list[str]:
    """Files (relative paths, sub-folders included) of ComfyUI's input folder with one of ``extensions``."""
    root = input_directory()
    if root is None or not os.path.isdir(root):
        return []
    found = []
    for folder, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            if name.lower().endswith(extensions):
                found.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(found)


def input_directory() -> str | None:
    if folder_paths is None:
        return None
    return folder_paths.get_input_directory()


def input_file_path(name: str) -> str:
    """Absolute path of a file in the input folder (``name`` may carry ComfyUI's ``[input]`` annotation)."""
    if folder_paths is not None and hasattr(folder_paths, "get_annotated_filepath"):
        return folder_paths.get_annotated_filepath(name)
    return os.path.join(input_directory() or "", name)


def file_digest(path: str) -> str:
    """SHA-256 of a file, for IS_CHANGED (an edited file re-runs the node)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- errors as ComfyUI shows them -----------------------------------------------------------------------

# ComfyUI reports a failed node's exception type as module + "." + class name (execution.py, full_type_name),
# except for classes of the builtins module, which it reports by name alone, as it does its own ValueErrors.
# A custom pack's modules are named after its folder's absolute path, so the library's InputError would read
# "/home/.../custom_nodes/ComfyUI-RelightVid.relightvid_core.errors.InputError". What the pack raises to
# ComfyUI is therefore a subclass of the library's error of the same name whose module reads "builtins".


@functools.cache
def _reported_class(error_class: type[RelightVidError]) -> type[RelightVidError]:
    return type(
        error_class.__name__,
        (error_class,),
        {"__module__": "builtins", "__qualname__": error_class.__qualname__, "__doc__": error_class.__doc__},
    )


def reported_error(error: RelightVidError) -> RelightVidError:
    """``error`` as ComfyUI should show it: its class name alone as the type, and a message that names files
    relative to ComfyUI's folders (:func:`shown_text`); still an instance of the library's class."""
    if type(error).__module__ == "builtins":
        return error
    return _reported_class(type(error))(shown_text(str(error)))


def reports_errors(function: Callable) -> Callable:
    """Wrap a node's function (or a model wrapper run inside a core node) so that a library error reaches
    ComfyUI as :func:`reported_error` makes it; interruption and every other exception pass unchanged."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SamplingInterrupted:
            raise
        except RelightVidError as error:
            shown = reported_error(error)
            if shown is error:
                raise
            raise shown from error

    return call


def report_node_errors(node_class: type) -> type:
    """Have ComfyUI show the errors of ``node_class``'s function as :func:`reports_errors` makes them."""
    function = getattr(node_class, node_class.FUNCTION)
    if not getattr(function, "reports_errors", False):
        wrapped = reports_errors(function)
        wrapped.reports_errors = True
        setattr(node_class, node_class.FUNCTION, wrapped)
    return node_class


# --- the prompt being queued ----------------------------------------------------------------------------

# ComfyUI files a VALIDATE_INPUTS message under every input the method names, so a check reading several
# widgets would show its one sentence under each of them. Such nodes name only a hidden input carrying their
# id and read their widgets from the prompt being queued, which ComfyUI's on-prompt hook hands us first. It
# is kept in the request's own context, so prompts queued at the same time never see each other's.
_queued_prompt: contextvars.ContextVar[dict | None] = contextvars.ContextVar("relightvid_queued_prompt", default=None)


def remember_queued_prompt(json_data):
    """ComfyUI's on-prompt hook: keep the prompt of this POST /prompt for the queue-time checks; changes nothing."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    _queued_prompt.set(prompt if isinstance(prompt, dict) else None)
    return json_data


def queued_widget_values(node_id: object, class_type: str) -> dict | None:
    """The constant inputs of node ``node_id`` in the prompt being queued, links left out (ComfyUI has already
    converted them to the widgets' types where it could); None when no prompt is being queued through
    POST /prompt or its node ``node_id`` is not a ``class_type``."""
    prompt = _queued_prompt.get()
    node = prompt.get(str(node_id)) if prompt is not None else None
    if not isinstance(node, dict) or node.get("class_type") != class_type or not isinstance(node.get("inputs"), dict):
        return None
    return {name: value for name, value in node["inputs"].items() if not isinstance(value, list)}


def queued_prompt() -> dict | None:
    """The whole prompt being queued through POST /prompt (node id → node), or None."""
    return _queued_prompt.get()


def listen_for_queued_prompts() -> None:
    """Register :func:`remember_queued_prompt` with ComfyUI's server (nothing to do outside ComfyUI)."""
    if not HAS_COMFY:
        return
    try:
        from server import PromptServer
    except ImportError:  # pragma: no cover - ComfyUI without its server module (e.g. a headless embedding)
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None:
        server.add_on_prompt_handler(remember_queued_prompt)


# --- devices, dtypes, model management -----------------------------------------------------------------


def load_device() -> torch.device:
    return model_management.get_torch_device() if HAS_COMFY else torch.device("cpu")


def offload_device() -> torch.device:
    return model_management.unet_offload_device() if HAS_COMFY else torch.device("cpu")


def auto_unet_dtype(parameters: int) -> torch.dtype:
    """ComfyUI's choice of U-Net dtype for the compute device (float32 on CPU), or float32 without ComfyUI."""
    if not HAS_COMFY:
        return torch.float32
    return model_management.unet_dtype(
        load_device(), model_params=parameters, supported_dtypes=[torch.float16, torch.bfloat16, torch.float32]
    )


class RelightVidModule(nn.Module):
    """Holds the U-Net for ComfyUI's ModelPatcher.

    The patcher writes bookkeeping attributes onto the module it manages (``device``,
    ``model_loaded_weight_memory``, ...). diffusers' ``ModelMixin.device`` is a read-only property, so the
    U-Net itself cannot be managed directly; this plain module carries those attributes instead.
    """

    def __init__(self, unet: nn.Module, device: torch.device):
        super().__init__()
        self.diffusion_model = unet
        self.device = device

    def get_dtype(self) -> torch.dtype:
        return next(self.diffusion_model.parameters()).dtype


@dataclass
class LocalPatcher:
    """The fallback of ``comfy.model_patcher.ModelPatcher`` outside ComfyUI: holds the module on the CPU."""

    model: RelightVidModule
    load_device: torch.device
    offload_device: torch.device

    def model_size(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())


def wrap_model(unet: nn.Module):
    """A ModelPatcher (ComfyUI) or :class:`LocalPatcher` managing ``unet``; the U-Net is ``.model.diffusion_model``."""
    module = RelightVidModule(unet, offload_device())
    if not HAS_COMFY:
        return LocalPatcher(module, load_device(), offload_device())
    size = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return comfy.model_patcher.ModelPatcher(
        module, load_device=load_device(), offload_device=offload_device(), size=size
    )


def load_for_sampling(patcher, memory_required: int) -> torch.device:
    """Place the model on the compute device through ComfyUI's model management.

    Every weight is loaded (``force_full_load``): the U-Net's layers are plain torch modules, which cannot
    stream weights in the way ComfyUI's low-VRAM ops do. Returns the device the weights are on (the CPU
    when ComfyUI runs with ``--cpu`` or ``--novram``).
    """
    if HAS_COMFY:
        model_management.load_models_gpu([patcher], memory_required=memory_required, force_full_load=True)
    return next(patcher.model.parameters()).device


def activation_budget(device: torch.device) -> int:
    """Bytes the sampler may use for activations on ``device`` (for the CPU without ComfyUI: effectively unlimited)."""
    if not HAS_COMFY:
        return 2**62
    return int(model_management.get_free_memory(device) * MEMORY_HEADROOM)


def offload(patcher) -> None:
    """Unload ``patcher`` from the compute device now (memory mode ``low``), as ComfyUI does when it frees memory."""
    if not HAS_COMFY:
        return
    loaded = model_management.current_loaded_models
    for index in range(len(loaded) - 1, -1, -1):
        if loaded[index].model is patcher:
            if loaded[index].model_unload():
                loaded.pop(index)
    model_management.soft_empty_cache()


# --- progress, previews, interruption ------------------------------------------------------------------


def should_interrupt() -> bool:
    """True once the user pressed Cancel (POST /interrupt)."""
    return HAS_COMFY and model_management.processing_interrupted()


def raise_interrupted(error: SamplingInterrupted) -> None:
    """Turn the library's interruption into ComfyUI's (an ``execution_interrupted``, no traceback)."""
    if HAS_COMFY:
        model_management.throw_exception_if_processing_interrupted()
        raise model_management.InterruptProcessingException() from error
    raise error


def progress_bar(total: int):
    """ComfyUI's progress bar of the running node, or None outside ComfyUI.

    Every update also raises ComfyUI's interruption once the user pressed Cancel, so a job is cancellable
    wherever it reports progress (VAE chunks included), not only between U-Net calls.
    """
    return comfy.utils.ProgressBar(total) if HAS_COMFY else None


class JobProgress:
    """One progress bar over a node's whole job, counted in units fixed up front (e.g. frames through the
    VAE, then U-Net passes), so a long job moves at a useful grain instead of once per denoising step."""

    def __init__(self, total: int):
        self.total = max(1, total)
        self.done = 0
        self._bar = progress_bar(self.total)

    def advance(self, units: int = 1) -> None:
        self.done = min(self.total, self.done + units)
        if self._bar is not None:
            self._bar.update_absolute(self.done, self.total)


def _frame_decoder(device: torch.device) -> Callable[[torch.Tensor], list] | None:
    """``x̂₀ (F, 4, h, w) -> one PIL preview per frame`` through ComfyUI's previewer (latent2rgb or TAESD, as
    the user chose); None outside ComfyUI or when previews are off."""
    if not HAS_COMFY:
        return None
    try:
        previewer = latent_preview.get_previewer(device, comfy.latent_formats.SD15())
    except Exception as error:  # previews are a nicety: a host without them must still sample
        logger.debug("latent previews unavailable: %s", error)
        return None
    if previewer is None:
        return None
    # The previewers decode the first image of a batch, so every frame goes through on its own; the latents
    # are SD1.5's scaled ones, which both our sampler and ComfyUI's hand to their callbacks.
    return lambda denoised: [previewer.decode_latent_to_preview(frame[None].float()) for frame in denoised]


class ClipPreview:
    """Every frame of the latest x̂₀ playing in turn in the running node's preview, at ``frame_rate``.

    ComfyUI shows one preview image per node and replaces it with each new one, so sending a clip's frames
    one after another animates it. A daemon thread sends them through ComfyUI's progress registry (the path
    of its own progress bar, whose interruption check must stay on the node's thread); :meth:`show` only
    swaps in the frames of each new step. A no-op outside ComfyUI or with previews off; a use as a context
    manager stops the thread when the node's work ends, however it ends.
    """

    def __init__(self, device: torch.device, frame_rate: float = PREVIEW_FRAME_RATE):
        self._decode = _frame_decoder(device)
        context = get_executing_context() if get_executing_context is not None else None
        self._node_id = None if context is None else context.node_id
        self._interval = 1.0 / frame_rate
        self._frames: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._decode is not None and self._node_id is not None

    def show(self, denoised: torch.Tensor) -> None:
        """Play the frames of ``denoised`` (F, 4, h, w) from now on."""
        if not self.active:
            return
        self._frames = self._decode(denoised)
        if self._thread is None:
            self._thread = threading.Thread(target=self._play, name="RelightVid preview", daemon=True)
            self._thread.start()

    def _play(self) -> None:
        registry = get_progress_state()
        index = 0
        while not self._stop.is_set():
            frames = self._frames
            entry = registry.ensure_entry(self._node_id)
            image = ("JPEG", frames[index % len(frames)], latent_preview.MAX_PREVIEW_RESOLUTION)
            registry.update_progress(self._node_id, entry["value"], entry["max"], image)
            index += 1
            self._stop.wait(self._interval)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ClipPreview:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


# --- VAE, CLIP and MODEL access ------------------------------------------------------------------------


def encode_frames(vae, frames: torch.Tensor, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """IMAGE frames (T, H, W, 3) in 0..1 → scaled latents (T, 4, H/8, W/8) float32 on the CPU.

    ComfyUI's ``VAE.encode`` returns the posterior mean (its SD regulariser does not sample), as upstream
    encodes, but unscaled: the U-Net wants it times 0.18215 (SD1.5's scale factor). Frames go to the VAE
    :data:`ENCODE_CHUNK` at a time, each encoded on its own, so chunking changes nothing but ``progress``,
    which is called with the number of frames of every chunk done.
    """
    chunks = []
    for start in range(0, frames.shape[0], ENCODE_CHUNK):
        chunk = frames[start : start + ENCODE_CHUNK, ..., :3]
        chunks.append(vae.encode(chunk).float().cpu() * SD_LATENT_SCALE)
        if progress is not None:
            progress(chunk.shape[0])
    return torch.cat(chunks)


def encode_empty_prompt(clip) -> list:
    """CONDITIONING of the empty prompt, exactly as CLIP Text Encode would give it."""
    tokens = clip.tokenize("")
    if hasattr(clip, "encode_from_tokens_scheduled"):
        return clip.encode_from_tokens_scheduled(tokens)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


class PatchedModelSource(TensorSource):
    """The U-Net weights of a ComfyUI MODEL with its patches (LoRAs, merges) applied, one tensor at a time.

    Reads originals from the patcher's backup when the model is currently loaded with patches applied, so
    the result does not depend on whether the model happens to be on the GPU; the MODEL is never changed.
    """

    PREFIX = "diffusion_model."

    def __init__(self, patcher):
        self.name = MODEL_SOURCE_NAME
        self._entries = patcher.get_key_patches(self.PREFIX)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: tuple(entry[0][0].shape) for key, entry in self._entries.items()}

    def read(self, key: str) -> torch.Tensor:
        (weight, convert), *patches = self._entries[key]
        if not patches:
            return weight
        value = convert(weight.to(torch.float32, copy=True), inplace=True)
        return comfy.lora.calculate_weight(patches, value, key)

    def close(self) -> None:
        self._entries = {}


def model_weights(model) -> TensorSource:
    """The U-Net weights of a connected MODEL (LDM keys), for ``load_spatial_weights``; read-only."""
    if hasattr(model, "get_key_patches"):
        return PatchedModelSource(model)
    return InMemorySource(model.model.diffusion_model.state_dict(), MODEL_SOURCE_NAME)


register_model_folder()
listen_for_queued_prompts()
