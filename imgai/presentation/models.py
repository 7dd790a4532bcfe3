"""The registry's models as the app and the CLI show them: the table's rows, `models show`'s
fields, and which model actions are allowed here and, if not, why (the Convert tab's buttons)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import access, registry
from ..access import Actor
from ..classify.quantize_scope import scope_text
from ..guide import RESTORABLE, demo_status, next_step
from ..words import plain
from .jobs import job_rows, model_jobs, when
from .locks import lock_note

MODEL_COLUMNS = ["ID", "Name", "Type", "Precision", "Conversion", "Enabled", "Default", "Validation", "Error"]

# the policy's action behind each model button, in the order the Convert tab shows them
ACTIONS = ("models.convert", "models.quantize", "models.validate", "models.enable", "models.disable",
           "models.default", "models.remove")


def validation_text(m: registry.Model) -> str:
    """One cell: whether validation passed (with the largest difference from PyTorch), whether the
    preprocessing is only assumed, and an INT8 model's agreement with its FP32 original."""
    if m.validation is None:
        text = "—"
    elif not m.valid:
        text = "failed"
    elif m.validation.get("max_abs_diff") is not None:
        text = f"passed (Δ {m.validation['max_abs_diff']:.0e})"
    else:
        text = "passed"
    if m.preprocessing_assumed:
        text += " · preprocessing assumed"
    if m.vs_fp32:
        text += f", top-1 vs FP32 {registry.agreement_percent(m.vs_fp32['top1_agreement'])}"
    return text


def conversion_text(m: registry.Model) -> str:
    """The Conversion cell: an INT8 copy says what it was quantized from (not "N/A")."""
    source = (m.extra or {}).get("quantized_from")
    return f"INT8 of {source}" if source else m.conversion


def quantization_text(settings: dict) -> str:
    """How an INT8 copy was made, in words (not the settings dict)."""
    parts = [settings.get("format") or settings.get("method") or "INT8"]
    if settings.get("per_channel"):
        parts.append("int8 weights per channel")
    if settings.get("seven_bit_weights"):  # quantize.py: a CPU whose uint8 × int8 products saturate
        parts.append(f"7-bit weights on {settings['seven_bit_weights']} matrix-product layers (this CPU's "
                     "uint8 × int8 products saturate)")
    if settings.get("uint8_weights"):
        parts.append(f"uint8 weights on {settings['uint8_weights']} matrix-product layers (U8U8 kernels: "
                     "this CPU's uint8 × int8 products saturate)")
    if settings.get("bias_corrected"):   # bias_correction: the 8-bit weights' mean shift taken off the biases
        parts.append(f"bias-corrected on {settings['bias_corrected']} convolutions")
    if settings.get("float_output_ops"):   # int8_quantizer.output_ops: the logits are not rounded to 8 bits
        parts.append(f"float logits ({'/'.join(settings['float_output_ops'])} output)")
    if settings.get("calibration_images"):
        parts.append(f"calibrated on {settings['calibration_images']} images"
                     + (f" ({settings['calibration']})" if settings.get("calibration") else ""))
    if settings.get("held_back_images"):
        parts.append(f"{settings['held_back_images']} held back for the comparison")
    if settings.get("onnxruntime"):
        parts.append(f"onnxruntime {settings['onnxruntime']}")
    if settings.get("seconds") is not None:
        parts.append(f"{settings['seconds']} s")
    return ", ".join(parts)


def model_row(m: registry.Model, *, error_width: int | None = None) -> list:
    """A model as one table row (MODEL_COLUMNS); `error_width` cuts a long error (a terminal's table)."""
    error = plain(m.error) or ""    # a table cell shows text as it is: words, no markup
    if error_width is not None and len(error) > error_width:
        error = error[:error_width - 1] + "…"
    return [m.id, m.name, m.type, m.precision.upper(), conversion_text(m), "yes" if m.enabled else "no",
            "★" if m.default else "", validation_text(m), error]


def model_rows(models, *, error_width: int | None = None) -> list[list]:
    return [model_row(m, error_width=error_width) for m in models]


def vs_fp32_line(figures: dict) -> str:
    """An INT8 model's comparison with its FP32 original, in one line."""
    lb = f", 95% lower bound {figures['agreement_lb95']:.1%}" if figures.get("agreement_lb95") is not None else ""
    photos = f" of {figures['photos']} photos" if figures.get("photos") else ""
    return (f"top-1 agreement {registry.agreement_percent(figures['top1_agreement'])}{lb} on {figures['views']} held-back views{photos} "
            f"(bar {figures['min_top1_agreement']:.0%}), mean |Δprob| {figures['mean_abs_dprob']:.4f}, "
            f"max {figures['max_abs_dprob']:.4f}; {figures['int8_ms_per_image']:.1f} vs "
            f"{figures['fp32_ms_per_image']:.1f} ms/image FP32 ({figures['speedup']:.2f}x)" + near_tie_text(figures))


def near_tie_text(figures: dict) -> str:
    """The views FP32 itself nearly ties, when some of them flipped, and the agreement on the others."""
    if not figures.get("near_tie_flips"):
        return ""
    rest = figures.get("decisive_agreement")
    other = f"; {rest:.1%} agreement on the other {figures['views'] - figures['near_ties']}" if rest is not None else ""
    return (f"; {figures['near_tie_flips']} of the {figures['disagreements']} flips are near-ties (FP32's two best "
            f"labels within {figures['max_mean_abs_dprob']}; {figures['near_ties']} such views){other}")


def attempt_line(a: dict) -> str:
    """One attempt of the INT8 search (int8_figures.Attempt as a dict), in words."""
    weights = ", uint8 weights" if a.get("weights") == "uint8" else ""
    return (f"#{a['number']} {a['method']}{weights}, {len(a['keep_fp32'])} node(s) FP32: agreement {registry.agreement_percent(a['agreement'])} "
            f"(LB {a['agreement_lb']:.1%}), mean |Δprob| {a['mean_abs_dprob']:.4f}, max {a['max_abs_dprob']:.4f}, "
            f"{a['speedup']:.2f}x" + _flips(a) + (" ✓" if a["meets_gate"] else ""))


def _flips(a: dict) -> str:
    """", 5 flips (3 near-ties)": an attempt's changed answers, and how many FP32 itself nearly ties."""
    from ..classify.int8_figures import flips_text

    return flips_text(round(a["views"] * (1 - a["agreement"])), a.get("near_tie_flips") or 0)


def int8_search_lines(m: registry.Model) -> list[str]:
    """What the INT8 search tried, what it chose and why, and whose photos judged it."""
    q = (m.extra or {}).get("quantization") or {}
    search = q.get("search")
    if not search:
        return []
    lines = [f"search: {len(search['attempts'])} attempt(s) in {search['seconds']:.0f} s (budget "
             f"{search['budget_s']:.0f} s), {search['folds']}-fold over {q.get('photos')} photos ({q.get('calibration')})"]
    lines += ["  " + attempt_line(a) for a in search["attempts"]]
    lines.append(f"chosen: #{search['chosen']} — {search['why']}")
    if q.get("keep_fp32"):
        shown = ", ".join(q["keep_fp32"][:8]) + (f" … (+{len(q['keep_fp32']) - 8})" if len(q["keep_fp32"]) > 8 else "")
        lines.append(f"kept in FP32: {shown}")
    if search.get("small_sample"):
        lines.append(f"note: {search['small_sample']}")
    if q.get("calibration_not_yours"):
        lines.append("note: judged on built-in photos, not yours; quantize with --calibration FOLDER to judge it "
                     "on photos like the ones you tag")
    return lines


def preprocessing_lines(m: registry.Model) -> list[str]:
    """How a ready-made ONNX model's images are prepared, where that came from, what was ignored."""
    record = (m.extra or {}).get("preprocess")
    if not record:
        return []
    state = "ASSUMED (inferred from the graph; confirm with `imgai models preprocess " + m.id + " --confirm` or " \
            "edit it)" if record.get("assumed") else "confirmed" if record.get("confirmed") else "from the model"
    lines = [f"{'preprocessing':13} {record.get('spec')} — {record.get('origin')}, {state}"]
    lines += [f"{'':13} ignored {reason}" for reason in record.get("ignored") or []]
    return lines


def _validation_detail(validation: dict) -> str:
    parts = ["passed" if validation.get("passed") else "failed: " + "; ".join(validation.get("problems") or [])]
    if validation.get("num_labels") is not None:
        parts.append(f"{validation['num_labels']} labels")
    if validation.get("compared_with_pytorch") and validation.get("max_abs_diff") is not None:
        parts.append(f"max |Δlogit| vs PyTorch {validation['max_abs_diff']:.1e}, "
                     f"top-1 {validation.get('top1_agreement') or 0:.0%}")
    if validation.get("ms_per_image") is not None:
        parts.append(f"{validation['ms_per_image']:.1f} ms/image")
    checked = validation.get("checked_at")
    return ", ".join(parts) + (f" (checked {when(checked)})" if checked else "")


def model_fields(m: registry.Model) -> list[tuple[str, str]]:
    """`imgai models show` in words: (label, value) pairs, only the ones that say something."""
    state = "enabled" if m.enabled else "disabled"
    fields_ = [("id", m.id), ("name", m.name), ("source", m.source),
               ("architecture", f"{m.architecture} ({m.library})"),
               ("type", m.type), ("precision", m.precision.upper()),
               ("conversion", conversion_text(m)), ("training", m.training or ""),
               ("state", state + (", the default" if m.default else "")),
               ("next step", next_step(m) or "ready to tag"),
               ("validation", _validation_detail(m.validation) if m.validation else "not validated yet")]
    if m.vs_fp32:
        fields_.append(("vs FP32", vs_fp32_line(m.vs_fp32)))
    quantization = (m.extra or {}).get("quantization") or {}
    if (m.extra or {}).get("quantized_from"):
        fields_.append(("quantized from", f"{m.extra['quantized_from']}"))
        if quantization:
            fields_.append(("quantization", quantization_text(quantization)))
        if quantization.get("scope"):
            fields_.append(("INT8 scope", scope_text(quantization["scope"])))
        fields_ += [("INT8 search" if i == 0 else "", line) for i, line in enumerate(int8_search_lines(m))]
    exporter = (m.extra or {}).get("exporter")
    if exporter:
        fields_.append(("exported by", f"{exporter}" + (f", opset {m.extra['opset']}" if m.extra.get("opset") else "")))
    if (m.extra or {}).get("license"):
        fields_.append(("license", str(m.extra["license"])))
    fields_ += [("error", m.error or ""), ("pytorch files", m.pytorch_path or ""), ("onnx files", m.onnx_path or ""),
                ("last job", m.job_id or ""), ("owner", m.owner or "shared"),
                ("added", when(m.created_at)), ("updated", when(m.updated_at))]
    return [(label, value) for label, value in fields_ if value]


def model_lines(m: registry.Model) -> list[str]:
    """`imgai models show`: one aligned line per field, then the preprocessing record."""
    return [f"{label:13} {value}" for label, value in model_fields(m)] + preprocessing_lines(m)


def enabled_message(m: registry.Model) -> str:
    """What Enable or Disable did to `m`, the default included."""
    if m.enabled:
        return f"**{m.id}** enabled: it is offered for tagging" + (" again, as the default." if m.default else ".")
    if (m.extra or {}).get(registry.WAS_DEFAULT):
        return (f"**{m.id}** disabled: it is no longer offered for tagging, and no longer the default (no model "
                "is until you enable it again, which makes it the default again, or set another as the default).")
    return f"**{m.id}** disabled: it is no longer offered for tagging."


# -- the Convert tab's buttons ------------------------------------------------------------------

@dataclass(frozen=True)
class ModelActions:
    """What the visitor may do with the selected model: each of ACTIONS allowed or not, the reason
    for each refusal, and the text beside the buttons (the model, its next step, a 🔒 note)."""
    detail: str
    allowed: dict[str, bool] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def _state_reason(m: registry.Model, action: str, conversion_hint: str) -> str:
    """Why the model's own state rules `action` out ('' when it does not)."""
    if action == "models.convert":
        if not m.can_convert:
            return (f"it is not trained yet (training: {m.training})" if m.training not in (None, registry.TRAINED)
                    else f"it is {m.type} / {m.conversion}: only an unconverted or failed PyTorch model converts")
        return f"conversion is unavailable here: {conversion_hint}" if conversion_hint else ""
    if action == "models.quantize":
        if m.precision != registry.FP32:
            return f"it is already {m.precision.upper()}"
        return "" if m.can_tag else "only a converted, validated and enabled ONNX model is quantized"
    if action == "models.validate":
        return "" if m.type == registry.ONNX else "only an ONNX model is validated: convert it first"
    if action == "models.enable":
        if m.enabled:
            return "it is already enabled"
        if m.type != registry.ONNX:
            return "only an ONNX model is enabled: convert it first"
        return "" if m.valid else "it has not passed validation"
    if action == "models.disable":
        return "" if m.enabled else "it is not enabled"
    if action == "models.default":
        if m.default:
            return "it is already the default"
        return "" if m.can_tag else "only a model that tags (converted, validated, enabled) can be the default"
    if action == "models.remove":
        return "it is converting: cancel its job or wait for it to end" if m.conversion == registry.CONVERTING else ""
    raise KeyError(f"no model action {action!r}; known: {', '.join(ACTIONS)}")


def model_actions(m: registry.Model | None, actor: Actor | None, *, conversion_hint: str = "") -> ModelActions:
    """Which buttons make sense for the selected model `m` (one this visitor may see), with the
    reason for each that does not: the policy first (what the endpoint enforces whatever the page
    shows), then the model's state. `conversion_hint`: why this installation cannot convert ('')."""
    if m is None:
        why = "select a model in the table"
        return ModelActions("Select a model in the table.", dict.fromkeys(ACTIONS, False), dict.fromkeys(ACTIONS, why))
    refusals = {action: access.refused(actor, action, m) for action in ACTIONS}
    reasons = {action: refusals[action] or _state_reason(m, action, conversion_hint) for action in ACTIONS}
    step = next_step(m)
    detail = f"**{m.name}** — {m.type} / {m.conversion}"
    detail += f"  \n**Next:** {step}" if step else "  \n**Ready to tag** (Tag tab)."
    if m.error:
        detail += f"  \n⚠️ {m.error}"
    if m.can_convert and conversion_hint:
        detail += f"  \nConversion is unavailable here: {conversion_hint}"
    if all(refusals.values()):
        detail += f"  \n{lock_note(refusals['models.convert'])}"
    return ModelActions(detail, {action: not why for action, why in reasons.items()}, reasons)


def selected_actions(model_id: str | None, actor: Actor | None, *, conversion_hint: str = "") -> ModelActions:
    """`model_actions` for the model picked by id, among those this visitor may see."""
    m = next((m for m in registry.list_models(actor=actor) if m.id == model_id), None) if model_id else None
    return model_actions(m, actor, conversion_hint=conversion_hint)


@dataclass(frozen=True)
class ConvertScreen:
    """Everything the Convert tab shows for one visitor: the models table, the ids to pick from and
    the one picked, the model jobs, whether to offer Restore the demo, and the buttons' state."""
    rows: list[list]
    ids: list[str]
    selected: str | None
    jobs: list[list]
    restore_offered: bool
    actions: ModelActions


def convert_screen(model_id: str | None, actor: Actor | None, *, conversion_hint: str = "") -> ConvertScreen:
    """The Convert tab for this visitor, keeping `model_id` selected while it is listed (else the first)."""
    models = registry.list_models(actor=actor)
    ids = [m.id for m in models]
    selected = model_id if model_id in ids else (ids[0] if ids else None)
    chosen = next((m for m in models if m.id == selected), None)
    return ConvertScreen(model_rows(models), ids, selected, job_rows(model_jobs(actor), with_kind=True),
                         demo_status().state in RESTORABLE, model_actions(chosen, actor, conversion_hint=conversion_hint))


# -- adding a model (the Browse tab's "Add model") -------------------------------------------------

FROM_MODEL = "from the model"      # a preprocessing field left to the ONNX graph and the model's config


def preprocess_options(size=None, **fields) -> dict | None:
    """The Add form's preprocessing fields as imgai.sources.add_model's `preprocess_options`: those
    not left on FROM_MODEL, and the size in pixels when given (None when nothing is set)."""
    options = {k: v for k, v in fields.items() if v and v != FROM_MODEL}
    if size:
        options["size"] = int(size)
    return options or None


def added_words(model: registry.Model) -> str:
    """A model just added: what it entered as, where it is listed, its next step, and the
    preprocessing it will use (marked when it is only assumed, with the fields it ignored)."""
    step = next_step(model)
    message = (f"Added **{model.id}** as {model.type} / {model.conversion} ({model.library} {model.architecture}); "
               f"it is listed in the **Convert** tab" + (f": {step}." if step else " and ready to tag."))
    pre = model.extra.get("preprocess")
    if pre:
        message += f"\n\nPreprocessing: {pre['spec']} ({pre['origin']})."
        if pre["assumed"]:
            message += " ⚠️ **Assumed**: check it on a few images, then confirm or edit it."
        message += "".join(f"\n- ignored {reason}" for reason in pre["ignored"])
    return message
