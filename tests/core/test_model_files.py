"""Locating, downloading (faked: no test touches the network) and opening model files."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
from safetensors.torch import load_file

from relightvid_core import TINY, model_files
from relightvid_core.demo import write_tiny_models
from relightvid_core.errors import InputError, MissingFileError
from relightvid_core.model_files import (
    ICLIGHT_NAME,
    MERGED_NAME,
    MOTION_NAME,
    SD_FOLDER,
    convert_to_merged,
    load_components,
    load_unet,
    locate_model_files,
    pick_device,
    pick_dtype,
)
from relightvid_core.weights import WeightFormat, detect_format


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """A models folder of tiny official-format files (no merged file in it)."""
    folder = tmp_path_factory.mktemp("models")
    write_tiny_models(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_merged(tiny_models, tmp_path_factory):
    """The tiny official files converted once (fp16), outside the models folder."""
    files = locate_model_files(tiny_models, download=False)
    return convert_to_merged(files, tmp_path_factory.mktemp("merged") / MERGED_NAME, dtype=torch.float16, config=TINY)


@pytest.fixture(autouse=True)
def hub_host_answers(monkeypatch):
    """The quick reachability probe succeeds, so the faked ``hf_hub_download`` decides what happens."""
    monkeypatch.setattr(model_files, "_check_hub_reachable", lambda: None)


def _offline(calls: list):
    def fake(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        raise LocalEntryNotFoundError("offline: cannot reach the Hub and the file is not cached")

    return fake


def test_locate_finds_the_official_layout(tiny_models):
    files = locate_model_files(tiny_models, download=False)
    assert files.sd == tiny_models / SD_FOLDER
    assert (files.iclight, files.motion, files.merged) == (tiny_models / ICLIGHT_NAME, tiny_models / MOTION_NAME, None)


def test_missing_files_offline_are_listed_with_their_sources(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _offline(calls))
    with pytest.raises(MissingFileError) as caught:
        locate_model_files(tmp_path)
    message = str(caught.value)
    for name in (
        ICLIGHT_NAME,
        MOTION_NAME,
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "tokenizer/vocab.json",
    ):
        assert name in message
    assert str(tmp_path.resolve()) in message
    assert (
        "huggingface.co/lllyasviel/ic-light" in message
        and "huggingface.co/stablediffusionapi/realistic-vision-v51" in message
    )
    assert "huggingface.co/aleafy/relightvid_models" in message
    assert len(calls) == 1  # an unreachable Hub is not asked again for every file


def test_no_download_never_calls_the_hub(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("hf_hub_download called with downloads off")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)
    with pytest.raises(MissingFileError, match="Downloads are off"):
        locate_model_files(tmp_path, download=False)


def test_downloads_land_in_the_models_folder(tmp_path, tiny_models, monkeypatch):
    """A fake Hub that serves the tiny files: every missing file is fetched into its place."""
    calls = []

    def fake(repo_id, filename, *, local_dir, **kwargs):
        calls.append(repo_id)
        if repo_id == "aleafy/relightvid_models":
            raise EntryNotFoundError(f"{filename} is not in {repo_id}")
        source = tiny_models / (SD_FOLDER if "realistic" in repo_id else "") / filename
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    files = locate_model_files(tmp_path)
    assert files.motion == tmp_path / MOTION_NAME and (files.sd / "vae" / "config.json").is_file()
    # The temporal file is tried in both repositories the authors name, in order.
    assert calls.count("aleafy/relightvid_models") == calls.count("aleafy/RelightVid") == 1


def test_paths_given_one_by_one_are_never_downloaded(tmp_path, tiny_models, monkeypatch):
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _offline(calls))
    with pytest.raises(MissingFileError, match="you gave this path yourself"):
        locate_model_files(tiny_models, motion=tmp_path / "nowhere.pth")
    assert calls == []


def test_convert_writes_the_merge_of_the_official_files(tiny_models, tiny_merged):
    official = load_unet(
        locate_model_files(tiny_models, download=False), dtype=torch.float16, device="cpu", config=TINY
    )
    stored = load_file(str(tiny_merged.output))
    assert tiny_merged.tensors == len(stored) == len(official.state_dict())
    assert tiny_merged.bytes == sum(t.numel() * t.element_size() for t in stored.values())
    for key, value in official.state_dict().items():
        assert torch.equal(stored[key], value), key
    assert detect_format({k: tuple(v.shape) for k, v in stored.items()}).format is WeightFormat.RELIGHTVID_MERGED


def test_models_folder_merged_file_is_picked_up_unless_refused(tmp_path, tiny_models):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / SD_FOLDER).symlink_to(tiny_models / SD_FOLDER, target_is_directory=True)
    (folder / MERGED_NAME).write_bytes(b"")  # presence is all locate checks
    assert locate_model_files(folder, download=False).merged == folder / MERGED_NAME
    with pytest.raises(MissingFileError, match=ICLIGHT_NAME):
        locate_model_files(folder, download=False, use_merged=False)


def test_load_components_from_the_tiny_folder(tiny_models, tiny_merged):
    components = load_components(locate_model_files(tiny_models, merged=tiny_merged.output, download=False))
    assert components.unet.dtype == torch.float32  # fp16 on disk, loaded in the asked dtype
    assert components.text.encode("warm light").shape == (1, 77, TINY["cross_attention_dim"])
    assert components.vae.config.latent_channels == 4


def test_auto_device_and_dtype_on_this_machine():
    device = pick_device("auto")
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16
    assert pick_dtype("bf16", device) == torch.bfloat16
    with pytest.raises(InputError, match="not a torch device"):
        pick_device("gpu0")
