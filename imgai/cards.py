"""Model cards: a Jinja2 template from imgai/templates/ (package data, so an installed imgai has
them too) rendered through huggingface_hub's ModelCard; and the metadata of a card read back."""

from __future__ import annotations

from pathlib import Path

from .log import get_logger

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOG = get_logger("imgai.cards")


def render_card(template: str, *, card_data: dict, **context):
    """Render `imgai/templates/<template>` with `card_data` as the card's YAML metadata
    (a `huggingface_hub.ModelCardData`) and `context` as template variables."""
    from huggingface_hub import ModelCard, ModelCardData

    path = TEMPLATES / template
    if not path.is_file():
        raise FileNotFoundError(f"no card template {template!r} in {TEMPLATES}")
    data = ModelCardData(**{k: v for k, v in card_data.items() if v is not None})
    return ModelCard.from_template(data, template_path=str(path), **context)


def read_card_data(folder: Path) -> dict:
    """The YAML metadata of `folder/README.md` ({} without one). A malformed card never stops the
    caller (its license then comes from elsewhere); it is logged."""
    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return {}
    import yaml
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        LOG.warning("ignoring the metadata of %s: %s", readme, exc)
        return {}


def card_license(folder: Path) -> str | None:
    value = read_card_data(folder).get("license")
    return value if isinstance(value, str) else None
