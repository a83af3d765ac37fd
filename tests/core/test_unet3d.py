"""The 3-D U-Net against the official network (golden vectors) and its documented behaviours."""

from __future__ import annotations

import json

import pytest
import torch
from _support.tiny_weights import tiny_network
from safetensors.torch import load_file

from relightvid_core import FULL_FBC, TINY, RelightVidUNet
from relightvid_core.models.blocks3d import group_norm
from relightvid_core.models.configs import ANIMATEDIFF_V2, config_for_variant

UNET_ATOL = 2e-5
UNET_RTOL = 1e-5


@pytest.fixture(scope="module")
def golden_unet(golden_dir):
    config = json.loads((golden_dir / "tiny_unet3d_config.json").read_text())
    model = RelightVidUNet.from_config(config).eval()
    model.load_state_dict(load_file(golden_dir / "tiny_unet3d_state_dict.safetensors"), strict=True)
    return model


@pytest.mark.parametrize("case", ["f8", "f16"])
def test_unet3d_forward_matches_official(golden_unet, golden_dir, case):
    io = load_file(golden_dir / "unet_io.safetensors")
    with torch.no_grad():
        out = golden_unet(io[f"{case}.sample"], io[f"{case}.timestep"], io[f"{case}.encoder_hidden_states"])
    torch.testing.assert_close(out, io[f"{case}.out"], atol=UNET_ATOL, rtol=UNET_RTOL)


@pytest.mark.parametrize(
    ("section", "in_channels"), [("unet3d_after_initialize_unet_in12", 12), ("unet3d_config_in4", 4)]
)
def test_unet3d_full_size_keys_and_shapes_match_manifest(golden_dir, section, in_channels):
    manifest = json.loads((golden_dir / "full_key_manifest.json").read_text())[section]
    with torch.device("meta"):
        model = RelightVidUNet.from_config({**FULL_FBC, "in_channels": in_channels})
    assert {key: list(value.shape) for key, value in model.state_dict().items()} == manifest


def test_unet3d_full_size_parameter_count():
    with torch.device("meta"):
        model = RelightVidUNet.from_config(FULL_FBC)
    assert sum(p.numel() for p in model.parameters()) == 1_276_681_604  # docs/official_code.md §f


def test_unet3d_from_config_ignores_official_extra_keys():
    official_extras = {"center_input_sample": False, "dual_cross_attention": False, "class_embed_type": None}
    model = RelightVidUNet.from_config({**TINY, **official_extras})
    assert model.config.block_out_channels == TINY["block_out_channels"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"use_linear_projection": True}, "use_linear_projection"),
        ({"motion_module_type": "Conv"}, "motion_module_type"),
        ({"block_out_channels": [32, 32, 32]}, "block_out_channels"),
    ],
)
def test_unet3d_rejects_unsupported_config(override, named):
    with pytest.raises(ValueError, match=named):
        RelightVidUNet.from_config({**TINY, **override})


def _inputs(frames: int, height: int = 8, width: int = 8, batch: int = 1, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 12, frames, height, width, generator=generator)
    context = torch.randn(batch, 77, TINY["cross_attention_dim"], generator=generator)
    return sample, context


@pytest.fixture(scope="module")
def tiny_unet():
    return tiny_network(seed=0, in_channels=12).eval()


def test_unet3d_rejects_more_frames_than_position_encoding(tiny_unet):
    sample, context = _inputs(frames=33, height=8, width=8)
    with pytest.raises(ValueError, match="position encoding of length 32"):
        tiny_unet(sample, 10, context)


def test_unet3d_frame_offset_selects_encoding_rows(tiny_unet):
    sample, context = _inputs(frames=4)
    with torch.no_grad():
        start = tiny_unet(sample, 10, context)
        shifted = tiny_unet(sample, 10, context, frame_offset=28)
    assert not torch.allclose(start, shifted)
    with pytest.raises(ValueError, match="exceed"):
        tiny_unet(sample, 10, context, frame_offset=29)


def test_unet3d_scalar_timestep_equals_one_per_item(tiny_unet):
    sample, context = _inputs(frames=2, batch=2)
    with torch.no_grad():
        scalar = tiny_unet(sample, 500, context)
        per_item = tiny_unet(sample, torch.tensor([500, 500]), context)
    torch.testing.assert_close(scalar, per_item, atol=0, rtol=0)


def test_unet3d_batch_items_are_independent(tiny_unet):
    sample, context = _inputs(frames=3, batch=2)
    with torch.no_grad():
        both = tiny_unet(sample, torch.tensor([900, 100]), context)
        second = tiny_unet(sample[1:], 100, context[1:])
    torch.testing.assert_close(both[1:], second, atol=UNET_ATOL, rtol=UNET_RTOL)


def _zero_motion_outputs(model: RelightVidUNet) -> RelightVidUNet:
    for name, parameter in model.named_parameters():
        if "temporal_transformer.proj_out" in name:
            parameter.data.zero_()
    return model


def test_unet3d_resnet_norm_spans_all_frames():
    model = _zero_motion_outputs(tiny_network(seed=1, in_channels=12)).eval()
    sample, context = _inputs(frames=6)
    with torch.no_grad():
        whole = model(sample, 10, context)
        first_half = model(sample[:, :, :3], 10, context)
    # Even without temporal attention the frames see each other through the clip-wide GroupNorm.
    assert (whole[:, :, :3] - first_half).abs().max() > 1e-3


def test_unet3d_inflated_groupnorm_keeps_frames_independent():
    config = config_for_variant(TINY, ANIMATEDIFF_V2)
    model = _zero_motion_outputs(tiny_network(seed=1, config=config, in_channels=12)).eval()
    sample, context = _inputs(frames=6)
    with torch.no_grad():
        whole = model(sample, 10, context)
        first_half = model(sample[:, :, :3], 10, context)
    torch.testing.assert_close(whole[:, :, :3], first_half, atol=UNET_ATOL, rtol=UNET_RTOL)


def test_unet3d_hdr_tokens_extend_the_context(tiny_unet):
    sample, context = _inputs(frames=2)
    tokens = torch.randn(1, 2, 3, TINY["cross_attention_dim"], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = tiny_unet(sample, 10, context)
        with_hdr = tiny_unet(sample, 10, context, hdr_tokens=tokens)
    assert with_hdr.shape == plain.shape
    assert not torch.allclose(plain, with_hdr)
    with pytest.raises(ValueError, match="hdr_tokens"):
        tiny_unet(sample, 10, context, hdr_tokens=tokens[:, :1])


def test_unet3d_handles_latent_sizes_not_multiple_of_eight(tiny_unet):
    sample, context = _inputs(frames=2, height=12, width=20)
    with torch.no_grad():
        out = tiny_unet(sample, 10, context)
    assert out.shape == (1, 4, 2, 12, 20)


def test_unet3d_rejects_wrong_channel_count(tiny_unet):
    sample, context = _inputs(frames=2)
    with pytest.raises(ValueError, match="12"):
        tiny_unet(sample[:, :8], 10, context)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_unet3d_runs_in_half_precision(dtype):
    model = tiny_network(seed=0, in_channels=12).to(dtype).eval()
    sample, context = _inputs(frames=2)
    with torch.no_grad():
        out = model(sample, 10, context)
        reference = tiny_network(seed=0, in_channels=12).eval()(sample, 10, context)
    assert out.dtype == dtype
    assert (out.float() - reference).abs().max() < 0.1


def test_temporal_module_runs_with_gradient_mode_on_and_matches_no_grad():
    """Grad mode on with trainable weights (a host that does not wrap sampling in no_grad): the same output.
    (Backpropagating through the network is not supported: its residuals are added in place.)"""
    from relightvid_core.models.motion import MotionModule

    torch.manual_seed(0)
    module = MotionModule(32, num_attention_heads=4, temporal_position_encoding_max_len=8)
    torch.nn.init.normal_(module.temporal_transformer.proj_out.weight, std=0.02)
    hidden = torch.randn(2 * 4, 32, 3, 3)
    with torch.no_grad():
        expected = module(hidden.clone(), 4)
    with torch.enable_grad():
        out = module(hidden.clone(), 4)
    assert out.requires_grad  # autograd recorded the call
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
def test_group_norm_across_frames_normalises_each_clip_as_one_image(memory_format):
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 16)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    frames_fchw = torch.randn(2 * 3, 16, 5, 7)  # 2 clips of 3 frames, folded into the batch
    out = group_norm(norm, frames_fchw.contiguous(memory_format=memory_format), num_frames=3, across_frames=True)
    # The same statistics by hand: each clip's frames stacked into one tall image.
    stacked = torch.cat([frames_fchw[3 * b : 3 * b + 3].transpose(0, 1).reshape(16, 15, 7)[None] for b in range(2)])
    expected = torch.cat([norm(clip[None])[0].reshape(16, 3, 5, 7).transpose(0, 1) for clip in stacked])
    torch.testing.assert_close(out, expected, atol=UNET_ATOL, rtol=UNET_RTOL)
    channels_last = group_norm(norm, frames_fchw.contiguous(memory_format=torch.channels_last), 3, True)
    assert torch.equal(out, channels_last)  # the caller's layout does not change a bit
