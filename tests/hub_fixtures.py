"""Fixtures for the Hub tests: a fake Hub server (tests/fakehub.py) in its own process, filled
with repos built from tiny models made in code, and the HF client pointed at it.

Import the fixtures into a test module:
`from tests.hub_fixtures import fake_hub, fake_hub_server, fake_hub_template`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fakehub_store import Store
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
ALICE_TOKEN = "hf_AliceWritesTestToken0123456789abc"    # member of the "acme" org, may write
BOB_TOKEN = "hf_BobReadsOnlyTestToken0123456789abcd"    # read-only, approved for nothing
LABELS = {0: "cat", 1: "dog", 2: "bird"}
OAUTH_CLIENT_ID = "imgai-space-oauth-app"                # the OAuth app a Space with hf_oauth gets
OAUTH_CLIENT_SECRET = "imgai-space-oauth-secret-for-tests"


def _readme(title: str, license_: str, library: str, extra: str = "") -> str:
    return (f"---\nlicense: {license_}\nlibrary_name: {library}\npipeline_tag: image-classification\n{extra}---\n"
            f"# {title}\n\n![badge](x.svg)\n\nA tiny {title} built in code for imgai's tests: random weights, "
            "three labels.\n\nMore text.\n")


def build_models(work: Path) -> dict[str, Path]:
    """Tiny real models saved as the Hub holds them (seeded)."""
    import timm
    import torch
    from timm.models._hub import save_for_hf
    from transformers import (BertConfig, BertForSequenceClassification, ConvNextImageProcessor, EfficientNetConfig,
                              EfficientNetForImageClassification, EfficientNetImageProcessor, MobileNetV2Config,
                              MobileNetV2ForImageClassification, MobileNetV2ImageProcessor, ResNetConfig,
                              ResNetForImageClassification, ViTConfig, ViTForImageClassification,
                              ViTImageProcessor)

    label2id = {v: k for k, v in LABELS.items()}
    common = {"num_labels": 3, "id2label": LABELS, "label2id": label2id}
    out: dict[str, Path] = {}

    def save(name, model, processor=None, readme=None):
        folder = work / name
        model.eval().save_pretrained(folder, safe_serialization=True)
        if processor is not None:
            processor.save_pretrained(folder)
        if readme:
            (folder / "README.md").write_text(readme)
        out[name] = folder

    torch.manual_seed(0)
    save("resnet", ResNetForImageClassification(ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **common)),
        ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875),
        _readme("ResNet", "apache-2.0", "transformers"))
    # the same kind of model again, with extra files a download must leave alone
    shutil.copytree(out["resnet"], work / "resnet-extras")
    (work / "resnet-extras" / "pytorch_model.bin").write_bytes(b"pickle that must never be fetched" * 100)
    (work / "resnet-extras" / "tf_model.h5").write_bytes(b"\0" * 5000)
    out["resnet-extras"] = work / "resnet-extras"
    torch.manual_seed(1)
    save("efficientnet", EfficientNetForImageClassification(EfficientNetConfig(
        image_size=32, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=16, **common)),
        EfficientNetImageProcessor(size={"height": 32, "width": 32}), _readme("EfficientNet", "mit", "transformers"))
    torch.manual_seed(2)
    save("mobilenet", MobileNetV2ForImageClassification(MobileNetV2Config(
        image_size=32, depth_multiplier=0.1, min_depth=4, **common)),
        MobileNetV2ImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}),
        _readme("MobileNetV2", "apache-2.0", "transformers"))
    torch.manual_seed(3)
    save("vit", ViTForImageClassification(ViTConfig(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, image_size=8, patch_size=4,
        **common)), ViTImageProcessor(size={"height": 8, "width": 8}), _readme("ViT", "apache-2.0", "transformers"))
    torch.manual_seed(4)
    save("bert", BertForSequenceClassification(BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, num_labels=2)),
        readme="---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: text-classification\n---\n# A text model\n")
    torch.manual_seed(5)
    timm_dir = work / "timm-mobilenetv3"
    save_for_hf(timm.create_model("mobilenetv3_small_050", num_classes=3).eval(), timm_dir,
                model_config={"label_names": list(LABELS.values())}, safe_serialization=True)
    (timm_dir / "README.md").write_text(_readme("MobileNetV3", "apache-2.0", "timm"))
    out["timm-mobilenetv3"] = timm_dir
    torch.manual_seed(6)
    large = work / "timm-mobilenetv3-large"   # 22 MB: more than one 10 MB download chunk
    save_for_hf(timm.create_model("mobilenetv3_large_100").eval(), large, safe_serialization=True)
    out["timm-mobilenetv3-large"] = large
    torch.manual_seed(7)
    vit_timm = work / "timm-vit"
    save_for_hf(timm.create_model("vit_tiny_patch16_224", img_size=32, depth=1, num_classes=3).eval(), vit_timm,
                safe_serialization=True)
    out["timm-vit"] = vit_timm
    # what Browse hides, one per reason; the config decides, so each is a working model with its
    # config.json changed the way such repos look
    out["custom-code"] = _variant(work, "custom-code", out["resnet"], auto_map={
        "AutoConfig": "configuration_mine.MyConfig", "AutoModelForImageClassification": "modeling_mine.MyResNet"})
    out["detr"] = _variant(work, "detr", out["resnet"], model_type="detr", architectures=["DetrForObjectDetection"])
    out["failed-family"] = _variant(work, "failed-family", out["resnet"], model_type="dinat",
                                    architectures=["DinatForImageClassification"])
    pickled = _variant(work, "pickle-only", out["resnet"])
    from safetensors.torch import load_file

    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    out["pickle-only"] = pickled
    out["timm-unknown"] = _variant(work, "timm-unknown", vit_timm, architecture="mystery_net_tiny")
    return out


def _variant(work: Path, name: str, source: Path, **config_changes) -> Path:
    """A copy of `source` whose config.json has `config_changes`."""
    folder = work / name
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(config_changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


TRANSFORMERS_META = {"library_name": "transformers", "pipeline_tag": "image-classification"}
TIMM_META = {"library_name": "timm", "pipeline_tag": "image-classification"}


def fill_store(store: Store, models: dict[str, Path]) -> None:
    store.add_user(ALICE_TOKEN, "alice", orgs=["acme"], role="write")
    store.add_user(BOB_TOKEN, "bob", role="read")
    store.add_oauth_client(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)

    def meta(base, model_type, downloads, likes):
        tags = [base["library_name"], "safetensors", base["pipeline_tag"]] + ([model_type] if model_type else [])
        return {**base, "tags": tags, "downloads": downloads, "likes": likes}

    pub = store.publish_folder
    pub("acme/resnet-tiny", models["resnet-extras"], meta=meta(TRANSFORMERS_META, "resnet", 900, 30))
    pub("acme/efficientnet-tiny", models["efficientnet"], meta=meta(TRANSFORMERS_META, "efficientnet", 500, 50))
    pub("acme/mobilenet-v2-tiny", models["mobilenet"], meta=meta(TRANSFORMERS_META, "mobilenet_v2", 300, 10))
    # a name that says nothing: support comes from config.json
    pub("acme/fancy-classifier", models["resnet"], meta=meta(TRANSFORMERS_META, "resnet", 5, 1))
    pub("timmfolk/mobilenetv3-tiny", models["timm-mobilenetv3"], meta=meta(TIMM_META, None, 700, 70))
    pub("timmfolk/mobilenetv3-large", models["timm-mobilenetv3-large"], meta=meta(TIMM_META, None, 650, 20))
    # the families people pick: a ViT in both libraries (offered because the sweep converted them)
    pub("acme/vit-tiny", models["vit"], meta=meta(TRANSFORMERS_META, "vit", 800, 5))
    pub("timmfolk/vit-tiny", models["timm-vit"], meta=meta(TIMM_META, None, 400, 4))
    # names that lie: hidden, decided from metadata / config.json / the files, one per reason
    pub("acme/resnet-text-bert", models["bert"], meta={**meta(TRANSFORMERS_META, "bert", 600, 5),
                                                       "pipeline_tag": "text-classification"})
    pub("acme/resnet-custom-code", models["custom-code"], meta=meta(TRANSFORMERS_META, "resnet", 550, 5))
    pub("acme/resnet-lookalike-detr", models["detr"], meta=meta(TRANSFORMERS_META, "detr", 520, 5))
    pub("acme/resnet-failed-family", models["failed-family"], meta=meta(TRANSFORMERS_META, "dinat", 510, 5))
    pub("acme/resnet-pickle-only", models["pickle-only"], meta=meta(TRANSFORMERS_META, "resnet", 505, 5))
    pub("timmfolk/resnet-like-unknown", models["timm-unknown"], meta=meta(TIMM_META, None, 390, 4))
    # access
    pub("acme/gated-resnet", models["resnet"], gated="manual", approved=["alice"],
        meta=meta(TRANSFORMERS_META, "resnet", 50, 2))
    pub("carol/private-resnet", models["resnet"], private=True, meta=meta(TRANSFORMERS_META, "resnet", 0, 0))
    pub("acme/ratelimited-resnet", models["resnet"], meta=meta(TRANSFORMERS_META, "resnet", 1, 0))
    # a repo whose metadata claims a petabyte of weights
    pub("acme/huge-resnet", models["resnet"], declared_sizes={"model.safetensors": 10**15},
        meta=meta(TRANSFORMERS_META, "resnet", 2, 0))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeHub:
    """The fake Hub server process; `url` is its endpoint, `store` its storage."""

    def __init__(self, root: Path):
        self.root = root
        self.store = Store(root)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakehub", "--root", str(self.root), "--port",
                                      str(self.port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake hub exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/api/models?limit=1", timeout=1).read()
                return True
            except OSError:                                   # not listening yet
                return False

        wait_until(answers, 30, f"the fake hub to answer on {self.url}", every=0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_dead(self, timeout: float = 20) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def requests(self) -> list[str]:
        return self.store.requests()


@pytest.fixture(scope="session")
def fake_hub_template(tmp_path_factory) -> Path:
    """The fake Hub's repos, built once per session from tiny models made in code."""
    root = tmp_path_factory.mktemp("fakehub-template")
    fill_store(Store(root), build_models(tmp_path_factory.mktemp("hub-models")))
    return root


@pytest.fixture
def fake_hub_server(fake_hub_template, tmp_path_factory):
    """A fake Hub server of its own for each test, on its own copy of the repos: what one test
    pushes, breaks or slows down, no other test sees. (Outside the test's tmp_path, which
    tests search for leaked tokens: the Hub's own user table holds them.)"""
    root = tmp_path_factory.mktemp("fakehub")
    shutil.copytree(fake_hub_template, root, dirs_exist_ok=True)
    hub = FakeHub(root)
    yield hub
    hub.stop()


def point_hf_at(monkeypatch, *, endpoint: str | None, hf_home: Path, offline: bool, token: str | None) -> None:
    """Point huggingface_hub (in this process, and in every subprocess through the environment) at
    `endpoint`, a private HF_HOME, online or offline, with `token` as HF_TOKEN."""
    from huggingface_hub import constants, file_download, hf_api
    from huggingface_hub.utils import reset_sessions

    from imgai.hub.client import forget_status

    hf_home.mkdir(parents=True, exist_ok=True)
    for key, value in {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1" if offline else "0",
                       "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    if endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        # the module-level HfApi behind huggingface_hub.model_info & co. (diffusers calls them) took
        # its endpoint at import
        monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    reset_sessions()
    forget_status()


@pytest.fixture
def fake_hub(fake_hub_server, imgai_home, tmp_path, monkeypatch):
    """The test's fake Hub, with HF_ENDPOINT pointing at it, online mode, a private HF_HOME and
    alice's token as HF_TOKEN."""
    fake_hub_server.hf_home = tmp_path / "hf_home"
    point_hf_at(monkeypatch, endpoint=fake_hub_server.url, hf_home=fake_hub_server.hf_home, offline=False,
                token=ALICE_TOKEN)
    yield fake_hub_server
    from huggingface_hub.utils import reset_sessions

    reset_sessions()


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle` (symlinks followed once)."""
    found = []
    data = needle.encode()
    for p in Path(root).rglob("*"):
        try:
            if p.is_file() and data in p.read_bytes():
                found.append(p)
        except OSError:
            continue
    return found


def read_json(path: Path):
    return json.loads(Path(path).read_text())
