"""The Browse (Hub search → details → download) and Push flows of the real app, driven through
gradio_client against the fake Hub; and the app as a Space: a Sign in button, no push without
the visitor's own token, and the offline notice with the cached models."""

from __future__ import annotations

import pytest

from imgai import jobs, registry
from imgai.hub import download
from tests.conftest import ROOT, AppServer
from tests.hub_fixtures import (  # noqa: F401  (fixtures are used by name)
    ALICE_TOKEN, fake_hub, fake_hub_server, fake_hub_template, files_containing)
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(300)
SEARCH_WIRED = "build_search" in (ROOT / "ui" / "browse.py").read_text()


@pytest.fixture
def app(fake_hub, imgai_home):
    """The real app on the test's data folder, talking to the fake Hub as alice (HF_TOKEN)."""
    server = AppServer(imgai_home)
    yield server
    server.stop()


def wait_for(fn, *, timeout: float = 90, every: float = 0.5):
    return wait_until(fn, timeout, getattr(fn, "__name__", "the app"), every=every)


@pytest.mark.skipif(not SEARCH_WIRED, reason="ui/browse.py does not call ui.hub_browse.build_search yet")
def test_browse_search_details_and_download_through_the_app(app, fake_hub):
    client = app.client()
    message, _ = client.predict(api_name="/hub_start")
    assert message.startswith(f"Connected to the Hub at {fake_hub.url}")
    message, table = client.predict("resnet", "any", "any", "downloads", api_name="/hub_search")
    assert "6 hidden as unsupported" in message   # one lookalike per reason (tests/hub_fixtures.py)
    ids = [row[0] for row in table["data"]]
    assert ids[0] == "acme/resnet-tiny" and not any("lookalike" in i or "bert" in i for i in ids)
    details = client.predict("acme/resnet-tiny", api_name="/hub_info")
    assert "ResNet" in details and "apache-2.0" in details and "A tiny ResNet built in code" in details
    job_id, queued = client.predict("acme/resnet-tiny", api_name="/hub_download")
    assert job_id in queued
    done = wait_for(lambda: (s := client.predict(job_id, api_name="/hub_download_status")) and "registered as" in s and s)
    model = registry.list_models()[0]
    assert f"registered as **{model.id}**" in done and model.source.startswith("acme/resnet-tiny@")
    assert "Signed in as alice" in client.predict(api_name="/hub_whoami")


def test_push_a_converted_model_through_the_app(fake_hub, imgai_home):
    from huggingface_hub import HfApi

    from imgai.classify.convert import convert

    job = jobs.wait(download("acme/resnet-tiny").id, timeout=120)
    model = convert(job.result["model_id"])
    server = AppServer(imgai_home)
    try:
        client = server.client()
        assert "Signed in as alice (can push, via HF_TOKEN)" in client.predict(api_name="/push_whoami")
        choices = client.predict(None, api_name="/push_models")
        assert model.id in str(choices)
        message = client.predict(model.id, "alice/from-the-app", False, "main", api_name="/push_to_hub")
        assert message.startswith(f"Pushed **{model.id}** to [alice/from-the-app]") and "verified" in message
        files = {f.path for f in HfApi().list_repo_tree("alice/from-the-app")}
        assert {"model.onnx", "labels.json", "preprocess.json", "README.md"} <= files
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="is not a Hub model id"):
            client.predict(model.id, "not a repo id", False, "main", api_name="/push_to_hub")
    finally:
        server.stop()
    assert files_containing(imgai_home, ALICE_TOKEN) == []


def test_on_a_space_pushes_need_the_visitors_sign_in_and_offline_lists_the_cache(fake_hub, imgai_home, tmp_path):
    from huggingface_hub import snapshot_download
    from gradio_client.exceptions import AppError

    from imgai.classify.convert import convert

    job = jobs.wait(download("acme/resnet-tiny").id, timeout=120)
    model = convert(job.result["model_id"])
    snapshot_download("acme/mobilenet-v2-tiny")
    space_env = {"SYSTEM": "spaces", "SPACE_ID": "alice/imgai", "OAUTH_CLIENT_ID": "test-client",
                 "OAUTH_CLIENT_SECRET": "test-secret", "OAUTH_SCOPES": "openid profile write-repos manage-repos",
                 "OPENID_PROVIDER_URL": fake_hub.url, "HF_HUB_OFFLINE": "1",
                 "HF_TOKEN": ALICE_TOKEN}   # the Space's own token: never used for a visitor
    server = AppServer(imgai_home, env=space_env)
    try:
        client = server.client()
        config = client.config
        assert any(c.get("props", {}).get("value") == "Sign in with Hugging Face" for c in config["components"]), \
            "no Sign in button on a Space"
        assert "Not signed in (sign in with the Hugging Face button)" in client.predict(api_name="/push_whoami")
        with pytest.raises(AppError, match="sign in with Hugging Face to push a model to the Hub"):
            client.predict(model.id, "alice/space-push", False, "main", api_name="/push_to_hub")
        if SEARCH_WIRED:
            message, table = client.predict(api_name="/hub_start")
            assert message.startswith("Offline: HF_HUB_OFFLINE=1 is set")
            assert {row[0] for row in table["data"]} == {"acme/resnet-tiny", "acme/mobilenet-v2-tiny"}
    finally:
        server.stop()
    assert not [r for r in fake_hub.requests() if "space-push" in r]


def test_space_front_matter_matches_the_pinned_gradio_and_asks_for_push_scopes():
    import yaml

    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must open with the Space's front matter"
    meta = yaml.safe_load(text.split("---")[1])
    pinned = next(line.split("==")[1].split()[0] for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("gradio"))
    assert (meta["sdk"], str(meta["sdk_version"]), meta["app_file"]) == ("gradio", pinned, "app.py")
    assert meta["hf_oauth"] is True and {"write-repos", "manage-repos"} <= set(meta["hf_oauth_scopes"])
    assert meta["license"] and len(meta["short_description"]) <= 60


def test_a_click_on_a_result_row_selects_its_repo(imgai_home):
    """Every table of the app reads its clicked row one way (ui.common.clicked_row_id, from the
    event, no inputs); Browse's Results fill Selected repo with the row's repo id."""
    import gradio as gr

    import app
    from ui.common import clicked_row_id

    demo = app.build_app()
    selects = [(demo.blocks[block_id], f) for f in demo.fns.values() for block_id, event in f.targets
               if event == "select" and isinstance(demo.blocks[block_id], gr.Dataframe)]
    # the Library's ✓/✗ cells read [label, action] from the event too (ui.library.clicked_cell), the
    # Tag table's rows pick their gallery image (ui.tag.show_row, the run's images its one input), and
    # Convert's rows are remembered in the browser as they are picked (ui.convert.pick_row, through
    # clicked_row_id; the page's memory its one input)
    assert {(f.fn.__name__, len(f.inputs)) for _, f in selects} == {
        ("clicked_row_id", 0), ("clicked_cell", 0), ("show_row", 1), ("pick_row", 1)}
    assert not any(i is table for table, f in selects for i in f.inputs)      # none reads its table's value
    assert all(isinstance(i, (gr.State, gr.BrowserState)) for _, f in selects for i in f.inputs)
    [results] = [f for table, f in selects if table.label == "Results"]
    assert [o.label for o in results.outputs] == ["Selected repo"]
    row = ["acme/resnet-tiny", "ResNet", "timm", 12, 3]
    assert clicked_row_id(gr.SelectData(None, {"index": [0, 2], "value": "timm", "row_value": row})) == "acme/resnet-tiny"
    off_the_rows = clicked_row_id(gr.SelectData(None, {"index": [0, 0], "value": "Id"}))   # a header: no row_value
    assert off_the_rows == gr.update()
