"""Each constant is defined once and read everywhere else: a second literal copy in imgai/, ui/ or
app.py fails here, naming the files. Plus the single readers of the shared formats."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "imgai").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py")), ROOT / "app.py"]

# what a copy looks like → the one module allowed to hold it
DEFINED_ONCE = {
    "the Hub-id pattern": (r"\[A-Za-z0-9\]\[\\w\.\\?-\]\*/", "imgai/hub_id.py"),
    "ImageNet mean": (r"0\.485,\s*0\.456,\s*0\.406", "imgai/classify/imagenet.py"),
    "ImageNet std": (r"0\.229,\s*0\.224,\s*0\.225", "imgai/classify/imagenet.py"),
    "the engine list": (r"""\(\s*["']local["'],\s*["']ray["']\s*\)""", "imgai/engines/__init__.py"),
    "the model libraries": (r"""["']transformers["'],\s*["']timm["'],\s*["']onnx["']""",
                            "imgai/classify/architectures.py"),
    "the job states": (r"""["']queued["'],\s*["']starting["']""", "imgai/jobs.py"),
    "the losses": (r"""["']cross_entropy["'],\s*["']bce["']""", "imgai/train/config.py"),
    "the optimizers": (r"""["']adamw?["'],\s*["']adamw?["']""", "imgai/train/config.py"),
    "the epoch stage": (r"""f["']epoch \{""", "imgai/train/stage.py"),
}


@pytest.mark.parametrize("what", sorted(DEFINED_ONCE))
def test_defined_once(what):
    pattern, home = DEFINED_ONCE[what]
    found = sorted({str(p.relative_to(ROOT)) for p in SOURCES if re.search(pattern, p.read_text())})
    assert found == [home], f"{what} is written in {found}; define it in {home} and import it"


@pytest.mark.parametrize("what", ["ImageNet mean", "ImageNet std"])
def test_tests_and_benches_import_the_imagenet_statistics(what):
    pattern, home = DEFINED_ONCE[what]
    others = [*sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "bench").rglob("*.py"))]
    found = sorted(str(p.relative_to(ROOT)) for p in others if re.search(pattern, p.read_text()))
    assert found == [], f"{what} is copied into {found}; import it from {home}"


def test_epoch_stage_is_written_and_read_in_one_place():
    from imgai.train.stage import epoch_stage, parse_epoch_stage

    assert parse_epoch_stage(epoch_stage(3, 10)) == (3, 10)
    assert parse_epoch_stage("reading data") is None and parse_epoch_stage(None) is None
    assert parse_epoch_stage("epoch 3/10: train loss 0.1") is None      # an event line, not the stage


def test_one_hub_id_syntax():
    from imgai.errors import ConfigError
    from imgai.hub_id import split_revision

    assert split_revision("org/name") == ("org/name", None)
    assert split_revision(" org/name@refs/pr/1 ") == ("org/name", "refs/pr/1")
    for bad in ("name", "/abs/path", "org/name@", "a/b/c"):
        with pytest.raises(ConfigError, match=re.escape(repr(bad))):
            split_revision(bad)


# each family of status words: its definition, written once (the others import the names)
DEFINED_ONCE.update({
    "the target statuses": (r"""["']done["'],\s*["']skipped["'],\s*["']failed["']""", "imgai/diffusion/targets.py"),
    "the demo states": (r"""["']preparing["'],\s*["']ready["'],\s*["']failed["']""", "imgai/guide.py"),
    "the conversion states": (r"""["']NotConverted["'],\s*["']Converting["']""", "imgai/registry.py"),
    "the training states": (r"""["']Untrained["'],\s*["']Training["']""", "imgai/train/models.py"),
})

# a status compared or set by its literal word, instead of the name it is defined under
STATUS_LITERAL = re.compile(
    r"""(?:status|state|conversion|training)["'\]]*\s*(?:[!=]=|=|\bin\b\s*\()\s*["'](?:done|skipped|failed|Failed|"""
    r"""succeeded|cancelled|queued|running|preparing|ready|absent|off|Trained|Untrained|Converting|Converted)["']"""
    r"""|=\s*'(?:queued|starting|running|succeeded|failed|cancelled)'""")     # … and in SQL


def test_status_words_are_used_by_name():
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in SOURCES
             for n, line in enumerate(p.read_text().splitlines(), 1) if STATUS_LITERAL.search(line)]
    assert found == [], "use the status's name (registry, jobs, guide, diffusion.targets):\n" + "\n".join(found)


def test_the_target_statuses_are_what_the_summary_counts():
    from imgai.diffusion.matrix import summary_line
    from imgai.diffusion.targets import TARGET_STATUSES, TargetResult

    results = [TargetResult(name=s, key="sd15", backend="pytorch", quantization="INT8", status=s)
               for s in TARGET_STATUSES]
    assert summary_line(results) == "1 done, 1 skipped, 1 failed"
