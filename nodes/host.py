"""What the nodes need from ComfyUI as a host, outside sampling: its model and input folders, the errors it shows,
the prompt being queued, and VAE / CLIP encoding.

This module talks to ComfyUI (``folder_paths``, and ``server`` to hear of queued prompts); each part has a plain
fallback, so the pack imports and its checks run without ComfyUI. ``folder_paths`` is imported on its own, so
tests can put a stand-in module under that name and point the loaders at temporary files. The modules that
patch and sample MODELs talk to ComfyUI themselves (nodes/model_patch/, nodes/sampling/), as does the preview
(nodes/previews/clip_preview.py).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable

import torch

from ..relightvid_core.errors import RelightVidError, SamplingInterrupted
from ..relightvid_core.vae import SD_LATENT_SCALE

logger = logging.getLogger(__name__)

try:  # ComfyUI's model-folder registry (or a test's stand-in registered under the same name)
    import folder_paths
except ImportError:  # pragma: no cover - exercised only outside ComfyUI without a stand-in
    folder_paths = None

# Our model folder: models/relightvid (docs/official_code.md §b names the files that go there).
RELIGHTVID_FOLDER = "relightvid"
ANIMATEDIFF_FOLDER = "animatediff_models"  # registered by AnimateDiff-Evolved, not by ComfyUI core
MODEL_EXTENSIONS = {
    ".ckpt",
    ".pt",
    ".pt2",
    ".bin",
    ".pth",
    ".safetensors",
    ".pkl",
    ".sft",
}
ENV_MAP_EXTENSIONS = (".hdr", ".exr")
ENCODE_CHUNK = 16  # frames per VAE call when encoding for the sampler
# ComfyUI's own folders as messages name them (the models folders are named after their registered names).
SHOWN_FOLDERS = (
    ("get_input_directory", "input"),
    ("get_output_directory", "output"),
    ("get_temp_directory", "temp"),
)


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
        logger.warning(
            "could not create %s (%s); put the RelightVid files in another registered folder",
            folder,
            error,
        )
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
            roots.append(
                (
                    path,
                    "models/" + os.path.relpath(path, models_dir) if inside else f"models/{name}",
                )
            )
    if models_dir is not None:
        roots.append((models_dir, "models"))
    for getter, shown in SHOWN_FOLDERS:
        if hasattr(folder_paths, getter):
            roots.append((os.path.abspath(getattr(folder_paths, getter)()), shown))
    return sorted(
        ((root, shown.replace(os.sep, "/")) for root, shown in roots),
        key=lambda r: len(r[0]),
        reverse=True,
    )


def shown_text(text: str) -> str:
    """``text`` with every absolute path inside ComfyUI's model, input, output and temp folders written
    relative to them (``models/relightvid/x.pth``, ``input/clip.mp4``): messages never show the server's disk."""
    for root, shown in _shown_roots():
        text = re.sub(
            re.escape(root) + r"(?=$|[\\/\s'\"),;:\]]|\.(?:\s|$))",
            lambda _match, shown=shown: shown,
            text,
        )
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
        {
            "__module__": "builtins",
            "__qualname__": error_class.__qualname__,
            "__doc__": error_class.__doc__,
        },
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
    try:
        from server import PromptServer
    except ImportError:  # outside ComfyUI, or ComfyUI without its server module (e.g. a headless embedding)
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None:
        server.add_on_prompt_handler(remember_queued_prompt)


# --- VAE and CLIP access ------------------------------------------------------------------------


def encode_frames(vae, frames: torch.Tensor) -> torch.Tensor:
    """IMAGE frames (T, H, W, 3) in 0..1 → scaled latents (T, 4, H/8, W/8) float32 on the CPU.

    ComfyUI's ``VAE.encode`` returns the posterior mean (its SD regulariser does not sample), as upstream
    encodes, but unscaled: the U-Net wants it times 0.18215 (SD1.5's scale factor). Frames go to the VAE
    :data:`ENCODE_CHUNK` at a time, each encoded on its own (VAE Encode's own progress and Cancel apply).
    """
    chunks = []
    for start in range(0, frames.shape[0], ENCODE_CHUNK):
        chunk = frames[start : start + ENCODE_CHUNK, ..., :3]
        chunks.append(vae.encode(chunk).float().cpu() * SD_LATENT_SCALE)
    return torch.cat(chunks)


def encode_empty_prompt(clip) -> list:
    """CONDITIONING of the empty prompt, exactly as CLIP Text Encode would give it."""
    tokens = clip.tokenize("")
    if hasattr(clip, "encode_from_tokens_scheduled"):
        return clip.encode_from_tokens_scheduled(tokens)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


register_model_folder()
listen_for_queued_prompts()
