"""The app as a person (or a program) uses it: the real server, driven through gradio_client."""

import json
import urllib.error
import urllib.request

import pytest
from gradio_client import handle_file

from imgai.presentation.models import MODEL_COLUMNS
from tests.factories import random_image
from tests.waiting import wait_until

DEMO = "efficientnet-lite0-demo"


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """One `python app.py` with the demo for this file's tests that use it: the demo is prepared in
    the background once (a test that changes it puts it back)."""
    from tests.conftest import AppServer

    server = AppServer(tmp_path_factory.mktemp("demo-app") / "app_home")
    yield server
    server.stop()


def rows(client) -> list[dict]:
    """The Convert tab's models table, each row by its column names."""
    return [dict(zip(MODEL_COLUMNS, r)) for r in client.predict(None, api_name="/convert_refresh")[0]["data"]]


def row_of(client, model_id):
    return next((r for r in rows(client) if r["ID"] == model_id), None)


def demo_ready(client):
    """The demo is prepared in the background on first start: converted, validated, enabled, default."""
    return wait_until(lambda: (r := row_of(client, DEMO)) and (r["Conversion"] == "Failed" or r["Default"] == "★") and r, 300,
                      "the demo model", every=1)   # its job ends with it the default


def test_add_convert_tag_through_the_api(demo_app, tiny_model_cache, tmp_path, photos):
    client = demo_app.client()
    row = demo_ready(client)
    assert [row[c] for c in ("ID", "Name", "Type", "Precision", "Conversion", "Enabled", "Default")] == [
        DEMO, "EfficientNet-Lite0 ImageNet (demo)", "ONNX", "FP32", "Converted", "yes", "★"]
    assert row["Validation"].startswith("passed")

    message = client.predict(str(tiny_model_cache("timm-resnet")), "tiny resnet", api_name="/add_model")
    assert "Added **tiny-resnet** as PyTorch / NotConverted" in message and "Convert" in message
    assert "queued as job" in client.predict("tiny-resnet", api_name="/convert")
    row = wait_until(lambda: (r := row_of(client, "tiny-resnet")) and r["Conversion"] in ("Converted", "Failed") and r, 300,
                     "the conversion", every=1)
    # a first conversion ends enabled, not default
    assert [row[c] for c in ("Type", "Conversion", "Enabled", "Default")] == ["ONNX", "Converted", "yes", ""]
    choices = client.predict(None, api_name="/tag_models")[0]
    assert choices  # the dropdown update carries the choices of both models

    summary, gallery, bars, table, files = client.predict(
        [handle_file(str(photos["coffee"])), handle_file(str(photos["chelsea"]))], "", DEMO,
        3, 0.0, api_name="/tag")
    assert "Tagged 2 of 2 images" in summary
    assert table["data"][0][0] == "coffee.jpg" and table["data"][0][1].startswith("espresso")
    assert "cat" in table["data"][1][1]
    # the bars name their image (issue 23): the update carries the title and the top tags as its value
    assert bars["label"] == "Tags of coffee.jpg"
    assert bars["value"]["label"] == "espresso" and len(bars["value"]["confidences"]) == 3
    payload = json.loads(open(next(f for f in files if f.endswith(".json"))).read())
    assert payload[0]["path"] == "coffee.jpg" and payload[0]["tags"][0]["label"] == "espresso"
    csv = open(next(f for f in files if f.endswith(".csv"))).read()
    assert "coffee.jpg" in csv and "/tmp" not in csv


def test_errors_reach_the_user_as_messages(demo_app, tmp_path):
    from gradio_client.exceptions import AppError

    client = demo_app.client()
    demo_ready(client)
    with pytest.raises(AppError, match="neither an existing folder nor a Hub id") as info:
        client.predict("not a model", "", api_name="/add_model")
    assert str(info.value).count("'not a model'") == 1
    with pytest.raises(AppError, match="no images"):
        client.predict([], "", DEMO, 5, 0.0, api_name="/tag")
    with pytest.raises(AppError, match="no model chosen: give a repo picked in the results"):
        client.predict("", api_name="/hub_download")
    client.predict(DEMO, api_name="/disable")                    # no default model left
    try:
        with pytest.raises(AppError, match="cannot make 'efficientnet-lite0-demo' the default"):
            client.predict(DEMO, api_name="/set_default")
        with pytest.raises(AppError) as info:     # the app names fields and buttons, never CLI flags
            client.predict([handle_file(str(random_image(tmp_path / "x.png")))], "", "", 5, 0.0, api_name="/tag")
        assert "--model" not in str(info.value) and "the Model field" in str(info.value)   # in words: no markup
    finally:
        for action in ("enable", "set_default"):        # the demo as the next test expects it
            client.predict(DEMO, api_name=f"/{action}")


def test_folder_tagging_with_a_bad_file(demo_app, tmp_path):
    client = demo_app.client()
    demo_ready(client)
    folder = tmp_path / "shots"
    (folder / "day1").mkdir(parents=True)
    random_image(folder / "day1" / "a.png")
    (folder / "broken.jpg").write_bytes(b"nope")
    summary, _, _, table, files = client.predict([], str(folder), DEMO, 2, 0.0, api_name="/tag")
    assert "Tagged 1 of 2 images" in summary and "1 could not be read" in summary
    assert any("not an image" in row[1] for row in table["data"])
    names = [row[0] for row in table["data"]]
    assert sorted(names) == ["shots/broken.jpg", "shots/day1/a.png"]     # relative to the tagged folder


def test_file_route_refuses_outside_urls(bare_server):
    """gradio 6.17.3 redirects /gradio_api/file=<url> anywhere (issue #13608); we refuse it."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            raise AssertionError("the server redirected")

    opener = urllib.request.build_opener(NoRedirect)
    for target in ("https://example.com/x", "http:%2F%2Fexample.com", "HTTPS://example.com", "//example.com/x",
                   "%68ttps://example.com"):
        for prefix in ("gradio_api/file=", "file="):
            with pytest.raises(urllib.error.HTTPError) as info:
                opener.open(bare_server.url + prefix + target, timeout=10)
            assert info.value.code == 403, (prefix, target)
    with urllib.request.urlopen(bare_server.url, timeout=10) as page:   # the app itself still answers
        assert page.status == 200


def test_the_app_queue_looks_for_work_every_20_ms_not_every_millisecond(imgai_home, monkeypatch):
    """gradio's queue polls every 1 ms when idle (7-8 % of a core per idle app; bench/idle_server.py);
    `python app.py` launches with ui.common.queue's polling, and keeps its concurrency settings."""
    import gradio as gr

    import app
    from ui.common import PROGRESS_POLL_S, QUEUE_POLL_S

    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda demo, **kwargs: launched.append(demo))
    app.main()
    [demo] = launched
    assert demo._queue.sleep_when_free == QUEUE_POLL_S == 0.02
    assert demo._queue.progress_update_sleep_when_free == PROGRESS_POLL_S
    assert (demo._queue.default_concurrency_limit, demo._queue.max_size) == (4, 64)


@pytest.mark.parametrize("first,rewrites", [("app", False), ("gradio", True)])
def test_the_app_spares_gradios_import_its_stub_rewriting(first, rewrites):
    """gradio rewrites its type stubs as it is imported, ~1.5 s of each app start (bench/app_start.py):
    `import app` (ui first) loads gradio with that step a no-op and leaves no import hook behind;
    where gradio was imported first, gradio is left exactly as shipped."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    probe = (f"import {first}, app, sys, ui, gradio as gr, gradio.component_meta as meta\n"
             "assert gr.Blocks and gr.Textbox(label='x').label == 'x'\n"
             "print(meta.create_or_modify_pyi.__name__, any(isinstance(f, ui._SkipPyiRewrite) for f in sys.meta_path))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["create_or_modify_pyi" if rewrites else "_no_stub_rewrite", "False"]


def test_a_page_learns_of_changes_from_a_plain_route_not_a_timer_event(imgai_home):
    """An idle page asks GET /imgai/revision (a few bytes, no gradio event) and presses its hidden
    poke button only when the answer moves; no gr.Timer sends a queue event per tick per visitor."""
    import gradio as gr
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    import app
    from imgai import changes, registry
    from ui.page import POKE_ID, REVISION_PATH, RevisionRoute

    inner = Starlette(routes=[Route("/{path:path}", lambda request: PlainTextResponse("the app"),
                                    methods=["GET", "POST"])])
    client = TestClient(RevisionRoute(inner))
    before = client.get(REVISION_PATH)
    assert (before.status_code, before.text) == (200, changes.revision())
    assert before.headers["cache-control"] == "no-store"
    registry.create(name="new", source="local:new", architecture="resnet18", library="timm")
    assert client.get(REVISION_PATH).text == changes.revision() != before.text      # it moves with the registry
    assert client.post(REVISION_PATH).text == client.get("/gradio_api/info").text == "the app"   # the rest passes

    demo = app.build_app()
    assert not [b for b in demo.blocks.values() if isinstance(b, gr.Timer)]
    [poke] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == POKE_ID]
    [watch] = [f for f in demo.fns.values() if f.js and REVISION_PATH.lstrip("/") in f.js]
    assert watch.fn is None and [event for _, event in watch.targets] == ["load"]      # the browser's own script
    pressed = [f for f in demo.fns.values() if (poke._id, "click") in f.targets]
    assert [f.fn for f in pressed] == [changes.revision] and pressed[0].queue


def test_a_handler_that_answers_changes_is_one_listener(imgai_home):
    """A handler that answers several fields' changes (the Quantize plan, Train's defaults and job
    view, the Library's review list) is one listener, whose answers land in the order of their
    causes. With a listener per field they ran side by side, and an older answer could land last:
    the Quantize plan said "will run" for settings that were up to date (test_flows, once)."""
    import collections

    import app

    demo = app.build_app()
    listeners = collections.defaultdict(list)
    for dep in demo.fns.values():
        if dep.fn is not None and {event for _, event in dep.targets} & {"change", "input", "load"}:
            listeners[(f"{dep.fn.__module__}.{dep.fn.__qualname__}", tuple(map(id, dep.outputs)))].append(dep)
    assert [name for (name, _), deps in listeners.items() if len(deps) > 1] == []
    merged = {name: deps[0] for (name, _), deps in listeners.items() if len(deps[0].targets) > 1}
    assert {"ui.quantize.preview", "ui.train.finetune_form", "ui.train.refresh", "ui.library.load_review"} <= set(merged)
    assert {name for name, dep in merged.items() if dep.trigger_mode != "always_last"} == set()
