"""The Hugging Face Hub as imgai's model store.

- `search` / `info`: supported image-classification models (decided from metadata and config.json)
- `download`: a job that fetches the needed files into the HF cache and registers the model
- `cached_models` / `add_cached`: what the local HF cache already holds (no Hub needed)
- `hub_status`: is the Hub reachable (answers within a few seconds)
- `whoami` / `visitor_token`: who is signed in, and which token an action uses
- `push_folder`: THE upload function (one commit, then verification); `push_model` for classifiers

Everything here is importable without gradio or torch.
"""

from .auth import LoginStatus, visitor_token, whoami
from .cache import add_cached, cached_models, hf_cache_dir
from .client import HubStatus, hub_status
from .download import download
from .publish import push_model, render_classifier_card, write_card
from .push import PushedFile, PushResult, push_folder
from ..hub_id import split_revision
from .results import HubModel, ModelDetails, SearchResult
from .search import info, landing, search

__all__ = [
    "HubModel", "HubStatus", "LoginStatus", "ModelDetails", "PushResult", "PushedFile", "SearchResult",
    "add_cached", "cached_models", "download", "hf_cache_dir", "hub_status", "info", "landing", "push_folder", "push_model",
    "render_classifier_card", "search", "split_revision", "visitor_token", "whoami", "write_card",
]
