"""The table of imgai's job kinds: each name → the function a worker runs (taking a JobContext)
and the one that puts its subject right when the job dies or is cancelled. The functions are
imported here as any import is, so the import-cycle test (tests/test_layers.py) sees what the job
system runs; the store (imgai/jobs.py) loads this table on first use. A long-running capability
adds its line here; others (plugins, the tests' own kinds) use `jobs.register_kind`."""

from __future__ import annotations

from . import demo
from .classify import convert
from .classify import quantize as int8
from .diffusion import job as diffusion
from .hub.download import abort_job as abort_download, download_job
from .jobs import JobKind
from .train import job as training
from .train.pretrained import weights_job

# warm: the worker needs torch and the exporters, so it is forked from a warm process (imgai/warm.py)
BUILT_IN: dict[str, JobKind] = {
    "convert": JobKind(convert.convert_job, convert.abort_job, warm=True),
    "download": JobKind(download_job, abort_download),
    "train": JobKind(training.train_job, training.abort_job, warm=True),
    "weights": JobKind(weights_job, warm=True),
    "quantize": JobKind(diffusion.quantize_job, diffusion.abort_job, warm=True),
    "demo": JobKind(demo.prepare_job, demo.abort_job, warm=True),
    "int8": JobKind(int8.quantize_job, int8.abort_job, warm=True),
}
