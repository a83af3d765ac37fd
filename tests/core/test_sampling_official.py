"""The official samplers' schedules: their timesteps for a step count and a denoise, and the scheduler a tail of
them belongs to (what the ComfyUI pack's official samplers read back from SIGMAS)."""

from __future__ import annotations

import pytest

from relightvid_core.errors import InputError
from relightvid_core.sampling.schedulers import official_timesteps, scheduler_for_timesteps


def test_official_timesteps_are_the_official_schedules():
    assert official_timesteps("ddpm", 20) == (list(range(950, -1, -50)), None)
    assert official_timesteps("ddim", 20) == (list(range(951, 0, -50)), 0)
    assert official_timesteps("ddpm", 4, denoise=0.5) == ([375, 250, 125, 0], None)  # the tail of 8 steps


@pytest.mark.parametrize("name", ["ddpm", "ddim"])
@pytest.mark.parametrize(
    ("steps", "denoise"), [(20, 1.0), (4, 1.0), (1, 1.0), (7, 0.35), (3, 0.5), (1, 0.2), (999, 1.0)]
)
def test_every_official_tail_names_its_schedule_and_start(name, steps, denoise):
    timesteps, _final = official_timesteps(name, steps, denoise)
    scheduler, start = scheduler_for_timesteps(name, timesteps)
    assert [int(t) for t in scheduler.timesteps[start:]] == timesteps
    if len(timesteps) > 1:  # the same schedule: the same step count, so the same steps
        assert len(scheduler.timesteps) == int(steps / denoise)


def test_timesteps_of_no_official_schedule_are_refused():
    with pytest.raises(InputError, match="not the official ddpm schedule's; make the sigmas with RelightVid Schedule"):
        scheduler_for_timesteps("ddpm", [999, 500, 1])
    with pytest.raises(InputError, match="scheduler must be one of ddpm, ddim"):
        scheduler_for_timesteps("euler", [1])
