"""The presentation layer (imgai/presentation/): table rows, `models show`, the Convert tab's allowed
actions with their reasons, job rows and the Quantize form, as pure functions over models, jobs and
the policy. What a browser or an app subprocess once had to reach, checked in-process."""

from __future__ import annotations

import json

import pytest

from imgai import registry
from imgai.access import ANONYMOUS, LOCAL_OWNER, VISITOR, Actor
from imgai.errors import ConfigError
from imgai.jobs import FAILED, RUNNING, SUCCEEDED, Job
from imgai.presentation.jobs import job_rows, selected_job
from imgai.presentation.locks import locks
from imgai.presentation.models import (ACTIONS, MODEL_COLUMNS, model_actions, model_fields, model_lines,
                                       model_row, validation_text)
from imgai.presentation.quantize import check_scores, parse_check_size, plan_text, quantize_request
from tests.library_fixtures import wd_default  # noqa: F401 (fixture)

ALICE = Actor(VISITOR, username="alice")
STRANGER = Actor(ANONYMOUS, session="s1")
PASSED = {"passed": True, "problems": [], "num_labels": 3, "max_abs_diff": 2e-6, "top1_agreement": 1.0,
          "ms_per_image": 1.5, "compared_with_pytorch": True, "checked_at": 1.7e9}
VS_FP32 = {"top1_agreement": 0.995, "views": 32, "min_top1_agreement": 0.99, "mean_abs_dprob": 0.0012,
           "max_abs_dprob": 0.031, "int8_ms_per_image": 1.2, "fp32_ms_per_image": 2.4, "speedup": 2.0}


def model(state: str, **fields) -> registry.Model:
    """A registry row in one of the states the Convert tab meets, built in memory."""
    base = dict(id=state, name=f"{state} model", source="local:x", architecture="resnet18", library="timm",
                type=registry.PYTORCH, conversion=registry.NOT_CONVERTED, created_at=1.7e9, updated_at=1.7e9)
    base.update({
        "new": {},
        "untrained": {"training": "Untrained"},
        "converting": {"conversion": registry.CONVERTING},
        "failed": {"conversion": registry.FAILED, "error": "export failed: opset"},
        "invalid": {"type": registry.ONNX, "conversion": registry.CONVERTED, "validation": {"passed": False}},
        "disabled": {"type": registry.ONNX, "conversion": registry.CONVERTED, "validation": PASSED},
        "enabled": {"type": registry.ONNX, "conversion": registry.CONVERTED, "validation": PASSED, "enabled": True},
        "default": {"type": registry.ONNX, "conversion": registry.CONVERTED, "validation": PASSED, "enabled": True,
                    "default": True},
        "int8": {"type": registry.ONNX, "conversion": registry.NOT_APPLICABLE, "validation": PASSED, "enabled": True,
                 "extra": {"precision": registry.INT8, "vs_fp32": VS_FP32, "quantized_from": "default",
                           "quantization": {"format": "QDQ (static)"}}},
    }[state])
    base.update(fields)
    return registry.Model(**base)


# convert, quantize, validate, enable, disable, default, remove: what the local owner may press
ALLOWED = {
    "new":        (1, 0, 0, 0, 0, 0, 1),
    "untrained":  (0, 0, 0, 0, 0, 0, 1),
    "converting": (0, 0, 0, 0, 0, 0, 0),
    "failed":     (1, 0, 0, 0, 0, 0, 1),
    "invalid":    (0, 0, 1, 0, 0, 0, 1),
    "disabled":   (0, 0, 1, 1, 0, 0, 1),
    "enabled":    (0, 1, 1, 0, 1, 1, 1),
    "default":    (0, 1, 1, 0, 1, 0, 1),
    "int8":       (0, 0, 1, 0, 1, 1, 1),
}


@pytest.mark.parametrize("state", ALLOWED)
def test_each_model_state_allows_its_actions_and_says_why_not_the_others(state):
    actions = model_actions(model(state), LOCAL_OWNER)
    assert tuple(int(actions.allowed[a]) for a in ACTIONS) == ALLOWED[state]
    for action in ACTIONS:     # a greyed button always has its reason, an enabled one none
        assert bool(actions.reasons[action]) != actions.allowed[action], (action, actions.reasons[action])
    assert actions.detail.startswith(f"**{state} model** — ")


def test_the_reasons_name_the_state_and_the_next_step():
    assert model_actions(model("converting"), None).reasons["models.remove"].startswith("it is converting")
    assert "not trained yet" in model_actions(model("untrained"), None).reasons["models.convert"]
    assert model_actions(model("int8"), None).reasons["models.quantize"] == "it is already INT8"
    assert model_actions(model("default"), None).reasons["models.default"] == "it is already the default"
    failed = model_actions(model("failed"), None).detail
    assert "**Next:** the last conversion failed; convert it to ONNX" in failed and "⚠️ export failed: opset" in failed
    assert "**Ready to tag**" in model_actions(model("default"), None).detail


def test_an_installation_that_cannot_convert_greys_convert_and_says_so():
    actions = model_actions(model("new"), None, conversion_hint="pip install imgai[convert]")
    assert not actions.allowed["models.convert"] and actions.allowed["models.remove"]
    assert actions.reasons["models.convert"] == "conversion is unavailable here: pip install imgai[convert]"
    assert "Conversion is unavailable here: pip install imgai[convert]" in actions.detail


def test_no_selection_allows_nothing():
    actions = model_actions(None, LOCAL_OWNER)
    assert actions.detail == "Select a model in the table." and not any(actions.allowed.values())


def test_the_policy_greys_before_the_state_with_its_own_reason():
    """The same rule the endpoints enforce: a stranger may do nothing, alice only to her own model
    (never choose the default), the owner everything the state allows."""
    shared, hers = model("enabled"), model("enabled", id="hers", owner="alice")
    stranger = model_actions(shared, STRANGER)
    assert not any(stranger.allowed.values())
    assert "🔒 Visitors cannot convert a model here: this app offers no sign-in" in stranger.detail
    assert stranger.reasons["models.remove"].startswith("visitors cannot remove a model here")
    alice = model_actions(shared, ALICE)
    assert not any(alice.allowed.values()) and "is shared" in alice.detail
    own = model_actions(hers, ALICE)
    assert [a for a in ACTIONS if own.allowed[a]] == ["models.quantize", "models.validate", "models.disable",
                                                      "models.remove"]
    assert "only the Space's owner" in own.reasons["models.default"] and "🔒" not in own.detail
    assert model_actions(shared, LOCAL_OWNER) == model_actions(shared, None)


def test_model_rows_are_one_shape_for_the_app_and_the_cli():
    row = dict(zip(MODEL_COLUMNS, model_row(model("int8"))))
    assert row == {"ID": "int8", "Name": "int8 model", "Type": "ONNX", "Precision": "INT8", "Conversion": "INT8 of default",
                   "Enabled": "yes", "Default": "", "Validation": "passed (Δ 2e-06), top-1 vs FP32 99.5%", "Error": ""}
    assert model_row(model("default"))[6] == "★"
    assert validation_text(model("new")) == "—" and validation_text(model("invalid")) == "failed"
    assumed = model("disabled", validation={"passed": True}, extra={"preprocess": {"assumed": True}})
    assert validation_text(assumed) == "passed · preprocessing assumed"
    long = model("failed", error="x" * 100)
    assert model_row(long)[-1] == "x" * 100 and model_row(long, error_width=60)[-1] == "x" * 59 + "…"


def test_models_show_is_words_not_python_dicts():
    lines = model_lines(model("int8"))
    text = "\n".join(lines)
    assert "{" not in text and "[" not in text and "None" not in text
    assert "precision     INT8" in lines and "state         enabled" in lines
    assert "validation    passed, 3 labels, max |Δlogit| vs PyTorch 2.0e-06, top-1 100%, 1.5 ms/image" in text
    assert ("vs FP32       top-1 agreement 99.5% on 32 held-back views (bar 99%), mean |Δprob| 0.0012, max 0.0310; "
            "1.2 vs 2.4 ms/image FP32 (2.00x)") in lines
    assert "quantized from default" in lines and "quantization  QDQ (static)" in lines and "owner         shared" in lines
    calibrated = model("int8", extra={**model("int8").extra, "quantization": {
        "format": "QDQ (static)", "per_channel": True, "calibration": "built-in photos", "calibration_images": 48,
        "held_back_images": 16, "onnxruntime": "1.20", "seconds": 3.2}})
    assert ("quantization  QDQ (static), int8 weights per channel, calibrated on 48 images (built-in photos), 16 held "
            "back for the comparison, onnxruntime 1.20, 3.2 s") in model_lines(calibrated)
    fields = dict(model_fields(model("new")))
    assert fields["validation"] == "not validated yet" and "error" not in fields
    assert fields["next step"].startswith("convert it to ONNX")


def test_cli_models_show_prints_the_fields(imgai_home, cli):
    made = registry.create(name="A model", source="local:a", architecture="resnet18", library="timm")
    code, out, _ = cli("models", "show", made.id)
    assert code == 0 and out.splitlines()[:2] == [f"id            {made.id}", "name          A model"]
    assert "{" not in out and "conversion    NotConverted" in out
    code, out, _ = cli("models", "list")
    assert out.split()[:len(MODEL_COLUMNS)] == [c.upper() for c in MODEL_COLUMNS]
    assert json.loads(cli("models", "show", made.id, "--json")[1])["extra"] == {}   # JSON stays the record


def job(job_id: str, state: str, *, kind: str = "convert", created: float = 0.0, **fields) -> Job:
    base = dict(id=job_id, kind=kind, subject="m1", params={}, state=state, progress=0.5, stage="exporting",
                error=None, result=None, owner=None, pid=None, pid_started=None, created_at=created,
                started_at=None, ended_at=None)
    return Job(**{**base, **fields})


def test_job_rows_and_the_job_a_reload_restores():
    rows = job_rows([job("j1", FAILED, error="disk full", stage="")], with_kind=True)
    assert rows == [["j1", "m1", "convert: failed", "50%", "", "", "disk full"]]
    assert job_rows([job("j2", SUCCEEDED, kind="quantize", progress=1.0)])[0][2:4] == ["succeeded", "100%"]
    found = [job("new", SUCCEEDED), job("run", RUNNING), job("old", FAILED)]
    assert selected_job(found, None) == "run" and selected_job(found, "old") == "old"
    assert selected_job(found[:1], None) == "new" and selected_job([], None) is None


@pytest.mark.parametrize("text, size", [("512x512", (512, 512)), (" 512 X 768 ", (512, 768)), ("64", (64, 64)),
                                        ("", None), (None, None), ("  ", None)])
def test_check_size_reads_width_by_height_or_one_number(text, size):
    assert parse_check_size(text) == size


@pytest.mark.parametrize("text", ["512x", "x512", "big", "512x512x3", "-1"])
def test_a_bad_check_size_is_refused_with_its_value(text):
    with pytest.raises(ConfigError, match=f"got {text!r}"):
        parse_check_size(text)


def test_the_cli_and_the_form_read_the_check_size_alike(imgai_home, cli):
    code, _, err = cli("quantize", "--model", "sd15", "--check-size", "big")
    assert code == 2 and "--check-size: check size must be WIDTHxHEIGHT like 512x512" in err
    request = quantize_request(["sd15"], "", "pytorch", "INT8", False, 0, "32 x 48", "", False, "cpu")
    assert request.check_size == (32, 48) and request.resolved_device == "cpu"
    with pytest.raises(ConfigError, match="pick at least one model key"):
        quantize_request([], "", "pytorch", "INT8", False, 0, "", "", False)


def test_the_plan_says_a_bad_field_instead_of_raising(imgai_home):
    assert plan_text(["sd15"], "", "pytorch", "INT8", False, 0, "big", "", False, "cpu").startswith(
        "⚠️ check size must be WIDTHxHEIGHT")
    assert "device cpu" in plan_text(["sd15"], "", "pytorch", "INT8", False, 0, "", "", False, "cpu")


def test_check_scores_in_one_line():
    info = {"check": {"min_psnr_db": 31.26, "threshold_psnr_db": 25, "ssim": [0.98, 0.951], "passed": True}}
    assert check_scores(info) == "Check: lowest PSNR **31.3 dB** (threshold 25 dB), SSIM 0.9510; passed"
    assert check_scores({}) == ""


def test_the_tabs_hand_the_screens_to_gradio_unchanged(imgai_home):
    """The Convert and Quantize handlers, called in-process as gradio calls them: each passes what
    the presentation computed, in the order the tab's outputs are wired."""
    pytest.importorskip("gradio")
    from imgai.presentation.models import convert_screen
    from ui import convert, quantize

    made = registry.create(name="A model", source="local:a", architecture="resnet18", library="timm")
    rows, picker, job_table, restore, detail, *buttons = convert.refresh(None)
    screen = convert_screen(None, None, conversion_hint=convert.conversion_unavailable())
    assert rows == screen.rows and picker["value"] == made.id and job_table == [] and not restore["visible"]
    assert detail == screen.actions.detail
    assert [b["interactive"] for b in buttons] == [screen.actions.allowed[a] for a in ACTIONS]
    assert [b["interactive"] for b in convert.action_state(made.id)[1:]] == [b["interactive"] for b in buttons]
    assert quantize.refresh(None, None)[:4] == ([], "", "No run yet: set up a run above and press **Quantize**.", [])
    assert quantize.show(None) == ("", None, "", [], "")


# -- issue 23: what a first-time user tripped on --------------------------------------------------

def test_tag_is_greyed_with_what_the_visitor_waits_for(imgai_home):
    from imgai import jobs
    from imgai.presentation.tag import tag_readiness

    made = registry.create(name="Demo", source="local:a", architecture="resnet18", library="timm")
    job_id = jobs.submit("demo", {}, subject=made.id, start=False).id   # no worker: this test drives it
    import os

    with jobs.db.transaction() as conn:     # the demo's job, running (in this process) and half way
        conn.execute("UPDATE jobs SET state = ?, progress = 0.5, started_at = ?, pid = ?, pid_started = NULL "
                     "WHERE id = ?", (RUNNING, jobs.db.now() - 10, os.getpid(), job_id))
    waiting = tag_readiness(None, None)
    assert not waiting.ready and waiting.choices == [] and waiting.value is None
    assert "being prepared, ready in about 10 s" in waiting.note and "no default" not in waiting.note
    with jobs.db.transaction() as conn:
        conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (FAILED, job_id))
    idle = tag_readiness(None, None)       # nothing in progress: no word of progress, and no markup
    assert not idle.ready and "prepar" not in idle.note.replace("Preparing the demo failed", "")
    assert "Start tab shows its progress" not in idle.note and "**" not in idle.note


def test_the_bars_name_their_image_and_follow_the_table(imgai_home):
    from imgai.classify.report import TagReport
    from imgai.classify.tag import Tag, TagResult
    from imgai.presentation.tag import bars_title, fresh_upload, image_at, image_of_row, tag_screen

    results = [TagResult("horse.jpg", [Tag("sorrel", 0.9)]), TagResult("bad.jpg", error="not an image"),
               TagResult("coffee.jpg", [Tag("espresso", 0.8), Tag("cup", 0.1)])]
    report = TagReport(results, imgai_home / "r.json", imgai_home / "r.csv", "m",
                       files=["/up/horse.jpg", "/up/bad.jpg", "/up/coffee.jpg"])
    screen = tag_screen(report)
    assert [i.name for i in screen.images] == ["horse.jpg", "coffee.jpg"]      # the gallery: what was read
    assert screen.rows[1] == ["bad.jpg", "could not be read: not an image"]
    assert bars_title(image_at(screen.images, 1)) == "Tags of coffee.jpg"
    assert image_at(screen.images, 1).bars == {"espresso": 0.8, "cup": 0.1}
    assert image_of_row(screen.images, 2) == 1 and image_of_row(screen.images, 1) is None
    assert bars_title(image_at(screen.images, 5)) == "Tags of the selected image"
    assert "Tagged 2 of 3 images with m." in screen.summary and "**" not in screen.summary
    # a new upload drops the images the last run tagged (gradio keeps adding uploads to the field)
    assert fresh_upload(["/up/horse.jpg", "/up/coffee.jpg", "/up/rocket.jpg"], report.files) == ["/up/rocket.jpg"]


def test_enable_brings_back_the_default_that_disable_dropped(imgai_home, cli):
    from imgai.presentation.models import enabled_message

    made = registry.create(name="A", source="local:a", architecture="resnet18", library="onnx", type=registry.ONNX,
                           conversion=registry.CONVERTED)
    registry.record_validation(made.id, PASSED)
    registry.set_enabled(made.id, True)
    registry.set_default(made.id)
    off = registry.set_enabled(made.id, False)
    assert not off.default and "no longer the default" in enabled_message(off)
    on = registry.set_enabled(made.id, True)
    assert on.default and "again, as the default" in enabled_message(on)
    # another default meanwhile wins: enabling does not take it away
    other = registry.create(name="B", source="local:b", architecture="resnet18", library="onnx",
                            type=registry.ONNX, conversion=registry.CONVERTED)
    registry.record_validation(other.id, PASSED)
    registry.set_enabled(made.id, False)
    registry.set_enabled(other.id, True)
    registry.set_default(other.id)
    assert not registry.set_enabled(made.id, True).default and registry.get(other.id).default
    code, out, _ = cli("models", "disable", other.id)
    assert code == 0 and "no longer the default" in out and "**" not in out


def test_job_tables_show_words_not_markup_and_the_demo_job():
    from imgai.presentation.jobs import MODEL_JOB_KINDS

    row = job_rows([job("j1", FAILED, error="pick one in the **Model** field", stage="`x` done")])[0]
    assert row[4] == "x done" and row[6] == "pick one in the Model field"
    assert "demo" in MODEL_JOB_KINDS      # Restore the demo model shows in Conversion jobs (live)
    assert model_row(model("failed", error="convert it with **Convert to ONNX**"))[-1] == "convert it with Convert to ONNX"


def test_quantize_is_greyed_when_every_target_will_fail(imgai_home, monkeypatch):
    from imgai.diffusion import forecast as forecasts
    from imgai.presentation.quantize import progress_words, quantize_plan

    form = (["sd15"], "", "pytorch", "INT8", False, 0, "", "", False, "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")     # no pipeline in the cache, no Hub: every target will fail
    plan = quantize_plan(*form)
    assert all(line.startswith("- `") for line in plan.text.splitlines()[2:])
    assert forecasts.FAIL in plan.text and not plan.can_start and "Every target will fail" in plan.note
    assert not quantize_plan(*form, actor=STRANGER).can_start
    assert "🔒" in quantize_plan(*form, actor=STRANGER).note
    failed = job("q", FAILED, kind="quantize", progress=1.0)
    assert progress_words(failed, [{"status": "failed"}, {"status": "done"}]) == "1 of 2 targets done"
    assert progress_words(job("r", RUNNING, progress=0.25), []) == "25%"


def test_a_public_apps_visitor_gets_one_wording_and_no_owner_advice(imgai_home, monkeypatch):
    pytest.importorskip("gradio")
    from imgai.hub.auth import whoami
    from ui.start import intro

    assert "(or name a folder)" in intro() and "from a folder" in intro()
    import app                                          # every tab after Start has its row
    assert all(f"| **{title}** |" in intro() for title, _ in app.TABS[1:])
    monkeypatch.setenv("IMGAI_PUBLIC", "1")
    assert whoami(False).message == "not signed in (this app offers no sign-in)"
    assert "name a folder" not in intro() and "from a folder" not in intro() and "not open to visitors" in intro()
    note, allowed = locks(STRANGER, ("models.add", "hub.download"))
    assert not any(allowed.values()) and note.startswith("🔒 Visitors cannot add a model here")
    assert "Sign in" not in note


def test_an_offline_search_says_that_the_cache_has_nothing(imgai_home, monkeypatch, tmp_path):
    from imgai import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert hub.search("resnet").message.endswith("No models in the local cache match 'resnet'.")
    assert hub.landing().message.endswith("No models in the local cache.")


def test_no_symbol_that_a_plain_debian_font_draws_as_a_box():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("ui/*.py"), *root.glob("imgai/**/*.py"), root / "app.py"]:
        text = path.read_text(encoding="utf-8")
        assert not any(symbol in text for symbol in "⏳✅❌"), f"{path.name}: use words (or ★ ⚠ 🔒)"


def test_the_train_tab_starts_from_weights_at_hand_and_says_when_a_run_looks_unfinished():
    from imgai.presentation.train import architecture_order, default_architecture, unfinished_note

    rows = [{"architecture": "resnet18", "pretrained": False}, {"architecture": "resnet34", "pretrained": False},
            {"architecture": "efficientnet_lite0", "pretrained": True}]
    assert default_architecture(rows) == "efficientnet_lite0"
    assert [r["architecture"] for r in architecture_order(rows)] == ["efficientnet_lite0", "resnet18", "resnet34"]
    assert default_architecture(rows[:2]) == "resnet18"      # nothing at hand: the table's first
    # the run the issue saw: 3 epochs, validation loss 14.4, 16 of its 24 training images right
    seen = [{"epoch": 3, "train_loss": 1.1, "train_accuracy": 16 / 24, "val_loss": 14.4, "val_accuracy": 0.5}]
    note = unfinished_note(seen, classes=3)
    assert note.startswith("This run looks unfinished: its validation loss 14.40 is far above guessing (1.10")
    assert "only 67% of its own training images right after 3 epochs" in note
    done = [{"epoch": 10, "train_loss": 0.05, "train_accuracy": 1.0, "val_loss": 0.1, "val_accuracy": 1.0}]
    assert unfinished_note(done, classes=3) == "" and unfinished_note([], classes=3) == ""


# -- issue 24: the Train tab's screens as pure functions ---------------------------------------------

def training_view(job_id: str, state: str, **fields):
    from imgai.train.runs import TrainingView

    base = dict(job_id=job_id, model_id="m1", model_name="My tagger", architecture="resnet18", data="shapes",
                state=state, epoch_ratio="2/3", progress=2 / 3, samples_per_s=None, train_loss=0.5,
                val_accuracy=None, starting_weights=None, error=None, created_at=0.0, started_at=None, ended_at=None)
    return TrainingView(**{**base, **fields})


HISTORY = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.4},
           {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.95, "val_loss": 0.6, "val_accuracy": 0.9}]


def test_the_curves_are_points_per_series_and_an_svg_with_a_point_per_epoch():
    from imgai.presentation.curves import EMPTY, svg_chart
    from imgai.presentation.train import curve_points

    loss, accuracy = curve_points(HISTORY + [{"epoch": 3, "train_loss": 0.25, "train_accuracy": 1.0, "val_loss": None}])
    assert loss == [(1, 1.0, "train"), (1, 1.2, "validation"), (2, 0.5, "train"), (2, 0.6, "validation"),
                    (3, 0.25, "train")]
    assert accuracy[-1] == (3, 1.0, "train") and len(accuracy) == 5
    assert curve_points([]) == ([], [])
    assert svg_chart([], "Loss") == ('<div class="imgai-chart"><b>Loss</b><br><span style="opacity:.7">'
                                     f"{EMPTY}</span></div>")
    svg = svg_chart(loss, "Loss <train>")
    assert svg.startswith('<svg viewBox="0 0 520 240"') and svg.endswith("</svg>")
    assert 'aria-label="Loss &lt;train&gt;"' in svg and "<train>" not in svg       # the title escaped
    assert svg.count('class="point"') == 5 and svg.count("<polyline") == 2      # every epoch a point; a line per series
    assert svg.index(">train</text>") < svg.index(">validation</text>")          # the legend in order of appearance
    assert [f">{e}</text>" in svg for e in (1, 2, 3)] == [True, True, True]
    one = svg_chart([(1, 0.7, "train")], "Accuracy", percent=True)
    assert one.count('class="point"') == 1 and "<polyline" not in one          # epoch 1 is visible on its own
    assert ">0%</text>" in one and ">100%</text>" in one and ">2</text>" in one  # 0–100 %, at least two epochs


def test_the_job_tables_sort_jobs_by_state_and_failed_ones_say_why():
    from imgai.presentation.train import FAILED_COLUMNS, JOB_COLUMNS, TABLES, job_tables

    views = [training_view("q", "queued"), training_view("r", RUNNING, samples_per_s=41.6, val_accuracy=0.875),
             training_view("s", SUCCEEDED, epoch_ratio="3/3", progress=1.0),
             training_view("f", FAILED, error="out of memory"), training_view("c", "cancelled")]
    tables = job_tables(views)
    assert list(tables) == list(TABLES) == ["Queued", "In Progress", "Complete", "Failed"]
    assert [[row[0] for row in rows] for rows in tables.values()] == [["q"], ["r"], ["s"], ["f", "c"]]
    assert tables["In Progress"][0] == ["r", "My tagger", "resnet18", "shapes", "2/3", "67%", "42", "87.5%", ""]
    assert tables["Failed"][0][-2:] == [FAILED, "out of memory"] and tables["Failed"][1][-2:] == ["cancelled", ""]
    assert len(tables["Failed"][0]) == len(FAILED_COLUMNS) and len(tables["Queued"][0]) == len(JOB_COLUMNS)
    assert job_tables([]) == {name: [] for name in TABLES}


def test_a_jobs_detail_says_its_run_its_weights_its_result_and_whether_it_looks_unfinished():
    from imgai.presentation.train import NO_JOB, job_detail

    assert job_detail(None, None, []).text == NO_JOB
    assert job_detail(None, None, []).confusion == {"headers": ["true \\ predicted"], "data": []}
    result = {"labels": ["cat", "dog"], "per_class_accuracy": {"cat": 1.0, "dog": 0.5},
              "confusion_matrix": [[2, 0], [1, 1]], "pytorch_path": "/x", "run": 2, "model_id": "m1"}
    done = job("t1", SUCCEEDED, kind="train", result=result,
               params={"data_warnings": ["w1", "w2", "w3", "w4"], "config": {"loss": "cross_entropy"}})
    view = training_view("t1", SUCCEEDED, samples_per_s=12.0, val_accuracy=0.75, starting_weights="timm/x@abc")
    detail = job_detail(done, view, [{"epoch": 3, "train_loss": 0.9, "train_accuracy": 0.5, "val_loss": 0.7}])
    lines = detail.text.split("  \n")
    assert lines[0] == "**Job `t1`** — My tagger (resnet18) on `shapes`: **succeeded**, 2/3 epochs"
    assert lines[1] == "Throughput: 12 images/s; validation accuracy 75.0%"
    assert lines[2] == "Started from ImageNet weights."
    assert lines[3:6] == ["⚠️ w1", "⚠️ w2", "⚠️ w3"]                    # three warnings at most
    assert lines[6].startswith("⚠️ This run looks unfinished: it gets only 50% of its own training images right")
    assert lines[7] == "Saved as run 2 of **m1** — convert it in the Convert tab."
    assert detail.per_class == [["cat", "100.0%"], ["dog", "50.0%"]]
    assert detail.confusion == {"headers": ["true \\ predicted", "cat", "dog"], "data": [["cat", 2, 0], ["dog", 1, 1]]}
    failed = job("t2", FAILED, kind="train", params={}, error="boom")
    text = job_detail(failed, training_view("t2", FAILED, starting_weights="scratch", error="boom"), []).text
    assert "⚠️ No pretrained weights on this machine: trained from scratch." in text and text.endswith("**Error:** boom")


def test_the_job_buttons_follow_the_state_and_the_policy():
    from imgai.presentation.train import job_buttons

    assert job_buttons(None, LOCAL_OWNER) == [False, False, False, False]      # Cancel, Resume, Retrain, Download
    assert job_buttons(job("t", RUNNING, kind="train"), LOCAL_OWNER) == [True, False, True, False]
    assert job_buttons(job("t", SUCCEEDED, kind="train"), LOCAL_OWNER) == [False, False, True, True]
    assert job_buttons(job("t", FAILED, kind="train"), LOCAL_OWNER) == [False, True, True, False]
    assert job_buttons(job("t", RUNNING, kind="train"), STRANGER) == [False, False, False, False]


def test_a_data_check_in_words():
    from types import SimpleNamespace

    from imgai.presentation.train import report_markdown

    report = SimpleNamespace(images=12, labels=["cat", "dog"], counts={"cat": 8, "dog": 4}, warnings=["few dogs"],
                             problems=[], ok=True)
    assert report_markdown(report) == "**12 images in 2 classes** — cat: 8, dog: 4  \n⚠️ few dogs  \nReady to train."
    bad = SimpleNamespace(images=1, labels=["cat"], counts={"cat": 1}, warnings=[], problems=["one class"], ok=False)
    assert report_markdown(bad) == "**1 images in 1 classes** — cat: 1  \nProblem: one class"


def test_the_training_form_reads_gradios_numbers_and_choices():
    from imgai.presentation.train_form import FORM, aug_choice, form_settings, still_listed

    values = ["cross_entropy", 0.0, 3.0, 8.0, "adamw", 1e-3, 0.9, 0.999, 1e-8, 0.01, "auto", 0.0, 0, 0.0, 0, 0,
              True, "auto", "on", "as the data pipeline"]
    settings = form_settings(values)
    assert list(settings) == FORM
    assert settings["epochs"] == 3 and isinstance(settings["epochs"], int) and settings["batch_size"] == 8
    assert settings["num_workers"] == 0 and settings["seed"] == 0                 # 0 is a value here
    assert settings["prefetch_factor"] is None and settings["image_size"] is None and settings["val_split"] is None
    assert settings["flip"] is True and settings["crop"] is None and settings["lr"] == 1e-3
    assert [aug_choice(v) for v in (None, True, False)] == ["as the data pipeline", "on", "off"]
    assert still_listed("b", [("B", "b")]) and still_listed(None, []) and still_listed("x", ["x", "y"])
    assert not still_listed("gone", [("B", "b")])


def test_the_training_screen_draws_the_curves_only_when_they_change(imgai_home):
    from imgai.presentation.curves import EMPTY
    from imgai.presentation.train import NO_JOB, TABLES, training_screen

    screen = training_screen(None, None, actor=LOCAL_OWNER)
    assert screen.tables == {name: [] for name in TABLES} and screen.job_id == "" and screen.detail.text == NO_JOB
    assert screen.plot_key == [None, 0, None] and all(EMPTY in plot for plot in screen.plots)
    assert screen.buttons == [False] * 4
    again = training_screen(None, screen.plot_key, actor=LOCAL_OWNER)
    assert again.plots is None                                                   # nothing new: not redrawn


def test_the_train_tab_hands_the_screen_to_gradio_unchanged(imgai_home):
    pytest.importorskip("gradio")
    from imgai.presentation.train import training_screen
    from ui import train as tab

    *tables, job_id, detail, loss, accuracy, per_class, confusion, key, cancel, resume, retrain, download = \
        tab.refresh(None, None)
    screen = training_screen(None, None, actor=LOCAL_OWNER)
    assert tables == list(screen.tables.values()) and (job_id, detail, key) == ("", screen.detail.text, screen.plot_key)
    assert (loss, accuracy) == screen.plots and (per_class, confusion) == ([], screen.detail.confusion)
    assert [b["interactive"] for b in (cancel, resume, retrain, download)] == screen.buttons
    assert tab.refresh(None, key)[len(tables) + 2] == {"__type__": "update"}     # the curves stay as drawn


# -- issue 24: the Browse tab's Hub details and download progress ------------------------------------

def details(**fields):
    from imgai.hub.results import HubModel, ModelDetails

    model = HubModel("acme/vit-tiny", architecture="ViTForImageClassification", family="vit",
                     library="transformers", labels=14, license="apache-2.0")
    base = dict(repo_id="acme/vit-tiny", sha="0123456789abcdef", supported=True, reason=None, model=model,
                files=[{"path": "config.json", "size": 1000, "needed": True},
                       {"path": "model.safetensors", "size": 2_000_000, "needed": True},
                       {"path": "tf_model.h5", "size": 3_000_000, "needed": False}],
                download_size=2_001_000, total_size=5_001_000, card_summary="A tiny ViT.",
                label_names=[f"l{i}" for i in range(14)], private=False, gated=False, in_registry=None,
                registered_other_revision=None)
    return ModelDetails(**{**base, **fields})


def test_a_repos_details_say_what_a_download_takes_and_whether_it_is_registered():
    from imgai.hub.support import human_size
    from imgai.presentation.hub import details_markdown

    parts = details_markdown(details()).split("\n\n")
    assert parts[:4] == ["### acme/vit-tiny", "commit `0123456789ab`",
                         "**vit** — transformers `ViTForImageClassification`, 14 labels, license **apache-2.0**",
                         "> A tiny ViT."]
    assert parts[4] == "Labels: " + ", ".join(f"`l{i}`" for i in range(12)) + " …"   # the first 12, and more
    assert parts[5] == (f"Download: **{human_size(2_001_000)}** in 2 files (config.json, model.safetensors) "
                        f"of {human_size(5_001_000)} in the repo")
    assert len(parts) == 6
    assert details_markdown(details(in_registry="vit-tiny")).endswith("Already in the registry as **vit-tiny**.")
    assert details_markdown(details(registered_other_revision="vit-old")).endswith(
        "Another revision is in the registry as **vit-old**.")
    unsupported = details_markdown(details(supported=False, reason="BERT is not an image classifier", model=None,
                                           card_summary="", label_names=[], sha=None))
    assert unsupported.split("\n\n")[1:3] == ["commit ``", "**Not supported**: BERT is not an image classifier"]
    gated = details_markdown(details(model=details().model.__class__("a/b", "resnet", "resnet", "timm", gated="manual")))
    assert "? labels, license **unknown**, gated: manual" in gated


def test_a_download_job_in_words():
    from imgai.presentation.hub import download_words

    running = job("d1", RUNNING, kind="download", subject="acme/vit-tiny", progress=0.42, stage="model.safetensors")
    assert download_words(running) == "Downloading: 42% — model.safetensors"
    assert download_words(job("d1", "queued", kind="download", stage="")) == "Downloading: 50% — queued"
    done = job("d1", SUCCEEDED, kind="download", subject="acme/vit-tiny", result={"model_id": "vit-tiny"})
    assert download_words(done) == ("Done: **acme/vit-tiny** registered as **vit-tiny**; it is listed in the "
                                    "**Convert** tab: press **Convert to ONNX** there.")
    again = job("d1", SUCCEEDED, kind="download", result={"model_id": "vit-tiny", "already_registered": True})
    assert "registered as **vit-tiny** (it was already there);" in download_words(again)
    assert download_words(job("d1", FAILED, kind="download", subject="a/b", error="404")) == \
        "Download of **a/b** failed: 404"


# -- issue 24: Browse's "Add model" ----------------------------------------------------------------

def test_the_add_forms_preprocessing_fields_become_options_only_where_set():
    from imgai.presentation.models import FROM_MODEL, preprocess_options

    assert preprocess_options(None, mean_std=FROM_MODEL, layout=FROM_MODEL, channel_order=None) is None
    assert preprocess_options(0, mean_std=FROM_MODEL) is None                  # gradio's empty number
    assert preprocess_options(224.0, mean_std="imagenet", layout=FROM_MODEL, channel_order="BGR") == \
        {"mean_std": "imagenet", "channel_order": "BGR", "size": 224}


def test_an_added_model_says_what_it_entered_as_its_next_step_and_its_preprocessing():
    from imgai.guide import next_step
    from imgai.presentation.models import added_words

    new = model("new")
    assert added_words(new) == (f"Added **new** as PyTorch / NotConverted (timm resnet18); it is listed in the "
                                f"**Convert** tab: {next_step(new)}.")
    assert added_words(model("default")).endswith("it is listed in the **Convert** tab and ready to tag.")
    onnx = model("enabled", library="onnx", extra={"preprocess": {
        "spec": "224x224, ImageNet mean/std", "origin": "inferred from the ONNX graph", "assumed": True,
        "ignored": ["layout (the graph says NCHW)"]}})
    lines = added_words(onnx).split("\n")
    assert lines[2] == ("Preprocessing: 224x224, ImageNet mean/std (inferred from the ONNX graph). ⚠️ **Assumed**: "
                        "check it on a few images, then confirm or edit it.")
    assert lines[3] == "- ignored layout (the graph says NCHW)" and len(lines) == 4


def test_the_tag_form_without_images_says_where_images_come_from(imgai_home, monkeypatch):
    from imgai.presentation.tag import tag_form, upload_paths

    with pytest.raises(ConfigError, match="^no images: upload some, or give a folder$"):
        tag_form([], "  ", None, 5, 0.0, 0.35, 0.85, False, None, actor=LOCAL_OWNER)
    monkeypatch.setenv("IMGAI_PUBLIC", "1")                # a public app names no server folder
    with pytest.raises(ConfigError, match="^no images: upload some$"):
        tag_form(None, "", None, 5, 0.0, 0.35, 0.85, False, None, actor=STRANGER)
    assert upload_paths(["/a.png", type("Upload", (), {"name": "/b.png"})()]) == ["/a.png", "/b.png"]


def test_the_train_forms_refuse_what_is_missing_and_load_a_jobs_settings_back(imgai_home):
    from imgai import jobs
    from imgai.presentation.train_form import (DEFAULTS, FORM, FinetuneForm, add_data, finetune_form, retrain_form,
                                               start_training, weights_note)

    with pytest.raises(ConfigError, match="^give the folder path$"):
        add_data("Image folder", "mine", "  ", None, "", 0.2, 224, [], actor=LOCAL_OWNER)
    with pytest.raises(ConfigError, match="^give the Hub dataset id$"):
        add_data("Hub dataset (cached)", "mine", "", None, "", 0.2, 224, [], actor=LOCAL_OWNER)
    with pytest.raises(ConfigError, match="^pick a Data Source"):
        start_training("m1", "", [DEFAULTS[k] for k in FORM], "", actor=LOCAL_OWNER)
    with pytest.raises(ConfigError, match="^select a job to retrain$"):
        retrain_form("", actor=LOCAL_OWNER)
    assert finetune_form(None, None, True) == FinetuneForm(None, "")
    assert weights_note(None) == "" and weights_note("no-such-model") == ""
    assert finetune_form("no-such-model", None, True) == FinetuneForm(None, "")      # the fields stay as they are
    config = {**{k: DEFAULTS[k] for k in FORM}, "epochs": 7, "flip": True, "crop": False}
    job = jobs.submit("train", {"data": {"name": "shapes"}, "config": config}, subject="m1", start=False)
    form = retrain_form(job.id, actor=LOCAL_OWNER)
    assert (form.model, form.data) == ("m1", "shapes") and len(form.values) == len(FORM)
    values = dict(zip(FORM, form.values))
    assert values["epochs"] == 7 and (values["flip"], values["crop"]) == ("on", "off")
    assert form.note == f"Settings of job `{job.id}` loaded: edit them above and press **Train** for a new run."


def test_the_library_review_screen_one_images_tags_and_a_folder_run_in_words(wd_default, tmp_path):
    """The Library tab's screens, read in-process: a folder tagged into the library reports its plan
    and each image to the progress callable; the review screen lists the images with pending tags
    and the labels for "accept all"; one image's tags are rows with an accept and a reject cell; a
    stranger gets the refusal instead of the library."""
    from imgai.library import review
    from imgai.presentation.library import (ACCEPT_CELL, REJECT_CELL, decide_image, image_tags, review_screen,
                                            tag_folder)
    from tests.library_fixtures import photo_folder

    photo_folder(tmp_path / "photos", 4)
    calls = []
    words = tag_folder(f"  {tmp_path / 'photos'} ", lambda *a, **kw: calls.append((a, kw)))
    assert words.startswith("Library: ") and "4 new" in words and f"(model **{wd_default}**)" in words
    assert calls[0][0] == ((0, 4),) and "4 new" in calls[0][1]["desc"]
    assert [c[0][0] for c in calls[1:]] == [(1, 4), (2, 4), (3, 4), (4, 4)] and calls[-1][1]["unit"] == "images"

    for category in review.CATEGORIES:                    # every stored score between floor and threshold
        review.set_thresholds(category, review=0.0, accept=1.0)
    screen = review_screen(None)
    assert screen.paths and len(screen.gallery) == len(screen.paths) and screen.label is None
    assert "reviewed" in screen.progress and screen.choices
    label = screen.choices[0][1]
    assert screen.choices[0][0].startswith(f"{label} (")
    assert review_screen(label).label == label and review_screen("no-such-tag").label is None

    assert image_tags(None) == ("Select an image in the gallery to review its tags.", [])
    note, rows = image_tags(screen.paths[0])
    assert rows and all(r[2:] == [ACCEPT_CELL, REJECT_CELL] for r in rows) and "tag(s) to review" in note

    line = decide_image(screen.paths[0], [rows[0][0]])       # one tag accepted, the image's others rejected
    decided = {d["label"]: d["action"] for d in review.export_decisions() if d["path"] == screen.paths[0]}
    assert decided == {r[0]: "accept" if i == 0 else "reject" for i, r in enumerate(rows)}
    assert f"{len(rows)} of" in line and image_tags(screen.paths[0])[1] == []
    with pytest.raises(Exception, match="library"):
        decide_image(screen.paths[1], [], actor=STRANGER)

    refused = review_screen(None, actor=STRANGER)
    assert (refused.gallery, refused.paths, refused.choices) == ([], [], [])
    assert refused.progress.startswith("🔒") and "**Tag** tab" in refused.progress


def test_pushing_a_quantized_output_names_what_is_missing(imgai_home):
    from imgai.presentation.quantize import push

    with pytest.raises(ConfigError, match="pick an output to push"):
        push(None, "acme", False)
    with pytest.raises(ConfigError, match="enter the Hub user or organisation"):
        push("sd15-torch-int8", "  ", False)
