"""The one door to the Hub: an `HfApi` for the current endpoint, reachability, and Hub errors
translated into imgai errors whose messages say what happened and what to do (never a token).
"""

from __future__ import annotations

import concurrent.futures
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ..errors import (HubAccessError, HubNotFoundError, HubRateLimitError, HubUnavailableError, ImgaiError)

REACH_TIMEOUT_S = 3.0     # "the Hub is unreachable" must be said within a few seconds
REQUEST_TIMEOUT_S = 30.0  # one metadata request; a stalled network fails instead of hanging a job
_REACH_CACHE_S = 30.0
_reach_cache: dict[str, tuple[float, "HubStatus"]] = {}


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def api():
    from huggingface_hub import HfApi

    from .. import __version__

    return HfApi(endpoint=endpoint(), library_name="imgai", library_version=__version__)


@dataclass(frozen=True)
class HubStatus:
    online: bool
    endpoint: str
    message: str          # one line, fit to show as is
    reason: str = ""      # why offline, short: "HF_HUB_OFFLINE=1 is set", "the Hub at … is unreachable (…)"


def hub_status(*, timeout: float = REACH_TIMEOUT_S, refresh: bool = False) -> HubStatus:
    """Is the Hub reachable? Answers within `timeout` seconds, whatever DNS or the network do."""
    ep = endpoint()
    if offline_mode():
        return HubStatus(False, ep, "Offline: HF_HUB_OFFLINE=1 is set, so imgai works from the local "
                                    "Hugging Face cache only.", "HF_HUB_OFFLINE=1 is set")
    cached = _reach_cache.get(ep)
    if cached and not refresh and time.monotonic() - cached[0] < _REACH_CACHE_S:
        return cached[1]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(_probe, ep, timeout)
    try:
        problem = future.result(timeout=timeout + 0.5)
    except concurrent.futures.TimeoutError:
        problem = f"no answer within {timeout:.0f}s"
    finally:
        pool.shutdown(wait=False)
    status = (HubStatus(True, ep, f"Connected to the Hub at {ep}.") if problem is None else
              HubStatus(False, ep, f"The Hub at {ep} is unreachable ({problem}); showing the supported "
                                   "models already in the local Hugging Face cache.",
                        f"the Hub at {ep} is unreachable ({problem})"))
    _reach_cache[ep] = (time.monotonic(), status)
    return status


def _probe(ep: str, timeout: float) -> str | None:
    import requests

    try:
        r = requests.get(f"{ep}/api/models", params={"limit": 1}, timeout=(timeout, timeout))
    except requests.RequestException as exc:
        return _short_reason(exc)
    if r.status_code >= 500:
        return f"it answered HTTP {r.status_code}"
    return None


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (("Name or service not known", "no DNS answer"), ("Temporary failure in name", "no DNS answer"),
                           ("Connection refused", "connection refused"), ("timed out", "timed out"),
                           ("Network is unreachable", "network is unreachable")):
        if needle in text:
            return reason
    return type(exc).__name__


def forget_status() -> None:
    """Forget the cached reachability answer (after the network or endpoint changed)."""
    _reach_cache.clear()


# -- errors -------------------------------------------------------------------------------

def translate(exc: BaseException, *, repo_id: str | None = None, revision: str | None = None,
              action: str = "reach", filename: str | None = None) -> ImgaiError | None:
    """The imgai error for a Hub failure, or None when `exc` is not one."""
    import requests
    from huggingface_hub import errors as hf

    what = repo_id or "the Hub"
    where = f"{endpoint()}/{repo_id}" if repo_id else endpoint()
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf.GatedRepoError):
        if status == 403:
            return HubAccessError(f"{what} is gated and this account has not been granted access yet: request "
                                  f"access at {where} and retry once it is approved")
        return HubAccessError(f"{what} is gated: sign in (HF_TOKEN, `huggingface-cli login`, or the Sign in "
                              f"button) with an account that accepted its conditions at {where}")
    # (LocalEntryNotFoundError is an EntryNotFoundError in huggingface_hub < 1.0: offline comes first)
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return HubUnavailableError(f"cannot {action} {what}: HF_HUB_OFFLINE=1 is set; unset it to reach the Hub, or "
                                   "use a model already in the local cache")
    if isinstance(exc, hf.LocalEntryNotFoundError):
        return HubUnavailableError(f"cannot {action} {what}: the Hub at {endpoint()} cannot be reached and the files "
                                   "are not in the local cache; connect and retry")
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubNotFoundError(f"{what} has no revision {revision!r}; check the branch, tag or commit at {where}")
    if isinstance(exc, hf.EntryNotFoundError):
        return HubNotFoundError(f"{what}@{revision or 'main'} has no file {filename or ''}".rstrip())
    if isinstance(exc, hf.RepositoryNotFoundError):
        if status == 401:
            return HubAccessError(f"no Hub repo {what!r} is visible without signing in: it does not exist, or it is "
                                  "private; check the id, or sign in with an account that can see it")
        return HubNotFoundError(f"no Hub repo {what!r} (it does not exist, or it is private to another account); "
                                "check the id")
    if isinstance(exc, hf.HfHubHTTPError) or isinstance(exc, requests.HTTPError):
        if status == 429:
            wait = exc.response.headers.get("Retry-After") if exc.response is not None else None
            return HubRateLimitError(f"the Hub is rate-limiting requests (HTTP 429) while trying to {action} {what}; "
                                     f"wait {wait + ' seconds' if wait else 'a minute'} and retry")
        if status == 401:
            return HubAccessError(f"the Hub refused the token (HTTP 401) while trying to {action} {what}: it is "
                                  "invalid or expired; sign in again")
        if status == 403:
            return HubAccessError(f"the Hub refused to let this account {action} {what} (HTTP 403): use a token with "
                                  "write access to that namespace, or a namespace you own")
        if status == 404:
            return HubNotFoundError(f"{what}: not found on the Hub (HTTP 404)")
        if status is not None and status >= 500:
            return HubUnavailableError(f"the Hub answered HTTP {status} while trying to {action} {what}; try again "
                                       "later")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return HubUnavailableError(f"the connection to the Hub at {endpoint()} was lost while trying to {action} "
                                   f"{what}; check the network and retry")
    return None


@contextmanager
def hub_errors(repo_id: str | None = None, *, revision: str | None = None, action: str = "reach",
               filename: str | None = None) -> Iterator[None]:
    """Turn Hub failures inside the block into imgai errors."""
    try:
        yield
    except ImgaiError:
        raise
    except Exception as exc:
        err = translate(exc, repo_id=repo_id, revision=revision, action=action, filename=filename)
        if err is None:
            raise
        raise err from exc
