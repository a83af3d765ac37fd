"""The (weight-less) HDR token encoder: key layout, shapes, pre-processing, and refusal of wrong state dicts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from relightvid_core.errors import WeightFormatError
from relightvid_core.models.hdr_encoder import (
    HDREncoder,
    expected_hdr_encoder_shapes,
    hdr_encoder_input,
)
from relightvid_core.weights.load import hdr_encoder_from_state_dict

TINY = {"hidden_size": 16, "token_dim": 8}


def test_full_key_layout_matches_the_paper_sizes():
    assert expected_hdr_encoder_shapes() == {
        "mlp.0.weight": (4096, 3072),
        "mlp.0.bias": (4096,),
        "mlp.2.weight": (4096, 4096),
        "mlp.2.bias": (4096,),
        "mlp.4.weight": (4096, 4096),
        "mlp.4.bias": (4096,),
        "mlp.6.weight": (2304, 4096),
        "mlp.6.bias": (2304,),
    }
    with torch.device("meta"):
        full = HDREncoder()
    assert {key: tuple(value.shape) for key, value in full.state_dict().items()} == expected_hdr_encoder_shapes()


def test_tiny_encoder_output_shape():
    torch.manual_seed(0)
    encoder = HDREncoder(**TINY)
    tokens = encoder(torch.zeros(2, 5, 3072))
    assert tokens.shape == (2, 5, 3, 8)


def test_from_state_dict_round_trip():
    torch.manual_seed(0)
    state = HDREncoder(**TINY).state_dict()
    rebuilt = hdr_encoder_from_state_dict(state, **TINY)
    assert all(torch.equal(rebuilt.state_dict()[key], state[key]) for key in state)
    reference = HDREncoder(**TINY)
    reference.load_state_dict(state)
    features = torch.rand(1, 2, 3072, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(features), reference(features), atol=0, rtol=0)


def test_from_state_dict_names_missing_unexpected_and_mismatched_keys():
    torch.manual_seed(0)
    state = HDREncoder(**TINY).state_dict()
    del state["mlp.6.bias"]
    state["fc1.weight"] = state.pop("mlp.0.weight")
    state["mlp.2.weight"] = torch.zeros(3, 3)
    expected = r"missing 2 \(mlp.0.weight, mlp.6.bias\).*unexpected 1 \(fc1.weight\).*mismatched 1"
    with pytest.raises(WeightFormatError, match=expected):
        hdr_encoder_from_state_dict(state, **TINY)


def test_input_preprocessing_matches_blur_area_resize_uint8_by_hand():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(1, 2, 3, 64, 64), dtype=np.uint8)
    features = hdr_encoder_input(torch.from_numpy(images))
    assert features.shape == (1, 2, 3072) and -1.0 <= float(features.min()) and float(features.max()) <= 1.0
    hwc = images[0, 1].transpose(1, 2, 0).astype(np.float32)
    grid = cv2.resize(cv2.GaussianBlur(hwc, (15, 15), 10), (32, 32), interpolation=cv2.INTER_AREA)
    expected = np.floor(grid).transpose(2, 0, 1).reshape(-1) / 255 * 2 - 1
    np.testing.assert_allclose(features[0, 1].numpy(), expected, atol=1e-6)


def test_float_input_is_read_as_0_to_1():
    white = hdr_encoder_input(torch.ones(1, 1, 3, 40, 40))
    assert torch.allclose(white, torch.ones_like(white))


def test_load_hdr_encoder_from_file(tmp_path):
    from safetensors.torch import save_file

    from relightvid_core.weights import load_hdr_encoder

    torch.manual_seed(0)
    state = HDREncoder(**TINY).state_dict()
    save_file(state, str(tmp_path / "hdr_encoder.safetensors"))
    encoder = load_hdr_encoder(tmp_path / "hdr_encoder.safetensors", dtype=torch.float16, **TINY)
    assert encoder.mlp[0].weight.dtype == torch.float16
    assert torch.equal(encoder.mlp[6].bias, state["mlp.6.bias"].half())
    save_file({"mlp.0.weight": state["mlp.0.weight"]}, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightFormatError, match="partial.safetensors does not fit the HDR encoder"):
        load_hdr_encoder(tmp_path / "partial.safetensors", **TINY)
