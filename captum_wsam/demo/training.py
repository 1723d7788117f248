"""The demo's training and its cache: the three models (plain, :class:`~captum_wsam.augment.StyleAugment`, SAT)
trained with one recipe, cached under a key of everything that determines them.

Recipe: AdamW (Loshchilov & Hutter 2019, arXiv:1711.05101) with a one-cycle schedule (Smith & Topin 2019,
arXiv:1708.07120), learning rate ``LEARNING_RATE``, batch ``BATCH_SIZE``. The SAT model follows Mangla, Singh &
Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", arXiv:2006.07828 (:math:`\\varepsilon = 4/255`).
The cache key is

.. math:: \\text{key} = \\operatorname{SHA-256}\\big(\\text{settings}, \\text{versions},
    \\operatorname{SHA-256}(\\text{source of data, models, augment, attacks, train})\\big)_{[:20]}

so a re-run with the same settings and code reuses the models, and any change retrains them. Re-exported by
:mod:`captum_wsam.demo`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..data import ShapesTextures
from ..models import SmallCNN
from ..train import AdversarialTrainer, SATTrainer
from .config import BATCH_SIZE, LEARNING_RATE, MODELS, TITLES, DemoConfig
from .report import atomic_write, say


# ---------------------------------------------------------------------------------------------------------------------
# Training, with one line per epoch and per model, and the cache
# ---------------------------------------------------------------------------------------------------------------------
def _code_fingerprint() -> str:
    """SHA-256 of the source files that determine a trained model (data, models, augmentations, attacks, training)."""
    root = Path(__file__).resolve().parents[1]  # the package captum_wsam
    digest = hashlib.sha256()
    for sub in ("data", "models", "augment", "attacks", "train"):
        for path in sorted((root / sub).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_key(cfg: DemoConfig, name: str) -> str:
    settings = {"model": name, "data": asdict(cfg.data), "size": cfg.plan.size, "n_train": cfg.plan.n_train,
                "epochs": cfg.plan.epochs, "seed": cfg.seed, "recipe": [LEARNING_RATE, BATCH_SIZE],
                "version": __version__, "torch": torch.__version__,
                "code": _code_fingerprint()}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def _epoch_line(name: str, position: int, epochs: int) -> Callable[[Any, dict[str, float]], None]:
    def callback(_: Any, record: dict[str, float]) -> None:
        say(f"training {TITLES[name]} ({position}/{len(MODELS)}): epoch {int(record['epoch'])}/{epochs}, "
            f"loss {record['loss']:.3f}, acc {record['accuracy']:.3f} ({record.get('time', float('nan')):.1f} s)")

    return callback


def _train(name: str, model: nn.Module, train: ShapesTextures, cfg: DemoConfig) -> list[dict[str, float]]:
    # the same recipe for the three: AdamW with a one-cycle schedule (as train_classifier), one line per epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    steps = cfg.plan.epochs * math.ceil(len(train) / BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps)
    common = {"scheduler": scheduler, "scheduler_step": "batch", "progress": cfg.progress, "seed": cfg.seed,
              "callbacks": [_epoch_line(name, MODELS.index(name) + 1, cfg.plan.epochs)]}
    if name == "sat":
        trainer: AdversarialTrainer = SATTrainer(model, optimizer, eps=4 / 255, weak_saliency="mask", **common)
    else:
        augment = cfg.data.style_augment() if name == "style" else None
        trainer = AdversarialTrainer(model, optimizer, augment=augment, **common)
    return trainer.fit(train, cfg.plan.epochs, batch_size=BATCH_SIZE)


def trained_model(name: str, train: ShapesTextures, cfg: DemoConfig) -> tuple[nn.Module, bool]:
    """The model ``name`` trained on ``train`` (from the cache when it holds one for these settings), in eval mode;
    and whether it came from the cache."""
    torch.manual_seed(cfg.seed)
    model = SmallCNN(num_classes=train.num_classes)
    path = None if cfg.cache_dir is None else Path(cfg.cache_dir) / "demo" / f"{name}-{_cache_key(cfg, name)}.pt"
    if path is not None and path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
            say(f"training {TITLES[name]} ({MODELS.index(name) + 1}/{len(MODELS)}): loaded from the cache {path}")
            return model.eval(), True
        except Exception as error:  # a damaged cache entry is rebuilt, not fatal
            say(f"cache entry {path} unreadable ({type(error).__name__}: {error}); training again")
    history = _train(name, model, train, cfg)
    model.eval()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            state = {"model": model.state_dict(), "history": history}
            atomic_write(path, lambda tmp: torch.save(state, tmp))
        except OSError as error:  # an unwritable cache costs time on the next run, nothing else
            say(f"could not write the cache entry {path}: {error}")
    return model, False


__all__ = ["trained_model"]
