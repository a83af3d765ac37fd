"""The example workflows, written once as API graphs plus the layout and notes of their UI versions.

``python workflows/specs.py`` rewrites ``example_workflows/api/*.json`` from the graphs below. The UI files
(``example_workflows/*.json``) are made from the API files by ComfyUI's own frontend — loaded, laid out as
``LAYOUT`` says, given their Note, and saved with ``app.graph.serialize()`` — so they are exactly what
the app saves: ``tests/integration/build_workflows.py`` does that against a running ComfyUI.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
# ComfyUI lists the *.json directly inside example_workflows/ as the pack's templates.
UI_DIR = HERE.parent / "example_workflows"
API_DIR = UI_DIR / "api"

CHECKPOINT = "realisticVisionV51_v51VAE.safetensors"
ICLIGHT = "iclight_sd15_fbc.safetensors"
MOTION = "relvid_mm_sd15_fbc.pth"
SUBJECT, SUBJECT_MASK, BACKGROUND, BACKGROUND_STILL, ENV_MAP = (
    "subject.mp4",
    "subject_mask.mp4",
    "background.mp4",
    "background.png",
    "environment.hdr",
)

MODEL_NOTE = (
    "Model files:\n"
    f"- models/checkpoints: an SD1.5 checkpoint ({CHECKPOINT}, Realistic Vision 5.1 as upstream, or any SD1.5)\n"
    f"- models/relightvid (or models/diffusion_models): {ICLIGHT} (IC-Light fbc, from lllyasviel/ic-light)\n"
    f"- models/relightvid: {MOTION} (RelightVid temporal weights, from aleafy/relightvid_models)\n"
)


def _sampler(**overrides) -> dict:
    inputs = {
        "relightvid_model": ["3", 0],
        "foreground": ["9", 0],
        "background": ["12", 0],
        "text": ["14", 0],
        "seed": 42,
        "steps": 20,
        "scheduler": "ddpm",
        "text_scale": 7.5,
        "image_scale": 1.2,
        "iie_factors": "1.0",
        "window_length": 16,
        "window_overlap": 4,
        "window_fusion": "pyramid",
        "closed_loop": False,
        "memory_mode": "auto",
        "guidance_rescale": 0.0,
    }
    return {
        "class_type": "RelightVidSampler",
        "inputs": {**inputs, **overrides},
        "_meta": {"title": "RelightVid Sampler (IIE)"},
    }


def _node(class_type: str, title: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def _common(prompt: str, sampler: dict, foreground_images=("5", 0), mask=("8", 0), size=(512, 512)) -> dict:
    """Models, subject + mask videos, foreground, text, sampler, decode and save; the lighting (node 12) is added per "
    "workflow. Save Video is the only output and every node feeds it: ComfyUI runs the outputs that pass
    validation and drops the others, so a preview beside it would run, and the job report success, when a model
    file is missing."""
    return {
        "1": _node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINT),
        "2": _node(
            "RelightVidUNetLoader",
            "Load RelightVid U-Net (SD1.5 + IC-Light fbc)",
            base_checkpoint="(connected MODEL)",
            iclight_fbc=ICLIGHT,
            dtype="auto",
            model=["1", 0],
        ),
        "3": _node(
            "RelightVidTemporalLoader",
            "Load RelightVid Temporal Weights",
            relightvid_unet=["2", 0],
            temporal_weights=MOTION,
        ),
        "4": _node("LoadVideo", "Load Video (subject)", file=SUBJECT),
        "5": _node("GetVideoComponents", "Get Video Components (subject)", video=["4", 0]),
        "6": _node("LoadVideo", "Load Video (subject mask)", file=SUBJECT_MASK),
        "7": _node("GetVideoComponents", "Get Video Components (mask)", video=["6", 0]),
        "8": _node("ImageToMask", "Convert Image to Mask", image=["7", 0], channel="red"),
        "9": _node(
            "RelightVidForeground",
            "RelightVid Foreground",
            images=list(foreground_images),
            vae=["1", 2],
            size_policy="center_crop",
            width=size[0],
            height=size[1],
            gray="official_128",
            grow=0,
            feather=0.0,
            invert_mask=False,
            mask=list(mask),
        ),
        "13": _node("CLIPTextEncode", "CLIP Text Encode (prompt)", text=prompt, clip=["1", 1]),
        "14": _node("RelightVidTextConditioning", "RelightVid Text Conditioning", positive=["13", 0], clip=["1", 1]),
        "15": sampler,
        "16": _node("VAEDecode", "VAE Decode", samples=["15", 0], vae=["1", 2]),
        "17": _node("CreateVideo", "Create Video", images=["16", 0], fps=["5", 2], audio=["5", 1]),
        "18": _node(
            "SaveVideo", "Save Video", video=["17", 0], filename_prefix="relightvid/relit", format="auto", codec="auto"
        ),
    }


def background_video() -> dict:
    graph = _common("change the background", _sampler())
    graph["10"] = _node("LoadVideo", "Load Video (background)", file=BACKGROUND)
    graph["11"] = _node("GetVideoComponents", "Get Video Components (background)", video=["10", 0])
    graph["12"] = _node(
        "RelightVidBackground",
        "RelightVid Background Video",
        foreground=["9", 0],
        length_policy="loop",
        size_policy="cover",
        flip=False,
        images=["11", 0],
    )
    return graph


def light_preset() -> dict:
    graph = _common("warm sunlight from the left, soft shadows", _sampler())
    graph["12"] = _node(
        "RelightVidLightPreset",
        "RelightVid Light Preset",
        foreground=["9", 0],
        direction="left",
        sweep_to="none",
        color="#FFE2C0",
        intensity=1.0,
        softness=1.0,
    )
    return graph


def hdr_map() -> dict:
    graph = _common("change the background", _sampler())
    graph["12"] = _node(
        "RelightVidHDRMap",
        "RelightVid HDR Map",
        foreground=["9", 0],
        env_map=ENV_MAP,
        yaw=0.0,
        pitch=0.0,
        fov=60.0,
        yaw_speed=2.0,
        exposure=0.0,
        tone_map="reinhard",
    )
    return graph


def long_video() -> dict:
    graph = _common(
        "change the background",
        _sampler(window_length=16, window_overlap=4, window_fusion="pyramid"),
        foreground_images=("21", 0),
        mask=("21", 1),
    )
    graph["9"]["inputs"].update(width=["21", 2], height=["21", 3])
    graph["10"] = _node("LoadImage", "Load Image (background still)", image=BACKGROUND_STILL)
    graph["12"] = _node(
        "RelightVidBackground",
        "RelightVid Background Video",
        foreground=["9", 0],
        length_policy="loop",
        size_policy="cover",
        flip=False,
        images=["10", 0],
    )
    graph["21"] = _node(
        "RelightVidFitFrames",
        "RelightVid Fit Frames",
        images=["5", 0],
        size_policy="multiple_of_64",
        width=768,
        height=512,
        mask=["8", 0],
    )
    return graph


def iie() -> dict:
    graph = background_video()
    graph["15"] = _sampler(iie_factors="0.5, 0.75, 1.0, 1.25, 1.5")
    return graph


INPUT_NOTE = "Inputs (ComfyUI/input): {}. The mask video is white on the subject, black elsewhere."
WORKFLOWS = {
    "relightvid_background_video": (
        background_video,
        [SUBJECT, SUBJECT_MASK, BACKGROUND],
        "Relight a subject video with a background video (the released RelightVid setting).",
    ),
    "relightvid_light_preset": (
        light_preset,
        [SUBJECT, SUBJECT_MASK],
        "Relight with a light direction plate and a prompt describing the light.",
    ),
    "relightvid_hdr_map": (
        hdr_map,
        [SUBJECT, SUBJECT_MASK, ENV_MAP],
        "Relight with an HDR environment map (.hdr/.exr) seen by a slowly panning camera.",
    ),
    "relightvid_long_video_windows": (
        long_video,
        [SUBJECT, SUBJECT_MASK, BACKGROUND_STILL],
        "A clip of any length in overlapping 16-frame context windows, with a still background; Fit Frames picks a "
        "size in multiples of 64 and feeds it to the foreground.",
    ),
    "relightvid_iie": (
        iie,
        [SUBJECT, SUBJECT_MASK, BACKGROUND],
        "The Illumination-Invariant Ensemble: the foreground at five brightnesses, predictions averaged each step "
        "(about 3.7x the U-Net work of plain sampling).",
    ),
}

# UI layout: node id -> (column, row) on a 440 x 120 px grid (wide enough for the widest node, rows spaced
# for the tall ones); the Note sits top left.
LAYOUT = {
    "13": (3, 0),
    "14": (4, 0),
    "1": (0, 2),
    "2": (1, 2),
    "3": (2, 2),
    "15": (5, 2),
    "16": (6, 2),
    "18": (7, 2),
    "17": (6, 4),
    "4": (0, 4),
    "5": (1, 4),
    "21": (2, 4),
    "9": (3, 4),
    "6": (0, 9),
    "7": (1, 9),
    "8": (2, 9),
    "10": (0, 13),
    "11": (1, 13),
    "12": (3, 13),
}


def note_text(name: str) -> str:
    _build, inputs, summary = WORKFLOWS[name]
    return f"{summary}\n\n{MODEL_NOTE}\n{INPUT_NOTE.format(', '.join(inputs))}"


def write_api_files() -> list[Path]:
    API_DIR.mkdir(exist_ok=True)
    written = []
    for name, (build, _inputs, _summary) in WORKFLOWS.items():
        graph = dict(sorted(build().items(), key=lambda item: int(item[0])))
        path = API_DIR / f"{name}.json"
        path.write_text(json.dumps(graph, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_api_files():
        print(path)
