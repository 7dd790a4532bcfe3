"""Tiny diffusers pipelines for the four diffusion keys, built in code, seeded, offline.

The component shapes follow diffusers' own fast tests (`get_dummy_components` in
tests/pipelines/stable_diffusion*/ and tests/pipelines/flux/), widened a little so the Linear
layers TorchAO quantizes are not trivially small. Tokenizers are made here from generated
vocabulary files: a byte-level BPE vocab + merges for CLIP, and a Unigram `tokenizer.json` for
T5. Nothing is downloaded. `bench/quantize.py` builds its medium models with the same functions.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

# -- tokenizers from generated files ------------------------------------------------------

_WORDS = ("a photo of the cat and dog red blue green house tree sky painting squirrel eating "
          "burger mountain lake sunset city at night portrait robot watercolor").split()


def _byte_chars() -> list[str]:
    """GPT-2's byte → printable character table (transformers 5 no longer exports it)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def write_clip_tokenizer_files(folder: Path) -> tuple[Path, Path, int]:
    """A byte-level BPE vocabulary (`vocab.json`) and `merges.txt` in CLIP's format.
    Returns (vocab, merges, vocab size); the two special tokens get the highest ids."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = _byte_chars() + [c + "</w>" for c in _byte_chars()]
    merges = []
    for word in _WORDS:  # merge each word left to right, so common words are one token
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append(f"{a} {b}")
            pieces = [a + b] + pieces[2:]
            tokens.append(a + b)
    tokens = list(dict.fromkeys(tokens)) + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt", len(vocab)


def clip_tokenizer(workdir: Path, *, max_length: int = 77):
    from transformers import CLIPTokenizer

    vocab, merges, _ = write_clip_tokenizer_files(workdir / "clip-vocab")
    if "vocab_file" in inspect.signature(CLIPTokenizer.__init__).parameters:     # transformers 4.x
        return CLIPTokenizer(vocab_file=str(vocab), merges_file=str(merges), model_max_length=max_length)
    # transformers 5.x (the GPU machine): the tokenizers backend takes the vocabulary and merges themselves
    pairs = [tuple(line.split()) for line in merges.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return CLIPTokenizer(vocab=json.loads(vocab.read_text(encoding="utf-8")), merges=pairs,
                         model_max_length=max_length)


def t5_tokenizer(*, max_length: int = 64):
    """A T5TokenizerFast over a Unigram model built in code (what `tokenizer.json` holds)."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    try:
        from transformers import T5TokenizerFast
    except ImportError:        # transformers 5.x: one tokenizer class, tokenizers-backed
        from transformers import T5Tokenizer as T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + w, -2.0 - i * 0.01) for i, w in enumerate(_WORDS)]
    pieces += [("\u2581", -4.0)] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"]
    model = Tokenizer(Unigram(pieces, unk_id=2))
    model.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    model.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    model.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                         special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=model, extra_ids=0, model_max_length=max_length,
                           pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


# -- text encoders ------------------------------------------------------------------------

def clip_text_config(vocab_size: int, *, hidden: int = 32, layers: int = 2, projection: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
                          hidden_size=hidden, intermediate_size=hidden * 2, layer_norm_eps=1e-5,
                          num_attention_heads=4, num_hidden_layers=layers, vocab_size=vocab_size,
                          hidden_act="gelu", projection_dim=projection, max_position_embeddings=77)


def t5_encoder(vocab_size: int, *, d_model: int = 32, layers: int = 2, heads: int = 4, d_kv: int = 8):
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=d_kv, d_ff=d_model * 2, num_layers=layers,
                      num_heads=heads, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    return T5EncoderModel(config)


# -- the four pipelines -------------------------------------------------------------------

def vae(*, latent_channels: int = 4, blocks=(32, 64), scaling_factor: float = 0.18215, **extra):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=list(blocks), in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * len(blocks),
                         up_block_types=["UpDecoderBlock2D"] * len(blocks),
                         latent_channels=latent_channels, norm_num_groups=16, layers_per_block=1,
                         sample_size=32, scaling_factor=scaling_factor, **extra)


def sd15_components(workdir: Path, *, width: int = 32, text_hidden: int = 32) -> dict:
    import torch
    from diffusers import PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = clip_tokenizer(workdir)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(width, width * 2), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=16,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=text_hidden, attention_head_dim=8)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=text_hidden))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1)
    return {"unet": unet, "vae": vae(), "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": scheduler, "safety_checker": None, "feature_extractor": None,
            "image_encoder": None, "requires_safety_checker": False}


def sdxl_components(workdir: Path, *, width: int = 32, turbo: bool = False) -> dict:
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = clip_tokenizer(workdir)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(width, width * 2), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=16,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64)
    config = clip_text_config(len(tokenizer), hidden=32, projection=32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(config)
    torch.manual_seed(1)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    common = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    scheduler = (EulerAncestralDiscreteScheduler(timestep_spacing="trailing", **common) if turbo
                 else EulerDiscreteScheduler(timestep_spacing="leading", **common))
    return {"unet": unet, "vae": vae(scaling_factor=0.13025), "text_encoder": text_encoder,
            "tokenizer": tokenizer, "text_encoder_2": text_encoder_2, "tokenizer_2": clip_tokenizer(workdir),
            "scheduler": scheduler, "image_encoder": None, "feature_extractor": None,
            "force_zeros_for_empty_prompt": not turbo}


def flux_components(workdir: Path, *, heads: int = 2, head_dim: int = 16, layers: int = 1,
                    single_layers: int = 1) -> dict:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel

    tokenizer = clip_tokenizer(workdir)
    tokenizer_2 = t5_tokenizer()
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=layers,
                                         num_single_layers=single_layers, attention_head_dim=head_dim,
                                         num_attention_heads=heads, joint_attention_dim=32,
                                         pooled_projection_dim=32,
                                         axes_dims_rope=[head_dim // 4, head_dim // 4, head_dim // 2])
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=32, projection=32))
    text_encoder_2 = t5_encoder(len(tokenizer_2), d_model=32)
    autoencoder = vae(latent_channels=4, blocks=(32, 32), scaling_factor=1.5035, shift_factor=0.0609,
                      use_quant_conv=False, use_post_quant_conv=False)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    return {"transformer": transformer, "vae": autoencoder, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "text_encoder_2": text_encoder_2, "tokenizer_2": tokenizer_2, "scheduler": scheduler,
            "image_encoder": None, "feature_extractor": None}


BUILDERS = {
    "sd15": ("StableDiffusionPipeline", sd15_components),
    "sdxl": ("StableDiffusionXLPipeline", sdxl_components),
    "sdxl-turbo": ("StableDiffusionXLPipeline", lambda w, **kw: sdxl_components(w, turbo=True, **kw)),
    "flux1": ("FluxPipeline", flux_components),
}


def build_pipeline(key: str, workdir: Path, **sizes):
    import diffusers

    class_name, builder = BUILDERS[key]
    components = builder(Path(workdir), **sizes)
    return getattr(diffusers, class_name)(**components)


def save_pipeline(key: str, folder: Path, *, license: str | None = "openrail++", **sizes) -> Path:
    """Build the tiny pipeline for `key` and save it as a diffusers folder (safetensors),
    with a README carrying a license, as a Hub repo would have."""
    folder = Path(folder)
    pipe = build_pipeline(key, folder.parent / f".{folder.name}-work", **sizes)
    pipe.save_pretrained(folder, safe_serialization=True)
    if license:
        (folder / "README.md").write_text(f"---\nlicense: {license}\n---\n# tiny {key}\n", encoding="utf-8")
    return folder
