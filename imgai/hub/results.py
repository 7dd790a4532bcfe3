"""What a Hub search or a look at one repo returns (`HubModel`, `SearchResult`, `ModelDetails`), and
the helpers that read a repo's labels and card summary: shared by the live Hub (`search`) and
the local HF cache (`cache`), which both import this leaf."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class HubModel:
    """One row of search results (or of the local cache when offline)."""
    repo_id: str
    architecture: str
    family: str
    library: str
    labels: int | None = None
    parameters: int | None = None
    size: int | None = None          # bytes imgai downloads (weights, config, preprocessing, labels)
    license: str | None = None
    downloads: int | None = None
    likes: int | None = None
    last_modified: str | None = None
    gated: str | bool = False
    sha: str | None = None
    cached: bool = False             # listed from the local HF cache

    def row(self) -> list:
        from .support import human_size

        return [self.repo_id, self.family, self.architecture, self.library, self.labels if self.labels is not None else "",
                _count(self.parameters), human_size(self.size) if self.size is not None else "",
                self.license or "", self.downloads if self.downloads is not None else "",
                self.last_modified or "", str(self.gated) if self.gated else "no"]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    query: str
    models: list[HubModel]
    online: bool
    message: str                     # one line: offline notice, or what was hidden
    hidden_unsupported: int = 0      # matched the query but imgai cannot take them
    hidden_unreadable: int = 0       # gated/private: their config could not be read to decide
    scanned: int = 0
    hidden: list[dict] = field(default_factory=list)   # [{"repo_id", "category", "reason"}] of the hidden ones
    hidden_by_reason: dict = field(default_factory=dict)   # {HIDDEN_REASONS value: count}

    def to_dict(self) -> dict:
        return {**asdict(self), "models": [m.to_dict() for m in self.models]}


def _count(n: int | None) -> str:
    if n is None:
        return ""
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


@dataclass
class ModelDetails:
    repo_id: str
    sha: str | None
    supported: bool
    reason: str | None                # why not, when unsupported
    model: HubModel | None
    files: list[dict]                 # {"path", "size", "needed"}
    download_size: int | None
    total_size: int | None
    card_summary: str
    label_names: list[str]            # the first few
    private: bool
    gated: str | bool
    in_registry: str | None           # the model id when this commit is registered
    registered_other_revision: str | None

    def to_dict(self) -> dict:
        return {**asdict(self), "model": self.model.to_dict() if self.model else None}


def label_names(config: dict | None) -> list[str]:
    if not config:
        return []
    if isinstance(config.get("id2label"), dict):
        pairs = sorted(((int(k), v) for k, v in config["id2label"].items() if str(k).isdigit()))
        return [v for _, v in pairs]
    if isinstance(config.get("label_names"), list):
        return [str(x) for x in config["label_names"]]
    return []


def card_summary(text: str, *, limit: int = 500) -> str:
    """The first real paragraph of a model card (no front matter, headings, badges or HTML)."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4:] if end != -1 else ""
    para: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            if para:
                break
            continue
        if s.startswith(("#", "<", "[![", "!", "|", "```")):
            if para:
                break
            continue
        para.append(s)
    out = " ".join(para)
    return out if len(out) <= limit else out[:limit - 1].rstrip() + "…"
