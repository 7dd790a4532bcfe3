"""Result writers (both engines stream through them) and the Ray engine's scheduling plan."""

import csv
import io
import json
from importlib.util import find_spec

import pytest

from imgai.classify.outputs import to_csv, to_json
from imgai.classify.tag import Tag, TagResult
from imgai.classify.writers import ResultFile
from imgai.errors import ConfigError

RESULTS = [TagResult("a.jpg", [Tag("cat", 0.9), Tag("dog", 0.1)]), TagResult("b.jpg", [], "not an image"),
           TagResult("c.jpg", [Tag("bird", 0.5)])]


def write(fmt, path=None):
    with ResultFile(fmt, path) as writer:
        for r in RESULTS:
            writer.write(r)


@pytest.mark.parametrize("fmt, parse", [
    ("jsonl", lambda text: [json.loads(line) for line in text.splitlines()]),
    ("json", json.loads),
    ("csv", lambda text: list(csv.DictReader(io.StringIO(text)))),
])
def test_text_formats_hold_every_result(fmt, parse, tmp_path):
    out = tmp_path / f"tags.{fmt}"
    write(fmt, out)
    rows = parse(out.read_text())
    if fmt == "csv":
        assert out.read_bytes().decode() == to_csv(RESULTS)   # the same CSV as before streaming
        assert [r["path"] for r in rows] == ["a.jpg", "a.jpg", "b.jpg", "c.jpg"]
    else:
        assert rows == [r.to_dict() for r in RESULTS]
    if fmt == "json":
        assert out.read_text() == to_json(RESULTS)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.skipif(find_spec("pyarrow") is None, reason="pyarrow comes with requirements-ray.txt")
def test_parquet_has_typed_columns(tmp_path):
    import pyarrow.parquet as pq

    write("parquet", tmp_path / "tags.parquet")
    table = pq.read_table(tmp_path / "tags.parquet")
    assert table.column_names == ["path", "tags", "error", "rating"]
    assert table.to_pylist() == [r.to_dict() for r in RESULTS]


def test_parquet_needs_a_file_and_a_failed_run_leaves_nothing(tmp_path):
    with pytest.raises(ConfigError, match="--output"):
        ResultFile("parquet", None)
    out = tmp_path / "tags.jsonl"
    with pytest.raises(RuntimeError):
        with ResultFile("jsonl", out) as writer:
            writer.write(RESULTS[0])
            raise RuntimeError("the run broke")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_ray_plan_one_actor_per_node_owning_its_cpus():
    from imgai.engines.ray_tag import plan_for

    nodes = [{"NodeID": "a", "Resources": {"CPU": 8}}, {"NodeID": "b", "Resources": {"CPU": 4}}]
    plan = plan_for(nodes)
    assert (plan.actors, plan.actor_cpus, plan.decoders) == (2, 4, 12)
    assert (plan.threads["a"], plan.threads["b"]) == (8, 4)
    plan = plan_for(nodes, actors=4)        # two per node: each takes half of its node
    assert (plan.actor_cpus, plan.threads["a"], plan.threads["b"]) == (2, 4, 2)
    with pytest.raises(ConfigError, match="more than the 12 CPUs"):
        plan_for(nodes, actors=13)


@pytest.mark.skipif(find_spec("pyarrow") is None, reason="pyarrow comes with requirements-ray.txt")
def test_output_to_a_uri_is_written_when_the_run_ends(tmp_path):
    uri = f"file://{tmp_path}/tags.jsonl"
    write("jsonl", uri)
    assert [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()] == \
        [r.to_dict() for r in RESULTS]
    with pytest.raises(ConfigError, match="cannot write the results"):
        write("jsonl", f"file://{tmp_path}/missing-folder/tags.jsonl")
