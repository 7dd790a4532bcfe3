"""A tagging run as files a program can read: results.json and results.csv in a fresh folder.

The files name each image as the user knows it: an uploaded file by its upload name, an image
found in a folder by its path relative to that folder (never the server's temp path)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .outputs import to_csv, to_json
from .tag import TagOptions, TagResult, tag


@dataclass
class TagReport:
    results: list[TagResult]      # each `path` as the user knows it (see user_name)
    json_path: Path
    csv_path: Path
    model_id: str | None
    model_info: dict | None = None      # id, name, preprocessing (and whether it is assumed)
    files: list[str] = dataclasses.field(default_factory=list)   # where each image is on this machine

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.error)


def user_name(path: str | Path, folders: list[Path]) -> str:
    """`path` relative to the tagged folder that holds it (with that folder's name), else its file name."""
    p = Path(path)
    for folder in folders:
        if p.is_relative_to(folder):
            return (Path(folder.name) / p.relative_to(folder)).as_posix()
    return p.name


def tag_to_files(paths, *, model_id: str | None = None, options: TagOptions = TagOptions(),
                 out_dir: Path | None = None, on_result=None, folders=(), actor=None) -> TagReport:
    """Tag, then write results.json and results.csv into `out_dir` (by default a fresh folder of
    the actor's own, imgai/files.py). `folders`: folders on this machine, for the local owner only."""
    from .. import access, registry
    from ..files import new_folder
    from .tag import model_info

    if folders:
        access.check(actor, "server.paths")
    if folders and access.resolve(actor).can("library"):     # a folder is recorded into the photo library
        from ..library.run import tag_and_list

        results = tag(paths, model_id=model_id, options=options, actor=actor) if paths else []
        count = {"done": 0, "total": 0}

        def step(result):
            count["done"] += 1
            if on_result:
                on_result(count["done"], max(count["total"], count["done"]), result)

        results += tag_and_list(folders, model_id=model_id, options=options, actor=actor, on_result=step,
                                on_plan=lambda plan: count.update(total=len(plan.listed)))[1]
    else:
        results = tag([*paths, *folders], model_id=model_id, options=options, on_result=on_result, actor=actor)
    named = [dataclasses.replace(r, path=user_name(r.path, [Path(f) for f in folders])) for r in results]
    out = Path(out_dir) if out_dir else new_folder(actor, "tags-")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(to_json(named), encoding="utf-8")
    (out / "results.csv").write_text(to_csv(named), encoding="utf-8")
    used = model_id or (registry.default_model().id if registry.default_model() else None)
    return TagReport(named, out / "results.json", out / "results.csv", used, model_info(used),
                     [str(r.path) for r in results])
