"""The templates that sample the RelightVid MODEL with ComfyUI's core sampling nodes (KSampler, SamplerCustomAdvanced) as API graphs, with their UI layout.

``python workflows/native_specs.py`` rewrites their ``example_workflows/api/*.json``; the UI files are made
from those by ComfyUI's frontend (``tests/integration/build_workflows.py``), as for :mod:`specs`. Node ids
follow :mod:`specs` where the role is the same (1 checkpoint, 9 foreground, 12 lighting, 15 the node with
the run's ``steps``, 16-18 decode and save), so the test-size settings apply to every template alike.
"""

from __future__ import annotations


from specs import (
    API_DIR,  # noqa: F401 - read by build_workflows.py as module.API_DIR
    BACKGROUND,
    CHECKPOINT,
    HUB,
    ICLIGHT,
    MASK_SEQUENCE,
    MODEL_FILES,
    MOTION,
    OFFICIAL_FPS,
    SUBJECT,
    _background_video_node,
    _foreground,
    _mask_sequence,
    _node,
    models_metadata,
    template_note,
    write_api_files,
)

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


def _base(prompt: str, positive=("13", 0), negative=("14", 0), model=("2", 0)) -> dict:
    """Checkpoint, Apply RelightVid, context windows, the subject clip and its mask sequence (the frame-budget
    path, as in specs.py), the background clip, the two prompts, RelightVid Conditioning, decode and save; the
    sampler (node 15 and its helpers) is added per template."""
    return {
        "1": _node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINT),
        "2": _node(
            "RelightVidApplyModel",
            "Apply RelightVid (MODEL)",
            model=["1", 0],
            iclight_fbc=ICLIGHT,
            temporal_weights=MOTION,
        ),
        "3": _node(
            "RelightVidNativeConditioning",
            "RelightVid Conditioning (native)",
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
            "SaveVideo", "Save Video", video=["17", 0], filename_prefix="relightvid/native", format="auto", codec="auto"
        ),
        "21": _node(
            "RelightVidContextWindows",
            "RelightVid Context Windows (native)",
            model=list(model),
            window_length=16,
            window_overlap=4,
            window_fusion="pyramid",
            closed_loop=False,
        ),
    }


def _ksampler(positive=("3", 0), negative=("3", 2)) -> dict:
    return _node(
        "KSampler",
        "KSampler (2-way guidance)",
        model=["21", 0],
        seed=42,
        steps=20,
        cfg=7.5,
        sampler_name="euler",
        scheduler="normal",
        positive=list(positive),
        negative=list(negative),
        latent_image=["3", 3],
        denoise=1.0,
    )


def native_ksampler() -> dict:
    graph = _base("change the background")
    graph["15"] = _ksampler()
    return graph


def native_dual_cfg() -> dict:
    graph = _base("change the background")
    graph["15"] = _node(
        "RelightVidSchedule", "RelightVid Schedule (SIGMAS)", model=["21", 0], scheduler="ddim", steps=20, denoise=1.0
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
    graph["23"] = _node("RelightVidOfficialSampler", "RelightVid Official Sampler (DDPM/DDIM)", scheduler="ddim")
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


def native_controlnet() -> dict:
    graph = _base("change the background", positive=("28", 0), negative=("28", 1))
    graph["15"] = _ksampler()
    graph["26"] = _node("ControlNetLoader", "Load ControlNet Model (SD1.5)", control_net_name=CONTROLNET)
    graph["27"] = _node("Canny", "Canny (edges of each subject frame)", image=["9", 1], low_threshold=0.4,
                        high_threshold=0.8)
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


INPUTS = [SUBJECT, MASK_SEQUENCE, BACKGROUND]
WORKFLOWS = {
    "relightvid_native_ksampler": (
        native_ksampler,
        INPUTS,
        "RelightVid as a MODEL for ComfyUI's own KSampler (any sampler and scheduler; LoRAs go between Load "
        "Checkpoint and Apply RelightVid). KSampler's cfg is 2-way guidance: image and prompt together against no "
        "image. Clips longer than the window run in context windows.",
    ),
    "relightvid_native_dual_cfg": (
        native_dual_cfg,
        INPUTS,
        "RelightVid's own 3-way guidance with core nodes: DualCFGGuider (cfg_conds = text 7.5, cfg_cond2_negative "
        "= image 1.2, regular) and RelightVid Official Sampler over the official DDIM timesteps (RelightVid "
        "Schedule): the same latents as the RelightVid Sampler and `relightvid relight` for the same seed.",
    ),
    "relightvid_native_controlnet": (
        native_controlnet,
        INPUTS,
        "A ControlNet on top of RelightVid: Canny edges of each subject frame guide every frame (each context "
        "window gets its own hint frames), with an SD1.5 ControlNet from models/controlnet.",
    ),
}

# UI layout, as in specs.py: the graph in stacks of groups left to right, then the Note and the opening groups.
STACKS = [
    [("1. Models and prompts", "#3f5159", [["1", "2", "21"], ["13", "14"]])],
    [("2. Subject and mask", "#3f593f", [["4", "6"], ["9"]])],
    [("3. Lighting", "#59533f", [["10", "12"]])],
    [("4. Conditioning", "#4f3f59", [["26", "27", "28", "3"]])],
    [("5. Sample", "#593f3f", [["15", "22", "23", "24", "25"]])],
]
OPENING_GROUPS = [("6. Decode and save", "#444444", [["16", "17", "18"]])]
# As specs.TEST_SIZE_CPU_SECONDS (the same frontend run, after the sampler templates had loaded the models).
TEST_SIZE_CPU_SECONDS = {
    "relightvid_native_ksampler": 18.7,
    "relightvid_native_dual_cfg": 22.4,
    "relightvid_native_controlnet": 42.0,
}


def _files(name: str) -> dict:
    return CONTROLNET_FILES if name == "relightvid_native_controlnet" else MODEL_FILES


def note_text(name: str) -> str:
    return template_note(name, WORKFLOWS, TEST_SIZE_CPU_SECONDS, _files(name))


def node_models(name: str) -> dict[str, list[dict]]:
    """The frontend's ``models`` metadata of template ``name``, by node id."""
    return models_metadata(WORKFLOWS[name][0](), _files(name))


if __name__ == "__main__":
    for path in write_api_files(WORKFLOWS):
        print(path)
