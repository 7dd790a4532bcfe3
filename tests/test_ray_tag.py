"""Tagging on Ray gives the local engine's answers: on a private local Ray started by the CLI,
on a simulated two-node cluster joined with --address, and when an inference actor is killed.

One tiny model and one small image set for the module; each Ray started here is stopped here
(never `ray stop`, which would kill every Ray on the host).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.factories import random_image

needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="Ray is not installed (requirements-ray.txt)")
pytestmark = pytest.mark.timeout(300)

BATCH = 4


@pytest.fixture(scope="module")
def ray_env():
    """A private data folder with a converted tiny model, and a private Ray temp folder."""
    with pytest.MonkeyPatch.context() as mp:
        root = Path(tempfile.mkdtemp(prefix="imgai-ray-"))   # short: Ray's socket paths must fit
        mp.setenv("IMGAI_HOME", str(root / "home"))
        mp.setenv("IMGAI_NO_DEMO", "1")
        mp.setenv("RAY_TMPDIR", str(root / "tmp"))
        yield root
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def model(ray_env, tiny_model_cache):
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-mobilenetv3"), ray_env / "src-model")
    return convert(add_model(str(folder)).id)


@pytest.fixture(scope="module")
def images(ray_env) -> Path:
    """Photos of assorted sizes in nested folders, and three bad files."""
    folder = ray_env / "images"
    (folder / "nested").mkdir(parents=True)
    for i in range(22):
        random_image(folder / ("nested" if i % 3 else ".") / f"img{i:02d}.png", seed=i, size=(70 + 3 * i, 50 + i))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    (folder / "truncated.jpg").write_bytes((folder / "img00.png").read_bytes()[:200])
    return folder


@pytest.fixture(scope="module")
def local_answers(model, images) -> dict:
    from imgai.classify.tag import TagOptions, tag

    return answers(tag([images], options=TagOptions(batch_size=BATCH, top_k=3)))


def answers(results) -> dict:
    """{path: (labels, scores, error)} — and no path twice."""
    out = {}
    for r in results:
        r = r if isinstance(r, dict) else r.to_dict()
        assert r["path"] not in out, f"{r['path']} came back twice"
        out[r["path"]] = ([t["label"] for t in r["tags"]], [t["score"] for t in r["tags"]], r["error"])
    return out


def assert_same_answers(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for path, (labels, scores, error) in expected.items():
        g_labels, g_scores, g_error = got[path]
        assert (g_labels, g_error) == (labels, error), path
        assert all(abs(a - b) <= 1e-6 + 1e-12 for a, b in zip(g_scores, scores)), (path, g_scores, scores)
    assert sum(1 for _, _, e in expected.values() if e) == 3          # the bad files kept their rows


def tag_on(address: str | None, images: Path, **kw):
    """(answers, workers) from the Ray engine's rows."""
    from imgai.classify.tag import TagOptions, tagging_folder
    from imgai.engines.ray_tag import list_images, tag_rows

    folder, _ = tagging_folder(None)
    rows = list(tag_rows(list_images([images]), folder=folder, options=TagOptions(batch_size=BATCH, top_k=3),
                         address=address, **kw))
    return answers(r for r, _ in rows), [w for _, w in rows]


def test_without_ray_the_engine_says_how_to_install_it(model, images, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)     # `import ray` now raises ImportError
    code, out, err = cli("tag", images, "--engine", "ray")
    assert code == 1 and "requirements-ray.txt" in err and out == ""


@needs_ray
def test_cli_on_a_private_local_ray_matches_the_local_engine(model, images, local_answers, cli, tmp_path):
    import ray

    assert not ray.is_initialized()
    out = tmp_path / "tags.jsonl"
    code, stdout, err = cli("tag", images, "--engine", "ray", "--format", "jsonl", "--output", out,
                            "--top-k", 3, "--batch-size", BATCH, "--sidecar", "txt")
    assert code == 1 and stdout == "" and err.count("failed: ") == 3    # exit 1: some files were bad
    assert not ray.is_initialized()                                       # its own Ray, stopped again
    got = answers(json.loads(line) for line in out.read_text().splitlines())
    assert_same_answers(got, local_answers)
    first = next(p for p, (_, _, e) in local_answers.items() if not e)
    assert Path(first).with_suffix(".txt").read_text().strip() == ", ".join(local_answers[first][0])


@pytest.fixture(scope="module")
def cluster(ray_env):
    """Two Ray nodes on this machine (head + worker, one CPU each), token auth on; not joined."""
    from ray.cluster_utils import Cluster

    from imgai.engines.ray_session import quiet_environment, token_auth_environment

    quiet_environment()
    token_auth_environment(private=True)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        yield nodes
    finally:
        nodes.shutdown()


@needs_ray
def test_two_node_cluster_matches_the_local_engine(cluster, images, local_answers, monkeypatch):
    import ray
    from ray.data import DataContext

    # both actors up before the first batch, or the first one may tag this small set alone
    monkeypatch.setattr(DataContext.get_current(), "wait_for_min_actors_s", 120)
    got, workers = tag_on(cluster.address, images)
    assert_same_answers(got, local_answers)
    assert len({w.split(":")[0] for w in workers}) == 2, ("both nodes should have run inference", set(workers))
    assert not ray.is_initialized()            # joined, then left; the cluster stays up
    assert cluster.remaining_processes_alive()


@needs_ray
def test_cli_joins_a_cluster_with_address_and_reads_uris(cluster, images, local_answers, cli, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "tags.parquet"
    code, _, err = cli("tag", f"file://{images}", "--engine", "ray", "--address", cluster.address,
                       "--format", "parquet", "--output", out, "--top-k", 3, "--batch-size", BATCH)
    assert code == 1, err
    rows = pq.read_table(out).to_pylist()
    assert all(r["path"].startswith("file://") for r in rows)          # a URI in, URIs out
    assert_same_answers(answers(dict(r, path=r["path"][len("file://"):]) for r in rows), local_answers)


@needs_ray
def test_a_killed_actor_is_retried_without_losing_or_repeating_images(cluster, images, local_answers, tmp_path):
    from imgai.engines.ray_tag import TagActor

    marker = str(tmp_path / "killed")

    class KilledOnItsThirdBatch(TagActor):   # shipped by value: the marker path travels with it
        def __call__(self, batch):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3 and not os.path.exists(marker):
                Path(marker).write_text(self.worker)
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__call__(batch)

    got, workers = tag_on(cluster.address, images, actors=1, actor_cls=KilledOnItsThirdBatch)
    killed = Path(marker).read_text()
    assert_same_answers(got, local_answers)
    assert killed in workers and set(workers) - {killed}, "results from before and after the restart"
