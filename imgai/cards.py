"""Model cards: a Jinja2 template from imgai/templates/ (package data, so an installed imgai has
them too) rendered through huggingface_hub's ModelCard."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"


def render_card(template: str, *, card_data: dict, **context):
    """Render `imgai/templates/<template>` with `card_data` as the card's YAML metadata
    (a `huggingface_hub.ModelCardData`) and `context` as template variables."""
    from huggingface_hub import ModelCard, ModelCardData

    path = TEMPLATES / template
    if not path.is_file():
        raise FileNotFoundError(f"no card template {template!r} in {TEMPLATES}")
    data = ModelCardData(**{k: v for k, v in card_data.items() if v is not None})
    return ModelCard.from_template(data, template_path=str(path), **context)
