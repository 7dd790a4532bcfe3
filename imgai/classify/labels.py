"""Label files: `labels.json` (index → label) is what imgai writes; it also reads a one-per-line
`labels.txt` and the `selected_tags.csv` that popular ONNX taggers ship."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import ValidationError

LABEL_FILES = ("labels.json", "labels.txt", "selected_tags.csv")
TAGS_FILE = "selected_tags.csv"       # WD-style taggers: tag_id,name,category,count
# Danbooru tag categories, as selected_tags.csv numbers them
CATEGORIES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 9: "rating"}
# tags whose underscores are part of the face, kept when underscores become spaces (as the WD Space does)
KAOMOJI = frozenset({"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
                     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"})


def display_name(label: str, *, underscores_to_spaces: bool) -> str:
    """`long_hair` → `long hair` when asked; kaomoji such as `^_^` stay as they are."""
    if not underscores_to_spaces or label in KAOMOJI:
        return label
    return label.replace("_", " ")


def read_tag_categories(path: Path) -> list[str] | None:
    """The category name of each row of a selected_tags.csv (None when it has no category column)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from exc
    if not rows or "category" not in rows[0]:
        return None
    out = []
    for n, row in enumerate(rows, 2):
        try:
            out.append(CATEGORIES.get(int(row["category"]), f"category {int(row['category'])}"))
        except (TypeError, ValueError):
            raise ValidationError(f"{path.name} line {n}: category {row['category']!r} is not a number "
                                  "(9 rating, 0 general, 4 character)") from None
    return out


def read_labels(path: Path) -> list[str]:
    path = Path(path)
    try:
        if path.name.endswith(".json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = [data[k] for k in sorted(data, key=int)] if all(str(k).isdigit() for k in data) else None
            if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
                raise ValidationError(f"{path} must map index → label ({{\"0\": \"cat\", …}}) or be a list of strings")
            labels = data
        elif path.name.endswith(".csv"):
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            if not rows or "name" not in rows[0]:
                raise ValidationError(f"{path} needs a 'name' column (as selected_tags.csv has)")
            labels = [r["name"] for r in rows]
        else:
            labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ValidationError(f"cannot read label file {path}: {exc}") from exc
    if not labels:
        raise ValidationError(f"label file {path} is empty")
    return labels


def find_label_file(folder: Path) -> Path | None:
    for name in LABEL_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def write_labels(labels: list[str], path: Path) -> None:
    Path(path).write_text(json.dumps({str(i): l for i, l in enumerate(labels)}, indent=1, ensure_ascii=False),
                          encoding="utf-8")


def is_multi_label_file(path: Path) -> bool:
    """selected_tags.csv comes with multi-label (sigmoid) taggers."""
    return Path(path).name.endswith(".csv")
