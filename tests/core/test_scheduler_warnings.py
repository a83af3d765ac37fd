"""diffusers' schedulers built and set without a DeprecationWarning reaching the user or the test log."""

from __future__ import annotations

import warnings

import pytest

from relightvid_core.sampling import SCHEDULER_NAMES, build_scheduler


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_build_scheduler_emits_no_deprecation_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        build_scheduler(name, 4)


def test_the_numpy_copy_deprecation_is_silenced_only_around_the_diffusers_calls():
    import numpy as np
    import torch

    with pytest.warns(DeprecationWarning, match="copy keyword"):
        np.array(torch.ones(2) ** 0.5)  # the same call outside build_scheduler still warns
