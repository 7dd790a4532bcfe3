"""Every error imgai raises on purpose. The UI and the CLI translate these at the edge.

Messages say what happened, to what, and what to do about it.
"""


class ImgaiError(Exception):
    """Base class: an expected failure whose message is fit to show a user. The message may name
    options by `words.term(...)` markers; it is rendered for the place showing it (app or CLI)."""

    def __str__(self) -> str:
        from .words import render

        return render(str(self.args[0]) if len(self.args) == 1 else super().__str__())


class UnknownModelError(ImgaiError, KeyError):
    pass   # ImgaiError.__str__ shows the message unquoted (KeyError would quote it)


class UnsupportedModelError(ImgaiError):
    """The model's architecture or format is not one imgai can take."""


class UnsafeFileError(ImgaiError):
    """A file was refused because loading it could run code or escape the data folder."""


class StateError(ImgaiError):
    """The action does not fit the model's or job's current state."""


class ConversionError(ImgaiError):
    pass


class ValidationError(ImgaiError):
    pass


class UnreadableImageError(ImgaiError, ValueError):
    """An image file that cannot be opened as a picture (not an image, damaged, too many pixels, or
    unreadable from disk); the message gives the reason. Tagging reports it per file and goes on."""


class ConfigError(ImgaiError, ValueError):
    """A setting or option has a bad value."""


class MissingDependencyError(ImgaiError):
    pass


class HubUnavailableError(ImgaiError):
    pass


class JobError(ImgaiError):
    pass


class HubAccessError(ImgaiError): """Gated, private, not signed in, or no write permission (401/403)."""
class HubNotFoundError(ImgaiError): """A repo, revision or file is missing on the Hub (404)."""
class HubRateLimitError(ImgaiError): """The Hub said 429: wait and retry."""
class DiskSpaceError(ImgaiError): """A download will not fit on the disk."""
class PushVerificationError(ImgaiError): """The remote files differ from what was pushed."""
class DataError(ImgaiError, ValueError): """Training data that cannot be used (no images, one class, unreadable files)."""
class InsufficientResourcesError(ImgaiError): """The machine lacks the memory or disk a task needs (sizes named)."""
class ClusterError(ImgaiError): """Ray could not be started, or the Ray cluster could not be joined."""
class PermissionDeniedError(ImgaiError): """This actor may not do this (imgai/access.py); the message says who can."""
class QuotaExceededError(PermissionDeniedError): """A per-visitor or Space-wide limit; the message names it and its variable."""


# each install flavour (an extra of pyproject.toml) → its pinned requirements file
REQUIREMENTS = {"tag": "requirements-tag.txt", "convert": "requirements.txt", "ray": "requirements-ray.txt"}


def require(module: str, *, extra: str = "convert"):
    """Import `module` or fail with an install hint naming the flavour that carries it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install it with `pip install -r {REQUIREMENTS[extra]}` "
            f"(or `pip install imgai[{extra}]`)"
        ) from exc
