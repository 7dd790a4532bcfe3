"""The Quantize tab, served for real and driven through gradio_client: start a run, follow it,
then inspect the output (files, quantization_info.json, card, image grid with scores)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import served_tab
from tests.diffusion_fixtures import tiny_sources  # noqa: F401 (fixture)
from tests.waiting import wait_until


def test_app_has_the_quantize_tab_after_convert(imgai_home):
    import app

    titles = [title for title, _ in app.TABS]
    assert "Quantize" in titles
    demo = app.build_app()
    names = {getattr(fn, "api_name", None) for fn in demo.fns.values()}
    assert {"quantize", "quantize_status", "quantize_show", "quantize_push"} <= names


@pytest.fixture
def quantize_tab(imgai_home):
    """The Quantize tab alone in a Blocks app (the tab is self-contained), on a free port."""
    from gradio_client import Client

    from ui import quantize

    with served_tab(quantize) as url:
        yield Client(url, verbose=False)


def test_quantize_tab_runs_a_job_and_shows_the_result(quantize_tab, tiny_sources, imgai_home):
    client = quantize_tab
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/quantize", "/quantize_status", "/quantize_show", "/quantize_push"} <= set(api)

    job_id, message = client.predict(["flux1"], os.fspath(tiny_sources["flux1"]), "pytorch", "INT8", False, 2,
                                     "32x32", "", False, api_name="/quantize")
    assert job_id and job_id in message
    def ended():
        status = client.predict(job_id, api_name="/quantize_status")
        return status if "succeeded" in status[0] or "failed" in status[0] else None

    progress, results = wait_until(ended, 240, f"quantize job {job_id} to end", every=1)
    assert "succeeded" in progress, progress
    rows = results["data"]
    assert rows[0][:2] == ["flux1-torch-int8", "done"] and float(rows[0][2]) > 25

    tree, info, card, grid, scores = client.predict("flux1-torch-int8", api_name="/quantize_show")
    assert "quantization_info.json" in tree and "diffusion_pytorch_model.safetensors" in tree
    assert info["target"] == "flux1-torch-int8" and info["check"]["passed"]
    assert "base_model_relation: quantized" in card and "## Usage" in card
    assert len(grid) == 2 * len(info["check"]["psnr_db"])
    assert [item["caption"].split(":")[1].split()[0] for item in grid[:2]] == ["original", "converted"]
    assert "PSNR" in grid[1]["caption"] and "passed" in scores

    with pytest.raises(Exception, match="no converted model"):
        client.predict("../../etc", api_name="/quantize_show")


def test_on_a_public_app_quantize_is_the_admins_with_hub_sources_only(imgai_home, monkeypatch):
    """On a public app only the Space's owner or an admin quantizes, and even they cannot point the
    converter at server folders, lift its refusals, or push with the Space's own token."""
    import pytest

    from imgai import jobs
    from imgai.access import ADMIN, ANONYMOUS, VISITOR, Actor
    from imgai.diffusion.job import submit
    from imgai.errors import ConfigError, PermissionDeniedError
    from imgai.presentation.quantize import quantize_request as _request

    monkeypatch.setenv("IMGAI_PUBLIC", "1")
    admin = Actor(ADMIN, username="owner")
    with pytest.raises(ConfigError, match="must be a Hub id like org/name, not sd15='/etc'"):
        submit(_request(["sd15"], "/etc", "pytorch", "INT8", False, None, None, "", False), actor=admin)
    with pytest.raises(ConfigError, match="force .* is for the app's owner at the console"):
        submit(_request(["sd15"], "org/my-sd15", "pytorch", "INT8", True, None, None, "", False), actor=admin)
    with pytest.raises(ConfigError, match="use Push to Hub, which pushes with your own sign-in"):
        submit(_request(["sd15"], "org/my-sd15", "pytorch", "INT8", False, None, None, "my-org", False), actor=admin)
    for stranger, message in ((Actor(VISITOR, username="alice"), "only the Space's owner or an admin"),
                              (Actor(ANONYMOUS, session="s"), "only the Space's owner or an admin")):
        with pytest.raises(PermissionDeniedError, match=message):
            submit(_request(["sd15"], "org/my-sd15", "pytorch", "INT8", False, None, None, "", False), actor=stranger)
    assert jobs.list_jobs() == []
