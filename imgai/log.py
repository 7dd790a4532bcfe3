"""imgai's log: `IMGAI_HOME/logs/imgai.log`, rotating, one line per job step, never a token."""

from __future__ import annotations

import logging
import re
from logging.handlers import RotatingFileHandler

from .config import paths

_TOKEN = re.compile(r"\b(hf_|api_org_)[A-Za-z0-9]{8,}")
_configured: str | None = None


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _TOKEN.search(msg):
            record.msg, record.args = _TOKEN.sub(r"\1***", msg), None
        return True


def get_logger(name: str = "imgai") -> logging.Logger:
    """The `imgai` logger, writing to the current data folder's log file."""
    global _configured
    root = logging.getLogger("imgai")
    target = str(paths().logs / "imgai.log")
    if _configured != target:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        handler = RotatingFileHandler(target, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"))
        handler.addFilter(RedactTokens())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        _configured = target
    return logging.getLogger(name)
