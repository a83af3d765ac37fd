"""The sampling loop: schedulers, seeds, callbacks, interruption and input checks."""

from __future__ import annotations

import pytest
import torch
from _support.sampling import UNetSpy, sampler_inputs
from _support.tiny_weights import tiny_network

from relightvid_core.errors import InputError, SamplingInterrupted
from relightvid_core.sampling import SCHEDULER_NAMES, ContextWindows, build_scheduler, noise_levels, predict_x0, sample

STOCHASTIC = ("ddpm", "euler_ancestral")


@pytest.fixture(scope="module")
def unet():
    return tiny_network(0, in_channels=12).eval()


def test_official_schedules_at_20_steps():
    assert build_scheduler("ddpm", 20).timesteps.tolist() == list(range(950, -1, -50))
    assert build_scheduler("ddim", 20).timesteps.tolist() == list(range(951, 0, -50))


@pytest.mark.parametrize("name", ["ddim", "euler", "euler_ancestral"])
def test_predict_x0_matches_scheduler_prediction(name):
    scheduler = build_scheduler(name, 5)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 4, 3, 3, generator=generator) * scheduler.init_noise_sigma
    eps = torch.randn(x.shape, generator=generator)
    t = scheduler.timesteps[0]
    model_input = scheduler.scale_model_input(x, t)
    expected = scheduler.step(eps, t, x, generator=generator).pred_original_sample
    x0 = predict_x0(model_input, eps, noise_levels(scheduler)[0].item())
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_same_seed_same_output(unet, name):
    inputs = sampler_inputs(frames=1)
    first = sample(unet, **inputs, scheduler=name, steps=2, generator=torch.Generator().manual_seed(7))
    again = sample(unet, **inputs, scheduler=name, steps=2, generator=torch.Generator().manual_seed(7))
    assert torch.isfinite(first).all() and torch.equal(first, again)
    if name in STOCHASTIC:
        other = sample(unet, **inputs, scheduler=name, steps=2, generator=torch.Generator().manual_seed(8))
        assert not torch.allclose(first, other)


def test_callback_reports_every_step_and_inputs_stay_intact(unet):
    inputs = sampler_inputs(batch=2, frames=2)
    originals = {key: value.clone() for key, value in inputs.items()}
    steps = []
    final = sample(unet, **inputs, scheduler="euler", steps=3, callback=steps.append)
    assert [(s.index, s.total) for s in steps] == [(0, 3), (1, 3), (2, 3)]
    assert [s.timestep for s in steps] == build_scheduler("euler", 3).timesteps.tolist()
    assert all(s.latents.shape == s.denoised.shape == inputs["latents"].shape for s in steps)
    assert torch.equal(steps[-1].latents, final) and final.shape == inputs["latents"].shape
    assert all(torch.equal(inputs[key], originals[key]) for key in inputs)


def test_text_batch_of_one_serves_every_clip(unet):
    inputs = sampler_inputs(batch=2, frames=1)
    text = {"text_cond": inputs["text_cond"][:1], "text_uncond": inputs["text_uncond"][:1]}
    expanded = {key: value.expand(2, -1, -1) for key, value in text.items()}
    shared_result = sample(unet, **{**inputs, **text}, scheduler="ddim", steps=1)
    assert torch.equal(shared_result, sample(unet, **{**inputs, **expanded}, scheduler="ddim", steps=1))


def test_interrupt_raises_and_leaves_inputs_untouched(unet):
    inputs = sampler_inputs(frames=2)
    originals = {key: value.clone() for key, value in inputs.items()}
    polls = []
    with pytest.raises(SamplingInterrupted):
        sample(unet, **inputs, scheduler="ddim", steps=3, should_interrupt=lambda: polls.append(1) or len(polls) > 1)
    assert len(polls) == 2
    assert all(torch.equal(inputs[key], originals[key]) for key in inputs)


def test_interrupt_is_polled_before_every_unet_call(unet):
    polls = []
    with UNetSpy(unet) as spy:
        sample(
            unet, **sampler_inputs(frames=5), scheduler="ddim", steps=1, max_batch=2,
            window=ContextWindows(length=3, overlap=1), should_interrupt=lambda: polls.append(1) and False,
        )
    assert len(spy.calls) == 2 * 2  # 2 windows x ceil(3 branches / 2)
    assert len(polls) == len(spy.calls)


def _bad(**changes):
    return {**sampler_inputs(frames=2), **changes}


def _nan(shape):
    value = torch.zeros(shape)
    value.view(-1)[3] = float("nan")
    return value


@pytest.mark.parametrize(
    ("arguments", "options", "name"),
    [
        (_bad(img_cond=torch.zeros(1, 3, 8, 8, 8)), {}, "img_cond"),
        (_bad(img_cond=torch.zeros(1, 2, 8, 8, 16)), {}, "img_cond"),
        (_bad(img_cond=torch.zeros(1, 2, 4, 8, 8)), {}, "img_cond"),
        (_bad(img_cond=[torch.zeros(1, 2, 8, 8, 8), torch.zeros(1, 1, 8, 8, 8)]), {}, r"img_cond\[1\]"),
        (_bad(img_cond=[]), {}, "img_cond"),
        (_bad(latents=torch.zeros(1, 0, 4, 8, 8), img_cond=torch.zeros(1, 0, 8, 8, 8)), {}, "latents"),
        (_bad(latents=torch.zeros(2, 4, 8, 8)), {}, "latents"),
        (_bad(latents=_nan((1, 2, 4, 8, 8))), {}, "latents"),
        (_bad(img_cond=_nan((1, 2, 8, 8, 8))), {}, "img_cond"),
        (_bad(text_cond=_nan((1, 5, 32))), {}, "text_cond"),
        (_bad(text_uncond=torch.zeros(1, 5, 16)), {}, "text_uncond"),
        (_bad(text_cond=torch.zeros(3, 5, 32)), {}, "text_cond"),
        (_bad(), {"hdr_tokens": torch.zeros(1, 3, 2, 32)}, "hdr_tokens"),
        (_bad(), {"scheduler": "heun"}, "scheduler"),
        (_bad(), {"steps": 0}, "steps"),
        (_bad(), {"steps": 2.5}, "steps"),
    ],
)
def test_bad_input_names_the_argument(unet, arguments, options, name):
    with pytest.raises(InputError, match=name):
        sample(unet, **arguments, **options)


def test_long_prompt_and_short_uncond_are_matched_by_repetition(unet):
    inputs = sampler_inputs(frames=2)
    long_prompt = torch.cat([inputs["text_cond"], inputs["text_cond"]], dim=1)
    with UNetSpy(unet) as spy:
        mixed = sample(unet, **{**inputs, "text_cond": long_prompt}, scheduler="ddim", steps=2)
    assert spy.calls[0].context.shape[1] == 2 * inputs["text_cond"].shape[1]
    # A context repeated along its tokens attends exactly like the original.
    plain = sample(unet, **inputs, scheduler="ddim", steps=2)
    torch.testing.assert_close(mixed, plain, atol=1e-4, rtol=1e-4)
