"""Training loops: one loop (:class:`AdversarialTrainer`) for plain, adversarial, SAT, LP-A3 and style-augmented
training; :func:`train_classifier` is its plain supervised preset."""

from .adversarial import AdversarialTrainer, CheckpointError, LPA3Trainer, SATTrainer, load_checkpoint
from .classifier import accuracy, predict, split_batch, train_classifier

__all__ = [
    "AdversarialTrainer",
    "CheckpointError",
    "LPA3Trainer",
    "SATTrainer",
    "accuracy",
    "load_checkpoint",
    "predict",
    "split_batch",
    "train_classifier",
]
