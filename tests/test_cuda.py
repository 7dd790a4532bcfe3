"""The CUDA paths, on a real GPU (marker `cuda`: skipped without one; bench/gpu_check.sh runs them
on the GPU machine, whose stack is torch 2.11 + transformers 5.x with diffusers and torchao carried
as wheels). The same behaviours on the CPU: test_diffusion_device.py and test_train_speed.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from imgai.diffusion import MODEL_KEYS, CheckConfig
from imgai.diffusion.info import read_info
from imgai.diffusion.targets import RunContext, convert_target
from tests.diffusion_fixtures import tiny_sources  # noqa: F401 (fixture)

pytestmark = pytest.mark.cuda
PROMPT = ("a photo of the cat",)
TINY = CheckConfig(prompts=PROMPT, steps=2, height=32, width=32)


def _ctx(tmp_path, **kw) -> RunContext:
    return RunContext(output_dir=tmp_path / "out", check=kw.pop("check", TINY), device="cuda", **kw)


@pytest.mark.parametrize("key", ["sd15", "flux1"])
def test_int8_on_cuda_is_quantized_on_the_gpu_checked_there_and_recorded(tmp_path, tiny_sources, key):
    from imgai.devices import cuda_half_dtype
    from imgai.diffusion.checks import sample
    from imgai.diffusion.quantize import Placement, load_pytorch_output

    result = convert_target(key, "pytorch", "INT8", ctx=_ctx(tmp_path), source_spec=str(tiny_sources[key]))
    assert result.status == "done", result.reason
    info = read_info(Path(result.path))
    dtype = cuda_half_dtype()
    assert info["device"]["device"] == "cuda" and info["device"]["dtype"] == dtype and not info["device"]["offload"]
    assert info["device"]["vram"]["mode"] == "resident" and info["settings"]["device"] == "cuda"
    assert info["torchao"]["quantized_on"] == "cuda" and info["load_torch_dtype"] == dtype
    memory = info["memory"]
    assert memory["sampling_peak_measure"] == "torch.cuda.max_memory_allocated"
    assert memory["sampling_peak_bytes_original"] > 0 and memory["sampling_peak_bytes_converted"] > 0
    check = info["check"]
    assert check["passed"] and check["seconds_per_step_original"] > 0 and check["seconds_per_step_converted"] > 0
    card = (Path(result.path) / "README.md").read_text()
    assert "(CUDA" in card and "--device cuda" in card
    denoiser = MODEL_KEYS[key].denoiser
    assert "int8" in info["components"][denoiser]["dtype_after"]
    # it loads back onto the GPU, as its card says, and draws what the check saw
    pipe = load_pytorch_output(Path(result.path), load_dtype=dtype, placement=Placement("cuda", dtype))
    assert next(getattr(pipe, denoiser).parameters()).device.type == "cuda"
    again = sample(pipe, check["settings"], denoiser=denoiser, device="cuda")
    assert again.images[0].shape == (32, 32, 3)


def test_a_pipeline_that_does_not_fit_runs_with_model_cpu_offload(tmp_path, tiny_sources, monkeypatch):
    from imgai import devices
    from imgai.diffusion.resources import VRAM_LOAD_FACTOR, VRAM_OVERHEAD
    from imgai.diffusion.source import resolve_source

    source = resolve_source(MODEL_KEYS["flux1"], str(tiny_sources["flux1"]))
    largest = max(c.params * 2 for c in source.weight_components)
    free = int(largest * VRAM_LOAD_FACTOR) + VRAM_OVERHEAD + 1024      # the largest component fits, not all
    total = devices.cuda_memory()[1]
    monkeypatch.setattr(devices, "cuda_memory", lambda: (free, total))
    warned = []
    result = convert_target("flux1", "pytorch", "INT8", ctx=_ctx(tmp_path, on_warning=warned.append),
                            source_spec=str(tiny_sources["flux1"]))
    assert result.status == "done", result.reason
    info = read_info(Path(result.path))
    assert info["device"]["offload"] == "model_cpu_offload" and info["device"]["vram"]["free_bytes"] == free
    assert info["torchao"]["quantized_on"] == "cpu" and info["check"]["passed"]
    assert any("model CPU offload" in w for w in warned)


def test_real_out_of_memory_fails_the_target_with_figures_and_writes_nothing(tmp_path, tiny_sources):
    import torch
    from diffusers import FluxTransformer2DModel

    def exhaust(module, args):
        if isinstance(module, FluxTransformer2DModel):
            torch.empty(2 ** 50, dtype=torch.uint8, device="cuda")      # 1 PiB: the allocator refuses

    handle = torch.nn.modules.module.register_module_forward_pre_hook(exhaust)
    try:
        result = convert_target("flux1", "pytorch", "INT8", ctx=_ctx(tmp_path), source_spec=str(tiny_sources["flux1"]))
    finally:
        handle.remove()
    assert result.status == "failed"
    assert "ran out of CUDA memory (peak allocated" in result.reason and " free of " in result.reason
    assert "To fix:" in result.reason
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_bf16_is_refused_on_a_gpu_without_it(monkeypatch):
    from imgai import devices
    from imgai.errors import ConfigError
    from imgai.train import TrainConfig

    assert TrainConfig(device="cuda").resolved_precision() == ("bf16" if devices.bf16_supported() else "fp16")
    monkeypatch.setattr(devices, "bf16_supported", lambda: False)
    with pytest.raises(ConfigError, match="precision bf16 is not supported by this GPU"):
        TrainConfig(device="cuda", precision="bf16")
    assert TrainConfig(device="cuda").resolved_precision() == "fp16"
    assert devices.cuda_half_dtype() == "float16"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from imgai.classify.imagenet import IMAGENET_MEAN, IMAGENET_STD
    from imgai.train.data import DataPipeline
    from imgai.train.images import datasets
    from tests.train_fixtures import make_shapes

    root = make_shapes(tmp_path_factory.mktemp("shapes") / "data", per_class=16, size=48)
    pipeline = DataPipeline(name="shapes", kind="folder", location=str(root), root=str(root), image_size=32,
                            flip=True, crop=True, color_jitter=True)
    _, train_set, val_set = datasets(pipeline, image_size=32, val_split=0.25, seed=0,
                                     mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return train_set, val_set


def _cnn():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                               torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(32, 3))


@pytest.mark.parametrize("precision", ["auto", "fp16", "fp32"])
def test_training_on_cuda_learns_in_each_precision_from_the_gpu_cache(shapes, precision):
    from imgai.train import TrainConfig
    from imgai.train.loop import fit

    train_set, val_set = shapes
    config = TrainConfig(epochs=8, batch_size=8, lr=3e-3, device="cuda", precision=precision, pretrained=False)
    model = _cnn()
    result = fit(model, train_set, val_set, config, num_classes=3)
    assert result.precision == config.resolved_precision()
    assert "decoded-image cache" in result.feed and "on the GPU" in result.feed
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] and result.history[-1]["val_accuracy"] is not None, result.history
    assert all(p.device.type == "cpu" and p.is_contiguous() for p in model.parameters())


def test_an_epoch_does_not_wait_for_the_gpu_per_batch(shapes):
    """torch.cuda sync debug mode warns at every host synchronisation: an epoch of 6 batches must
    cause no more of them than an epoch of 2 (the sums are read once, at the end)."""
    import torch

    from imgai.train.cache import CachedBatches, DecodedImages
    from imgai.train.feed import Amp
    from imgai.train.loop import make_loss, train_one_epoch

    train_set, _ = shapes
    cache = DecodedImages(train_set, image_size=32, store="cuda", device="cuda")
    model = _cnn().to("cuda", memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    amp = Amp("cuda", "bf16" if torch.cuda.is_bf16_supported() else "fp32")

    def syncs(batch_size: int) -> tuple[int, int]:
        feed = CachedBatches(cache, batch_size=batch_size, mean=(0.5,) * 3, std=(0.25,) * 3,
                             augment=train_set.spec["augment"], shuffle=True, seed=0, channels_last=True)
        batches = len(feed.set_epoch(1))
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train_one_epoch(model, feed, optimizer, make_loss_fn(), epoch=1, multi_label=False, device="cuda",
                                amp=amp)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return batches, sum("synchroniz" in str(w.message) for w in caught)

    def make_loss_fn():
        from imgai.train import TrainConfig

        return make_loss(TrainConfig(pretrained=False), False)

    syncs(6)                               # warm-up: first-use allocations and kernels
    few_batches, few = syncs(len(train_set) // 2 + 1)
    many_batches, many = syncs(6)
    assert many_batches >= few_batches + 4
    assert many == few, f"{many} synchronisations in {many_batches} batches vs {few} in {few_batches}"


def test_a_resumed_fp16_run_goes_on_with_the_loss_scale_it_reached(shapes, tmp_path):
    """The GradScaler's growth tracker counts the run's good fp16 steps: straight through two epochs
    and one epoch + resume end at the same count (a scaler not restored would start at 0 again)."""
    from imgai.train import TrainConfig
    from imgai.train.loop import fit, load_checkpoint

    train_set, val_set = shapes
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, device="cuda", precision="fp16", pretrained=False)
    fit(_cnn(), train_set, val_set, config, num_classes=3, checkpoint=tmp_path / "straight.pt")
    straight = load_checkpoint(tmp_path / "straight.pt")["scaler"]
    one = TrainConfig.from_dict({**config.to_dict(), "epochs": 1})
    fit(_cnn(), train_set, val_set, one, num_classes=3, checkpoint=tmp_path / "resumed.pt")
    first = load_checkpoint(tmp_path / "resumed.pt")["scaler"]
    fit(_cnn(), train_set, val_set, config, num_classes=3, checkpoint=tmp_path / "resumed.pt", resume=True)
    resumed = load_checkpoint(tmp_path / "resumed.pt")["scaler"]
    assert 0 < first["_growth_tracker"] < straight["_growth_tracker"]
    assert resumed == straight
