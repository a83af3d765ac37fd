"""The pack inside a real ComfyUI on the CPU: registration, every API workflow, bad inputs and interruption."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import av
import pytest
from harness import FRAMES, SIZE, EventStream, small_run_settings
from weights import ICLIGHT, ICLIGHT_FC, MOTION

WORKFLOWS = Path(__file__).resolve().parents[2] / "example_workflows"
API_FILES = sorted((WORKFLOWS / "api").glob("*.json"))
RUN_TIMEOUT = 900.0


def _graph(queue_tool, name: str, *extra: str) -> dict:
    graph = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    return queue_tool.substitute(graph, small_run_settings(name, name) + list(extra))


def _client(queue_tool, server):
    return queue_tool.Client(server.url)


def test_object_info_lists_every_node(server, pack_node_ids):
    info = server.get("/object_info")
    assert set(pack_node_ids) <= set(info), sorted(set(pack_node_ids) - set(info))
    assert info["RelightVidSampler"]["category"] == "RelightVid/sampling"
    assert "relightvid" in server.get("/models")


def test_log_shows_the_pack_imported(server):
    log = server.log_text()
    assert "ComfyUI-RelightVid" in log
    failed = [line for line in log.splitlines() if "IMPORT FAILED" in line and "RelightVid" in line]
    assert not failed, failed


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_runs(server, queue_tool, path):
    status, cause, files, _entry = queue_tool.run(
        _client(queue_tool, server), _graph(queue_tool, path.stem), RUN_TIMEOUT, report=lambda _: None
    )
    assert status == "success", cause
    videos = [server.root / name for name in files if name.endswith(".mp4")]
    assert videos and videos[0].is_file(), files
    with av.open(str(videos[0])) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (SIZE, SIZE, 3)


def _error_of(queue_tool, server, graph) -> tuple[str, str]:
    status, cause, _files, _entry = queue_tool.run(
        _client(queue_tool, server), graph, RUN_TIMEOUT, report=lambda _: None
    )
    return status, cause


def test_fc_file_is_not_offered_and_is_refused_when_queued_then_the_next_job_runs(server, queue_tool):
    # The loader lists only files that fit (the fc file's 8-channel conv_in does not); queued anyway, the file
    # is refused in the pack's sentence, naming what it is and where the right one comes from.
    offered = server.get("/object_info/RelightVidUNetLoader")["RelightVidUNetLoader"]["input"]["required"]
    assert ICLIGHT_FC not in offered["iclight_fbc"][0]
    expected = (
        f"settings - iclight_fbc '{ICLIGHT_FC}' is the IC-Light fc model (foreground-only, 8-channel), but iclight_fbc "
        "needs IC-Light's fbc offsets: download iclight_sd15_fbc.safetensors"
    )
    with pytest.raises(queue_tool.WorkflowError, match=re.escape(expected)) as caught:
        _client(queue_tool, server).queue(_graph(queue_tool, "relightvid_light_preset", f"2.iclight_fbc={ICLIGHT_FC}"))
    assert "Value not in list" not in str(caught.value)
    # The refusal leaves nothing behind: the next job runs.
    status, cause = _error_of(queue_tool, server, _graph(queue_tool, "relightvid_light_preset", "15.seed=11"))
    assert status == "success", cause


def test_every_model_list_offers_only_files_of_its_kind(server):
    info = server.get("/object_info")
    lists = {
        (node, name): info[node]["input"]["required"][name][0]
        for node, name in [
            ("RelightVidUNetLoader", "iclight_fbc"),
            ("RelightVidTemporalLoader", "temporal_weights"),
            ("RelightVidApplyModel", "iclight_fbc"),
            ("RelightVidApplyModel", "temporal_weights"),
        ]
    }
    for (node, name), files in lists.items():
        expected = [ICLIGHT] if name == "iclight_fbc" else [MOTION]  # the test folders also hold the fc file
        assert files == expected, (node, name, files)


def test_missing_model_file_is_refused_naming_the_folder(server, queue_tool):
    graph = _graph(queue_tool, "relightvid_light_preset", "3.temporal_weights=relvid_missing.pth")
    with pytest.raises(queue_tool.WorkflowError, match="models/relightvid") as caught:
        _client(queue_tool, server).queue(graph)
    assert "not registered" not in str(caught.value) and str(server.root) not in str(caught.value)


def _execution_error(entry: dict) -> dict:
    (error,) = [data for event, data in entry["status"]["messages"] if event == "execution_error"]
    return error


def test_unmatched_frame_counts_end_in_a_one_line_error(server, queue_tool):
    graph = _graph(queue_tool, "relightvid_background_video", "10.file=background_short.mp4", "12.length_policy=trim")
    client = _client(queue_tool, server)
    status, cause, _files, entry = queue_tool.run(client, graph, RUN_TIMEOUT, report=lambda _: None)
    assert status == "error" and "has 2 frames but the foreground has 4" in cause, cause
    # ComfyUI shows the class name alone as the error's type, as for its own errors.
    assert _execution_error(entry)["exception_type"] == "InputError", _execution_error(entry)


def test_interrupt_mid_sampling_then_the_next_job_runs(server, queue_tool):
    client = _client(queue_tool, server)
    events = EventStream(server.url, client.client_id)
    try:
        prompt_id = client.queue(_graph(queue_tool, "relightvid_light_preset", "15.steps=200", "15.seed=5"))
        deadline, sampling = time.time() + RUN_TIMEOUT, False
        while time.time() < deadline and not sampling:
            event = events.next_event(timeout=5.0)
            sampling = bool(event and event["type"] == "progress" and event["data"].get("node") == "15")
        client.interrupt()
        entry = queue_tool.wait(client, prompt_id, RUN_TIMEOUT, report=lambda _: None)
    finally:
        events.close()
    status, cause = queue_tool.outcome(entry)
    assert sampling, "the sampler never reported progress"
    assert status == "interrupted" and "node 15" in cause, (status, cause)
    status, cause = _error_of(queue_tool, server, _graph(queue_tool, "relightvid_light_preset", "15.seed=12"))
    assert status == "success", cause


def _latent_run(queue_tool, server, graph: dict, prefixes: list[str]) -> dict[str, object]:
    """Run ``graph`` after emptying ComfyUI's cache (``/free``: nothing is reused from an earlier prompt) and
    return the samples its Save Latent nodes wrote, by filename prefix."""
    from safetensors.torch import load_file

    server.post("/free", {"free_memory": True})
    status, cause, _files, _entry = queue_tool.run(_client(queue_tool, server), graph, RUN_TIMEOUT, report=lambda _: None)
    assert status == "success", cause
    return {prefix: load_file(max(server.output_dir.glob(f"{prefix}_*.latent")))["latent_tensor"] for prefix in prefixes}


def test_two_relightvid_models_in_one_prompt_each_give_what_they_give_alone(server, queue_tool):
    # One RelightVid MODEL, sampled by two RelightVid Samplers of different windows (each its own clone: the
    # whole 4-frame clip per U-Net call, and 2-frame windows), in one prompt and each in a prompt of its own.
    tag = uuid.uuid4().hex[:8]
    whole, windowed = f"two_models_{tag}_whole", f"two_models_{tag}_windowed"
    graph = _graph(queue_tool, "relightvid_background_video")
    graph["40"] = {"class_type": "RelightVidSampler", "inputs": {**graph["15"]["inputs"], "window_length": 2, "window_overlap": 1}}
    graph["41"] = {"class_type": "SaveLatent", "inputs": {"samples": ["15", 0], "filename_prefix": whole}}
    graph["42"] = {"class_type": "SaveLatent", "inputs": {"samples": ["40", 0], "filename_prefix": windowed}}
    video = ("16", "17", "18")  # decoding and saving the video: not needed here

    def without(*dropped: str) -> dict:
        return {node_id: node for node_id, node in graph.items() if node_id not in (*video, *dropped)}

    both = _latent_run(queue_tool, server, without(), [whole, windowed])
    alone = {
        whole: _latent_run(queue_tool, server, without("40", "42"), [whole])[whole],
        windowed: _latent_run(queue_tool, server, without("15", "41"), [windowed])[windowed],
    }
    assert both[whole].shape == (FRAMES, 4, SIZE // 8, SIZE // 8)
    assert (both[whole] - both[windowed]).abs().max() > 1e-3  # the windows change the result: a real test
    for prefix in (whole, windowed):
        assert (both[prefix] - alone[prefix]).abs().max().item() == 0.0, prefix


@pytest.fixture(scope="session")
def pack_node_ids():
    import importlib.util
    import sys

    root = Path(__file__).resolve().parents[2]
    name = f"relightvid_pack_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return list(module.NODE_CLASS_MAPPINGS)
