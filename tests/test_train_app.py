"""The Train tab, driven through gradio_client against the real `python app.py`: make a model,
a data pipeline with preview, refuse a bad setting, train with live tables and curves, see the
per-class accuracy and confusion matrix, download the model, retrain and cancel."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from tests.train_fixtures import make_shapes, one_thread  # noqa: F401 (fixture)
from tests.waiting import wait_until

SETTINGS = dict(loss="cross_entropy", label_smoothing=0.0, epochs=2, batch_size=16, optimizer="adamw", lr=0.003,
                beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, device="auto", num_workers=0,
                prefetch_factor=None, seed=0, image_size=None, val_split=None, pretrained=True, retrain_from="")
TABLES = ("Queued", "In Progress", "Complete", "Failed")

pytestmark = pytest.mark.usefixtures("one_thread")


def _refresh(client, job_id=""):
    out = client.predict(job_id, [], api_name="/train_refresh")
    tables = {name: out[i]["data"] for i, name in enumerate(TABLES)}
    return tables, out


def _wait_in(client, table: str, job_id: str, timeout=150):
    def found():
        tables, out = _refresh(client, job_id)
        row = next((r for r in tables[table] if r[0] == job_id), None)
        return (row, out) if row else None

    return wait_until(found, timeout, f"job {job_id} in the {table} table", every=1)


@pytest.mark.slow
def test_train_tab_end_to_end(app_server, tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=12, size=32)
    client = app_server.client()
    arch_table, *_ = client.predict(None, None, None, api_name="/train_load")
    # those whose ImageNet weights are at hand come first (issue 23; offline: the demo's), then the table's order
    assert [r[0] for r in arch_table["data"]][:4] == ["efficientnet_lite0", "resnet18", "resnet34", "resnet50"]

    message, _ = client.predict("mobilenet_v3_small", "ui-shapes", api_name="/train_create")
    assert "ui-shapes" in message and "untrained" in message

    message, name = client.predict("Image folder", "ui data", str(data), None, "", 0.25, 32, ["flip"],
                                   api_name="/train_data_add")
    assert name == "ui-data"
    gallery, report = client.predict("ui-data", api_name="/train_data_preview")
    assert len(gallery) == 8 and {g["caption"] for g in gallery} <= {"circle", "square", "triangle"}
    assert "36 images in 3 classes" in report and "Ready to train" in report

    with pytest.raises(AppError, match=r"beta1=1.0 is out of range"):
        client.predict("ui-shapes", "ui-data", **{**SETTINGS, "beta1": 1.0}, api_name="/train_start")
    with pytest.raises(AppError, match="prefetch_factor=2 needs num_workers > 0"):
        client.predict("ui-shapes", "ui-data", **{**SETTINGS, "prefetch_factor": 2}, api_name="/train_start")
    with pytest.raises(AppError, match="precision fp16 needs a CUDA GPU"):     # Advanced Settings: Precision
        client.predict("ui-shapes", "ui-data", **{**SETTINGS, "device": "cpu", "precision": "fp16"},
                       api_name="/train_start")

    message, _, job_id = client.predict("ui-shapes", "ui-data", **SETTINGS, api_name="/train_start")
    assert job_id in message
    row, out = _wait_in(client, "Complete", job_id)
    assert row[4] == "2/2" and row[5] == "100%" and row[6]                  # epoch ratio, progress, throughput
    loss_plot, accuracy_plot = out[6], out[7]      # SVG: a point per epoch and series, whole-number epochs
    assert loss_plot.count("<circle") == 4 and accuracy_plot.count("<circle") == 4
    assert ">1</text>" in loss_plot and ">2</text>" in loss_plot and "1.5" not in loss_plot
    assert [r[0] for r in out[8]["data"]] == ["circle", "square", "triangle"]     # per-class accuracy
    assert out[9]["headers"] == ["true \\ predicted", "circle", "square", "triangle"]
    assert sum(sum(r[1:]) for r in out[9]["data"]) == 9                          # the validation images

    archive = Path(client.predict(job_id, api_name="/train_download"))
    with zipfile.ZipFile(archive) as zf:
        assert sorted(Path(n).name for n in zf.namelist()) == ["config.json", "model.safetensors"]

    # Retrain: the job's settings come back into the form, editable; a new run is queued
    loaded = client.predict(job_id, api_name="/train_retrain")
    assert loaded[4] == 2 and loaded[-2] == job_id                            # epochs, retrain_from
    message, cleared, second = client.predict("ui-shapes", "ui-data", **{**SETTINGS, "epochs": 1000,
                                                                          "retrain_from": job_id},
                                              api_name="/train_start")
    assert cleared == "" and second != job_id
    _wait_in(client, "In Progress", second)
    cancelled = client.predict(second, api_name="/train_cancel")
    assert "cancelled" in cancelled, app_server.job_log(second)
    row, out = _wait_in(client, "Failed", second)
    assert row[-2] == "cancelled"
    assert "run 1" in client.predict(job_id, [], api_name="/train_refresh")[5]   # the first run is kept
