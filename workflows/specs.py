"""The example workflows, written once as API graphs plus the layout, notes and model files of their UI versions.

Every template samples the same thing, RelightVid's MODEL, with ComfyUI's sampling: the five ``SAMPLER``
templates through the one-node RelightVid Sampler (IIE), the three ``PIECES`` templates through ComfyUI's own
sampler nodes (KSampler; SamplerCustomAdvanced with a guider, the official sampler and schedule; a ControlNet).
Node ids keep one role per layout, and the ids the test-size settings change keep it in every template (1 the
checkpoint, 9 the foreground, 12 the lighting, 15 the node with the run's ``steps``, 18 the saved video).

``python workflows/specs.py`` rewrites ``example_workflows/api/*.json`` from the graphs below. The UI files
(``example_workflows/*.json``) are made from the API files by ComfyUI's own frontend — loaded, laid out in each
template's ``stacks`` and the ``OPENING_GROUPS`` below, given their Note and their model files' download
metadata, and saved with ``app.graph.serialize()`` — so they are exactly what the app saves:
``tests/integration/build_workflows.py`` does that against a running ComfyUI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
# ComfyUI lists the *.json directly inside example_workflows/ as the pack's templates.
UI_DIR = HERE.parent / "example_workflows"
API_DIR = UI_DIR / "api"

CHECKPOINT = "realisticVisionV51_v51VAE.safetensors"
ICLIGHT = "iclight_sd15_fbc.safetensors"
MOTION = "relvid_mm_sd15_fbc.pth"
# The official demo assets (github.com/Aleafy/RelightVid, assets/): 512x512, 8 fps, 16 frames.
SUBJECT = "lion.mp4"
MASK_SEQUENCE = "mask/lion/%04d.png"
BACKGROUND = "stage_light2.mp4"
OFFICIAL_FPS = 8.0
OFFICIAL_FRAMES = 16
# Files the user makes or picks (named in each Note).
MASK_VIDEO = "lion_mask.mp4"
BACKGROUND_STILL = "background.png"
ENV_MAP = "environment.hdr"

INPUT_SOURCES = {
    SUBJECT: "the subject clip: assets/input/lion.mp4 of github.com/Aleafy/RelightVid (or your own clip)",
    MASK_SEQUENCE: "its masks, one PNG per frame, white on the subject: copy that repository's assets/mask/lion "
    "folder to ComfyUI/input/mask/lion (any folder, %04d pattern or glob works)",
    BACKGROUND: "the lighting clip: assets/video_bg/stage_light2.mp4 of the same repository (or any clip)",
    MASK_VIDEO: "a mask video of the subject, white on the subject (e.g. exported by your matting/rotoscoping tool)",
    BACKGROUND_STILL: "any photo of the surroundings whose light you want",
    ENV_MAP: "an equirectangular .hdr/.exr environment map (e.g. a CC0 one from polyhaven.com/hdris)",
}

HUB = "https://huggingface.co/"
# Where each model file the templates name comes from and goes: the frontend's "models" metadata of a node
# whose widget holds the file (its missing-models dialog offers the download; frontend 1.27.10 downloads only
# .safetensors/.sft files from huggingface.co or civitai.com, so it lists the .pth without a download button).
# The pack's own messages give the same sources (nodes/loading/files.py MODEL_SOURCES; tests/nodes checks they agree).
# file name -> (folder under models/, download URL, what it is)
MODEL_FILES = {
    CHECKPOINT: (
        "checkpoints",
        HUB + "lllyasviel/fav_models/resolve/main/fav/" + CHECKPOINT,
        "Realistic Vision 5.1 as upstream, or any SD1.5 checkpoint",
    ),
    ICLIGHT: (
        "relightvid",
        HUB + "lllyasviel/ic-light/resolve/main/" + ICLIGHT,
        "IC-Light fbc; models/diffusion_models works too",
    ),
    MOTION: ("relightvid", HUB + "aleafy/RelightVid/resolve/main/" + MOTION, "RelightVid temporal weights"),
}
# The SD1.5 Canny ControlNet as ComfyUI's own templates name it (fp16 safetensors of ControlNet 1.1).
CONTROLNET = "control_v11p_sd15_canny_fp16.safetensors"
CONTROLNET_FILES = {
    **MODEL_FILES,
    CONTROLNET: (
        "controlnet",
        HUB + "comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/" + CONTROLNET,
        "SD1.5 Canny ControlNet",
    ),
}
EMPTY_PROMPT = ""


def model_note(files: dict) -> str:
    lines = [
        f"- models/{folder}: {name} ({what}), {url.removeprefix('https://').split('/resolve/')[0]}"
        for name, (folder, url, what) in files.items()
    ]
    return "Model files (when one is missing, opening the workflow lists it with its download):\n" + "\n".join(lines)


def models_metadata(graph: dict, files: dict) -> dict[str, list[dict]]:
    """node id → the frontend's ``properties.models`` entries ({name, url, directory}) of the model files its
    widgets name, for every node of the API ``graph`` that names one of ``files``."""
    found = {}
    for node_id, node in graph.items():
        names = [value for value in node["inputs"].values() if isinstance(value, str) and value in files]
        if names:
            found[node_id] = [{"name": name, "url": files[name][1], "directory": files[name][0]} for name in names]
    return found


VIEW_NOTE = (
    "The workflow opens on its result ({output}) beside this note; the graph runs from the left: press . to see "
    "all of it."
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
    }
    return _node("RelightVidSampler", "RelightVid Sampler (IIE)", **{**inputs, **overrides})


def _node(class_type: str, title: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def _budget(max_frames: int) -> dict:
    return {"skip_first_frames": 0, "frame_stride": 1, "max_frames": max_frames}


def _foreground(clip: dict, mask, size=(512, 512), max_frames=OFFICIAL_FRAMES) -> dict:
    return _node(
        "RelightVidForeground",
        "RelightVid Foreground",
        vae=["1", 2],
        size_policy="center_crop",
        width=size[0],
        height=size[1],
        gray="official_128",
        grow=0,
        feather=0.0,
        invert_mask=False,
        **_budget(max_frames),
        **clip,
        mask=list(mask),
    )


def _mask_sequence() -> dict:
    """The subject's masks from a PNG sequence, as many as the subject clip (node 4) gives the foreground."""
    return _node(
        "RelightVidLoadMaskSequence",
        "RelightVid Load Mask Sequence",
        sequence=MASK_SEQUENCE,
        **_budget(OFFICIAL_FRAMES),
        video=["4", 0],
    )


def _common(prompt: str, sampler: dict) -> dict:
    """Models, the subject clip and its mask sequence (the frame-budget path: the clip's VIDEO goes straight into
    the foreground, which decodes only the frames it keeps), text, sampler, decode and save; the lighting
    (node 12) is added per workflow."""
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
        "6": _mask_sequence(),
        "9": _foreground({"video": ["4", 0]}, ("6", 0)),
        "13": _node("CLIPTextEncode", "CLIP Text Encode (prompt)", text=prompt, clip=["1", 1]),
        "14": _node("RelightVidTextConditioning", "RelightVid Text Conditioning", positive=["13", 0], clip=["1", 1]),
        "15": sampler,
        "16": _node("VAEDecode", "VAE Decode", samples=["15", 0], vae=["1", 2]),
        "17": _node("CreateVideo", "Create Video", images=["16", 0], fps=OFFICIAL_FPS),
        "18": _node(
            "SaveVideo", "Save Video", video=["17", 0], filename_prefix="relightvid/relit", format="auto", codec="auto"
        ),
    }


def _background_video_node(**overrides) -> dict:
    inputs = {"length_policy": "loop", "size_policy": "cover", "flip": False, **_budget(0), **overrides}
    return _node("RelightVidBackground", "RelightVid Background Video", foreground=["9", 0], **inputs)


def background_video() -> dict:
    graph = _common("change the background", _sampler())
    graph["10"] = _node("LoadVideo", "Load Video (background)", file=BACKGROUND)
    graph["12"] = _background_video_node(video=["10", 0])
    return graph


def light_preset() -> dict:
    """The whole-clip path: the subject decoded by Get Video Components, the mask from a mask video."""
    graph = _common("warm sunlight from the left, soft shadows", _sampler())
    del graph["6"]
    graph["5"] = _node("GetVideoComponents", "Get Video Components (subject)", video=["4", 0])
    graph["6"] = _node("LoadVideo", "Load Video (subject mask)", file=MASK_VIDEO)
    graph["7"] = _node("GetVideoComponents", "Get Video Components (mask)", video=["6", 0])
    graph["8"] = _node("ImageToMask", "Convert Image to Mask", image=["7", 0], channel="red")
    graph["9"] = _foreground({"images": ["5", 0]}, ("8", 0), max_frames=0)
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
    graph["17"]["inputs"].update(fps=["5", 2], audio=["5", 1])
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
    graph = _common("change the background", _sampler(window_length=16, window_overlap=4, window_fusion="pyramid"))
    graph["6"]["inputs"].update(_budget(0))
    graph["21"] = _node(
        "RelightVidFitFrames",
        "RelightVid Fit Frames",
        size_policy="multiple_of_64",
        width=768,
        height=512,
        **_budget(0),
        video=["4", 0],
        mask=["6", 0],
    )
    graph["9"] = _foreground({"images": ["21", 0]}, ("21", 1), size=(["21", 2], ["21", 3]), max_frames=0)
    graph["10"] = _node("LoadImage", "Load Image (background still)", image=BACKGROUND_STILL)
    graph["12"] = _background_video_node(images=["10", 0])
    return graph


def iie() -> dict:
    graph = background_video()
    graph["15"] = _sampler(iie_factors="0.5, 0.75, 1.0, 1.25, 1.5")
    return graph


# --- the templates sampled by ComfyUI's own sampler nodes ---------------------------------------------------


def _pieces(prompt: str, positive=("13", 0), negative=("14", 0)) -> dict:
    """Checkpoint, Apply RelightVid, context windows, the subject clip and its mask sequence (the frame-budget
    path, as in :func:`_common`), the background clip, the prompt and the empty prompt, RelightVid Conditioning,
    decode and save; the sampling (node 15 and its helpers) is added per template."""
    return {
        "1": _node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINT),
        "2": _node(
            "RelightVidApplyModel",
            "Apply RelightVid (SD1.5 MODEL)",
            model=["1", 0],
            iclight_fbc=ICLIGHT,
            temporal_weights=MOTION,
        ),
        "3": _node(
            "RelightVidNativeConditioning",
            "RelightVid Conditioning",
            foreground=["9", 0],
            background=["12", 0],
            positive=list(positive),
            negative=list(negative),
        ),
        "4": _node("LoadVideo", "Load Video (subject)", file=SUBJECT),
        "6": _mask_sequence(),
        "9": _foreground({"video": ["4", 0]}, ("6", 0)),
        "10": _node("LoadVideo", "Load Video (background)", file=BACKGROUND),
        "12": _background_video_node(video=["10", 0]),
        "13": _node("CLIPTextEncode", "CLIP Text Encode (prompt)", text=prompt, clip=["1", 1]),
        "14": _node("CLIPTextEncode", "CLIP Text Encode (empty prompt)", text=EMPTY_PROMPT, clip=["1", 1]),
        "16": _node("VAEDecode", "VAE Decode", samples=["15", 0], vae=["1", 2]),
        "17": _node("CreateVideo", "Create Video", images=["16", 0], fps=OFFICIAL_FPS),
        "18": _node(
            "SaveVideo", "Save Video", video=["17", 0], filename_prefix="relightvid/relit", format="auto", codec="auto"
        ),
        "21": _node(
            "RelightVidContextWindows",
            "RelightVid Context Windows",
            model=["2", 0],
            window_length=16,
            window_overlap=4,
            window_fusion="pyramid",
            closed_loop=False,
        ),
    }


def _ksampler() -> dict:
    return _node(
        "KSampler",
        "KSampler (2-way guidance)",
        model=["21", 0],
        seed=42,
        steps=20,
        cfg=7.5,
        sampler_name="euler",
        scheduler="normal",
        positive=["3", 0],
        negative=["3", 2],
        latent_image=["3", 3],
        denoise=1.0,
    )


def ksampler() -> dict:
    graph = _pieces("change the background")
    graph["15"] = _ksampler()
    return graph


def custom_sampling() -> dict:
    """SamplerCustomAdvanced with RelightVid's 3-way guidance (DualCFGGuider) and the official DDPM: node 15 is
    the schedule (it holds the steps), node 24 the seed."""
    graph = _pieces("change the background")
    graph["15"] = _node(
        "RelightVidSchedule", "RelightVid Schedule (SIGMAS)", model=["21", 0], scheduler="ddpm", steps=20, denoise=1.0
    )
    graph["16"]["inputs"]["samples"] = ["25", 0]
    graph["22"] = _node(
        "DualCFGGuider",
        "DualCFGGuider (RelightVid 3-way guidance)",
        model=["21", 0],
        cond1=["3", 0],
        cond2=["3", 1],
        negative=["3", 2],
        cfg_conds=7.5,
        cfg_cond2_negative=1.2,
        style="regular",
    )
    graph["23"] = _node("RelightVidOfficialSampler", "RelightVid Official Sampler (DDPM/DDIM)", scheduler="ddpm")
    graph["24"] = _node("RandomNoise", "RandomNoise", noise_seed=42)
    graph["25"] = _node(
        "SamplerCustomAdvanced",
        "SamplerCustomAdvanced",
        noise=["24", 0],
        guider=["22", 0],
        sampler=["23", 0],
        sigmas=["15", 0],
        latent_image=["3", 3],
    )
    return graph


def controlnet() -> dict:
    graph = _pieces("change the background", positive=("28", 0), negative=("28", 1))
    graph["15"] = _ksampler()
    graph["26"] = _node("ControlNetLoader", "Load ControlNet Model (SD1.5)", control_net_name=CONTROLNET)
    graph["27"] = _node(
        "Canny", "Canny (edges of each subject frame)", image=["9", 1], low_threshold=0.4, high_threshold=0.8
    )
    graph["28"] = _node(
        "ControlNetApplyAdvanced",
        "Apply ControlNet (prompt and empty prompt)",
        positive=["13", 0],
        negative=["14", 0],
        control_net=["26", 0],
        image=["27", 0],
        strength=1.0,
        start_percent=0.0,
        end_percent=1.0,
        vae=["1", 2],
    )
    return graph


# --- the templates --------------------------------------------------------------------------------------------

# UI layout, read by tests/integration/build_workflows.py. The graph runs left to right in a template's stacks:
# each stack is a column of groups laid top to bottom, each group (title, colour, columns of node ids, and
# optionally "rows" to lay those lists out as rows instead; ids a template lacks are skipped) sized to its nodes
# and its title, so no two groups overlap. Right of the graph come the Note and OPENING_GROUPS, the view every
# template opens on: the result and the Note, legible on a 1280x800 page. The output group is two rows, short
# enough to clear the minimap in the bottom-right corner wherever a frontend puts it (1.25 left of the zoom
# buttons, from x 940 and 220 px up; 1.27 from x 987 and 265 px up): a one-column group ran under 1.25's.
SAMPLER_STACKS = [
    [("1. Models", "#3f5159", [["1", "2", "3"]])],
    [("2. Subject and mask", "#3f593f", [["4", "5", "6", "7", "8"], ["21", "9"]])],
    [("3. Lighting", "#59533f", [["10", "12"]])],
    [("4. Prompt", "#4f3f59", [["13", "14"]]), ("5. Relight", "#593f3f", [["15"]])],
]
PIECES_STACKS = [
    [("1. Models and prompts", "#3f5159", [["1", "2", "21"], ["13", "14"]])],
    [("2. Subject and mask", "#3f593f", [["4", "6"], ["9"]])],
    [("3. Lighting", "#59533f", [["10", "12"]])],
    [("4. Conditioning", "#4f3f59", [["26", "27", "28", "3"]])],
    [("5. Sample", "#593f3f", [["15", "22", "23", "24", "25"]])],
]
OPENING_GROUPS = [("6. Decode and save", "#444444", [["16", "17"], ["18"]], "rows")]


@dataclass(frozen=True)
class Template:
    """One template: its API graph, the input files and the summary its Note gives, its layout, its model files."""

    build: Callable[[], dict]
    inputs: tuple[str, ...]
    summary: str
    stacks: list
    files: dict


CLIPS = (SUBJECT, MASK_SEQUENCE, BACKGROUND)
WORKFLOWS = {
    "relightvid_background_video": Template(
        background_video,
        CLIPS,
        "Relight a subject clip with a background (lighting) clip, the released RelightVid setting: 16 frames at "
        "512x512, cropped as upstream.",
        SAMPLER_STACKS,
        MODEL_FILES,
    ),
    "relightvid_light_preset": Template(
        light_preset,
        (SUBJECT, MASK_VIDEO),
        "Relight with a light direction and a prompt describing the light; the mask comes from a mask video and "
        "the clip is decoded whole (Get Video Components), so it keeps the clip's frame rate and sound.",
        SAMPLER_STACKS,
        MODEL_FILES,
    ),
    "relightvid_hdr_map": Template(
        hdr_map,
        (SUBJECT, MASK_SEQUENCE, ENV_MAP),
        "Relight with an HDR environment map (.hdr/.exr) seen by a slowly panning camera.",
        SAMPLER_STACKS,
        MODEL_FILES,
    ),
    "relightvid_long_video_windows": Template(
        long_video,
        (SUBJECT, MASK_SEQUENCE, BACKGROUND_STILL),
        "A clip of any length in overlapping 16-frame context windows with a still background; Fit Frames decodes "
        "each frame straight to a size in multiples of 64 and feeds it to the foreground.",
        SAMPLER_STACKS,
        MODEL_FILES,
    ),
    "relightvid_iie": Template(
        iie,
        CLIPS,
        "The Illumination-Invariant Ensemble: the foreground at five brightnesses, predictions averaged each step "
        "(about 3.7x the U-Net work of plain sampling).",
        SAMPLER_STACKS,
        MODEL_FILES,
    ),
    "relightvid_ksampler": Template(
        ksampler,
        CLIPS,
        "RelightVid's MODEL sampled by ComfyUI's KSampler (any sampler and scheduler; LoRAs go between Load "
        "Checkpoint and Apply RelightVid). KSampler's cfg is 2-way guidance: image and prompt together against no "
        "image (relightvid_custom_sampling has RelightVid's 3-way guidance). Clips longer than the window run in "
        "context windows.",
        PIECES_STACKS,
        MODEL_FILES,
    ),
    "relightvid_custom_sampling": Template(
        custom_sampling,
        CLIPS,
        "The RelightVid Sampler in pieces for SamplerCustomAdvanced: DualCFGGuider (cfg_conds = text 7.5, "
        "cfg_cond2_negative = image 1.2) is the 3-way guidance, RelightVid Official Sampler over RelightVid "
        "Schedule (both ddpm, or both ddim) the official steps, RandomNoise the seed: the same latents as the "
        "RelightVid Sampler and `relightvid relight`. RelightVid IIE Guider replaces DualCFGGuider for the ensemble.",
        PIECES_STACKS,
        MODEL_FILES,
    ),
    "relightvid_controlnet": Template(
        controlnet,
        CLIPS,
        "A ControlNet on top of RelightVid: Canny edges of each subject frame guide every frame (each context "
        "window gets its own hint frames), with an SD1.5 ControlNet from models/controlnet applied to the prompt "
        "and the empty prompt before RelightVid Conditioning.",
        PIECES_STACKS,
        CONTROLNET_FILES,
    ),
}

# The order tests/integration/test_frontend.py runs the templates in, one after another on one server: the first
# loads the models, the later ones reuse what ComfyUI cached of the earlier runs (the models, the clips' encodings).
RUN_ORDER = tuple(sorted(WORKFLOWS))
# Seconds from Run to done in the real frontend (test_frontend.py, ComfyUI's "Prompt executed in" line) at test
# size, one run each in RUN_ORDER on the development machine's 2 cores.
TEST_SIZE_CPU_SECONDS = {
    "relightvid_background_video": 38.3,
    "relightvid_controlnet": 17.2,
    "relightvid_custom_sampling": 6.9,
    "relightvid_hdr_map": 14.7,
    "relightvid_iie": 18.1,
    "relightvid_ksampler": 12.0,
    "relightvid_light_preset": 14.0,
    "relightvid_long_video_windows": 18.1,
}
TEST_SIZE_NOTE = (
    "s at test size only (64x64, 4 frames, 2 steps; ComfyUI --cpu on 2 cores, random weights of the real sizes, "
    "{cache}); the default size was not run on a CPU (one full-size U-Net call on 8 frames of 256x256 takes about "
    "15 s there)"
)
FIRST_RUN_CACHE, LATER_RUN_CACHE = "models loaded in the run", "models and clips cached by earlier runs"


def note_text(name: str) -> str:
    """The text of a template's Note: what it does, where the view is, the model and input files, the time."""
    template = WORKFLOWS[name]
    sources = "\n".join(f"- {file}: {INPUT_SOURCES[file]}" for file in template.inputs)
    measured = TEST_SIZE_CPU_SECONDS[name]
    cache = FIRST_RUN_CACHE if name == RUN_ORDER[0] else LATER_RUN_CACHE
    cpu = f"{measured:.0f} {TEST_SIZE_NOTE.format(cache=cache)}" if measured is not None else "not measured yet"
    return (
        f"{template.summary}\n{VIEW_NOTE.format(output=OPENING_GROUPS[0][0])}\n\n{model_note(template.files)}\n\n"
        f"Inputs (ComfyUI/input):\n{sources}\n\nExpected time: CPU: {cpu}. GPU: not measured yet."
    )


def node_models(name: str) -> dict[str, list[dict]]:
    """The frontend's ``models`` metadata of template ``name``, by node id."""
    return models_metadata(WORKFLOWS[name].build(), WORKFLOWS[name].files)


def write_api_files() -> list[Path]:
    """Write the API graph of every template into ``API_DIR``."""
    API_DIR.mkdir(exist_ok=True)
    written = []
    for name, template in WORKFLOWS.items():
        graph = dict(sorted(template.build().items(), key=lambda item: int(item[0])))
        path = API_DIR / f"{name}.json"
        path.write_text(json.dumps(graph, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_api_files():
        print(path)
