"""CLIP text path with a tiny random CLIP and a tiny tokenizer written here: loading, padding, chunking, errors."""

from __future__ import annotations

import json
import string

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from relightvid_core.conditioning import TextEncoder, load_text_encoder
from relightvid_core.errors import InputError, WeightFormatError

# Single-file SD1.5 checkpoints key the text encoder as in transformers 4.x, under this prefix.
LDM_PREFIX = "cond_stage_model.transformer.text_model."


def _write_tokenizer(folder):
    """A byte-level BPE vocabulary of lower-case letters (alone and word-final), one merge, and CLIP's specials."""
    folder.mkdir(parents=True)
    letters = list(string.ascii_lowercase)
    tokens = letters + [letter + "</w>" for letter in letters] + ["he</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: index for index, token in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\nh e</w>\n")
    return len(tokens)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    vocab_size = _write_tokenizer(root / "sd" / "tokenizer")
    config = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "projection_dim": 32,
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
    }
    torch.manual_seed(0)
    model = CLIPTextModel(CLIPTextConfig(**config)).eval()
    model.save_pretrained(root / "sd" / "text_encoder")
    checkpoint = {
        LDM_PREFIX + key.removeprefix("text_model."): value.contiguous() for key, value in model.state_dict().items()
    }
    checkpoint[LDM_PREFIX + "embeddings.position_ids"] = torch.arange(77)[None]
    checkpoint["model.diffusion_model.out.2.bias"] = torch.zeros(4)  # a U-Net key, to be ignored
    save_file(checkpoint, str(root / "tiny_sd15.safetensors"))
    tokenizer = CLIPTokenizer.from_pretrained(str(root / "sd" / "tokenizer"))
    return {"root": root, "config": config, "model": model, "tokenizer": tokenizer}


def _reference(tiny, prompt):
    """What the official FrozenCLIPEmbedder computes for a prompt of at most 75 tokens."""
    ids = tiny["tokenizer"](prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return tiny["model"](input_ids=ids.input_ids).last_hidden_state


def test_diffusers_folder_matches_the_official_encoding(tiny):
    encoder = load_text_encoder(tiny["root"] / "sd")
    out = encoder.encode("he said a thing")
    assert out.shape == (1, 77, 32)
    torch.testing.assert_close(out, _reference(tiny, "he said a thing"), atol=1e-5, rtol=0)


def test_single_file_checkpoint_loads_with_a_tokenizer_folder(tiny):
    encoder = load_text_encoder(
        tiny["root"] / "tiny_sd15.safetensors", tokenizer_dir=tiny["root"] / "sd" / "tokenizer", config=tiny["config"]
    )
    prompt = "light from the left"
    torch.testing.assert_close(encoder.encode(prompt), _reference(tiny, prompt), atol=1e-5, rtol=0)


def test_uncond_is_the_empty_prompt(tiny):
    encoder = TextEncoder(tiny["tokenizer"], tiny["model"])
    torch.testing.assert_close(encoder.encode_uncond(), _reference(tiny, ""), atol=1e-5, rtol=0)


def test_long_prompt_is_split_into_77_token_chunks(tiny):
    encoder = TextEncoder(tiny["tokenizer"], tiny["model"])
    prompt = " ".join(["a"] * 100)
    chunks = encoder.token_chunks(prompt)
    bos, eos = tiny["config"]["bos_token_id"], tiny["config"]["eos_token_id"]
    assert chunks.shape == (2, 77)
    assert chunks[:, 0].tolist() == [bos, bos] and chunks[0, 76] == eos and chunks[1, 26] == eos
    out = encoder.encode(prompt)
    assert out.shape == (1, 154, 32)
    torch.testing.assert_close(out[:, :77], _reference(tiny, " ".join(["a"] * 75)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 77:], _reference(tiny, " ".join(["a"] * 25)), atol=1e-5, rtol=0)


def test_missing_tokenizer_says_where_to_get_one(tiny):
    with pytest.raises(InputError, match="sd1_tokenizer"):
        load_text_encoder(tiny["root"] / "tiny_sd15.safetensors", config=tiny["config"])


def test_tokenizer_folder_without_vocab_is_refused(tiny, tmp_path):
    with pytest.raises(InputError, match="lacks vocab.json"):
        load_text_encoder(tiny["root"] / "tiny_sd15.safetensors", tokenizer_dir=tmp_path, config=tiny["config"])


def test_wrong_sized_text_encoder_is_refused(tiny):
    with pytest.raises(WeightFormatError, match="mismatched"):
        load_text_encoder(
            tiny["root"] / "tiny_sd15.safetensors",
            tokenizer_dir=tiny["root"] / "sd" / "tokenizer",
            config={**tiny["config"], "hidden_size": 64, "intermediate_size": 64},
        )


def test_checkpoint_without_text_encoder_is_refused(tiny):
    with pytest.raises(WeightFormatError, match="holds no text encoder"):
        unet_only = {"model.diffusion_model.out.2.bias": torch.zeros(4)}
        load_text_encoder(unet_only, tokenizer_dir=tiny["root"] / "sd" / "tokenizer")
