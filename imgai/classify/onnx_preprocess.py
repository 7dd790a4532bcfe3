"""How a ready-made ONNX model's images are prepared, decided with its graph as the source of truth.

In order: a spec the user gives (it must agree with the graph, or it is refused); the WD tagger
recipe for a `selected_tags.csv` tagger with an NHWC input; the folder's own configs
(`preprocess.json`, `preprocessor_config.json`, a timm `config.json`), each used only when it
agrees with the graph and otherwise ignored with the reason recorded; else a spec inferred from
the graph (its size, ImageNet mean/std, resize + center crop), marked *assumed* until the user
confirms or edits it (`imgai models preprocess ID --confirm` / the edit flags).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError, UnsupportedModelError
from .onnx_graph import GraphInfo, check_size, contradictions
from .preprocess import PreprocessSpec

WD_RECIPE = "WD tagger recipe"
INFERRED = "inferred from the graph"


@dataclass
class PreprocessChoice:
    spec: PreprocessSpec
    origin: str                     # where the spec came from (a file name, "given", WD_RECIPE, INFERRED)
    assumed: bool = False           # inferred, not yet confirmed by the user
    ignored: list[str] = field(default_factory=list)   # configs that contradicted the graph, and why

    def to_dict(self) -> dict:
        """What the registry keeps (extra["preprocess"]) and `models show` prints."""
        d = asdict(self)
        d["spec"] = self.spec.describe()
        return d


def wd_spec(graph: GraphInfo, size: tuple[int, int] | None = None) -> PreprocessSpec:
    """RGBA over white, padded to a white square, bicubic to the graph's size, BGR, float 0–255, NHWC."""
    return PreprocessSpec.from_options(size=check_size(graph, size), mean_std="0-255", channel_order="BGR",
                                       layout="NHWC", resize_mode="pad", interpolation="bicubic", multi_label=True)


def inferred_spec(graph: GraphInfo, size: tuple[int, int] | None, **options) -> PreprocessSpec:
    """From the graph (layout, size) and the given options; the rest ImageNet's defaults."""
    return PreprocessSpec.from_options(size=check_size(graph, size), **{"layout": graph.layout or "NCHW", **options})


def folder_specs(folder: Path) -> list[tuple[str, PreprocessSpec | None, str | None]]:
    """(file name, spec or None, why not) for each preprocessing config in `folder`."""
    from .load import read_json

    found = []
    for name in ("preprocess.json", "preprocessor_config.json", "config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name == "preprocess.json":
                found.append((name, PreprocessSpec.load(path), None))
            elif name == "preprocessor_config.json":
                found.append((name, PreprocessSpec.from_transformers(read_json(path)), None))
            elif "pretrained_cfg" in read_json(path):
                found.append((name, PreprocessSpec.from_timm(read_json(path)["pretrained_cfg"]), None))
        except (ConfigError, UnsupportedModelError, KeyError, TypeError, ValueError) as exc:
            found.append((name, None, f"unreadable: {exc}"))
    return found


def choose(folder: Path, graph: GraphInfo, *, given: PreprocessSpec | None = None, given_name: str = "given",
           options: dict | None = None, size: tuple[int, int] | None = None, tagger: bool = False,
           multi_label: bool = False) -> PreprocessChoice:
    """The preprocessing of the ONNX model in `folder`. `tagger`: a selected_tags.csv with categories.
    `options`: the Add panel's fields / the CLI's flags (PreprocessSpec.from_options keywords)."""
    folder = Path(folder)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if "size" in options:
        n = options.pop("size")
        size = (n, n) if isinstance(n, int) else tuple(n)
    if options:
        given, given_name = inferred_spec(graph, size, multi_label=multi_label, **options), "given options"
    if given is not None:
        problems = contradictions(given, graph)
        if problems:
            raise ConfigError(f"the {given_name} preprocessing contradicts the ONNX graph: {'; '.join(problems)}; "
                              "the graph decides: fix the spec (or leave layout/size to the graph)")
        return PreprocessChoice(given, given_name)
    candidates = folder_specs(folder)
    if tagger and graph.layout == "NHWC":
        ignored = [f"{name}: " + ("; ".join(contradictions(spec, graph)) or "fits the graph") + f"; the {WD_RECIPE} "
                   "applies to selected_tags.csv taggers with an NHWC input" if spec else f"{name}: {why}"
                   for name, spec, why in candidates]
        return PreprocessChoice(wd_spec(graph, size), WD_RECIPE, ignored=ignored)
    ignored = []
    for name, spec, why in candidates:
        problems = contradictions(spec, graph) if spec else [why]
        if problems:
            ignored.append(f"{name}: {'; '.join(problems)}: ignored")
            continue
        return PreprocessChoice(spec, name, ignored=ignored)
    spec = inferred_spec(graph, size, multi_label=multi_label)
    return PreprocessChoice(spec, INFERRED, assumed=True, ignored=ignored)


def explicit_multi_label(folder: Path, choice: PreprocessChoice, given: Path | None) -> bool:
    """Whether the chosen spec states multi_label itself (a preprocess.json that has the key)."""
    source = Path(given) if choice.origin == "given" and given else folder / choice.origin
    if choice.origin not in ("given", "preprocess.json") or not source.is_file():
        return False
    try:
        return "multi_label" in json.loads(source.read_text())
    except (OSError, ValueError):
        return False


EDIT_FIELDS = ("size", "mean_std", "channel_order", "layout", "resize_mode", "interpolation")


def set_preprocess(model_id: str, *, confirm: bool = False, options: dict | None = None, actor=None):
    """Confirm a ready-made ONNX model's preprocessing (it stops being *assumed*), or edit it with
    PreprocessSpec.from_options fields (`size`, `mean_std`, `channel_order`, `layout`,
    `resize_mode`, `interpolation`; the rest kept). An edit is checked against the graph, saved
    as preprocess.json (temp file + rename) and validated again. Returns the updated model."""
    from .. import access, registry
    from ..errors import StateError
    from ..staging import staged_file
    from .onnx_graph import read_graph
    from .validate import validate

    model = registry.get(model_id)
    access.check(actor, "models.preprocess", model)
    if model.type != registry.ONNX or not model.onnx_path:
        raise StateError(f"{model_id!r} is {model.type} / {model.conversion}; only an ONNX model has a "
                         "preprocess.json to confirm or edit")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(EDIT_FIELDS))
    if unknown:
        raise ConfigError(f"unknown preprocessing field(s) {unknown}; known: {', '.join(EDIT_FIELDS)}")
    if not confirm and not options:
        raise ConfigError("nothing to do: pass --confirm to accept the preprocessing as it is, or edit it "
                          f"(--{' / --'.join(f.replace('_', '-') for f in EDIT_FIELDS)})")
    folder = Path(model.onnx_path).parent
    record = dict((model.extra or {}).get("preprocess") or {})
    if options:
        graph = read_graph(folder / "model.onnx")
        current = PreprocessSpec.load(folder / "preprocess.json")
        merged = {"size": current.input_size, "mean_std": current.mean_std, "channel_order": current.channel_order,
                  "layout": current.layout, "resize_mode": current.resize_mode,
                  "interpolation": current.interpolation, **options}
        if merged["mean_std"] is None:
            raise ConfigError(f"{model_id!r} has custom mean/std ({current.mean}, {current.std}); choose a preset "
                              f"with --mean-std to edit it")
        spec = PreprocessSpec.from_options(multi_label=current.multi_label, **merged)
        problems = contradictions(spec, graph)
        if problems:
            raise ConfigError(f"that preprocessing contradicts the ONNX graph of {model_id!r}: {'; '.join(problems)}")
        with staged_file(folder / "preprocess.json") as tmp:
            spec.save(tmp)
        record.update(origin="edited", spec=spec.describe())
    record.update(assumed=False, confirmed=True)
    registry.update(model_id, extra={**(model.extra or {}), "preprocess": record})
    if options:
        validate(model_id, actor=actor)
    return registry.get(model_id)
