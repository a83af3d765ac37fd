"""The native-sampling nodes without ComfyUI: conditioning layout, official schedules, the IIE maths, checks.

What needs ComfyUI's samplers (parity with the library, KSampler, windows) is in
tests/integration/test_native_sampling.py.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from _support.comfy_fakes import clip_frames, disc_masks, queue_time_filings

from relightvid_core.sampling import Conditions, Guidance, build_scheduler, noise_levels
from relightvid_core.vae import SD_LATENT_SCALE

FRAMES = 3


def _set_values(conditioning, values):
    """ComfyUI's node_helpers.conditioning_set_values: copies every entry's extras, then sets ``values``."""
    return [[embedding, {**extras, **values}] for embedding, extras in conditioning]


@pytest.fixture
def native(pack, monkeypatch):
    module = sys.modules[pack.module.__name__ + ".nodes.native_sampling"]
    monkeypatch.setattr(module, "node_helpers", types.SimpleNamespace(conditioning_set_values=_set_values))
    return module


@pytest.fixture
def lighting(pack, vae):
    foreground, *_ = pack.node("RelightVidForeground").prepare(
        vae, "center_crop", 64, 64, "official_128", 0, 0.0, False, 0, 1, 0,
        images=clip_frames(FRAMES, 64, 64), mask=disc_masks(FRAMES, 64, 64),
    )
    background, _ = pack.node("RelightVidLightPreset").render(foreground, "left", "none", "#FFFFFF", 1.0, 1.0)
    return foreground, background


def test_conditioning_puts_the_unscaled_image_on_positive_and_middle_only(pack, native, lighting, clip, vae):
    foreground, background = lighting
    prompt, empty = clip.encode("warm light"), clip.encode("")
    positive, middle, negative, latent = pack.node("RelightVidNativeConditioning").condition(
        foreground, background, prompt, empty
    )
    key = native.RELIGHTVID_IMAGE_KEY
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


def test_conditioning_no_background_is_the_zero_latent(pack, native, lighting, clip):
    foreground, _ = lighting
    (nothing, _) = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, 0, 1, 0)
    positive, *_ = pack.node("RelightVidNativeConditioning").condition(
        foreground, nothing, clip.encode("x"), clip.encode("")
    )
    image = positive[0][1][native.RELIGHTVID_IMAGE_KEY]
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
def test_schedule_official_timesteps(native, scheduler, first, last, final):
    timesteps, end = native.official_timesteps(scheduler, 20, 1.0)
    assert len(timesteps) == 20 and timesteps[0] == first and timesteps[-1] == last and end == final
    assert all(a - b == 50 for a, b in zip(timesteps, timesteps[1:]))


def test_schedule_denoise_keeps_the_last_steps(native):
    timesteps, _ = native.official_timesteps("ddim", 5, 0.5)
    assert timesteps == native.official_timesteps("ddim", 10, 1.0)[0][-5:] == [401, 301, 201, 101, 1]


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
def test_schedule_bad_settings_are_one_sentence(pack, native, name, value, message):
    settings = {"scheduler": "ddim", "steps": 4, "denoise": 1.0, name: value}
    with pytest.raises(pack.core.errors.InputError, match=message):
        native.official_timesteps(**settings)


def test_ensemble_prediction_equals_the_library_iie(native):
    generator = torch.Generator().manual_seed(0)
    outputs = [torch.randn(1, FRAMES, 4, 8, 8, generator=generator) for _ in range(7)]  # uncond + 3 factors
    guidance = Guidance(text_cfg=7.5, img_cfg=1.2)
    images = tuple(torch.zeros(1, FRAMES, 8, 8, 8) for _ in range(3))
    conditions = Conditions(images=images, text=torch.zeros(1, 5, 32), text_uncond=torch.zeros(1, 5, 32))
    library = guidance.wrap(lambda x, t, branches: outputs[: len(branches)])(outputs[0], torch.tensor(1), conditions)
    assert torch.equal(native.ensemble_prediction(guidance, outputs[0], outputs[1:]), library)


def test_ensemble_of_one_factor_is_three_way_guidance(native):
    uncond, image, text = (torch.full((2, 4, 1, 1), value) for value in (1.0, 2.0, 4.0))
    single = native.ensemble_prediction(Guidance(text_cfg=7.5, img_cfg=1.2), uncond, [image, text])
    # ε_neg + cfg2·(ε_mid − ε_neg) + cfg1·(ε_pos − ε_mid), DualCFGGuider's regular style
    assert torch.equal(single, torch.full((2, 4, 1, 1), 1.0 + 1.2 * 1.0 + 7.5 * 2.0))


def test_guider_and_windows_need_comfyui(pack, native, lighting, clip):
    foreground, background = lighting
    with pytest.raises(pack.core.errors.InputError, match="only runs inside ComfyUI"):
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
