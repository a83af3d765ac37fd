"""Checks that a RelightVid MODEL is sampled with conditionings that carry its image condition.

Plain Python over ComfyUI's data (a guider's conds, an API prompt): no ComfyUI import.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...relightvid_core.errors import InputError
from ...relightvid_core.values import counted
from .iclight import RELIGHTVID_IMAGE_KEY

NEGATIVE_COND = "negative"  # the guiders' name of the unconditional cond (CFGGuider, DualCFGGuider, IIE guider)
CONDITIONING_NODE = "RelightVidNativeConditioning"  # the node that puts the image on a conditioning
# Core nodes that sample with a MODEL, and their inputs whose conditioning must carry the RelightVid image (the
# negative is the official "no image" branch). Other packs' samplers and guiders are checked when they sample.
IMAGE_CONDITIONING_INPUTS = {
    "KSampler": ("positive",),
    "KSamplerAdvanced": ("positive",),
    "SamplerCustom": ("positive",),
    "CFGGuider": ("positive",),
    "DualCFGGuider": ("cond1", "cond2"),
    "BasicGuider": ("conditioning",),
}


def check_clip_conds(conds: Mapping[str, list | None], frames: int) -> None:
    """Every cond but the negative carries the RelightVid image, with as many frames as the latent.

    Args:
        conds: a guider's conds by name (``positive``, ``middle``, ``negative``, ...; lists of cond entries,
            ComfyUI's internal form). The negative is the official "no image" branch and may go without.
        frames: the latent's batch size (= frames of the clip).

    Raises:
        InputError: naming the cond without an image, or both frame counts.
    """
    for name, cond in conds.items():
        if name != NEGATIVE_COND and cond and any(RELIGHTVID_IMAGE_KEY not in entry for entry in cond):
            raise InputError(
                f"the {name} conditioning carries no RelightVid image; connect it from a RelightVid Conditioning "
                "node, not straight from CLIP Text Encode."
            )
    entries = [entry for cond in conds.values() if cond for entry in cond]
    counts = {entry[RELIGHTVID_IMAGE_KEY].shape[0] for entry in entries if RELIGHTVID_IMAGE_KEY in entry}
    if not counts:
        raise InputError(
            "no conditioning carries the RelightVid image; connect positive (and middle) from a RelightVid "
            "Conditioning node."
        )
    if counts != {frames}:
        raise InputError(
            f"the latent has {counted(frames, 'frame')} but the RelightVid conditioning has "
            f"{', '.join(map(str, sorted(counts)))}; make the latent from the same clip (the Conditioning node's "
            "latent, or VAE Encode of its frames)."
        )


def _link_source(value: object) -> str | None:
    """The source node id of an API-prompt link ``[node id, output index]``, or None for a constant."""
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _named(prompt: dict, node_id: str) -> str:
    title = (prompt[node_id].get("_meta") or {}).get("title") or prompt[node_id].get("class_type")
    return f"{title} (node {node_id})"


def _model_comes_from(prompt: dict, node_id: str, source: str) -> bool:
    """True when the MODEL input of ``node_id`` comes from ``source``, directly or through MODEL → MODEL nodes."""
    seen = set()
    while node_id in prompt and node_id not in seen:
        seen.add(node_id)
        inputs = prompt[node_id].get("inputs", {})
        node_id = _link_source(inputs.get("model", inputs.get("relightvid_unet")))
        if node_id == source:
            return True
    return False


def _upstream(prompt: dict, node_id: str) -> set[str]:
    """``node_id`` and every node it takes an input from, transitively."""
    found, todo = set(), [node_id]
    while todo:
        current = todo.pop()
        if current in found or current not in prompt:
            continue
        found.add(current)
        todo.extend(filter(None, map(_link_source, prompt[current].get("inputs", {}).values())))
    return found


def wiring_problem(prompt: dict | None, node_id: object) -> str | None:
    """Queue-time check of the prompt around a node that makes a RelightVid MODEL: a core sampler or guider that
    samples its MODEL (directly or through MODEL → MODEL nodes) with a positive, cond1, cond2 or conditioning
    input that no RelightVid Conditioning node feeds — e.g. CLIP Text Encode wired straight into KSampler —
    would fail when it samples (:func:`check_clip_conds`); it is refused before anything loads, in one sentence."""
    if not prompt:
        return None
    model_node = str(node_id)
    for consumer, node in prompt.items():
        names = IMAGE_CONDITIONING_INPUTS.get(node.get("class_type"), ())
        if not names or not _model_comes_from(prompt, consumer, model_node):
            continue
        for name in names:
            source = _link_source(node.get("inputs", {}).get(name))
            if source is None or source not in prompt:
                continue
            if not any(prompt[n].get("class_type") == CONDITIONING_NODE for n in _upstream(prompt, source)):
                return (
                    f"{_named(prompt, consumer)} samples this RelightVid MODEL with {name} from "
                    f"{_named(prompt, source)}, which carries no RelightVid image; connect {name} from a RelightVid "
                    "Conditioning node, not straight from CLIP Text Encode."
                )
    return None
