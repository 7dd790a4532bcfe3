"""The Train tab in words: which architecture a newcomer starts from, the architectures in the order
worth reading (weights at hand first), and whether a finished run looks unfinished."""

from __future__ import annotations

import math

ACCURACY_BAR = 0.9      # a run that gets fewer of its own training images right has not learned them yet
LOSS_FACTOR = 2.0       # validation loss this many times the loss of guessing (ln classes) is "far above chance"


def default_architecture(rows: list[dict]) -> str:
    """The first architecture whose ImageNet weights are at hand here (offline, a model trained from
    random weights is poor), else the first of the table (imgai.train.architectures_table rows)."""
    return next((r["architecture"] for r in rows if r["pretrained"]), rows[0]["architecture"] if rows else "")


def architecture_order(rows: list[dict]) -> list[dict]:
    """The architectures table with those whose weights are at hand first (the table's order kept)."""
    return sorted(rows, key=lambda r: not r["pretrained"])


def unfinished_note(points: list[dict], *, classes: int, loss: str = "cross_entropy") -> str:
    """A finished run's last epoch, read for a newcomer: '' when it looks done, else why it looks
    unfinished and what to try. `points`: imgai.train.curves (train/val loss and accuracy per epoch)."""
    if not points:
        return ""
    last = points[-1]
    why = []
    chance = math.log(classes) if classes > 1 else None
    val_loss = last.get("val_loss")
    if loss == "cross_entropy" and chance and val_loss is not None and val_loss > LOSS_FACTOR * chance:
        why.append(f"its validation loss {val_loss:.2f} is far above guessing ({chance:.2f} for {classes} classes)")
    train_accuracy = last.get("train_accuracy")
    if train_accuracy is not None and train_accuracy < ACCURACY_BAR:
        why.append(f"it gets only {train_accuracy:.0%} of its own training images right")
    if not why:
        return ""
    return ("This run looks unfinished: " + " and ".join(why) + f" after {last['epoch']} epochs. Train more epochs "
            "(Retrain), or start from an architecture with ImageNet weights at hand.")
