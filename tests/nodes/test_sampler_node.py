"""The sampler node on the tiny model: shapes, scaling, seeds, IIE, windows, memory modes, errors, interruption."""

from __future__ import annotations

import types

import pytest
import torch
from _support.comfy_fakes import clip_frames, disc_masks, queue_time_filings

SETTINGS = {
    "seed": 7,
    "steps": 2,
    "scheduler": "ddim",
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


@pytest.fixture
def graph(pack, vae, clip):
    """Foreground (2 frames, 64x64), a light-preset background and text, as the nodes make them."""
    foreground, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0, images=clip_frames(2, 64, 64), mask=disc_masks(2, 64, 64)
    )
    background, _ = pack.node("RelightVidLightPreset").render(foreground, "left", "none", "#FFFFFF", 1.0, 1.0)
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("sunlight from the left"), clip=clip)
    return {"foreground": foreground, "background": background, "text": text}


def _relight(pack, model, graph, **overrides):
    (latent,) = pack.node("RelightVidSampler").relight(model, **graph, **{**SETTINGS, **overrides})
    return latent["samples"]


def test_sampler_returns_unscaled_comfy_latents(pack, relightvid_model, graph):
    samples = _relight(pack, relightvid_model, graph)
    assert samples.shape == (2, 4, 8, 8) and samples.dtype == torch.float32 and samples.device.type == "cpu"
    assert torch.isfinite(samples).all()


def test_sampler_same_seed_same_result(pack, relightvid_model, graph):
    first = _relight(pack, relightvid_model, graph, scheduler="ddpm")
    assert torch.equal(first, _relight(pack, relightvid_model, graph, scheduler="ddpm"))
    assert not torch.equal(first, _relight(pack, relightvid_model, graph, scheduler="ddpm", seed=8))


def test_sampler_iie_encodes_each_brightness(pack, relightvid_model, graph, vae):
    single = _relight(pack, relightvid_model, graph)
    calls = len(vae.calls)
    ensemble = _relight(pack, relightvid_model, graph, iie_factors="0.5, 1.0, 1.5")
    assert len(vae.calls) - calls == 3 + 1  # three foregrounds and the background
    assert not torch.equal(single, ensemble)
    assert torch.equal(single, _relight(pack, relightvid_model, graph, iie_factors="1"))


def test_sampler_memory_modes_agree(pack, relightvid_model, graph):
    fast = _relight(pack, relightvid_model, graph, memory_mode="fast", iie_factors="0.75, 1.25")
    low = _relight(pack, relightvid_model, graph, memory_mode="low", iie_factors="0.75, 1.25")
    torch.testing.assert_close(fast, low, atol=5e-4, rtol=0)


def test_sampler_auto_memory_splits_branches_by_the_traced_estimate(pack, relightvid_model, graph, monkeypatch):
    sampler_module = pack.module.nodes.sampler
    unet = relightvid_model.model.diffusion_model
    per_item = sampler_module.activation_bytes(unet, 2, 8, 8, tokens=graph["text"].cond.shape[-2])
    seen = []
    real_sample = sampler_module.sample

    def spy(*args, **kwargs):
        seen.append(kwargs["max_batch"])
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(sampler_module, "sample", spy)
    for budget in (5 * per_item, 2 * per_item + 1, 0):
        monkeypatch.setattr(sampler_module.host, "activation_budget", lambda _device, budget=budget: budget)
        _relight(pack, relightvid_model, graph, iie_factors="0.75, 1.25")  # 5 branches
    assert seen == [None, 2, 1]


def test_sampler_windows_for_a_long_clip(pack, relightvid_model, vae, clip):
    foreground, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0, images=clip_frames(5, 64, 64)
    )
    background, _ = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, 0, 1, 0)
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("x"), clip=clip)
    graph = {"foreground": foreground, "background": background, "text": text}
    samples = _relight(pack, relightvid_model, graph, window_length=3, window_overlap=1, closed_loop=True)
    assert samples.shape == (5, 4, 8, 8) and torch.isfinite(samples).all()


def test_sampler_background_from_another_foreground_names_both_counts(pack, relightvid_model, graph, vae):
    other, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0, images=clip_frames(3, 64, 64)
    )
    background, _ = pack.node("RelightVidBackground").fit(other, "loop", "cover", False, 0, 1, 0)
    with pytest.raises(pack.core.InputError, match="background has 3 frames but the foreground has 2"):
        _relight(pack, relightvid_model, {**graph, "background": background})


@pytest.mark.parametrize("text", ["", "0.5, x", "1.0, -1", "nan"])
def test_sampler_validates_iie_factors(pack, text):
    ((_name, message),) = queue_time_filings(pack.module, pack.nodes["RelightVidSampler"], {"iie_factors": text})
    assert "iie_factors" in message


def test_sampler_parses_factor_lists(pack):
    parse = pack.module.nodes.sampler.parse_factors
    assert parse("0.5, 0.75,1.0 1.25;1.5") == (0.5, 0.75, 1.0, 1.25, 1.5)
    assert queue_time_filings(pack.module, pack.nodes["RelightVidSampler"], {"iie_factors": "1.0"}) == []


def test_sampler_interrupt_raises_without_changing_inputs(pack, relightvid_model, graph, monkeypatch):
    host = pack.module.nodes.host
    frames_before = graph["foreground"].frames.clone()
    monkeypatch.setattr(host, "should_interrupt", lambda: True)
    with pytest.raises(pack.core.errors.SamplingInterrupted):
        _relight(pack, relightvid_model, graph)
    assert torch.equal(graph["foreground"].frames, frames_before)


def test_sampler_interrupt_becomes_comfyui_interrupt(pack, relightvid_model, graph, monkeypatch):
    """With ComfyUI present, the library's interruption surfaces as ComfyUI's own exception."""

    class InterruptProcessingException(Exception):
        pass

    state = {"flag": True}

    def throw_exception_if_processing_interrupted():
        if state.pop("flag", False):
            raise InterruptProcessingException()

    fake = types.SimpleNamespace(
        processing_interrupted=lambda: state.get("flag", False),
        throw_exception_if_processing_interrupted=throw_exception_if_processing_interrupted,
        InterruptProcessingException=InterruptProcessingException,
    )
    host = pack.module.nodes.host
    monkeypatch.setattr(host, "HAS_COMFY", True)
    monkeypatch.setattr(host, "model_management", fake)
    monkeypatch.setattr(host, "load_for_sampling", lambda patcher, memory: torch.device("cpu"))
    monkeypatch.setattr(host, "activation_budget", lambda device: 2**40)
    monkeypatch.setattr(host, "progress_bar", lambda total: None)
    monkeypatch.setattr(host, "_frame_decoder", lambda device: None)
    with pytest.raises(InterruptProcessingException):
        _relight(pack, relightvid_model, graph)
    assert "flag" not in state  # the flag is cleared, so the next queued job runs normally


def test_sampler_reports_progress_per_vae_chunk_and_window(pack, relightvid_model, graph, monkeypatch, caplog):
    """A long job moves the bar between VAE calls and between windows, and logs its U-Net pass count first."""
    host = pack.module.nodes.host
    bars = []

    class Bar:
        def __init__(self, total):
            self.total, self.values = total, []
            bars.append(self)

        def update_absolute(self, value, total=None, preview=None):
            self.values.append(value)

    monkeypatch.setattr(host, "progress_bar", Bar)
    monkeypatch.setattr(host, "ENCODE_CHUNK", 1)
    # The memory estimate traces a batch-1 call; one frame of the tiny model reaches a 1x1 level where a
    # per-frame GroupNorm of one value per group cannot run, so the estimate is left out of this test.
    monkeypatch.setattr(pack.module.nodes.sampler, "activation_bytes", lambda *_args, **_kwargs: 0)
    caplog.set_level("INFO")
    _relight(pack, relightvid_model, graph, window_length=1, window_overlap=0, steps=2)
    (bar,) = bars
    # 2 foreground + 2 background frames through the VAE, then 2 steps x 2 one-frame windows.
    assert bar.total == 4 + 4
    assert bar.values[:4] == [1, 2, 3, 4] and bar.values[-1] == bar.total
    assert bar.values == sorted(bar.values)
    assert "2 steps x 2 window(s) = 4 U-Net passes" in caplog.text
