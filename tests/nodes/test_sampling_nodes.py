"""The sampling nodes without ComfyUI: conditioning layout, official schedules, and the checks that refuse bad
input before anything samples.

What needs ComfyUI's samplers (the RelightVid Sampler, the official sampler, the IIE guider, parity with the
library, KSampler, windows) is in tests/integration/test_native_sampling.py.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from _support.comfy_fakes import clip_frames, disc_masks, queue_time_filings

from relightvid_core.errors import InputError
from relightvid_core.sampling import build_scheduler, noise_levels
from relightvid_core.sampling.schedulers import official_timesteps
from relightvid_core.vae import SD_LATENT_SCALE

FRAMES = 3


def _set_values(conditioning, values):
    """ComfyUI's node_helpers.conditioning_set_values: copies every entry's extras, then sets ``values``."""
    return [[embedding, {**extras, **values}] for embedding, extras in conditioning]


@pytest.fixture
def native(pack, monkeypatch):
    """The schedule module, with ComfyUI's node_helpers stood in for the conditioning nodes."""
    monkeypatch.setitem(sys.modules, "node_helpers", types.SimpleNamespace(conditioning_set_values=_set_values))
    return sys.modules[pack.module.__name__ + ".nodes.sampling.schedule"]


@pytest.fixture(scope="module")
def key(pack):
    return sys.modules[pack.module.__name__ + ".nodes.model_patch.iclight"].RELIGHTVID_IMAGE_KEY


@pytest.fixture
def lighting(pack, vae):
    foreground, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0,
        images=clip_frames(FRAMES, 64, 64), mask=disc_masks(FRAMES, 64, 64),
    )
    background, _ = pack.node("RelightVidLightPreset").render(foreground, "left", "none", "#FFFFFF", 1.0, 1.0)
    return foreground, background


def test_conditioning_puts_the_unscaled_image_on_positive_and_middle_only(pack, native, key, lighting, clip, vae):
    foreground, background = lighting
    prompt, empty = clip.encode("warm light"), clip.encode("")
    positive, middle, negative, latent = pack.node("RelightVidNativeConditioning").condition(
        foreground, background, prompt, empty
    )
    (expected,) = pack.core.sampling.iie_image_conditions(
        foreground.frames, foreground.masks, (1.0,), lambda f: vae.encode(f) * SD_LATENT_SCALE,
        vae.encode(background.frames) * SD_LATENT_SCALE, foreground.gray,
    )
    image = positive[0][1][key]
    assert image.shape == (FRAMES, 8, 8, 8)
    torch.testing.assert_close(image, expected[0] / SD_LATENT_SCALE, atol=1e-5, rtol=1e-5)
    assert middle[0][1][key] is image and torch.equal(middle[0][0], empty[0][0])
    assert torch.equal(positive[0][0], prompt[0][0])
    assert negative is empty and key not in empty[0][1] and key not in prompt[0][1]
    assert torch.equal(latent["samples"], torch.zeros(FRAMES, 4, 8, 8))


def test_conditioning_no_background_is_the_zero_latent(pack, native, key, lighting, clip):
    foreground, _ = lighting
    (nothing, _) = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, 0, 1, 0)
    positive, *_ = pack.node("RelightVidNativeConditioning").condition(
        foreground, nothing, clip.encode("x"), clip.encode("")
    )
    image = positive[0][1][key]
    assert torch.equal(image[:, 4:], torch.zeros(FRAMES, 4, 8, 8)) and image[:, :4].abs().sum() > 0


def test_conditioning_refuses_a_background_of_another_clip(pack, native, lighting, vae, clip):
    foreground, _ = lighting
    other, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0, images=clip_frames(2, 64, 64)
    )
    background, _ = pack.node("RelightVidLightPreset").render(other, "left", "none", "#FFFFFF", 1.0, 1.0)
    with pytest.raises(pack.core.errors.InputError, match="has 2 frames but the foreground has 3"):
        pack.node("RelightVidNativeConditioning").condition(foreground, background, clip.encode("x"), clip.encode(""))


def test_conditioning_refuses_an_already_conditioned_input(pack, native, lighting, clip):
    foreground, background = lighting
    node = pack.node("RelightVidNativeConditioning")
    positive, *_ = node.condition(foreground, background, clip.encode("x"), clip.encode(""))
    with pytest.raises(pack.core.errors.InputError, match="positive already carries a RelightVid image"):
        node.condition(foreground, background, positive, clip.encode(""))
    with pytest.raises(pack.core.errors.InputError, match="negative must be the CONDITIONING"):
        node.condition(foreground, background, clip.encode("x"), [])


@pytest.mark.parametrize(
    ("scheduler", "first", "last", "final"), [("ddpm", 950, 0, None), ("ddim", 951, 1, 0)]
)
def test_schedule_official_timesteps(scheduler, first, last, final):
    timesteps, end = official_timesteps(scheduler, 20, 1.0)
    assert len(timesteps) == 20 and timesteps[0] == first and timesteps[-1] == last and end == final
    assert all(a - b == 50 for a, b in zip(timesteps, timesteps[1:]))


def test_schedule_denoise_keeps_the_last_steps():
    timesteps, _ = official_timesteps("ddim", 5, 0.5)
    assert timesteps == official_timesteps("ddim", 10, 1.0)[0][-5:] == [401, 301, 201, 101, 1]


def test_schedule_sigmas_are_the_library_noise_levels(native):
    alphas_cumprod = build_scheduler("ddim", 4).alphas_cumprod

    class DiscreteSchedule:  # ComfyUI's ModelSamplingDiscrete at integer timesteps
        def sigma(self, timestep):
            return ((1 - alphas_cumprod[timestep.long()]) / alphas_cumprod[timestep.long()]).sqrt()

    for scheduler, final in (("ddim", DiscreteSchedule().sigma(torch.tensor([0]))), ("ddpm", torch.zeros(1))):
        sigmas = native.official_sigmas(DiscreteSchedule(), scheduler, 4, 1.0)
        expected = torch.cat([noise_levels(build_scheduler(scheduler, 4)), final.float()])
        torch.testing.assert_close(sigmas, expected, atol=0, rtol=1e-6)


@pytest.mark.parametrize(("name", "value", "message"), [("scheduler", "euler", "scheduler must be one of ddpm, ddim"),
                                                        ("denoise", 0.0, "denoise must be in")])
def test_schedule_bad_settings_are_one_sentence(pack, name, value, message):
    settings = {"name": "ddim", "steps": 4, "denoise": 1.0, name.replace("scheduler", "name"): value}
    with pytest.raises(InputError, match=message):
        official_timesteps(**settings)


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_the_sampler_node_samples_the_official_noise_levels(native, scheduler):
    class DiscreteSchedule:  # ComfyUI's ModelSamplingDiscrete at integer timesteps
        def sigma(self, timestep):
            alphas_cumprod = build_scheduler("ddim", 4).alphas_cumprod
            return ((1 - alphas_cumprod[timestep.long()]) / alphas_cumprod[timestep.long()]).sqrt()

    assert torch.equal(
        native.sampler_sigmas(DiscreteSchedule(), scheduler, 4), native.official_sigmas(DiscreteSchedule(), scheduler, 4)
    )


@pytest.mark.parametrize("scheduler", ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_karras", "unipc"])
def test_the_other_schedulers_run_comfyuis_sampler_over_the_command_lines_noise_levels(native, scheduler):
    sigmas = native.sampler_sigmas(None, scheduler, 6)
    expected = noise_levels(build_scheduler(scheduler, 6))
    assert len(sigmas) == 7 and sigmas[-1] == 0 and torch.equal(sigmas[:-1], expected)
    assert native.COMFY_SAMPLERS[scheduler] in {"euler", "euler_ancestral", "dpmpp_2m", "uni_pc"}


SAMPLER_SETTINGS = {
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
}


def _relight(pack, model, foreground, background, text, **overrides):
    return pack.node("RelightVidSampler").relight(model, foreground, background, text, **{**SAMPLER_SETTINGS, **overrides})


def test_sampler_refuses_a_background_of_another_clip_before_sampling(pack, native, lighting, vae, clip, base_model):
    foreground, _ = lighting
    other, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0, images=clip_frames(2, 64, 64)
    )
    background, _ = pack.node("RelightVidBackground").fit(other, "loop", "cover", False, 0, 1, 0)
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("x"), clip=clip)
    with pytest.raises(pack.core.InputError, match="background has 2 frames but the foreground has 3"):
        _relight(pack, base_model, foreground, background, text)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iie_factors": "0.5, x"}, "iie_factors must be numbers"),
        ({"window_length": 4, "window_overlap": 4}, "window_overlap must be smaller than window_length"),
        ({"steps": 0}, "steps"),
    ],
)
def test_sampler_refuses_bad_settings_in_one_sentence(pack, lighting, clip, base_model, overrides, message):
    foreground, background = lighting
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("x"), clip=clip)
    with pytest.raises(pack.core.InputError, match=message) as caught:
        _relight(pack, base_model, foreground, background, text, **overrides)
    assert "\n" not in str(caught.value)


def test_sampler_needs_comfyui(pack, native, lighting, clip, base_model):
    foreground, background = lighting
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("x"), clip=clip)
    with pytest.raises(pack.core.InputError, match="runs only inside ComfyUI"):
        _relight(pack, base_model, foreground, background, text)


@pytest.mark.parametrize("text", ["", "0.5, x", "1.0, -1", "nan"])
def test_sampler_validates_iie_factors_when_queued(pack, text):
    ((_name, message),) = queue_time_filings(pack.module, pack.nodes["RelightVidSampler"], {"iie_factors": text})
    assert "iie_factors" in message


def test_sampler_parses_factor_lists(pack):
    parse = sys.modules[pack.module.__name__ + ".nodes.sampling.settings"].parse_factors
    assert parse("0.5, 0.75,1.0 1.25;1.5") == (0.5, 0.75, 1.0, 1.25, 1.5)
    assert queue_time_filings(pack.module, pack.nodes["RelightVidSampler"], {"iie_factors": "1.0"}) == []


def test_official_sampler_node_needs_comfyui_and_an_official_scheduler(pack):
    node = pack.node("RelightVidOfficialSampler")
    with pytest.raises(pack.core.InputError, match="scheduler must be one of ddpm, ddim"):
        node.sampler("euler")
    with pytest.raises(pack.core.InputError, match="runs only inside ComfyUI"):
        node.sampler("ddpm")


def test_guider_and_windows_need_comfyui(pack, native, lighting, clip):
    foreground, background = lighting
    with pytest.raises(pack.core.errors.InputError, match="runs only inside ComfyUI"):
        pack.node("RelightVidIIEGuider").guider(
            object(), foreground, background, clip.encode("x"), clip.encode(""), "0.5, 1.5", 7.5, 1.2
        )
    with pytest.raises(pack.core.errors.InputError, match="window_overlap must be smaller"):
        pack.node("RelightVidContextWindows").apply(object(), 4, 4, "pyramid", False)


def test_iie_guider_validates_factors(pack):
    node = pack.nodes["RelightVidIIEGuider"]
    assert queue_time_filings(pack.module, node, {"iie_factors": "0.5, 1.0"}) == []
    ((_name, message),) = queue_time_filings(pack.module, node, {"iie_factors": "bright"})
    assert "iie_factors" in message
