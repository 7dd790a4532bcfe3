"""Model cards: a Jinja2 template from templates/ (the top-level folder a Space's owner edits; a wheel
carries it as imgai/templates/, mapped there by pyproject.toml) rendered through huggingface_hub's
ModelCard; and the metadata of a card read back."""

from __future__ import annotations

from pathlib import Path

from .log import get_logger

PACKAGED = Path(__file__).resolve().parent / "templates"          # an installed imgai (the wheel's copy)
CHECKOUT = Path(__file__).resolve().parent.parent / "templates"   # a source checkout, a Space
LOG = get_logger("imgai.cards")


def templates_folder() -> Path:
    """Where the card templates are read from: IMGAI_TEMPLATES when set, else the installed package's
    copy, else the checkout's top-level templates/ (one source: the wheel is built from it)."""
    from . import settings

    chosen = settings.get("IMGAI_TEMPLATES")
    if chosen is not None:
        return chosen
    return PACKAGED if PACKAGED.is_dir() else CHECKOUT


def render_card(template: str, *, card_data: dict, **context):
    """Render `templates/<template>` (see templates_folder) with `card_data` as the card's YAML
    metadata (a `huggingface_hub.ModelCardData`) and `context` as template variables."""
    from huggingface_hub import ModelCard, ModelCardData

    from .errors import ConfigError

    folder = templates_folder()
    path = folder / template
    if not path.is_file():
        raise ConfigError(f"no card template {template!r} in {folder}; put it back from imgai's templates/, "
                          "or unset IMGAI_TEMPLATES")
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
