"""Connecting to Ray, quietly and safely.

- `--address` / `RAY_ADDRESS`: join that cluster with its own authentication (ray 2.60 turns
  token auth on by default; the token comes from `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or
  `~/.ray/auth_token`, as `ray start` set it up; token mode is switched on when one is there). imgai's own code travels with the job
  (`runtime_env.py_modules`), so worker nodes need Ray and the tag-only packages, not imgai.
- otherwise: a private Ray for this run only — `address="local"` (never whatever Ray happens to
  run on the host), this machine's CPUs, no dashboard, no usage stats. Ray listens on every
  interface whatever we ask, so the private instance keeps token auth on, with a fresh random
  token held in this process's environment (never written to disk).
- a Ray already initialised in this process (a notebook, a test) is used as it is, and left up.

Nothing here runs `ray stop`: that kills every Ray on the host, other people's included.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import ClusterError, MissingDependencyError
from ..log import get_logger

INSTALL_HINT = ("the Ray engine needs Ray: `pip install -r requirements-ray.txt` "
                "(ray[data]==2.60.0), or use --engine local")

def require_ray():
    """`ray` (with Ray Data), or MissingDependencyError with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    return ray


def quiet_environment() -> None:
    """Settings every Ray process we start inherits: no usage stats, and Ray's C++ core logs only
    fatal errors (Ray Data's own actor pool trips a harmless "constructor arguments in the object
    store" error line on every run). Set RAY_BACKEND_LOG_LEVEL=info to see everything again."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_USAGE_STATS_PROMPT_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")


def token_auth_environment(*, private: bool) -> None:
    """Token auth on, for this process and every Ray process it starts, unless RAY_AUTH_MODE says
    otherwise. A private Ray gets a fresh random token (in memory, inherited by its processes);
    joining a cluster uses the token it was given (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
    ~/.ray/auth_token), which ray 2.60 would not pick up by itself for an explicit address."""
    if os.environ.get("RAY_AUTH_MODE"):      # the user decided (token or disabled): respect it
        return
    if private and not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    try:
        from ray._private.authentication import authentication_token_setup as setup
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:                      # another Ray version: its own defaults apply
        return
    AuthenticationTokenLoader.instance().reset_cache()
    logging.getLogger(setup.__name__).setLevel(logging.ERROR)   # its "token auth is on" notice
    setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def quiet_data_context() -> None:
    """Ray Data without its own progress bars and banners: imgai shows progress itself."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.verbose_stats_logs = False


def _imgai_package() -> str:
    return str(Path(__file__).resolve().parent.parent)


def init_kwargs(address: str | None, *, num_cpus: int | None = None) -> dict:
    """The `ray.init` arguments for joining `address`, or for a private local Ray when None."""
    common = dict(include_dashboard=False, configure_logging=True, logging_level=logging.WARNING,
                  log_to_driver=False)
    if address:
        runtime_env = {"py_modules": [_imgai_package()], "excludes": ["__pycache__", "*.pyc"]}
        return dict(common, address=address, runtime_env=runtime_env)
    return dict(common, address="local", num_cpus=num_cpus)


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[dict]:
    """Ray for the length of the block: yields {"address", "nodes" (alive ones with CPUs), "owned"}."""
    ray = require_ray()
    quiet_environment()
    owned = not ray.is_initialized()
    if owned:
        address = address or os.environ.get("RAY_ADDRESS") or None
        token_auth_environment(private=not address)
        get_logger("imgai.engines.ray").info("ray: %s", f"joining {address}" if address else "starting a private local Ray")
        try:
            ray.init(**init_kwargs(address, num_cpus=num_cpus))
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            if address:
                raise ClusterError(f"cannot join the Ray cluster at {address}: {reason}. Is it running, and is "
                                   "its token in RAY_AUTH_TOKEN or ~/.ray/auth_token?") from exc
            raise ClusterError(f"cannot start a private local Ray: {reason}") from exc
    quiet_data_context()
    data_log = logging.getLogger("ray.data")
    data_level = data_log.level
    data_log.setLevel(logging.ERROR)      # "progress bars disabled" and other notices
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        yield {"address": ray.get_runtime_context().gcs_address, "nodes": nodes, "owned": owned}
    finally:
        data_log.setLevel(data_level)
        if owned:
            ray.shutdown()
