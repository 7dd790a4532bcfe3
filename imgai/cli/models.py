"""`imgai models add|list|show|convert|quantize|validate|enable|disable|default|remove`"""

from __future__ import annotations

from pathlib import Path

from .. import registry
from ..presentation.int8 import auto_methods_text, gate_text
from ..presentation.models import (MODEL_COLUMNS, enabled_message, model_lines, model_rows, preprocessing_lines,
                                   vs_fp32_line)
from ..words import plain
from .output import JSON, WAIT, follow, print_json, print_table, report_job, running_or_submit


def register(sub) -> None:
    from ..classify.int8_search import DEFAULT_BUDGET_S, DEFAULT_MIN_SPEEDUP, QUANTIZE_METHODS as METHODS

    p = sub.add_parser("models", help="the model registry: add, convert, validate, enable, remove")
    s = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    add = s.add_parser("add", help="add a model from a local folder or a Hub id (org/name[@revision])", parents=[JSON])
    add.add_argument("source")
    add.add_argument("--name")
    add.add_argument("--preprocess", type=Path, help="preprocess.json for a ready-made ONNX model")
    _preprocess_flags(add)
    add.set_defaults(func=cmd_add)

    pre = s.add_parser("preprocess", help="confirm or edit a ready-made ONNX model's preprocessing", parents=[JSON])
    pre.add_argument("model_id")
    pre.add_argument("--confirm", action="store_true", help="accept it as it is (it stops being 'assumed')")
    _preprocess_flags(pre)
    pre.set_defaults(func=cmd_preprocess)

    ls = s.add_parser("list", help="all models", parents=[JSON])
    ls.set_defaults(func=cmd_list)

    for action, helptext in (("show", "one model"), ("validate", "check the ONNX model and record the result")):
        c = s.add_parser(action, help=helptext, parents=[JSON])
        c.add_argument("model_id")
        c.set_defaults(func=cmd_show if action == "show" else cmd_validate)

    conv = s.add_parser("convert", help="convert a PyTorch model to ONNX (runs as a job)", parents=[WAIT, JSON])
    conv.add_argument("model_id")
    conv.set_defaults(func=cmd_convert)

    demo = s.add_parser("demo", help="register and prepare the demo model again (after removing it)",
                        parents=[JSON])
    demo.set_defaults(func=cmd_demo)

    quant = s.add_parser("quantize", help="INT8 copy of an enabled FP32 ONNX model, checked against it (a job)",
                         parents=[WAIT, JSON])
    quant.add_argument("model_id")
    quant.add_argument("--calibration", metavar="FOLDER",
                       help="photos like the ones the model will tag, at least 4 (default: its training data when "
                            "trained here, else built-in photos); each is held back once (k-fold) to judge INT8 "
                            "against FP32 while the others calibrate")
    quant.add_argument("--method", choices=METHODS, default="auto",
                       help=f"auto: try onnxruntime's calibration methods {auto_methods_text()} (a graph with "
                            "attention or LayerNorm: dynamic second) and keep the best; one of them, or entropy "
                            "(onnxruntime's, which at its defaults gives MinMax's ranges); or dynamic (no "
                            "calibration, activations quantized at run time)")
    quant.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS",
                       help="time the accuracy-aware search may take (default: %(default)g s); when it runs out "
                            "before the gate is met the copy is kept but not enabled")
    quant.add_argument("--min-speedup", type=float, default=DEFAULT_MIN_SPEEDUP, metavar="X",
                       help="INT8 must be at least this many times as fast as FP32 to be enabled (default: "
                            "%(default)g); nodes are kept in FP32 only while it stays so")
    quant.add_argument("--force", action="store_true",
                       help=f"enable the INT8 copy even when it misses the gate ({gate_text().replace('%', '%%')}) "
                            "or the speed-up")
    quant.set_defaults(func=cmd_quantize)

    for action in ("enable", "disable", "default", "remove"):
        c = s.add_parser(action, help=f"{action} a model", parents=[JSON])
        c.add_argument("model_id")
        if action == "enable":
            c.add_argument("--force", action="store_true",
                           help="enable an INT8 model below the 99%% top-1 agreement bar with its FP32 original")
        c.set_defaults(func=cmd_state, action=action)


def _preprocess_flags(p) -> None:
    from ..classify.preprocess import INTERPOLATIONS, MEAN_STD_PRESETS, RESIZE_MODES

    g = p.add_argument_group("preprocessing of a ready-made ONNX model (the graph decides layout and a fixed size)")
    g.add_argument("--size", type=int, help="input size in pixels (needed when the graph accepts any size)")
    g.add_argument("--mean-std", choices=list(MEAN_STD_PRESETS),
                   help="normalisation: imagenet, 0.5, none (pixels 0–1) or 0-255 (raw pixels)")
    g.add_argument("--channel-order", choices=("RGB", "BGR"))
    g.add_argument("--layout", choices=("NCHW", "NHWC"))
    g.add_argument("--resize-mode", choices=RESIZE_MODES,
                   help="crop: resize + center crop; pad: pad to a white square; squash: stretch")
    g.add_argument("--interpolation", choices=INTERPOLATIONS)


def _preprocess_options(args) -> dict | None:
    keys = ("size", "mean_std", "channel_order", "layout", "resize_mode", "interpolation")
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None} or None


def cmd_add(args) -> int:
    from ..sources import add_model

    model = add_model(args.source, name=args.name, preprocess=args.preprocess,
                      preprocess_options=_preprocess_options(args))
    if args.json:
        print_json(model.to_dict())
    else:
        print(f"added {model.id}: {model.type} / {model.conversion} ({model.library} {model.architecture})")
        for line in preprocessing_lines(model):     # as `models show` says it: assumed, and how to confirm
            print(line)
    return 0


def cmd_list(args) -> int:
    models = registry.list_models()
    if args.json:
        print_json([m.to_dict() for m in models])
    else:
        print_table(model_rows(models, error_width=60), [c.upper() for c in MODEL_COLUMNS])
    return 0


def cmd_show(args) -> int:
    m = registry.get(args.model_id)
    if args.json:
        print_json(m.to_dict())
    else:
        print("\n".join(model_lines(m)))
    return 0


def cmd_preprocess(args) -> int:
    from ..classify.onnx_preprocess import set_preprocess

    m = set_preprocess(args.model_id, confirm=args.confirm, options=_preprocess_options(args))
    if args.json:
        print_json(m.to_dict())
    else:
        print("\n".join(preprocessing_lines(m)))
        print(f"{m.id}: validation {'passed' if m.valid else 'failed'}" + (f" — {m.error}" if m.error else ""))
    return 0 if m.valid else 1


def cmd_validate(args) -> int:
    from ..classify.validate import validate

    result = validate(args.model_id)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"{args.model_id}: validation {result.summary()}")
    return 0 if result.passed else 1


def cmd_demo(args) -> int:
    from ..demo import MODEL_ID, restore_demo

    job = restore_demo()
    code = report_job(follow(job.id, show=not args.json), json_out=args.json) if job is not None else 0
    if not args.json:
        m = registry.get(MODEL_ID)
        print(f"{m.id}: {m.type} / {m.conversion}, {'enabled' if m.enabled else 'disabled'}"
              + (", default" if m.default else ""))
    return code


def cmd_convert(args) -> int:
    from ..classify.convert import submit_conversion

    # the demo job converts the demo model: following it is following that conversion
    job = running_or_submit(lambda: submit_conversion(args.model_id), subject=args.model_id,
                            kinds=("convert", "demo"), wait=args.wait, show=not args.json)
    if args.wait:
        code = report_job(follow(job.id, show=not args.json), json_out=args.json)
        if not args.json:
            m = registry.get(args.model_id)
            print(f"{m.id}: {m.type} / {m.conversion}" + (f" — {m.error}" if m.error else ""))
        return code
    if args.json:
        print_json(job.to_dict())
    else:
        print(f"conversion of {args.model_id} queued as job {job.id}; follow it with `imgai jobs show {job.id}`")
    return 0


def cmd_quantize(args) -> int:
    from ..classify.quantize import JOB_KIND, QuantizeOptions, int8_id, submit_quantization
    from ..presentation.models import int8_search_lines

    options = QuantizeOptions(method=args.method, calibration=args.calibration, budget=args.budget,
                              min_speedup=args.min_speedup, force=args.force)
    job = running_or_submit(lambda: submit_quantization(args.model_id, options=options), subject=args.model_id,
                            kinds=(JOB_KIND,), wait=args.wait, show=not args.json)
    if not args.wait:
        if args.json:
            print_json(job.to_dict())
        else:
            print(f"quantization of {args.model_id} queued as job {job.id}; follow it with `imgai jobs show {job.id}`")
        return 0
    code = report_job(follow(job.id, show=not args.json), json_out=args.json)
    if code == 0 and not args.json:
        m = registry.get(int8_id(args.model_id))
        for line in int8_search_lines(m):
            print(line)
        print(f"{m.id}: {'enabled' if m.enabled else 'disabled (--force to enable)'} — {vs_fp32_line(m.vs_fp32)}")
    return code


def cmd_state(args) -> int:
    actions = {
        "enable": lambda mid: registry.set_enabled(mid, True, force=args.force),
        "disable": lambda mid: registry.set_enabled(mid, False),
        "default": registry.set_default,
        "remove": registry.remove,
    }
    model = actions[args.action](args.model_id)
    if args.json:
        print_json(model.to_dict() if model else {"id": args.model_id, "removed": True})
    elif args.action in ("enable", "disable"):
        print(plain(enabled_message(model)))
    else:
        print(f"{args.model_id}: {args.action} done")
    return 0
