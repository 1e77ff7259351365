"""Tasks: what a run trains on. Each task builds its model, draws training batches from a seeded sampler whose
state can be saved and restored (so a resumed run sees the same batches), computes the loss and evaluates.

* :class:`LanguageModelTask`: next-byte prediction with :class:`~radam.experiments.models.TransformerLM`; evaluated
  by the mean cross-entropy (nats per byte) on fixed validation windows.
* :class:`ImageTask`: classification with :class:`~radam.experiments.models.ResNet`, epochs of shuffled mini-batches
  with random-crop augmentation (and horizontal flips for CIFAR-10); evaluated by test accuracy and loss.
"""

from __future__ import annotations

import abc
import pathlib
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from radam.experiments import data as datasets
from radam.experiments.models import ResNet, TransformerLM
from radam.experiments.specs import ExperimentConfig

__all__ = ["Task", "LanguageModelTask", "ImageTask", "make_task"]


class Task(abc.ABC):
    """What the training loop needs from a task; :class:`LanguageModelTask` and :class:`ImageTask` provide it."""

    config: ExperimentConfig
    device: torch.device

    @abc.abstractmethod
    def make_model(self) -> nn.Module:
        """A freshly initialised model on ``self.device`` (seeded by the caller)."""

    @abc.abstractmethod
    def reset_sampler(self, seed: int) -> None:
        """Restart the batch sampler for the run with this seed."""

    @abc.abstractmethod
    def sampler_state(self) -> dict[str, Any]:
        """The sampler's state, for a checkpoint."""

    @abc.abstractmethod
    def load_sampler_state(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`sampler_state`, so a resumed run sees the same batches."""

    @abc.abstractmethod
    def next_batch(self) -> tuple[Tensor, Tensor]:
        """The next training batch (inputs, targets) on ``self.device``."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        """The training loss of ``model`` on ``batch``."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics of ``model`` (validation loss, or test accuracy and loss)."""


def _generator(seed: int) -> torch.Generator:
    # The data generator lives on the CPU (its state is a small CPU tensor, portable across devices) and is seeded
    # apart from the global generator that initialises the model and drives dropout.
    return torch.Generator().manual_seed(10_007 * seed + 1)


class LanguageModelTask(Task):
    """Byte-level language modelling on a :class:`~radam.experiments.data.TextCorpus`."""

    def __init__(
        self,
        config: ExperimentConfig,
        device: torch.device,
        data_root: str | pathlib.Path | None = None,
        download: bool = False,
    ) -> None:
        self.config = config
        self.device = device
        source = config.data["source"]
        if source == "stdlib":
            corpus = datasets.stdlib_corpus(max_bytes=config.data.get("max_bytes"))
        elif source == "shakespeare":
            if data_root is None:
                raise ValueError("the shakespeare corpus needs a data root (--data-root)")
            corpus = datasets.shakespeare_corpus(data_root, download=download)
        else:
            raise ValueError(f"unknown text source {source!r}; use 'stdlib' or 'shakespeare'")
        self.corpus = corpus
        self.length = int(config.data["length"])
        self.train = corpus.train
        count = config.eval_batches * config.batch_size
        inputs, targets = datasets.eval_windows(corpus.valid, count, self.length)
        self.valid = (inputs.to(device), targets.to(device))
        self.generator = _generator(0)

    def make_model(self) -> nn.Module:
        return TransformerLM(vocab_size=self.corpus.vocab_size, max_length=self.length, **self.config.model)

    def reset_sampler(self, seed: int) -> None:
        self.generator = _generator(seed)

    def sampler_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_sampler_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def next_batch(self) -> tuple[Tensor, Tensor]:
        inputs, targets = datasets.sample_windows(self.train, self.config.batch_size, self.length, self.generator)
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = batch
        logits = model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        inputs, targets = self.valid
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, inputs.shape[0], self.config.batch_size):
            logits = model(inputs[start : start + self.config.batch_size])
            chunk = targets[start : start + self.config.batch_size]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk.reshape(-1), reduction="sum").double()
        model.train()
        return {"valid_loss": float(total / targets.numel())}


class ImageTask(Task):
    """Image classification on an :class:`~radam.experiments.data.ImageDataset` with random-crop augmentation."""

    def __init__(
        self,
        config: ExperimentConfig,
        device: torch.device,
        data_root: str | pathlib.Path | None = None,
        download: bool = False,
    ) -> None:
        self.config = config
        self.device = device
        source = config.data["source"]
        if source == "digits":
            dataset = datasets.digits_dataset(size=int(config.data["size"]))
            self.flip = False
        elif source == "cifar10":
            if data_root is None:
                raise ValueError("CIFAR-10 needs a data root (--data-root)")
            dataset = datasets.cifar10_dataset(data_root, download=download)
            self.flip = True
        else:
            raise ValueError(f"unknown image source {source!r}; use 'digits' or 'cifar10'")
        self.dataset = dataset
        self.padding = int(config.data.get("augment_padding", 0))
        self.train_images = dataset.train_images.to(device)
        self.train_labels = dataset.train_labels.to(device)
        self.test_images = dataset.test_images.to(device)
        self.test_labels = dataset.test_labels.to(device)
        self.reset_sampler(0)

    def make_model(self) -> nn.Module:
        return ResNet(
            in_channels=self.dataset.train_images.shape[1], num_classes=self.dataset.num_classes, **self.config.model
        )

    def reset_sampler(self, seed: int) -> None:
        self.generator = _generator(seed)
        self.order = torch.randperm(len(self.train_labels), generator=self.generator)
        self.position = 0

    def sampler_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order.clone(), "position": self.position}

    def load_sampler_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])

    def next_batch(self) -> tuple[Tensor, Tensor]:
        batch_size = self.config.batch_size
        if self.position + batch_size > len(self.order):  # a new epoch: drop the incomplete tail, reshuffle
            self.order = torch.randperm(len(self.train_labels), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + batch_size]
        self.position += batch_size
        images = self.train_images[index.to(self.device)]
        labels = self.train_labels[index.to(self.device)]
        return self._augment(images), labels

    def _augment(self, images: Tensor) -> Tensor:
        n, c, h, w = images.shape
        if self.padding > 0:
            p = self.padding
            shifts = torch.randint(0, 2 * p + 1, (2, n), generator=self.generator).to(self.device)
            padded = F.pad(images, (p, p, p, p))
            rows = (shifts[0][:, None] + torch.arange(h, device=self.device))[:, None, :, None]
            cols = (shifts[1][:, None] + torch.arange(w, device=self.device))[:, None, None, :]
            batch = torch.arange(n, device=self.device)[:, None, None, None]
            channel = torch.arange(c, device=self.device)[None, :, None, None]
            images = padded[batch, channel, rows, cols]
        if self.flip:
            flips = (torch.rand(n, generator=self.generator) < 0.5).to(self.device)
            images = torch.where(flips[:, None, None, None], images.flip(3), images)
        return images

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        images, labels = batch
        return F.cross_entropy(model(images), labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, len(self.test_labels), 500):
            logits = model(self.test_images[start : start + 500])
            labels = self.test_labels[start : start + 500]
            correct += (logits.argmax(1) == labels).sum()
            total_loss += F.cross_entropy(logits, labels, reduction="sum").double()
        model.train()
        n = len(self.test_labels)
        return {"test_accuracy": float(correct) / n, "test_loss": float(total_loss) / n}


def make_task(
    config: ExperimentConfig, device: torch.device, data_root: str | pathlib.Path | None = None, download: bool = False
) -> Task:
    """The task of ``config`` on ``device``; ``data_root``/``download`` are for the opt-in datasets only."""
    if config.task == "language-model":
        return LanguageModelTask(config, device, data_root, download)
    return ImageTask(config, device, data_root, download)
