"""Bad inputs against a real ComfyUI: refused when queued (POST /prompt answers 400 with node_errors, nothing
runs), in one sentence naming the input; what only the running node can see ends the job in one line. And the
grain at which a job reports progress."""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path

import pytest
import torch
from harness import EventStream, small_run_settings
from safetensors.torch import save_file

WORKFLOWS = Path(__file__).resolve().parents[2] / "example_workflows"
WORKFLOW = "relightvid_light_preset"
RUN_TIMEOUT = 900.0
# Only the keys and shapes ComfyUI's and our detection read: an SDXL U-Net's class embedding and 2048-d context.
SDXL_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
    "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (8, 2048),
}


def _graph(queue_tool, *extra: str, name: str = WORKFLOW) -> dict:
    graph = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    return queue_tool.substitute(graph, small_run_settings(name, "bad_input") + list(extra))


def _refusal(queue_tool, server, graph: dict) -> dict:
    """POST /prompt expecting a refusal; returns node id → the messages ComfyUI filed for it, in order."""
    history_before = server.get("/history")
    client = queue_tool.Client(server.url)
    reply = client.request("/prompt", {"prompt": graph, "client_id": client.client_id})
    assert reply.get("http_status") == 400, reply  # refused as a whole: no output runs
    assert reply["error"]["type"] == "prompt_outputs_failed_validation", reply
    assert server.get("/queue") == {"queue_running": [], "queue_pending": []}
    assert server.get("/history") == history_before
    messages = {}
    for node_id, entry in reply["node_errors"].items():
        # Ours: "input - sentence" under custom_validation_failed; ComfyUI's own: its message, then the input.
        texts = [
            error["details"].split(" - ", 1)[-1]
            if error["type"] == "custom_validation_failed"
            else f"{error['message']} ({error['details']})"
            for error in entry["errors"]
        ]
        assert not any("Traceback" in text or "\n" in text for text in texts), texts
        messages[node_id] = texts
    return messages


def test_sdxl_base_checkpoint_is_refused_when_queued_naming_sdxl(server, queue_tool):
    name = f"sdxl_shaped_{uuid.uuid4().hex[:6]}.safetensors"
    path = server.root / "models" / "checkpoints" / name
    save_file({key: torch.zeros(shape, dtype=torch.float16) for key, shape in SDXL_KEYS.items()}, str(path))
    try:
        messages = _refusal(queue_tool, server, _graph(queue_tool, f"2.base_checkpoint={name}"))
    finally:
        path.unlink()
    assert list(messages) == ["2"], messages
    (message,) = messages["2"]  # filed once
    assert message.startswith(f"base_checkpoint '{name}' is an SDXL model") and "SD1.5" in message, message


def test_missing_iclight_file_is_refused_once(server, queue_tool):
    messages = _refusal(queue_tool, server, _graph(queue_tool, "2.iclight_fbc=iclight_gone.safetensors"))
    assert list(messages) == ["2"] and len(messages["2"]) == 1, messages
    assert messages["2"][0] == (
        "iclight_fbc 'iclight_gone.safetensors' is not in models/relightvid or models/diffusion_models: download "
        "iclight_sd15_fbc.safetensors (IC-Light's fbc offsets) from "
        "https://huggingface.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fbc.safetensors into models/relightvid, "
        "then press R in ComfyUI to refresh the lists."
    )


def test_every_missing_file_of_apply_relightvid_is_named_once(server, queue_tool):
    graph = _graph(
        queue_tool,
        "2.iclight_fbc=iclight_gone.safetensors",
        "2.temporal_weights=relvid_gone.pth",
        name="relightvid_ksampler",
    )
    messages = _refusal(queue_tool, server, graph)
    assert list(messages) == ["2"] and len(messages["2"]) == 1, messages  # no stock "Value not in list"
    (message,) = messages["2"]
    assert message.count("iclight_gone.safetensors") == 1 and message.count("relvid_gone.pth") == 1, message
    assert "temporal_weights 'relvid_gone.pth' is not in models/relightvid: download relvid_mm_sd15_fbc.pth" in message
    assert "not registered" not in message and "animatediff" not in message and "/" + "tmp" not in message


def test_clip_text_encode_wired_straight_into_ksampler_is_refused_when_queued(server, queue_tool):
    graph = _graph(queue_tool, name="relightvid_ksampler")
    graph["15"]["inputs"]["positive"] = ["13", 0]
    messages = _refusal(queue_tool, server, graph)
    assert messages == {
        "2": [
            (
                "KSampler (2-way guidance) (node 15) samples this RelightVid MODEL with positive from CLIP Text "
                "Encode (prompt) (node 13), which carries no RelightVid image; connect positive from a RelightVid "
                "Conditioning node, not straight from CLIP Text Encode."
            )
        ]
    }, messages


def test_an_error_inside_a_core_sampler_is_shown_by_its_class_name(server, queue_tool):
    # A latent of another frame count than the conditioning's is only seen when KSampler samples.
    graph = _graph(queue_tool, name="relightvid_ksampler")
    graph["90"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}}
    graph["15"]["inputs"]["latent_image"] = ["90", 0]
    client = queue_tool.Client(server.url, timeout=300.0)
    status, cause, files, entry = queue_tool.run(client, graph, RUN_TIMEOUT, report=lambda _: None)
    (error,) = [data for event, data in entry["status"]["messages"] if event == "execution_error"]
    assert status == "error" and error["node_type"] == "KSampler", (status, cause)
    assert error["exception_type"] == "InputError", error["exception_type"]
    # ComfyUI itself appends "\n" and its tips (empty here) to every node error's message (execution.py).
    assert error["exception_message"].rstrip("\n") == (
        "the latent has 2 frames but the RelightVid conditioning has 4; make the latent from the same clip (the "
        "Conditioning node's latent, or VAE Encode of its frames)."
    ), error["exception_message"]
    assert not [name for name in files if name.endswith(".mp4")], files


@pytest.mark.parametrize(
    "assignments, node_id, expected",
    [
        (["9.width=100"], "9", "width must be a multiple of 8 pixels; got 100."),
        (["9.height=60"], "9", "height must be a multiple of 8 pixels; got 60."),
        (["15.window_length=8", "15.window_overlap=8"], "15", "window_overlap must be smaller than window_length"),
        (["15.iie_factors=bright"], "15", "iie_factors must be numbers"),
        (["15.window_overlap=40"], "15", "Value 40 bigger than max of 31 (window_overlap)"),  # ComfyUI's own
    ],
    ids=["width 100", "height 60", "overlap equals length", "iie factors", "overlap past its maximum"],
)
def test_settings_are_refused_when_queued_once(server, queue_tool, assignments, node_id, expected):
    messages = _refusal(queue_tool, server, _graph(queue_tool, *assignments))
    assert list(messages) == [node_id] and len(messages[node_id]) == 1, messages
    assert messages[node_id][0].startswith(expected), messages


@pytest.mark.parametrize(
    "node_id, name, expected",
    [
        ("15", "text_scale", "text_scale must be a finite number; got nan."),
        ("12", "intensity", "intensity must be a finite number; got nan."),
    ],
)
def test_nan_numbers_are_refused_when_queued_once(server, queue_tool, node_id, name, expected):
    graph = _graph(queue_tool)
    assert graph[node_id]["class_type"] in ("RelightVidSampler", "RelightVidLightPreset")
    graph[node_id]["inputs"][name] = math.nan  # sent as NaN, which ComfyUI's JSON parser and range check pass
    messages = _refusal(queue_tool, server, graph)
    assert messages == {node_id: [expected]}, messages


def test_nan_guidance_from_another_node_ends_the_job_in_one_sentence(server, queue_tool):
    # A linked value is only known when the node runs: then the node refuses it.
    graph = _graph(queue_tool)
    graph["90"] = {"class_type": "PrimitiveFloat", "inputs": {"value": math.nan}}
    graph["15"]["inputs"]["text_scale"] = ["90", 0]
    # Loading the full-size checkpoint on a busy CPU can hold the server's event loop for a while.
    client = queue_tool.Client(server.url, timeout=300.0)
    status, cause, files, _entry = queue_tool.run(client, graph, RUN_TIMEOUT, report=lambda _: None)
    assert status == "error" and cause.endswith("text_scale must be a finite number; got nan."), cause
    assert not [name for name in files if name.endswith(".mp4")], files


def test_sampler_progress_moves_per_step_in_windows(server, queue_tool):
    """Two steps over the 4-frame clip in windows of 2 (overlap 1: 3 windows): ComfyUI's own bar under the
    sampler node, one tick per step as for KSampler, to the step count."""
    client = queue_tool.Client(server.url, timeout=300.0)
    events = EventStream(server.url, client.client_id)
    progress, finished, deadline = [], None, time.time() + RUN_TIMEOUT
    try:  # read every event as it comes (no HTTP polling while the CPU is busy sampling)
        prompt_id = client.queue(_graph(queue_tool, "15.window_length=2", "15.window_overlap=1"))
        while finished is None and time.time() < deadline:
            event = events.next_event(timeout=10.0)
            if event is None or event["data"].get("prompt_id") != prompt_id:
                continue
            if event["type"] == "progress" and event["data"].get("node") == "15":
                progress.append((event["data"]["value"], event["data"]["max"]))
            if event["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                finished = event["type"]
    finally:
        events.close()
    entry = queue_tool.wait(client, prompt_id, RUN_TIMEOUT, report=lambda _: None)
    assert queue_tool.outcome(entry)[0] == "success", queue_tool.outcome(entry)
    assert progress == [(1, 2), (2, 2)], progress
    assert finished == "execution_success"
