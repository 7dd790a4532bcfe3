"""Train a tagger on your own images: architecture → named model → data pipeline → queued
training job → a trained PyTorch model (timm format) that Convert and Tag take over.

    architectures.py  the trainable architectures and their local starting weights
    pipelines.py      what a data pipeline is and where pipelines are kept
    data.py           data pipelines (folder, zip, cached Hub dataset) and the data check
    archive.py        unpacking an uploaded zip safely
    images.py         dataset, transforms, preview grid
    config.py         TrainConfig
    loop.py           the training loop
    models.py         trainable models in the registry, run folders, saving
    job.py            the "train" job kind
    stage.py          the "epoch k/n" stage a running job reports
    pretrained.py     ImageNet weights from the Hub (the "weights" job kind)
    finetune.py       the settings a fine-tuning run starts with
    runs.py           start / resume / retrain / cancel and the views of a run
"""

from .architectures import ARCHITECTURES, architectures_table, get_architecture
from .config import TrainConfig, available_devices
from .data import (DataPipeline, DataReport, add_pipeline, check_data, get_pipeline, list_pipelines,
                   remove_pipeline)
from .finetune import finetune_defaults
from .models import create_model, resolve_model
from .runs import RESUMABLE, cancel, curves, download, latest_job_for, list_training, resume, retrain, start, view

train = start   # the verb, as STYLE.md names it

__all__ = ["ARCHITECTURES", "architectures_table", "get_architecture", "TrainConfig", "available_devices",
           "DataPipeline", "DataReport", "add_pipeline", "check_data", "get_pipeline", "list_pipelines",
           "remove_pipeline", "create_model", "resolve_model", "start", "train", "resume", "retrain", "cancel",
           "curves", "view", "download", "latest_job_for", "list_training", "finetune_defaults", "RESUMABLE"]
