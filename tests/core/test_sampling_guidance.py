"""3-way guidance, the HDR 4th branch, the Illumination-Invariant Ensemble and memory modes."""

from __future__ import annotations

import pytest
import torch
from _support.sampling import CONTEXT_WIDTH, UNetSpy, sampler_inputs
from _support.tiny_weights import tiny_network

from relightvid_core.errors import InputError
from relightvid_core.sampling import DEFAULT_IIE_FACTORS, Guidance, iie_image_conditions, rescale_guidance, sample

SPLIT_ATOL = 1e-5  # batch items are independent in the U-Net; only kernel rounding may differ
HDR_TOKENS = 3


@pytest.fixture(scope="module")
def unet():
    return tiny_network(0, in_channels=12).eval()


def _eps(seed: int, shape=(2, 3, 4, 2, 2)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _image_copies(count: int, reference: torch.Tensor) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(10)
    return [torch.randn(reference.shape, generator=generator) for _ in range(count)]


def test_guidance_combine_is_three_way_rule():
    uncond, image, text = _eps(0), _eps(1), _eps(2)
    guidance = Guidance(text_cfg=7.5, img_cfg=1.2)
    assert torch.equal(guidance.combine(uncond, image, text), uncond + 1.2 * (image - uncond) + 7.5 * (text - image))


def test_guidance_combine_adds_hdr_branch():
    uncond, image, text, hdr = _eps(0), _eps(1), _eps(2), _eps(3)
    guidance = Guidance(hdr_cfg=2.0)
    three_way = guidance.combine(uncond, image, text)
    torch.testing.assert_close(guidance.combine(uncond, image, text, hdr), three_way + 2.0 * (hdr - text))


def test_guidance_rescale_matches_reference_std_and_zero_is_off():
    uncond, image, text = _eps(0), _eps(1), _eps(2)
    plain = Guidance().combine(uncond, image, text)
    assert torch.equal(Guidance(rescale=0.0).combine(uncond, image, text), plain)
    full = Guidance(rescale=1.0).combine(uncond, image, text)
    dims = tuple(range(1, plain.ndim))
    torch.testing.assert_close(full.std(dim=dims), uncond.std(dim=dims))
    torch.testing.assert_close(Guidance(rescale=0.3).combine(uncond, image, text), rescale_guidance(plain, uncond, 0.3))


def test_iie_one_factor_equals_plain_sampling_bitwise(unet):
    inputs = sampler_inputs()
    plain = sample(unet, **inputs, scheduler="ddim", steps=1)
    ensemble = sample(unet, **{**inputs, "img_cond": [inputs["img_cond"]]}, scheduler="ddim", steps=1)
    assert torch.equal(plain, ensemble)


def test_iie_shares_unconditional_branch(unet):
    inputs = sampler_inputs()
    copies = _image_copies(3, inputs["img_cond"])
    with UNetSpy(unet) as spy:
        sample(unet, **{**inputs, "img_cond": copies}, scheduler="ddim", steps=2, max_batch=64)
    assert spy.batch_sizes() == [1 + 2 * len(copies)] * 2  # not 3N
    images = spy.calls[0].sample[:, 4:].transpose(1, 2)  # (items, F, 8, h, w)
    assert torch.equal(images[0], torch.zeros_like(images[0]))
    for k, copy in enumerate(copies):
        assert torch.equal(images[1 + 2 * k], copy[0]) and torch.equal(images[2 + 2 * k], copy[0])
    text_cond, text_uncond = inputs["text_cond"][0], inputs["text_uncond"][0]
    assert [torch.equal(c, text_uncond) for c in spy.calls[0].context] == [True] + [True, False] * len(copies)
    assert [torch.equal(c, text_cond) for c in spy.calls[0].context] == [False] + [False, True] * len(copies)


def test_iie_averages_guided_members(unet):
    inputs = sampler_inputs()
    copies = _image_copies(2, inputs["img_cond"])
    members = [sample(unet, **{**inputs, "img_cond": copy}, scheduler="ddim", steps=1) for copy in copies]
    ensemble = sample(unet, **{**inputs, "img_cond": copies}, scheduler="ddim", steps=1)
    # One DDIM step is affine in ε, so the average of the members' results is the ensemble's result.
    torch.testing.assert_close(ensemble, (members[0] + members[1]) / 2, atol=SPLIT_ATOL, rtol=0)


def test_hdr_adds_fourth_branch_with_zero_tokens_elsewhere(unet):
    inputs = sampler_inputs(frames=2)
    hdr = torch.randn(1, 2, HDR_TOKENS, CONTEXT_WIDTH, generator=torch.Generator().manual_seed(5))
    with UNetSpy(unet) as spy:
        sample(unet, **inputs, scheduler="ddim", steps=1, hdr_tokens=hdr, max_batch=4)
    (call,) = spy.calls
    assert call.sample.shape[0] == 4
    assert torch.equal(call.hdr_tokens[:3], torch.zeros(3, 2, HDR_TOKENS, CONTEXT_WIDTH))
    assert torch.equal(call.hdr_tokens[3], hdr[0])
    assert torch.equal(call.context[3], inputs["text_cond"][0])


def test_hdr_absent_gives_three_way_result(unet):
    inputs = sampler_inputs()
    with UNetSpy(unet) as spy:
        three_way = sample(unet, **inputs, scheduler="ddim", steps=1)
    assert spy.batch_sizes() == [3] and spy.calls[0].hdr_tokens is None
    assert torch.equal(sample(unet, **inputs, scheduler="ddim", steps=1, hdr_cfg=3.0), three_way)


@pytest.mark.parametrize("max_batch", [1, 3])
def test_split_calls_equal_one_batch(unet, max_batch):
    inputs = sampler_inputs(frames=2)
    copies = _image_copies(2, inputs["img_cond"])
    hdr = torch.randn(1, 2, HDR_TOKENS, CONTEXT_WIDTH, generator=torch.Generator().manual_seed(5))
    options = {**inputs, "img_cond": copies, "hdr_tokens": hdr, "scheduler": "ddim", "steps": 1}
    batched = sample(unet, **options)
    with UNetSpy(unet) as spy:
        split = sample(unet, **options, max_batch=max_batch)
    items = 1 + 3 * len(copies)  # uncond + (image, text, HDR) per copy
    assert sum(spy.batch_sizes()) == items and max(spy.batch_sizes()) == max_batch
    torch.testing.assert_close(split, batched, atol=SPLIT_ATOL, rtol=0)


@pytest.mark.parametrize("max_batch", [0, -1, 1.5, True])
def test_split_rejects_bad_max_batch(unet, max_batch):
    with pytest.raises(InputError, match="max_batch"):
        sample(unet, **sampler_inputs(), steps=1, max_batch=max_batch)


def _fake_encode(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) -> (T, 4, H/8, W/8): a deterministic stand-in for the VAE."""
    pooled = torch.nn.functional.avg_pool2d(frames.permute(0, 3, 1, 2), 8)
    return torch.cat([pooled, pooled.mean(dim=1, keepdim=True)], dim=1)


def test_iie_image_conditions_scale_foreground_pixels_only():
    from relightvid_core.conditioning import composite_foreground

    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 16, 16, 3, generator=generator)
    masks = torch.zeros(2, 16, 16)
    masks[:, :8] = 1.0  # top half is the subject, bottom half the gray fill
    background = torch.randn(2, 4, 2, 2, generator=generator)
    conditions = iie_image_conditions(frames, masks, DEFAULT_IIE_FACTORS, _fake_encode, background)
    assert len(conditions) == len(DEFAULT_IIE_FACTORS)
    assert all(c.shape == (1, 2, 8, 2, 2) for c in conditions)
    assert all(torch.equal(c[0, :, 4:], background) for c in conditions)
    plain = torch.cat([_fake_encode(composite_foreground(frames, masks)), background], dim=1)
    assert torch.equal(conditions[DEFAULT_IIE_FACTORS.index(1.0)][0], plain)
    gray_rows = torch.stack([c[0, :, :4, 1] for c in conditions])  # latent row 1 sees only the gray fill
    assert torch.equal(gray_rows, gray_rows[:1].expand_as(gray_rows))
    subject = torch.stack([c[0, :, :3, 0] for c in conditions])
    assert (subject[:-1] <= subject[1:]).all() and not torch.equal(subject[0], subject[-1])


@pytest.mark.parametrize("factors", [(), (0.0,), (1.0, float("nan"))])
def test_iie_image_conditions_reject_bad_factors(factors):
    with pytest.raises(InputError, match="factors"):
        iie_image_conditions(torch.rand(1, 8, 8, 3), None, factors, _fake_encode, torch.zeros(1, 4, 1, 1))


def test_automatic_batching_caps_cpu_calls_at_one_guidance_step(unet):
    inputs = sampler_inputs()
    copies = _image_copies(3, inputs["img_cond"])
    with UNetSpy(unet) as spy:
        automatic = sample(unet, **{**inputs, "img_cond": copies}, scheduler="ddim", steps=1)
    assert spy.batch_sizes() == [3, 3, 1]
    one_call = sample(unet, **{**inputs, "img_cond": copies}, scheduler="ddim", steps=1, max_batch=64)
    torch.testing.assert_close(automatic, one_call, atol=1e-5, rtol=1e-5)
