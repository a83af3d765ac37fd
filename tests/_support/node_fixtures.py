"""Fixtures of the node tests (tests/nodes, tests/reliability), registered for the whole suite by
``pytest_plugins`` in tests/conftest.py so the session's single pack and stand-in ``folder_paths`` are shared:
the pack imported as ComfyUI imports it, a stand-in ``folder_paths`` over a temporary models tree holding
tiny weight files, and fake VAE/CLIP/MODEL objects."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from _support.comfy_fakes import (
    BASE_FILE,
    ENV_MAP_FILE,
    FC_FILE,
    ICLIGHT_FILE,
    MOTION_FILE,
    FakeCLIP,
    FakeModel,
    FakeVAE,
    load_pack,
    make_folder_paths,
)
from _support.tiny_weights import ldm_checkpoint_extras, split, tiny_network, tiny_official_set, to_ldm


@dataclass(frozen=True)
class PackUnderTest:
    module: object  # the pack's package
    base: Path  # root of the stand-in ComfyUI folders
    official: dict  # the tiny official weight set the files were written from

    @property
    def nodes(self) -> dict:
        return self.module.NODE_CLASS_MAPPINGS

    def node(self, node_id: str):
        return self.nodes[node_id]()

    @property
    def core(self):
        """The pack's own copy of relightvid_core (its error classes are the ones nodes raise)."""
        return sys.modules[self.module.__name__ + ".relightvid_core"]


def _write_files(base: Path) -> dict:
    official = tiny_official_set(seed=0)
    checkpoint = {**to_ldm(official["sd"], prefix="model.diffusion_model."), **ldm_checkpoint_extras()}
    save_file(checkpoint, str(base / "models/checkpoints" / BASE_FILE))
    save_file(official["iclight"], str(base / "models/relightvid" / ICLIGHT_FILE))
    fc_offsets, _ = split(tiny_network(3, in_channels=8))
    save_file(fc_offsets, str(base / "models/relightvid" / FC_FILE))
    torch.save(official["motion"], base / "models/relightvid" / MOTION_FILE)
    # A 16x8 equirectangular map: a bright sun on a dim sky.
    radiance = np.full((8, 16, 3), 0.2, np.float32)
    radiance[2, 4] = (20.0, 18.0, 15.0)
    cv2.imwrite(str(base / "input" / ENV_MAP_FILE), radiance[..., ::-1])
    return official


@pytest.fixture(scope="session")
def pack(tmp_path_factory) -> PackUnderTest:
    base = tmp_path_factory.mktemp("comfy")
    previous = sys.modules.get("folder_paths")
    sys.modules["folder_paths"] = make_folder_paths(base)
    try:
        official = _write_files(base)
        yield PackUnderTest(load_pack(), base, official)
    finally:
        if previous is None:
            sys.modules.pop("folder_paths", None)
        else:
            sys.modules["folder_paths"] = previous


@pytest.fixture
def vae() -> FakeVAE:
    return FakeVAE()


@pytest.fixture
def clip() -> FakeCLIP:
    return FakeCLIP()


@pytest.fixture
def base_model(pack) -> FakeModel:
    """A MODEL holding the tiny SD1.5 U-Net (LDM keys, as ComfyUI's diffusion_model has them)."""
    return FakeModel(to_ldm(pack.official["sd"]))
