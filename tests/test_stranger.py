"""The app as a stranger tries it: `IMGAI_PUBLIC=1`, the real server, driven through gradio_client
(which is always anonymous) and raw HTTP. Every endpoint the app exposes is listed from its API
info and sorted into "reads" and "changes"; a new endpoint that is in neither fails the test, so it
cannot be forgotten. Every change is refused and leaves the data folder as it was."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from imgai.access import VISITOR, Actor
from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, open_tab  # noqa: F401 (fixture)
from tests.conftest import AppServer
from tests.factories import random_image
from tests.train_fixtures import make_shapes

ALICE = Actor(VISITOR, username="alice")
REFUSED = r"sign in with Hugging Face|only the Space's owner|only the app's owner|this app offers no sign-in"

# Endpoints that only read (or, for /tag, use shared models): a stranger may call them.
READS = {"/hub_whoami", "/hub_start", "/hub_search", "/hub_info", "/hub_download_status", "/convert_refresh",
         "/push_whoami", "/push_models", "/quantize_status", "/quantize_show", "/quantize_whoami", "/train_load",
         "/train_refresh", "/train_data_preview", "/train_retrain", "/tag_models", "/tag",
         "/demo_status", "/quantize_refresh", "/remove_plan", "/train_defaults",   # remove_plan only says what Remove would delete
         "/library_review",   # a stranger gets why the library is not theirs, not its contents
         "/False"}   # gradio 6.17.3 names the first api_name=False event so (all of them are reads)


# Every handler of every event, by module.function. gradio 6.17.3 serves each one to anybody: a
# named endpoint is called by name, and any other (api_name=False included, which gradio names
# "/False") by its fn_index, as the page itself does. So the sorting covers all of them.
READ_HANDLERS = {
    "ui.common.clicked_row_id", "ui.convert.refresh", "ui.convert.action_state", "ui.hub_browse.download_status",
    "ui.hub_browse.login_status", "ui.hub_browse.search_models",
    "ui.hub_browse.show_details", "ui.hub_browse.start", "ui.push.refresh_models", "ui.quantize.preview",
    "ui.quantize.show", "ui.quantize.status", "ui.tag.tag_images", "ui.tag.taggable_models",
    "ui.train.load_retrain", "ui.train.load_tab",
    "ui.train.pipelines_changed", "ui.train.preview_data", "ui.train.refresh",
    # the page (ui/page.py, ui/start.py) and what only shows or hides parts of it
    "imgai.changes.revision", "ui.start.status", "app.opening_tab", "app.opening_tab_id", "app.remember_tab",
    "ui.page.open_tab", "ui.page.deliver", "ui.start.<lambda>",
    "ui.train.<lambda>", "ui.convert.<lambda>", "ui.convert.remember_selection", "ui.tag.show_row", "ui.tag.new_upload",
    "ui.convert.pick_row",
    "ui.convert.ask_remove", "ui.convert.keep_model", "ui.quantize.refresh",
    "ui.tag.show_bars", "ui.train.source_fields", "ui.train.finetune_form",
    "ui.quantize.access_state", "ui.train.access_state",    # which buttons the visitor's page greys
    "ui.browse.access_state", "ui.hub_browse.access_state", "ui.train.starting_architecture",
    "ui.library.load_review", "ui.library.image_tags", "ui.library.select_image", "ui.library.follow_selection", "ui.library.clicked_cell",
    "ui.library.show_thresholds",    # the library's reads ask imgai too (access `library`)
    "ui.int8.panel",                                         # the INT8 search's attempts, as the visitor may see them
}
CHANGE_HANDLERS = {   # handler → its endpoint, which test_every_change_is_refused_and_nothing_changes calls
    "ui.browse.add_model": "/add_model", "ui.convert.convert_model": "/convert",
    "ui.convert.default_model": "/set_default", "ui.convert.disable_model": "/disable",
    "ui.convert.enable_model": "/enable", "ui.convert.remove_model": "/remove",
    "ui.convert.validate_model": "/validate", "ui.int8.quantize_model": "/int8", "ui.hub_browse.start_download": "/hub_download",
    "ui.push.push": "/push_to_hub", "ui.quantize.push": "/quantize_push", "ui.quantize.start": "/quantize",
    "ui.train.add_data": "/train_data_add", "ui.train.cancel_job": "/train_cancel",
    "ui.train.create_model": "/train_create", "ui.train.download_model": "/train_download",
    "ui.train.resume_job": "/train_resume", "ui.train.start_training": "/train_start",
    "ui.convert.restore": "/restore_demo", "ui.train.remove_data": "/train_data_remove",
    "ui.library.tag_folder": "/library_tag", "ui.library.decide_clicked": "/library_decide",
    "ui.library.decide_image": "/library_decide_image",
    "ui.library.accept_all": "/library_accept_all", "ui.library.save_thresholds": "/library_thresholds",
    "ui.library.search_library": "/library_search",   # a library's contents are its owner's, searching included
}


def test_every_handler_is_sorted_and_every_change_builds_an_actor(imgai_home):
    import inspect

    import app

    handlers = {}
    for fn in app.build_app().fns.values():
        if fn.fn is not None:
            handlers.setdefault(f"{fn.fn.__module__}.{fn.fn.__name__}", set()).add(fn.api_name)
    unsorted = set(handlers) - READ_HANDLERS - set(CHANGE_HANDLERS)
    assert not unsorted, f"sort the new handlers {sorted(unsorted)} into READ_HANDLERS or CHANGE_HANDLERS"
    assert not READ_HANDLERS & set(CHANGE_HANDLERS)
    stale = READ_HANDLERS - set(handlers)
    assert not stale, f"no event runs {sorted(stale)} any more: delete them from READ_HANDLERS"
    for name, endpoint in CHANGE_HANDLERS.items():
        assert endpoint.strip("/") in handlers[name], (name, handlers[name])
    fns = {f"{fn.fn.__module__}.{fn.fn.__name__}": fn.fn for fn in app.build_app().fns.values() if fn.fn}
    for name in CHANGE_HANDLERS:
        assert "request" in inspect.signature(fns[name]).parameters, f"{name} does not build an actor (ui.common.acting)"


def _changes(w: dict) -> dict[str, list[tuple]]:
    """Every endpoint that changes something, with the calls a stranger tries (shared targets and
    alice's)."""
    models = [(w["shared_onnx"],), (w["alices_model"],)]
    jobs = [(w["shared_job"],), (w["alices_job"],)]
    form = ["cross_entropy", 0.0, 1, 8, "adamw", 1e-3, 0.9, 0.999, 1e-8, 0.01, "auto", 0, 0, 0, None, None, True,
            "auto", "as the data pipeline", "as the data pipeline"]   # ui.train.FORM: … precision, flip, crop
    return {
        "/add_model": [("acme/resnet-tiny", ""), (str(w["folder"]), "")],
        "/hub_download": [("acme/resnet-tiny",)],
        "/convert": models, "/validate": models, "/disable": models, "/set_default": models,
        "/remove": [(m, m) for (m,) in models],           # the model id, and the one whose removal plan was shown
        "/restore_demo": [()], "/train_data_remove": [("shapes",)],
        "/enable": [(m, True) for (m,) in models], "/int8": [(m, "auto", 5, 1.1, True, None) for (m,) in models],
        "/push_to_hub": [(w["shared_onnx"], "stranger/copy", False, "main")],
        "/quantize": [(["sd15"], "", "pytorch", "INT8", False, 0, "", "", False, "auto")],
        "/quantize_push": [("sd15-torch-int8", "stranger", False)],
        "/train_create": [("resnet18", "mine")],
        "/train_data_add": [("Hub dataset (cached)", "mine", "", None, "org/dataset", 0.2, 224, [])],
        "/train_start": [(w["shared_trainable"], "shapes", *form, ""),
                         (w["alices_model"], "shapes", *form, ""),
                         (w["shared_trainable"], "shapes", *form, w["alices_job"])],
        "/train_cancel": jobs, "/train_resume": jobs, "/train_download": jobs,
        "/library_tag": [(str(w["folder"]),)], "/library_decide": [(str(w["folder"] / "a.png"), ["cat", "accept"])],
        "/library_decide_image": [([],)],          # the image is the page's state: the API takes the ticks
        "/library_accept_all": [("cat", 0.0)], "/library_thresholds": [("general", 0.1, 0.5)],
        "/library_search": [("cat", 0.0)],
    }


def _snapshot(home: Path) -> dict:
    """Everything a change could touch: registry rows, jobs, data pipelines, model folders."""
    from imgai import jobs, registry
    from imgai.train import list_pipelines

    return {"models": [m.to_dict() for m in registry.list_models()],
            "jobs": [(j.id, j.state, j.owner) for j in jobs.list_jobs()],
            "pipelines": [p.to_dict() for p in list_pipelines()],
            "folders": sorted(str(p.relative_to(home)) for p in (home / "models").rglob("*")),
            "library": (home / "library.sqlite").exists()}     # never made by a stranger's call


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_cache):
    """A data folder with a shared converted model, a shared trainable model and data pipeline,
    alice's model, and a shared and an alice training job (both cut short: Failed "interrupted")."""
    import os
    import shutil

    root = tmp_path_factory.mktemp("stranger")
    home = root / "home"
    saved = {k: os.environ.get(k) for k in ("IMGAI_HOME", "IMGAI_NO_DEMO")}
    os.environ.update(IMGAI_HOME=str(home), IMGAI_NO_DEMO="1")
    try:
        from imgai import jobs, train
        from imgai.classify.convert import convert
        from imgai.sources import add_model

        shared_onnx = convert(add_model(str(shutil.copytree(tiny_model_cache("timm-mobilenetv3"),
                                                            root / "model"))).id).id
        shapes = train.add_pipeline("shapes", make_shapes(root / "shapes", per_class=3, size=32))
        shared_trainable = train.create_model("shared-tagger", architecture="resnet18").id
        alices_model = train.create_model("alices-tagger", architecture="resnet18", actor=ALICE).id
        config = train.TrainConfig(epochs=1, batch_size=8)
        shared_job = train.start(shared_trainable, data=shapes, config=config, dispatch=False).id
        alices_job = train.start(alices_model, data=shapes, config=config, actor=ALICE, dispatch=False).id
        for job_id in (shared_job, alices_job):
            jobs.finish(job_id, jobs.FAILED, error="interrupted: the worker process ended unexpectedly")
        w = dict(home=home, shared_onnx=shared_onnx, shared_trainable=shared_trainable, alices_model=alices_model,
                 shared_job=shared_job, alices_job=alices_job, folder=root / "shapes")
        server = AppServer(home, env={"IMGAI_PUBLIC": "1", "IMGAI_QUOTA_TAG_FILES": "2",
                                      "IMGAI_MAX_UPLOAD": "200kb"})
        try:
            yield dict(w, server=server, client=server.client())
        finally:
            server.stop()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_every_endpoint_is_sorted_into_reads_and_changes(world):
    api = world["client"].view_api(return_format="dict", print_info=False)
    exposed = set(api["named_endpoints"])
    changes = set(_changes(world))
    assert not READS & changes
    assert exposed == READS | changes, (
        f"new endpoints {sorted(exposed - READS - changes)} must be added to READS or _changes here "
        f"(and checked by imgai.access); gone: {sorted((READS | changes) - exposed)}")


def test_every_change_is_refused_and_nothing_changes(world, monkeypatch):
    from gradio_client.exceptions import AppError

    monkeypatch.setenv("IMGAI_HOME", str(world["home"]))
    before = _snapshot(world["home"])
    for endpoint, calls in _changes(world).items():
        for args in calls:
            with pytest.raises(AppError, match=REFUSED) as info:
                world["client"].predict(*args, api_name=endpoint)
            assert "Traceback" not in str(info.value), endpoint
    assert _snapshot(world["home"]) == before


def test_alices_things_are_invisible_and_untouchable(world):
    from gradio_client.exceptions import AppError

    client = world["client"]
    rows = client.predict(None, api_name="/convert_refresh")[0]["data"]
    assert [r[0] for r in rows] == [world["shared_onnx"], world["shared_trainable"]]
    tables = client.predict("", [], api_name="/train_refresh")
    listed = {row[0] for table in tables[:4] for row in table["data"]}
    assert listed == {world["shared_job"]}
    with pytest.raises(AppError, match=f"no job '{world['alices_job']}'"):
        client.predict(world["alices_job"], api_name="/hub_download_status")
    with pytest.raises(AppError, match=f"no job '{world['alices_job']}'"):
        client.predict(world["alices_job"], api_name="/train_retrain")
    assert f"no job '{world['alices_job']}'" in client.predict(world["alices_job"], api_name="/quantize_status")[0]
    from gradio_client import handle_file

    image = handle_file(str(next(world["folder"].rglob("*.png"))))
    with pytest.raises(AppError, match="cannot tag images: model 'alices-tagger' belongs to another user"):
        client.predict([image], "", world["alices_model"], 3, 0.0, api_name="/tag")


def test_uploads_and_paths_a_stranger_tries(world, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client, home, url = world["client"], world["home"], world["server"].url
    images = [random_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    with pytest.raises(AppError, match="3 images sent in one call.*IMGAI_QUOTA_TAG_FILES"):
        client.predict([handle_file(str(p)) for p in images], "", world["shared_onnx"], 3, 0.0, api_name="/tag")
    with pytest.raises(AppError, match="read folders on the server"):
        client.predict([], str(world["folder"]), world["shared_onnx"], 3, 0.0, api_name="/tag")

    big = tmp_path / "big.png"
    big.write_bytes(random_image(tmp_path / "seed.png").read_bytes() + b"\0" * 300_000)
    with pytest.raises(Exception, match="(?i)file.*(large|size|exceed)|413"):
        client.predict([handle_file(str(big))], "", world["shared_onnx"], 3, 0.0, api_name="/tag")

    # a file name with ../ stays inside gradio's upload folder
    body, boundary = _multipart("../../escape.png", images[0].read_bytes())
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        uploaded = json.loads(r.read())[0]
    assert Path(uploaded).name == "escape.png" and ".." not in Path(uploaded).parts
    assert not list(Path(uploaded).parents[2].glob("escape.png"))

    # a server file named as if it were an upload is refused by gradio
    server_file = {"path": str(home / "registry.sqlite"), "meta": {"_type": "gradio.FileData"}}
    with pytest.raises(AppError):
        client.predict([server_file], "", world["shared_onnx"], 3, 0.0, api_name="/tag")

    # tagging works; its result files are this stranger's, and no path into the data folder is served
    summary, _, _, _, files = client.predict([handle_file(str(images[0]))], "", world["shared_onnx"], 3, 0.0,
                                          api_name="/tag")
    assert "Tagged 1 of 1 images" in summary and len(files) == 2
    results = list((home / "visitors").rglob("results.csv"))
    assert len(results) == 1 and results[0].parent.name.startswith("tags-")
    for target in (results[0], home / "registry.sqlite", home / "visitors" / ".key"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + f"gradio_api/file={target}", timeout=30)
        assert err.value.code == 403


def _multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "imgai-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def test_the_train_and_quantize_tabs_grey_what_the_visitor_may_not_do(world):
    """As on Convert (tests/test_presentation.py): the buttons that make something ask the policy for
    the visitor; the job buttons ask it for the selected job as well."""
    from imgai import jobs
    from imgai.access import ANONYMOUS, LOCAL_OWNER
    from imgai.presentation.locks import locks
    from imgai.presentation.train import job_buttons as buttons_of
    from ui.train import CREATES

    stranger = Actor(ANONYMOUS, session="s1")
    note, allowed = locks(stranger, CREATES)
    assert not any(allowed.values()) and note.startswith("🔒 Visitors cannot make a model to train here: this app offers no sign-in")
    assert locks(ALICE, CREATES) == ("", dict.fromkeys(CREATES, True))
    note, allowed = locks(ALICE, ("quantize", "quantize.push"))
    assert not any(allowed.values()) and note.startswith("🔒 Only the Space's owner or an admin")
    assert all(locks(LOCAL_OWNER, ("quantize", "quantize.push"))[1].values())

    def job_buttons(job_id, actor):     # Cancel, Resume, Retrain, Download
        return buttons_of(jobs.get(job_id), actor)

    assert job_buttons(world["alices_job"], ALICE) == [False, True, True, False]     # hers, failed: resume, retrain
    assert job_buttons(world["shared_job"], ALICE) == [False, False, False, False]   # shared: not hers to change
    assert job_buttons(world["shared_job"], LOCAL_OWNER) == [False, True, True, False]
    assert job_buttons(world["shared_job"], stranger) == [False, False, False, False]


@pytest.mark.parametrize("tab, opens, buttons, lock, why", [
    ("Train", ["2. Data pipelines"], ["Create model (untrained)", "Create data pipeline", "Delete pipeline", "Train"],
     "#train-lock", "Visitors cannot make a model to train here: this app offers no sign-in"),
    ("Quantize", [], ["Quantize", "Push to Hub"], "#quantize-lock",
     "Only the Space's owner or an admin (IMGAI_ADMINS) can quantize"),
    ("Browse", [], ["Add model", "Download"], "#browse-add-lock", "Visitors cannot add a model here"),
], ids=["train", "quantize", "browse"])
@needs_chromium[0]
@needs_chromium[1]
def test_a_strangers_page_greys_train_and_quantize(world, browser, output_dir, tab, opens, buttons, lock, why):
    from playwright.sync_api import expect

    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(world["server"].url, wait_until="load")
        open_tab(page, tab, showing=page.locator(lock))     # the page may first switch to its opening tab
        expect(page.locator(lock).first).to_contain_text(why, timeout=30_000)
        for section in opens:
            page.get_by_text(section, exact=True).click()
        for name in buttons:
            expect(page.get_by_role("button", name=name, exact=True)).to_be_disabled()
        if tab == "Quantize":     # its plan names the output folder, but no path on the server
            expect(page.get_by_text("Output folder: converted_models/")).to_be_visible()
        elif tab == "Browse":     # one policy, one wording: no owner advice, no folder field named
            expect(page.locator("#browse-download-lock").first).to_contain_text("Visitors cannot download a model")
            assert "HF_TOKEN" not in page.content() and "or folder" not in page.content()
        else:                     # the shared data pipeline, by its folder's name only
            expect(page.get_by_text("shapes/ (a folder on the server)").filter(visible=True).first).to_be_visible(timeout=30_000)
        assert str(world["home"].parent) not in page.content()
        page.screenshot(path=str(output_dir / f"{tab.lower()}-as-a-stranger.png"), full_page=True)
    finally:
        page.close()
