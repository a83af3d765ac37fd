"""Context windows: schedules, fusion weights, per-window condition slices and the frame limit."""

from __future__ import annotations

import pytest
import torch
from _support.sampling import CONTEXT_WIDTH, UNetSpy, frame_numbered, sampler_inputs
from _support.tiny_weights import tiny_network

from relightvid_core import TINY, RelightVidUNet
from relightvid_core.errors import InputError
from relightvid_core.sampling import FUSIONS, Conditions, ContextWindows, fusion_weights, sample, window_indices


@pytest.fixture(scope="module")
def unet():
    return tiny_network(0, in_channels=12).eval()


def _numbered_conditions(frames: int) -> Conditions:
    return Conditions(
        images=(frame_numbered(1, frames, 8, 2), frame_numbered(1, frames, 8, 2) + 100),
        text=torch.zeros(1, 3, 4),
        text_uncond=torch.zeros(1, 3, 4),
        hdr=frame_numbered(1, frames, 2, 4)[..., 0],  # (1, F, 2, 4)
    )


@pytest.mark.parametrize(
    ("frames", "closed_loop", "expected"),
    [
        (16, False, [list(range(16))]),
        (10, True, [list(range(10))]),
        (20, False, [list(range(16)), list(range(4, 20))]),
        (40, False, [list(range(16)), list(range(12, 28)), list(range(24, 40))]),
        (64, False, [list(range(s, s + 16)) for s in (0, 12, 24, 36, 48)]),
        (20, True, [list(range(16)), [*range(12, 20), *range(8)]]),
    ],
)
def test_window_indices_schedules(frames, closed_loop, expected):
    assert window_indices(frames, 16, 4, closed_loop) == expected


@pytest.mark.parametrize("frames", [17, 33, 50])
@pytest.mark.parametrize("closed_loop", [False, True])
def test_window_indices_cover_every_frame_with_full_windows(frames, closed_loop):
    windows = window_indices(frames, 16, 4, closed_loop)
    assert all(len(w) == len(set(w)) == 16 for w in windows)
    assert sorted({i for w in windows for i in w}) == list(range(frames))


def test_fusion_weights_tables():
    assert torch.equal(fusion_weights("flat", 4, 1), torch.ones(4))
    assert fusion_weights("pyramid", 6, 2).tolist() == [1, 2, 3, 3, 2, 1]
    assert fusion_weights("linear", 6, 2).tolist() == pytest.approx([1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3])
    assert all((fusion_weights(name, 16, 4) > 0).all() for name in FUSIONS)
    with pytest.raises(ValueError, match="fusion"):
        fusion_weights("gaussian", 16, 4)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"length": 33}, "window length"), ({"length": 0}, "window length"), ({"overlap": 16}, "window overlap"),
     ({"overlap": -1}, "window overlap"), ({"fusion": "nope"}, "window fusion")],
)
def test_context_windows_reject_bad_settings(options, match):
    with pytest.raises(InputError, match=match):
        ContextWindows(**options)


@pytest.mark.parametrize("fusion", list(FUSIONS))
@pytest.mark.parametrize("closed_loop", [False, True])
def test_windows_fuse_frame_local_predictions_exactly_once(fusion, closed_loop):
    x = torch.randn(1, 11, 4, 2, 2)
    windows = ContextWindows(length=4, overlap=2, closed_loop=closed_loop, fusion=fusion)
    windowed = windows.wrap(lambda x, t, cond: 2 * x)
    torch.testing.assert_close(windowed(x, torch.tensor(1), _numbered_conditions(11)), 2 * x)


def test_windows_blend_overlaps_by_weight():
    # Window k predicts the constant k; frame 2 lies in window 0 (position 2) and window 1 (position 0).
    seen = []

    def per_window(x, t, cond):
        seen.append(cond)
        return torch.full(x.shape, float(len(seen) - 1))

    windows = ContextWindows(length=4, overlap=2, fusion="pyramid")  # weights 1, 2, 2, 1
    out = windows.wrap(per_window)(torch.zeros(1, 6, 4, 1, 1), torch.tensor(1), _numbered_conditions(6))
    assert out[0, :, 0, 0, 0].tolist() == pytest.approx([0, 0, (0 * 2 + 1 * 1) / 3, (0 * 1 + 1 * 2) / 3, 1, 1])


def test_windows_slice_every_per_frame_condition():
    seen = []
    windows = ContextWindows(length=4, overlap=1, closed_loop=True)
    windowed = windows.wrap(lambda x, t, cond: seen.append(cond) or x)
    windowed(torch.zeros(1, 7, 4, 2, 2), torch.tensor(1), _numbered_conditions(7))
    assert len(seen) == 3
    for cond, frames in zip(seen, window_indices(7, 4, 1, closed_loop=True)):
        expected = torch.tensor(frames, dtype=torch.float32)
        assert cond.images[0][0, :, 0, 0, 0].tolist() == expected.tolist()
        assert cond.images[1][0, :, 0, 0, 0].tolist() == (expected + 100).tolist()
        assert cond.hdr[0, :, 0, 0].tolist() == expected.tolist()


@pytest.mark.parametrize("closed_loop", [False, True])
def test_window_k_sees_frames_k(unet, closed_loop):
    frames, window = 6, ContextWindows(length=4, overlap=1, closed_loop=closed_loop)
    inputs = {**sampler_inputs(frames=frames), "img_cond": frame_numbered(1, frames, 8, 8)}
    hdr = frame_numbered(1, frames, 2, CONTEXT_WIDTH)[..., 0]  # (1, F, n=2, D), value = frame
    with UNetSpy(unet) as spy:
        sample(unet, **inputs, scheduler="ddim", steps=1, window=window, hdr_tokens=hdr, max_batch=4)
    expected = window_indices(frames, 4, 1, closed_loop)
    assert len(spy.calls) == len(expected)
    for call, indices in zip(spy.calls, expected):
        assert call.frame_offset == 0 and call.sample.shape[2] == len(indices)
        fg_frames = call.sample[1, 4, :, 0, 0].tolist()  # branch 1 (image | uncond text), first fg channel
        assert fg_frames == [float(i) for i in indices]
        assert call.hdr_tokens[3, :, 0, 0].tolist() == [float(i) for i in indices]


def test_short_clip_equals_no_window_bitwise(unet):
    inputs = sampler_inputs(frames=3)
    plain = sample(unet, **inputs, scheduler="ddim", steps=1)
    windowed = sample(unet, **inputs, scheduler="ddim", steps=1, window=ContextWindows(length=4, overlap=2))
    assert torch.equal(windowed, plain)


def test_window_longer_than_position_encoding_is_refused():
    short_memory = RelightVidUNet.from_config(
        {**TINY, "motion_module_kwargs": {**TINY["motion_module_kwargs"], "temporal_position_encoding_max_len": 8}}
    )
    with pytest.raises(InputError, match="window"):
        sample(short_memory, **sampler_inputs(frames=10), steps=1, window=ContextWindows(length=16))
    with pytest.raises(InputError, match="window"):
        sample(short_memory, **sampler_inputs(frames=10), steps=1)


def test_more_than_32_frames_need_windows(unet):
    with pytest.raises(InputError, match="window"):
        sample(unet, **sampler_inputs(frames=33, size=1), steps=1)


def test_windows_report_progress_per_window():
    calls = []
    windows = ContextWindows(length=4, overlap=2, progress=lambda done, total: calls.append((done, total)))
    windows.wrap(lambda x, t, cond: x)(torch.zeros(1, 8, 4, 1, 1), torch.tensor(1), _numbered_conditions(8))
    assert windows.count(8) == 3 and calls == [(1, 3), (2, 3), (3, 3)]
    assert windows == ContextWindows(length=4, overlap=2)  # the callback is no part of the settings
