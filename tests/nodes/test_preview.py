"""The animated progress preview: evenly spaced frames of x̂₀ (at most PREVIEW_MAX_FRAMES, at most every
other frame), decoded by ComfyUI's previewer on the preview's own thread and sent in turn to the running node's
preview through ComfyUI's progress registry, from a thread that stops with the node."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import types

import pytest
import torch
from PIL import Image

THREAD_NAME = "RelightVid preview"


class _FakePreviewer:
    """Like ComfyUI's Latent2RGB previewer: one image per call, from the first item of the batch; records
    the frames it decoded (their value), on which thread and in which grad mode, and can be held back."""

    def __init__(self):
        self.decoded: list[int] = []
        self.threads: set[str] = set()
        self.inference_mode: set[bool] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.delay = 0.0
        self.error: Exception | None = None

    def decode_latent_to_preview(self, x0):
        self.started.set()
        self.gate.wait(10)
        if self.error is not None:
            raise self.error
        time.sleep(self.delay)
        value = int(x0[0, 0, 0, 0].item())
        self.decoded.append(value)
        self.threads.add(threading.current_thread().name)
        self.inference_mode.add(torch.is_inference_mode_enabled())
        return Image.new("RGB", (x0.shape[-1], x0.shape[-2]), (value, 0, 0))


class _Registry:
    """ComfyUI's progress registry as the preview uses it: entries per node, and the images it was sent."""

    def __init__(self, frames_wanted: int):
        self.nodes = {"7": {"value": 3, "max": 10}}
        self.sent: list[tuple] = []
        self.thread_names: set[str] = set()
        self.enough = threading.Event()
        self.frames_wanted = frames_wanted

    def ensure_entry(self, node_id):
        return self.nodes.setdefault(node_id, {"value": 0, "max": 1})

    def update_progress(self, node_id, value, max_value, image=None):
        self.sent.append((node_id, value, max_value, image))
        self.thread_names.add(threading.current_thread().name)
        if len(self.sent) >= self.frames_wanted:
            self.enough.set()

    def reds(self) -> list[int]:
        return [image[1].getpixel((0, 0))[0] for *_, image in self.sent]


def _clip(frames: int, step: float = 1.0) -> torch.Tensor:
    """x̂₀ (frames, 4, 2, 2) whose frame k is ``step * k`` everywhere."""
    return (torch.arange(float(frames)) * step).view(frames, 1, 1, 1).expand(frames, 4, 2, 2)


def _preview_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


@pytest.fixture
def clip_preview(pack):
    return importlib.import_module(pack.module.__name__ + ".nodes.previews.clip_preview")


@pytest.fixture
def comfy_preview(clip_preview, monkeypatch):
    """The module as inside ComfyUI with previews on, running node "7"; (module, registry, previewer)."""
    registry = _Registry(frames_wanted=6)
    previewer = _FakePreviewer()
    comfy = types.SimpleNamespace(latent_formats=types.SimpleNamespace(SD15=object))
    previews = types.SimpleNamespace(get_previewer=lambda device, fmt: previewer, MAX_PREVIEW_RESOLUTION=512)
    context = types.SimpleNamespace(node_id="7", prompt_id="p")
    monkeypatch.setattr(clip_preview, "comfy", comfy, raising=False)
    monkeypatch.setattr(clip_preview, "latent_preview", previews)
    monkeypatch.setattr(clip_preview, "get_progress_state", lambda: registry)
    monkeypatch.setattr(clip_preview, "get_executing_context", lambda: context)
    yield clip_preview, registry, previewer
    previewer.gate.set()
    assert not _preview_threads()  # every test's preview thread has stopped


def test_clip_preview_plays_the_chosen_frames_in_turn(comfy_preview):
    module, registry, _previewer = comfy_preview
    with module.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(_clip(8, step=30.0))  # 8 frames: every other one, 0, 2, 4 and 6
        assert registry.enough.wait(10)
    count = len(registry.sent)
    assert registry.reds()[:6] == [
        0,
        60,
        120,
        180,
        0,
        60,
    ]  # in order, then around again
    assert all(
        node == "7" and (value, top) == (3, 10) for node, value, top, _ in registry.sent
    )  # the node's progress bar is kept as it is
    assert {image[0] for *_, image in registry.sent} == {"JPEG"}
    assert registry.sent[0][3][2] == 512
    assert registry.thread_names == {THREAD_NAME}  # never on the node's own thread
    time.sleep(0.1)  # 20 frame intervals
    assert len(registry.sent) == count  # nothing is sent once the node's work is over


def test_clip_preview_swaps_in_each_new_step(comfy_preview):
    module, registry, _previewer = comfy_preview
    with module.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(torch.zeros(2, 4, 2, 2))
        assert registry.enough.wait(10)
        registry.enough.clear()
        registry.frames_wanted = len(registry.sent) + 4
        preview.show(torch.full((2, 4, 2, 2), 90.0))
        assert registry.enough.wait(10)
    assert registry.reds()[-1] == 90


@pytest.mark.parametrize("frames", [1, 2, 3, 7, 8, 15, 16, 17, 48, 49, 200])
@pytest.mark.parametrize("max_frames", [1, 4, 8])
def test_preview_stride_bounds_the_frames_and_spreads_them(clip_preview, frames, max_frames):
    stride = clip_preview.preview_stride(frames, max_frames)
    chosen = range(0, frames, stride)
    assert 1 <= len(chosen) <= max_frames
    assert len(chosen) <= (frames + 1) // 2  # every other frame at most
    assert frames - chosen[-1] <= stride  # evenly spread to the clip's end
    if frames >= 2 * max_frames:
        assert len(chosen) > max_frames / 2  # the cap is used, not undershot


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (16, list(range(0, 16, 2))),
        (48, list(range(0, 48, 6))),
        (17, [0, 3, 6, 9, 12, 15]),
    ],
)
def test_clip_preview_decodes_at_most_the_cap_evenly_over_the_clip(comfy_preview, frames, expected):
    module, registry, previewer = comfy_preview
    assert module.PREVIEW_MAX_FRAMES == 8
    registry.frames_wanted = len(expected)
    with module.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(_clip(frames))
        assert registry.enough.wait(10)
    assert previewer.decoded == expected
    assert len(previewer.decoded) <= module.PREVIEW_MAX_FRAMES


def test_clip_preview_decodes_off_the_sampling_thread_in_inference_mode(comfy_preview):
    module, registry, previewer = comfy_preview
    previewer.gate.clear()  # the previewer is held: a decode on this thread would never return
    with module.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        start = time.perf_counter()
        preview.show(_clip(16))
        assert time.perf_counter() - start < 5.0
        assert previewer.started.wait(10)  # the preview thread is decoding meanwhile
        previewer.gate.set()
        assert registry.enough.wait(10)
    assert previewer.threads == {THREAD_NAME}
    assert previewer.inference_mode == {True}  # grad mode is per thread: set on the preview's


def test_clip_preview_decodes_only_the_newest_step(comfy_preview):
    module, registry, previewer = comfy_preview
    previewer.gate.clear()
    with module.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(torch.full((2, 4, 2, 2), 10.0))
        assert previewer.started.wait(10)  # decoding step 1's frame
        preview.show(torch.full((2, 4, 2, 2), 20.0))  # step 2 arrives meanwhile ...
        preview.show(torch.full((2, 4, 2, 2), 30.0))  # ... and step 3 replaces it
        previewer.gate.set()
        registry.frames_wanted = 4
        assert registry.enough.wait(10)
        while 30 not in registry.reds():
            registry.enough.clear()
            registry.frames_wanted = len(registry.sent) + 1
            assert registry.enough.wait(10)
    assert previewer.decoded[:2] == [10, 30]  # step 2 was never decoded
    assert 20 not in previewer.decoded


def test_clip_preview_thread_stops_when_the_body_raises(comfy_preview):
    module, registry, previewer = comfy_preview
    previewer.delay = 0.05  # 8 frames take 0.4 s: the exit comes in the middle of them
    preview = module.ClipPreview(torch.device("cpu"), frame_rate=200.0)
    with pytest.raises(RuntimeError, match="sampling failed"), preview:
        preview.show(_clip(16))
        assert previewer.started.wait(10)
        raise RuntimeError("sampling failed")
    assert not _preview_threads()  # joined before the exception went on
    assert len(previewer.decoded) < 8  # the decoding stopped between frames
    assert registry.sent == []


def test_clip_preview_previewer_failure_ends_only_the_preview(comfy_preview, caplog):
    module, registry, previewer = comfy_preview
    previewer.error = RuntimeError("out of memory")
    preview = module.ClipPreview(torch.device("cpu"), frame_rate=200.0)
    with caplog.at_level(logging.WARNING), preview:
        preview.show(_clip(4))
        assert previewer.started.wait(10)
        for _ in range(500):
            if not _preview_threads():
                break
            time.sleep(0.01)
        assert not _preview_threads()  # the thread ended by itself
        preview.show(_clip(4))  # later steps still go through show() untouched
    assert registry.sent == []
    assert "out of memory" in caplog.text


def test_clip_preview_is_off_outside_comfyui_or_with_previews_off(comfy_preview, monkeypatch):
    module, registry, _previewer = comfy_preview
    monkeypatch.setattr(module.latent_preview, "get_previewer", lambda device, fmt: None)
    with module.ClipPreview(torch.device("cpu")) as preview:  # --preview-method none
        assert not preview.active
        preview.show(torch.zeros(2, 4, 2, 2))
    monkeypatch.setattr(module, "latent_preview", None)  # outside ComfyUI
    with module.ClipPreview(torch.device("cpu")) as preview:
        assert not preview.active
        preview.show(torch.zeros(2, 4, 2, 2))
    assert registry.sent == []
    assert not _preview_threads()


def test_clip_preview_is_off_without_a_running_node(comfy_preview, monkeypatch):
    module, registry, _previewer = comfy_preview
    monkeypatch.setattr(module, "get_executing_context", lambda: None)
    with module.ClipPreview(torch.device("cpu")) as preview:
        assert not preview.active
        preview.show(torch.zeros(2, 4, 2, 2))
    assert registry.sent == []


def test_clip_preview_rejects_a_cap_below_one_frame(comfy_preview):
    module, _registry, _previewer = comfy_preview
    with pytest.raises(ValueError, match="max_frames must be at least 1, got 0"):
        module.ClipPreview(torch.device("cpu"), max_frames=0)
