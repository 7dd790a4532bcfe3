"""What removing a model deletes, said before it happens: the UI shows it and asks to confirm;
`remove_model(model_id, confirm=...)` refuses to act on a plan the user did not see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import access, registry
from .config import paths
from .errors import StateError
from .words import render, term


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@dataclass
class RemovalPlan:
    model_id: str
    name: str
    folders: list[tuple[str, int]] = field(default_factory=list)   # (path, bytes) that will be deleted
    kept: list[str] = field(default_factory=list)                  # what stays (a folder added in place)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.folders)

    def summary(self) -> str:
        """Markdown: the registry entry, each folder with its size, what is kept, and the notes."""
        lines = [f"Remove **{self.name}** (`{self.model_id}`)? This deletes:",
                 "- its registry entry (status, validation, enabled/default)"]
        lines += [f"- `{path}` ({_human(size)})" for path, size in self.folders]
        lines += [f"- keeps `{path}` (not imgai's copy)" for path in self.kept]
        lines += [f"\n⚠️ {note}" for note in self.notes]
        return render("\n".join(lines))


def plan_removal(model_id: str, *, actor=None) -> RemovalPlan:
    from .demo import MODEL_ID as DEMO

    model = registry.get(model_id)
    access.check(actor, "models.remove", model)
    if model.conversion == registry.CONVERTING:
        raise StateError(f"cannot remove {model_id!r} while it is converting; cancel job {model.job_id} first")
    plan = RemovalPlan(model.id, model.name)
    own = paths().model_dir(model.id)
    if own.exists():
        plan.folders.append((str(own), _size(own)))
    for path in (model.pytorch_path, model.onnx_path and str(Path(model.onnx_path).parent)):
        if path and not Path(path).resolve().is_relative_to(own.resolve()):
            plan.kept.append(path)
    if model.default:
        plan.notes.append("it is the default model: tagging without naming a model needs another default "
                          f"({term('set-default')})")
    if model.id == DEMO:
        plan.notes.append(f"it is the demo model: it can be brought back with {term('restore-demo')}")
    return plan


def remove_model(model_id: str, *, confirm: str, actor=None) -> RemovalPlan:
    """Remove after the user saw `plan_removal(model_id)`: `confirm` must repeat the model id."""
    plan = plan_removal(model_id, actor=actor)     # who may, first; then whether they saw what goes
    if confirm != model_id:
        raise StateError(f"removal of {model_id!r} not confirmed (got {confirm!r}); look at what it deletes "
                         "first and confirm with the same model id")
    registry.remove(model_id, actor=actor)
    return plan
