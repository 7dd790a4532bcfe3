"""The model registry: one row per model, and the only place its status changes.

State machine (ARCHITECTURE.md):
    PyTorch/NotConverted --convert--> PyTorch/Converting --ok--> ONNX/Converted
                                                       \\-err--> PyTorch/Failed (retry allowed)
A ready-made ONNX model enters as ONNX with conversion "N/A".
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import access, db
from .access import Actor
from .config import paths
from .errors import StateError, UnknownModelError
from .words import render, term

PYTORCH, ONNX = "PyTorch", "ONNX"
NOT_CONVERTED, CONVERTING, CONVERTED, FAILED, NOT_APPLICABLE = (
    "NotConverted", "Converting", "Converted", "Failed", "N/A")
TRAINED = "Trained"                  # the training state in which a trained model may convert (imgai/train/models.py)
FP32, INT8 = "fp32", "int8"          # precisions (extra["precision"]; FP32 when absent)
MIN_INT8_AGREEMENT = 0.99            # an INT8 model agreeing less with its FP32 original is enabled only by force
MAX_INT8_MEAN_DPROB = 0.02           # … or changing its probabilities more than this on average (mean |Δprob|)
DEMO_MODEL_ID = "efficientnet-lite0-demo"   # the embedded demo's id (imgai.demo.MODEL_ID; asked for before it exists)


@dataclass
class Model:
    id: str
    name: str
    source: str
    architecture: str
    library: str
    type: str
    conversion: str
    training: str | None = None
    enabled: bool = False
    default: bool = False
    validation: dict | None = None
    validated_at: float | None = None
    error: str | None = None
    pytorch_path: str | None = None
    onnx_path: str | None = None
    job_id: str | None = None
    extra: dict = field(default_factory=dict)
    owner: str | None = None      # None: shared (the catalogue); else a visitor's (imgai/access.py)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def valid(self) -> bool:
        return bool(self.validation and self.validation.get("passed"))

    @property
    def can_convert(self) -> bool:
        return (self.type == PYTORCH and self.conversion in (NOT_CONVERTED, FAILED)
                and self.training in (None, TRAINED))

    @property
    def preprocessing_assumed(self) -> bool:
        """A ready-made ONNX model whose preprocessing was inferred from its graph, not yet confirmed."""
        return bool(((self.extra or {}).get("preprocess") or {}).get("assumed"))

    @property
    def precision(self) -> str:
        return self.extra.get("precision", FP32)

    @property
    def vs_fp32(self) -> dict | None:
        """An INT8 model's comparison with its FP32 original (top-1 agreement, |Δprob|, speed)."""
        return self.extra.get("vs_fp32")

    @property
    def can_tag(self) -> bool:
        return self.type == ONNX and self.enabled and self.valid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_to_model(row) -> Model:
    d = dict(row)
    d["default"] = bool(d.pop("is_default"))
    d["enabled"] = bool(d["enabled"])
    d["validation"] = json.loads(d["validation"]) if d["validation"] else None
    d["extra"] = json.loads(d["extra"] or "{}")
    d["error"] = render(d["error"])   # a job worker stores markers; they read in the reader's words
    return Model(**d)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:48].strip("-") or "model"


def _unique_id(conn, base: str) -> str:
    taken = {r[0] for r in conn.execute("SELECT id FROM models WHERE id = ? OR id LIKE ?", (base, base + "-%"))}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create(*, name: str, source: str, architecture: str, library: str, type: str = PYTORCH,
           conversion: str = NOT_CONVERTED, training: str | None = None, pytorch_path: str | None = None,
           onnx_path: str | None = None, extra: dict | None = None, model_id: str | None = None,
           owner: str | None = None) -> Model:
    """A new row (no permission check: callers are the checked operations, which pass `owner`)."""
    now = db.now()
    with db.transaction() as conn:
        mid = _unique_id(conn, slugify(model_id or name))
        conn.execute(
            "INSERT INTO models (id, name, source, architecture, library, type, conversion, training, "
            "pytorch_path, onnx_path, extra, owner, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (mid, name, source, architecture, library, type, conversion, training, pytorch_path,
             onnx_path, json.dumps(extra or {}), owner, now, now))
    return get(mid)


def _reconciled() -> None:
    """Reads reconcile: a model whose job's worker died is shown Failed ("interrupted"), not
    still Converting or Training (see `jobs.recover`; one query when nothing runs)."""
    from . import jobs

    jobs.recover()


def get(model_id: str) -> Model:
    _reconciled()
    rows = db.query("SELECT * FROM models WHERE id = ?", (model_id,))
    if not rows:   # a public app does not list everybody's models to whoever mistyped an id
        known = "" if access.public() else f" (known: {', '.join(m.id for m in list_models()) or 'none yet'})"
        fix = (f"the demo model is prepared on the app's first start; {term('restore-demo')} prepares it now"
               if model_id == DEMO_MODEL_ID else f"see {term('models-list')}")
        raise UnknownModelError(f"no model {model_id!r} in the registry{known}; {fix}")
    return _row_to_model(rows[0])


def list_models(*, actor: Actor | None = None) -> list[Model]:
    """Every model the actor may see: all for the local owner and admins, else the shared ones and
    their own."""
    _reconciled()
    return access.visible(actor, [_row_to_model(r) for r in db.query("SELECT * FROM models ORDER BY created_at, id")])


def find_by_source(source: str, *, owner: str | None = None) -> Model | None:
    """The model registered from `source` for this owner (None: the shared one)."""
    rows = db.query("SELECT * FROM models WHERE source = ? AND owner IS ?", (source, owner))
    return _row_to_model(rows[0]) if rows else None


def default_model() -> Model | None:
    rows = db.query("SELECT * FROM models WHERE is_default = 1")
    return _row_to_model(rows[0]) if rows else None


def _update(conn, model_id: str, **fields) -> None:
    fields["updated_at"] = db.now()
    for key in ("validation", "extra"):
        if key in fields and not isinstance(fields[key], (str, type(None))):
            fields[key] = json.dumps(fields[key])
    cols = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE models SET {cols} WHERE id = ?", (*fields.values(), model_id))


def _locked_get(conn, model_id: str) -> Model:
    row = conn.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        raise UnknownModelError(f"no model {model_id!r} in the registry; see {term('models-list')}")
    return _row_to_model(row)


def update(model_id: str, **fields) -> Model:
    """Change descriptive fields (paths, extra, training state). Status has its own functions."""
    forbidden = {"type", "conversion", "enabled", "is_default"} & set(fields)
    if forbidden:
        raise StateError(f"{sorted(forbidden)} change only through the registry's state functions")
    with db.transaction() as conn:
        _locked_get(conn, model_id)
        _update(conn, model_id, **fields)
    return get(model_id)


# -- conversion state machine -------------------------------------------------------------

def start_conversion(model_id: str, job_id: str | None = None) -> Model:
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        if not m.can_convert:
            why = (f"it is {m.type} / {m.conversion}" if m.training in (None, TRAINED)
                   else f"it has not been trained yet (training: {m.training})")
            raise StateError(f"cannot convert {model_id!r}: {why}; only an unconverted or failed "
                             "PyTorch model can be converted")
        _update(conn, model_id, conversion=CONVERTING, error=None, job_id=job_id)
    return get(model_id)


def finish_conversion(model_id: str, onnx_path: str | Path, *, validation: dict, extra: dict | None = None,
                      enable: bool = False, make_default: bool = False) -> Model:
    """Converting → Converted in one write, with the validation it passed, `extra` merged in, and
    (for a first conversion) enabled and, if no model is the default yet, the default: a reader never
    sees a Converted model that is not yet validated or enabled."""
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        if m.conversion != CONVERTING:
            raise StateError(f"{model_id!r} is not converting (it is {m.conversion})")
        _update(conn, model_id, type=ONNX, conversion=CONVERTED, onnx_path=str(onnx_path), error=None,
                validation=validation, validated_at=db.now(), extra={**m.extra, **(extra or {})},
                enabled=int(m.enabled or (enable and bool(validation.get("passed")))))
        done = _locked_get(conn, model_id)
        no_default = conn.execute("SELECT 1 FROM models WHERE is_default = 1").fetchone() is None
        if make_default and no_default and done.owner is None and done.can_tag:   # set_default's rule
            _update(conn, model_id, is_default=1)
    return get(model_id)


def fail_conversion(model_id: str, error: str) -> Model:
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        if m.conversion == CONVERTING:
            _update(conn, model_id, type=PYTORCH, conversion=FAILED, error=error, enabled=0, is_default=0)
    return get(model_id)


def reset_conversion(model_id: str, note: str | None = None) -> Model:
    """Back to NotConverted (a cancelled conversion)."""
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        if m.conversion == CONVERTING:
            _update(conn, model_id, conversion=NOT_CONVERTED, error=note)
    return get(model_id)


def record_validation(model_id: str, result: dict) -> Model:
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        fields: dict[str, Any] = {"validation": result, "validated_at": db.now()}
        if not result.get("passed"):
            fields.update(enabled=0, is_default=0)
            fields["error"] = "validation failed: " + "; ".join(result.get("problems", [])) 
        elif m.error and m.error.startswith("validation failed"):
            fields["error"] = None
        _update(conn, model_id, **fields)
    return get(model_id)


# -- enable / default / remove ------------------------------------------------------------

WAS_DEFAULT = "was_default"   # extra: the model was the default when it was disabled (enabling restores it)


def set_enabled(model_id: str, enabled: bool, *, force: bool = False, actor: Actor | None = None) -> Model:
    """Enable or disable. An INT8 model below MIN_INT8_AGREEMENT top-1 agreement with its FP32
    original is enabled only with `force=True`. Disabling the default drops the default (a disabled
    model tags nothing) and remembers it: enabling it again makes it the default again, unless
    another model became the default meanwhile."""
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        access.check(actor, "models.enable" if enabled else "models.disable", m)
        if enabled and not (m.type == ONNX and m.valid):
            raise StateError(f"cannot enable {model_id!r}: only a validated ONNX model can be enabled "
                             f"(it is {m.type} / {m.conversion}, validation "
                             f"{'passed' if m.valid else 'not passed'}); convert and validate it first")
        if enabled and m.precision == INT8 and not force:
            _check_int8_bar(m)
        extra = dict(m.extra or {})
        if enabled:
            other = conn.execute("SELECT 1 FROM models WHERE is_default = 1 AND id != ?", (model_id,)).fetchone()
            default = bool(extra.pop(WAS_DEFAULT, False)) and other is None
            _update(conn, model_id, enabled=1, extra=extra, **({"is_default": 1} if default else {}))
        else:
            if m.default:
                extra[WAS_DEFAULT] = True
            _update(conn, model_id, enabled=0, is_default=0, extra=extra)
    return get(model_id)


def agreement_percent(share: float) -> str:
    """A top-1 agreement as a percentage with one decimal; with two, cut not rounded, where one would
    round a share below the gate's bar (MIN_INT8_AGREEMENT) up to it: 190 of 192 views reads 98.95%,
    not 99.0%, beside a 99% bar."""
    if share < MIN_INT8_AGREEMENT and round(share * 1000) >= round(MIN_INT8_AGREEMENT * 1000):
        return f"{math.floor(share * 10000) / 100:.2f}%"
    return f"{share:.1%}"


def int8_gate_problems(figures: dict) -> list[str]:
    """Why an INT8 model's figures against FP32 fall short of the gate (empty when it holds): top-1
    agreement ≥ MIN_INT8_AGREEMENT and mean |Δprob| ≤ MAX_INT8_MEAN_DPROB. Quantizing and enabling
    both apply it."""
    problems = []
    agreement, dprob = figures.get("top1_agreement"), figures.get("mean_abs_dprob")
    if agreement is not None and agreement < MIN_INT8_AGREEMENT:
        problems.append(f"top-1 agreement {agreement:.2%} is below the {MIN_INT8_AGREEMENT:.0%} bar")
    if dprob is not None and dprob > MAX_INT8_MEAN_DPROB:
        problems.append(f"mean |Δprob| {dprob:.4f} is above the {MAX_INT8_MEAN_DPROB} bar")
    return problems


def _check_int8_bar(m: Model) -> None:
    figures = m.vs_fp32 or {}
    agreement = figures.get("top1_agreement")
    if agreement is None:
        raise StateError(f"cannot enable {m.id!r}: this INT8 model has not been compared with its FP32 original; "
                         "quantize again, or enable it anyway with --force")
    problems = int8_gate_problems(figures)
    if problems:
        raise StateError(
            f"cannot enable {m.id!r}: against the FP32 model on {figures.get('views')} held-back views, "
            f"{' and '.join(problems)} (agreement {agreement_percent(agreement)}, mean |Δprob| "
            f"{figures.get('mean_abs_dprob', 0):.4f}); quantize with a calibration folder like your photos "
            "(--calibration FOLDER), or enable it anyway with --force")


def set_default(model_id: str, *, actor: Actor | None = None) -> Model:
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        access.check(actor, "models.default", m)
        if m.owner is not None:
            raise StateError(f"cannot make {model_id!r} the default: it belongs to {m.owner}, and the default "
                             "model serves every visitor; only a shared model can be the default")
        if not m.can_tag:
            raise StateError(f"cannot make {model_id!r} the default: only an enabled, validated ONNX "
                             "model can be the default; enable it first")
        conn.execute("UPDATE models SET is_default = 0 WHERE is_default = 1")
        _update(conn, model_id, is_default=1)
    return get(model_id)


def remove(model_id: str, *, actor: Actor | None = None) -> None:
    """Remove the row and the model's own files (never a shared Hub cache)."""
    with db.transaction() as conn:
        m = _locked_get(conn, model_id)
        access.check(actor, "models.remove", m)
        if m.conversion == CONVERTING:
            raise StateError(f"cannot remove {model_id!r} while it is converting; cancel job {m.job_id} first")
        conn.execute("DELETE FROM models WHERE id = ?", (model_id,))
    own = paths().model_dir(model_id)
    if own.exists():
        shutil.rmtree(own, ignore_errors=True)
