"""One engine table for tag, quantize and train, with one options type (`EngineOptions`): every
entry resolves, the local ones never import Ray, and each kind of work carries the same options
through its job record."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imgai.engines import ENGINES, KINDS_OF_WORK, WORK, EngineOptions, work_function
from imgai.errors import ConfigError

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_the_table_covers_every_kind_of_work_on_every_engine():
    assert set(WORK) == {(kind, engine) for kind in KINDS_OF_WORK for engine in ENGINES}
    assert KINDS_OF_WORK == ("tag", "quantize", "train")


@pytest.mark.parametrize("kind", ["tag", "quantize", "train"])
@pytest.mark.parametrize("engine", ENGINES)
def test_every_entry_names_a_function_that_exists(kind, engine):
    module, _, function = WORK[(kind, engine)].partition(":")
    found = getattr(__import__(module, fromlist=[function]), function)
    assert callable(found)


def test_the_local_engine_never_imports_ray():
    code = ("import sys, imgai.engines as e\n"
            "for kind in e.KINDS_OF_WORK: e.work_function(kind, 'local')\n"
            "print(sorted(m for m in ('ray', 'ray.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_unknown_work_and_engines_are_refused_by_name():
    with pytest.raises(ConfigError, match="'spark' is not one of local, ray"):
        work_function("tag", "spark")
    with pytest.raises(ConfigError, match="no kind of work 'export'"):
        work_function("export", "local")


def test_options_name_the_bad_value_and_the_fix():
    with pytest.raises(ConfigError, match="engine 'dask' is not one of local, ray"):
        EngineOptions("dask")
    with pytest.raises(ConfigError, match="address 'head:6379' only applies to engine 'ray'.*--engine ray"):
        EngineOptions("local", address="head:6379")
    with pytest.raises(ConfigError, match=r"workers=3 \(--workers; --actors for tag\) only applies to engine .ray."):
        EngineOptions(workers=3)
    with pytest.raises(ConfigError, match="workers=0 must be a whole number from 1"):
        EngineOptions("ray", workers=0)
    with pytest.raises(ConfigError, match=r"unknown engine setting\(s\) \['actors'\]"):
        EngineOptions.from_value({"name": "ray", "actors": 2})
    assert EngineOptions.from_value("ray") == EngineOptions("ray")
    assert EngineOptions.from_value({"name": "ray", "workers": 2}) == EngineOptions("ray", workers=2)


def test_quantize_carries_the_options_through_its_job_record():
    from imgai.diffusion.matrix import QuantizeRequest

    request = QuantizeRequest(model="sd15", engine=EngineOptions("ray", address="head:6379"))
    params = json.loads(json.dumps(request.to_params()))
    assert params["engine"] == {"name": "ray", "address": "head:6379", "workers": None}
    assert QuantizeRequest.from_params(params).engine == request.engine
    legacy = dict(params, engine="ray", address="head:6379")        # a record from before EngineOptions
    assert QuantizeRequest.from_params(legacy).engine == request.engine
    with pytest.raises(ConfigError, match="workers=4 does not apply to quantize"):
        QuantizeRequest(model="sd15", engine=EngineOptions("ray", workers=4))


def test_train_carries_the_options_and_retrain_changes_part_of_them():
    from imgai.train.config import TrainConfig

    config = TrainConfig(engine=EngineOptions("ray", workers=2, address="head:6379"))
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.replace(engine={"workers": 4}).engine == EngineOptions("ray", workers=4, address="head:6379")
    assert again.replace(engine={"name": "local"}).engine == EngineOptions()
    legacy = dict(config.to_dict(), engine="ray", workers=2, address="head:6379")
    assert TrainConfig.from_dict(legacy).engine == config.engine
    old_local = dict(config.to_dict(), engine="local", workers=2, address=None)
    assert TrainConfig.from_dict(old_local).engine == EngineOptions()
    with pytest.raises(ConfigError, match="'mps' cannot train on Ray"):
        TrainConfig(engine="ray", device="mps")


def test_cli_flags_fill_the_one_options_type(imgai_home):
    from imgai.cli import build_parser
    from imgai.cli.train import _config_changes

    args = build_parser().parse_args(["train", "start", "m", "--data", "d", "--engine", "ray", "--workers", "3",
                                      "--epochs", "2"])
    assert _config_changes(args) == {"engine": {"name": "ray", "workers": 3}, "epochs": 2}
