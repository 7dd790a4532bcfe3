"""The card templates live in the top-level templates/ (where a Space's owner edits them): a source
checkout renders from there, IMGAI_TEMPLATES points at an edited copy, and a missing template is a
clear error. (tests/test_install.py renders one from a built wheel; tests/test_hub_push.py pushes a
card from an edited template.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgai.cards import render_card, templates_folder
from imgai.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def card_context() -> dict:
    from imgai.classify.preprocess import PreprocessSpec

    spec = PreprocessSpec(resize={"shortest_edge": 8}, crop={"height": 8, "width": 8})
    return dict(card_data={"license": "apache-2.0", "library_name": "onnx"}, model_name="Tiny tagger",
                num_labels=3, labels_preview=["cat", "dog", "fox"], preprocess=spec.to_dict(), architecture="onnx",
                library="onnx", source="local")


def test_a_source_checkout_renders_from_the_top_level_templates():
    assert templates_folder() == ROOT / "templates"
    assert sorted(p.name for p in templates_folder().glob("*.j2")) == ["classifier.md.j2", "diffusion.md.j2"]
    assert not (ROOT / "imgai" / "templates").exists()          # one place, not a copy in the package
    card = str(render_card("classifier.md.j2", **card_context()))
    assert "# Tiny tagger (ONNX)" in card and "license: apache-2.0" in card and "`cat`, `dog`, `fox`" in card


def test_imgai_templates_points_at_an_edited_copy(tmp_path, monkeypatch):
    edited = shutil.copytree(ROOT / "templates", tmp_path / "templates")
    path = edited / "classifier.md.j2"
    path.write_text(path.read_text().replace("## Labels", "## Our labels, edited on the Space"))
    monkeypatch.setenv("IMGAI_TEMPLATES", str(edited))
    assert templates_folder() == edited
    assert "## Our labels, edited on the Space" in str(render_card("classifier.md.j2", **card_context()))
    path.unlink()
    with pytest.raises(ConfigError, match=f"no card template 'classifier.md.j2' in {edited}"):
        render_card("classifier.md.j2", **card_context())
