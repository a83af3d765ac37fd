"""The sampler against the official RelightVidInference loop (golden ``sampler_io``): DDIM and DDPM."""

from __future__ import annotations

import json

import pytest
import torch
from _support.sampling import UNetSpy
from safetensors.torch import load_file

from relightvid_core import RelightVidUNet
from relightvid_core.sampling import Guidance, build_scheduler, noise_levels, predict_x0, sample

SAMPLER_ATOL = 5e-4
SAMPLER_RTOL = 1e-5
UNET_ATOL = 2e-5
GOLDEN_STEPS = 4
DDPM_SEED = 1234  # torch.manual_seed(1234) preceded the official DDPM run (golden/README.md)


@pytest.fixture(scope="module")
def golden(golden_dir):
    return load_file(golden_dir / "sampler_io.safetensors")


@pytest.fixture(scope="module")
def golden_unet(golden_dir):
    model = RelightVidUNet.from_config(json.loads((golden_dir / "tiny_unet3d_config.json").read_text())).eval()
    model.load_state_dict(load_file(golden_dir / "tiny_unet3d_state_dict.safetensors"), strict=True)
    return model


@pytest.fixture(scope="module", params=["ddim", "ddpm"])
def run(request, golden, golden_unet):
    """One official-settings run per scheduler: steps seen by the callback and every U-Net call."""
    steps = []
    with UNetSpy(golden_unet) as spy:
        final = sample(
            golden_unet,
            golden["in.latent_init"],
            golden["in.img_cond"],
            golden["in.text_cond"],
            golden["in.text_uncond"],
            scheduler=request.param,
            steps=GOLDEN_STEPS,
            text_cfg=golden["in.text_cfg"].item(),
            img_cfg=golden["in.img_cfg"].item(),
            generator=torch.Generator().manual_seed(DDPM_SEED),
            callback=steps.append,
        )
    return request.param, final, steps, spy.calls


def test_sampling_ddpm_generator_reproduces_official_noise(golden):
    generator = torch.Generator().manual_seed(DDPM_SEED)
    for i in range(GOLDEN_STEPS - 1):  # no noise is drawn at t = 0
        noise = torch.randn(golden[f"ddpm.variance_noise{i}"].shape, generator=generator)
        assert torch.equal(noise, golden[f"ddpm.variance_noise{i}"])


@pytest.mark.parametrize("name", ["ddim", "ddpm"])
def test_sampling_timesteps_match_official(golden, name):
    assert torch.equal(build_scheduler(name, GOLDEN_STEPS).timesteps, golden[f"{name}.timesteps"])


@pytest.mark.parametrize("name", ["ddim", "ddpm"])
def test_sampling_guidance_matches_official_eps_per_step(golden, name):
    guidance = Guidance(text_cfg=golden["in.text_cfg"].item(), img_cfg=golden["in.img_cfg"].item())
    for i in range(GOLDEN_STEPS):
        branches = golden[f"{name}.step{i}.unet_out"].transpose(1, 2).chunk(3)  # b c f h w -> b f c h w
        torch.testing.assert_close(
            guidance.combine(*branches), golden[f"{name}.step{i}.guided_eps"], atol=SAMPLER_ATOL, rtol=SAMPLER_RTOL
        )


def test_sampling_unet_calls_match_official(run, golden):
    name, _, _, calls = run
    assert len(calls) == GOLDEN_STEPS
    assert [call.sample.shape[0] for call in calls] == [3] * GOLDEN_STEPS  # one batch of 3 branches per step
    torch.testing.assert_close(calls[0].sample, golden[f"{name}.step0.unet_in"], atol=0, rtol=0)
    expected_context = torch.cat([golden["in.text_uncond"], golden["in.text_uncond"], golden["in.text_cond"]])
    assert all(torch.equal(call.context, expected_context) for call in calls)
    assert all(call.frame_offset == 0 and call.hdr_tokens is None for call in calls)


def test_sampling_latents_per_step_match_official(run, golden):
    name, final, steps, _ = run
    assert [step.timestep for step in steps] == golden[f"{name}.timesteps"].tolist()
    assert [(step.index, step.total) for step in steps] == [(i, GOLDEN_STEPS) for i in range(GOLDEN_STEPS)]
    for i, step in enumerate(steps):
        expected = golden[f"{name}.step{i}.latent_out"]
        torch.testing.assert_close(step.latents, expected, atol=SAMPLER_ATOL, rtol=SAMPLER_RTOL)
    torch.testing.assert_close(final, golden[f"{name}.latent_final"], atol=SAMPLER_ATOL, rtol=SAMPLER_RTOL)


def test_sampling_preview_is_official_x0(run, golden):
    name, _, steps, _ = run
    scheduler = build_scheduler(name, GOLDEN_STEPS)
    for i, (step, t) in enumerate(zip(steps, scheduler.timesteps)):
        alpha_bar = scheduler.alphas_cumprod[t]
        latent, eps = golden[f"{name}.step{i}.latent_in"], golden[f"{name}.step{i}.guided_eps"]
        x0 = (latent - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()  # DDPM eq. 15
        torch.testing.assert_close(step.denoised, x0, atol=SAMPLER_ATOL, rtol=SAMPLER_RTOL)
        torch.testing.assert_close(predict_x0(latent, eps, noise_levels(scheduler)[i].item()), x0, atol=1e-5, rtol=1e-5)
