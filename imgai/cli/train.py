"""`imgai train architectures|create|start|list|show|cancel|resume|retrain` and `imgai train data …`"""

from __future__ import annotations

import json
import sys

from ..engines import RAY_TRAIN_WORKERS
from ..train.config import LOSSES, OPTIMIZERS, TrainConfig
from .output import JSON, WAIT, follow, print_json, print_table, running_or_submit

# option → (TrainConfig field, type, help)
CONFIG_OPTIONS = {
    "--loss": ("loss", str, f"{' or '.join(LOSSES)} (default {TrainConfig.loss}); bce for multi-label folders"),
    "--label-smoothing": ("label_smoothing", float, "cross-entropy label smoothing, 0 ≤ x < 1 (default 0)"),
    "--optimizer": ("optimizer", str, f"{' or '.join(OPTIMIZERS)} (default {TrainConfig.optimizer})"),
    "--lr": ("lr", float, "learning rate (default 1e-3)"),
    "--beta1": ("beta1", float, "Adam beta 1 (default 0.9)"),
    "--beta2": ("beta2", float, "Adam beta 2 (default 0.999)"),
    "--eps": ("eps", float, "Adam epsilon (default 1e-8)"),
    "--weight-decay": ("weight_decay", float, "weight decay (default 0.01)"),
    "--batch-size": ("batch_size", int, "images per step (default 32)"),
    "--epochs": ("epochs", int, "passes over the training images (default 10)"),
    "--device": ("device", str, "auto (default), cpu, cuda or mps: only those present"),
    "--precision": ("precision", str, "auto (default: bf16 autocast on GPUs with bfloat16, fp16 with a gradient "
                                      "scaler on older GPUs, fp32 on a CPU), fp32, bf16 or fp16"),
    "--num-workers": ("num_workers", int, "DataLoader worker processes (default 0)"),
    "--prefetch-factor": ("prefetch_factor", int, "batches each worker loads ahead; needs --num-workers > 0"),
    "--val-split": ("val_split", float, "validation fraction (default: the data pipeline's)"),
    "--seed": ("seed", int, "random seed (default 0)"),
    "--image-size": ("image_size", int, "training resolution (default: the data pipeline's)"),
    "--engine": ("engine.name", str, "local (default) or ray: Ray Train, DDP over --workers processes"),
    "--workers": ("engine.workers", int, f"ray: training processes (default {RAY_TRAIN_WORKERS})"),
    "--address": ("engine.address", str, "ray: the cluster to join (default: RAY_ADDRESS, else a private local Ray)"),
}


def register(sub) -> None:
    from .. import jobs

    p = sub.add_parser("train", help="train a classifier on your own images")
    s = p.add_subparsers(dest="train_command", metavar="ACTION", required=True)

    a = s.add_parser("architectures", help="the trainable architectures and their starting weights", parents=[JSON])
    a.set_defaults(func=cmd_architectures)

    c = s.add_parser("create", help="make a named, untrained model of an architecture", parents=[JSON])
    c.add_argument("--architecture", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--model-args", help="timm keyword arguments as JSON, e.g. '{\"drop_rate\": 0.2}'")
    c.set_defaults(func=cmd_create)

    st = s.add_parser("start", help="queue a training job", parents=[WAIT, JSON])
    st.add_argument("model", metavar="NAME", help="the model's name or id")
    st.add_argument("--data", required=True, help="a data pipeline name, or a folder with one subfolder per class")
    _config_options(st)
    st.add_argument("--no-pretrained", dest="pretrained", action="store_false", default=None,
                    help="start from random weights even when ImageNet weights are cached")
    _augment_options(st)
    st.set_defaults(func=cmd_start)

    ls = s.add_parser("list", help="training jobs, newest first", parents=[JSON])
    ls.add_argument("--state", choices=jobs.STATES)
    ls.set_defaults(func=cmd_list)

    sh = s.add_parser("show", help="one training job: epochs, curves, per-class accuracy", parents=[JSON])
    sh.add_argument("job_id")
    sh.set_defaults(func=cmd_show)

    ca = s.add_parser("cancel", help="cancel a queued or running training job", parents=[JSON])
    ca.add_argument("job_id")
    ca.set_defaults(func=cmd_cancel)

    r = s.add_parser("resume", help="continue a failed or cancelled job from its last checkpoint",
                     parents=[WAIT, JSON])
    r.add_argument("job_id")
    r.set_defaults(func=cmd_resume)

    rt = s.add_parser("retrain", help="a new run (version) from a job's settings, with changes", parents=[WAIT, JSON])
    rt.add_argument("job_id", metavar="JOB|NAME", help="a training job id, or a model (its latest job)")
    rt.add_argument("--data", help="another data pipeline or folder")
    _config_options(rt)
    _augment_options(rt)
    rt.set_defaults(func=cmd_retrain)

    d = s.add_parser("data", help="data pipelines: named, reusable training data")
    ds = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    da = ds.add_parser("add", help="make a data pipeline from a folder, a zip, or a cached Hub dataset",
                       parents=[JSON])
    da.add_argument("name")
    da.add_argument("source", nargs="?", help="a folder (one subfolder per class), a .zip with that layout, or org/dataset")
    da.add_argument("--from-library", metavar="FOLDER", help="the library's tags of the images under FOLDER")
    da.add_argument("--from-captions", metavar="FOLDER", help="a folder of images with .txt caption sidecars")
    da.add_argument("--reviewed-only", action="store_true", help="--from-library: only tags a person accepted or added")
    da.add_argument("--min-images-per-tag", type=int, default=1, help="--from-library/--from-captions: rarer tags dropped")
    da.add_argument("--kind", choices=("folder", "zip", "hub"))
    da.add_argument("--val-split", type=float, default=0.2)
    da.add_argument("--image-size", type=int, default=224)
    da.add_argument("--flip", action="store_true", help="random horizontal flips")
    da.add_argument("--crop", action="store_true", help="random resized crops")
    da.add_argument("--color-jitter", action="store_true", help="random brightness/contrast/saturation/hue")
    da.add_argument("--overwrite", action="store_true")
    da.set_defaults(func=cmd_data_add)
    dl = ds.add_parser("list", help="the data pipelines", parents=[JSON])
    dl.set_defaults(func=cmd_data_list)
    dc = ds.add_parser("check", help="images per class, unreadable files, classes too small", parents=[JSON])
    dc.add_argument("name", help="a data pipeline name or a folder")
    dc.set_defaults(func=cmd_data_check)
    dp = ds.add_parser("preview", help="write a grid of transformed samples to an image file", parents=[JSON])
    dp.add_argument("name")
    dp.add_argument("--output", help="PNG file to write (default: NAME-preview.png)")
    dp.add_argument("--count", type=int, default=8)
    dp.set_defaults(func=cmd_data_preview)
    dr = ds.add_parser("remove", help="remove a data pipeline (and its unpacked zip)", parents=[JSON])
    dr.add_argument("name")
    dr.set_defaults(func=cmd_data_remove)


def _config_options(parser) -> None:
    for flag, (_, kind, help_text) in CONFIG_OPTIONS.items():
        parser.add_argument(flag, type=kind, default=None, help=help_text)


def _augment_options(parser) -> None:
    for name, what in (("flip", "horizontal flip"), ("crop", "random resized crop, scale 0.6–1")):
        parser.add_argument(f"--{name}", dest=name, action="store_true", default=None,
                            help=f"{what} (default: on when fine-tuning < 1,000 images, else the data pipeline's)")
        parser.add_argument(f"--no-{name}", dest=name, action="store_false", default=None, help=f"no {what}")


def _config_changes(args) -> dict:
    changes: dict = {}
    for flag, (name, _, _) in CONFIG_OPTIONS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            group, _, sub = name.rpartition(".")      # "engine.workers" → changes["engine"]["workers"]
            (changes.setdefault(group, {}) if group else changes)[sub] = value
    for key in ("pretrained", "flip", "crop"):
        if getattr(args, key, None) is not None:
            changes[key] = getattr(args, key)
    return changes


def cmd_architectures(args) -> int:
    from ..train import architectures_table

    rows = architectures_table()
    if args.json:
        print_json(rows)
    else:
        print_table([(r["architecture"], r["timm_name"], r["family"], f"{r['params_m']}M", r["image_size"],
                      r["weights_repo"], r["starting_weights"]) for r in rows],
                    ["ARCHITECTURE", "TIMM", "FAMILY", "PARAMS", "SIZE", "IMAGENET WEIGHTS", "STARTS FROM"])
    return 0


def cmd_create(args) -> int:
    from ..errors import ConfigError
    from ..train import create_model

    try:
        model_args = json.loads(args.model_args) if args.model_args else None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model-args {args.model_args!r} is not valid JSON: {exc}") from exc
    model = create_model(args.name, architecture=args.architecture, model_args=model_args)
    if args.json:
        print_json(model.to_dict())
    else:
        print(f"created {model.id} ({model.architecture}, {model.training}); train it with "
              f"`imgai train start {model.id} --data FOLDER`")
        print(f"starting weights: {model.extra['weights']['message']}")
    return 0


def _submitted(job, args) -> int:
    from ..train import view

    if args.wait:
        return _follow_training(job.id, json_out=args.json)
    if args.json:
        print_json(view(job).to_dict())
    else:
        print(f"queued training job {job.id} for {job.subject} ({job.state}); follow it with "
              f"`imgai train show {job.id}`")
    return 0


def cmd_start(args) -> int:
    from ..train import TrainConfig, resolve_model, start
    from ..train.finetune import finetune_defaults
    from ..train.runs import KIND

    changes = _config_changes(args)
    TrainConfig(**changes)           # the settings given are refused (naming them) before the model is looked up

    def submit():
        defaults = finetune_defaults(args.model, args.data, pretrained=changes.get("pretrained", True))
        config = TrainConfig(**{**defaults.settings, **changes})
        if defaults.settings and not args.json:
            print(f"defaults: {defaults.note} (change them with --lr, --optimizer, --flip/--no-flip, "
                  "--crop/--no-crop)", file=sys.stderr)
        config.engine.require()          # say so now, not from inside the job
        return start(args.model, data=args.data, config=config)

    job = running_or_submit(submit, subject=resolve_model(args.model).id, kinds=(KIND,), wait=args.wait,
                            show=not args.json)
    return _submitted(job, args)


def cmd_resume(args) -> int:
    from ..train import resume

    return _submitted(resume(args.job_id), args)


def cmd_retrain(args) -> int:
    from .. import jobs
    from ..errors import JobError
    from ..train import latest_job_for, retrain

    try:
        job_id = jobs.get(args.job_id).id
    except JobError:
        job_id = latest_job_for(args.job_id).id
    return _submitted(retrain(job_id, data=args.data, **_config_changes(args)), args)


def _pct(x) -> str:
    from ..presentation.train import pct

    return pct(x)


def cmd_list(args) -> int:
    from ..train import list_training, view

    views = [view(j) for j in list_training(states=(args.state,) if args.state else None)]
    if args.json:
        print_json([v.to_dict() for v in views])
    else:
        print_table([(v.job_id, v.model_id, v.architecture, v.starting_weights, v.data, v.state, v.epoch_ratio,
                      _pct(v.val_accuracy), f"{v.samples_per_s:.0f}/s" if v.samples_per_s else "", (v.error or "")[:50])
                     for v in views],
                    ["JOB", "MODEL", "ARCH", "WEIGHTS", "DATA", "STATE", "EPOCH", "VAL ACC", "SPEED", "ERROR"])
    return 0


def cmd_show(args) -> int:
    from .. import jobs
    from ..presentation.train import job_detail, job_warnings
    from ..train import curves, view

    job = jobs.get(args.job_id)
    v, history = view(job), curves(job.id)
    if args.json:
        print_json({**v.to_dict(), "params": job.params, "curves": history, "result": job.result})
        return 0
    for key, value in v.to_dict().items():
        print(f"{key:17} {value}")
    detail = job_detail(job, v, history)
    for warning in job_warnings(job, v, history):
        print(f"warning: {warning}")
    if history:
        print()
        print_table([(h["epoch"], f"{h['train_loss']:.4f}", _pct(h["train_accuracy"]),
                      "" if h["val_loss"] is None else f"{h['val_loss']:.4f}", _pct(h["val_accuracy"]),
                      f"{h['samples_per_s']:.0f}") for h in history],
                    ["EPOCH", "TRAIN LOSS", "TRAIN ACC", "VAL LOSS", "VAL ACC", "SAMPLES/S"])
    if detail.per_class:
        print("\nper-class validation accuracy:")
        print_table(detail.per_class, ["CLASS", "ACCURACY"])
    if detail.confusion["data"]:
        print("\nconfusion matrix (rows: true class, columns: predicted):")
        print_table(detail.confusion["data"], ["", *detail.confusion["headers"][1:]])
    return 0


def cmd_cancel(args) -> int:
    from ..train import cancel

    job = cancel(args.job_id)
    if args.json:
        print_json(job.to_dict())
    else:
        print(f"job {job.id} {job.state}")
    return 0


def _follow_training(job_id: str, *, json_out: bool = False) -> int:
    """`--wait` for a training job: the job followed (the last epoch's loss and accuracy at each
    new stage), then the run's summary."""
    from .. import jobs
    from ..train import curves, view

    def last_epoch(job) -> str:
        done = curves(job.id)
        return f"loss {done[-1]['train_loss']:.3f}, val acc {_pct(done[-1]['val_accuracy']) or '-'}" if done else ""

    job = follow(job_id, show=not json_out, detail=last_epoch)
    if json_out:
        print_json({**view(job).to_dict(), "result": job.result})
    elif job.state == jobs.SUCCEEDED:
        r = job.result
        print(f"job {job.id} succeeded: {r['model_id']} run {r['run']}, validation accuracy "
              f"{_pct(r['val_accuracy'])}; saved to {r['pytorch_path']}")
    else:
        print(f"job {job.id} {job.state}: {job.error}", file=sys.stderr)
    return 0 if job.state == jobs.SUCCEEDED else 1


# -- data pipelines ---------------------------------------------------------------------

def cmd_data_add(args) -> int:
    from ..train import add_pipeline, check_data

    settings = dict(val_split=args.val_split, image_size=args.image_size, flip=args.flip, crop=args.crop,
                    color_jitter=args.color_jitter, overwrite=args.overwrite)
    pipeline = _tag_pipeline(args, settings) if args.from_library or args.from_captions else \
        add_pipeline(args.name, _one_source(args), kind=args.kind, **settings)
    report = check_data(pipeline.root)
    if args.json:
        print_json({**pipeline.to_dict(), "check": report.to_dict()})
    else:
        print(f"data pipeline {pipeline.name}: {report.images} images in {len(report.labels)} classes from {pipeline.root}")
        _print_report(report)
    return 0


def _one_source(args) -> str:
    from ..errors import ConfigError

    if not args.source:
        raise ConfigError("give a SOURCE (folder, .zip or org/dataset), --from-library FOLDER or --from-captions FOLDER")
    return args.source


def _tag_pipeline(args, settings):
    """A pipeline from the library's tags or from .txt captions (single- or multi-label by the data)."""
    from ..errors import ConfigError
    from ..library.training import add_pipeline_from_tags

    if args.source or (args.from_library and args.from_captions):
        raise ConfigError("give one source: SOURCE, --from-library FOLDER or --from-captions FOLDER")
    source, folder = ("library", args.from_library) if args.from_library else ("captions", args.from_captions)
    pipeline, images = add_pipeline_from_tags(source, args.name, folder, reviewed_only=args.reviewed_only,
                                              min_images_per_tag=args.min_images_per_tag, **settings)
    print(f"{images} image(s) with tags; {'multi-label (bce)' if pipeline.multi_label else 'single-label'}",
          file=sys.stderr)
    return pipeline


def cmd_data_list(args) -> int:
    from ..train import list_pipelines

    found = list_pipelines()
    if args.json:
        print_json([p.to_dict() for p in found])
    else:
        print_table([(p.name, p.kind, p.location, p.val_split, p.image_size, ",".join(p.augmentations) or "none")
                     for p in found], ["NAME", "KIND", "SOURCE", "VAL", "SIZE", "AUGMENT"])
    return 0


def cmd_data_check(args) -> int:
    from ..train import check_data
    from ..train.data import resolve_data

    report = check_data(resolve_data(args.name).root)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0 if report.ok else 1


def _print_report(report) -> None:
    print_table([(label, n) for label, n in report.counts.items()], ["CLASS", "IMAGES"])
    for w in report.warnings:
        print(f"warning: {w}")
    for p in report.problems:
        print(f"problem: {p}")


def cmd_data_preview(args) -> int:
    from ..train import get_pipeline
    from ..train.images import preview_grid

    pipeline = get_pipeline(args.name)
    output = args.output or f"{pipeline.name}-preview.png"
    preview_grid(pipeline, count=args.count).save(output)
    if args.json:
        print_json({"name": pipeline.name, "preview": str(output), "count": args.count})
    else:
        print(output)
    return 0


def cmd_data_remove(args) -> int:
    from ..train import remove_pipeline

    remove_pipeline(args.name)
    if args.json:
        print_json({"name": args.name, "removed": True})
    else:
        print(f"removed data pipeline {args.name}")
    return 0
