r"""Models of the experiments, written from ``torch.nn`` pieces so that every design choice is visible.

* :class:`TransformerLM`: a causal (decoder-only) Transformer language model over bytes. With ``pre_ln=False`` (the
  default) each sub-layer is wrapped as in the original Transformer (Vaswani et al., 2017), *post*-LayerNorm:

  .. math:: x \leftarrow \mathrm{LN}\big(x + \mathrm{Dropout}(\mathrm{Sublayer}(x))\big)

  the layout on which the RAdam paper shows Adam failing without warmup. ``pre_ln=True`` gives the pre-LayerNorm
  layout :math:`x \leftarrow x + \mathrm{Dropout}(\mathrm{Sublayer}(\mathrm{LN}(x)))` plus a final LayerNorm, known to
  train without warmup (Xiong et al., 2020; Liu et al., 2020b). Initialisation follows fairseq's Transformer:
  Xavier-uniform linear weights, zero biases, token embeddings :math:`\mathcal N(0, d^{-1/2})` scaled by
  :math:`\sqrt d`, sinusoidal positions.
* :class:`ResNet`: a CIFAR-style residual network (He et al., 2016) of depth :math:`6n+2` with three stages of
  widths :math:`w, 2w, 4w`; ``depth=20, width=16`` is the paper's ResNet-20.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["TransformerLM", "ResNet"]


class _FeedForward(nn.Module):
    def __init__(self, width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class _Block(nn.Module):
    """Self-attention then feed-forward, each with a residual connection and a LayerNorm before or after it."""

    def __init__(self, width: int, heads: int, hidden: int, dropout: float, pre_ln: bool) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(width)
        self.feed_forward = _FeedForward(width, hidden, dropout)
        self.feed_forward_norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def _attend(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.attention(x, x, x, attn_mask=mask, need_weights=False)[0]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.pre_ln:
            x = x + self.dropout(self._attend(self.attention_norm(x), mask))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.dropout(self._attend(x, mask)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class TransformerLM(nn.Module):
    """A causal Transformer language model; ``forward(tokens)`` returns logits ``(batch, length, vocab_size)``."""

    def __init__(
        self,
        vocab_size: int = 256,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        hidden: int | None = None,
        dropout: float = 0.1,
        max_length: int = 512,
        pre_ln: bool = False,
    ) -> None:
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.width = width
        self.pre_ln = pre_ln
        self.embedding = nn.Embedding(vocab_size, width)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            _Block(width, heads, hidden if hidden is not None else 4 * width, dropout, pre_ln) for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(width) if pre_ln else nn.Identity()
        self.output = nn.Linear(width, vocab_size)
        self.register_buffer("positions", self._sinusoids(max_length, width), persistent=False)
        self.reset_parameters()

    @staticmethod
    def _sinusoids(length: int, width: int) -> Tensor:
        position = torch.arange(length, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
        table = torch.zeros(length, width)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: width // 2])
        return table

    def reset_parameters(self) -> None:
        """fairseq's initialisation: Xavier-uniform weights, zero biases, embeddings N(0, 1/width)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.xavier_uniform_(module.in_proj_weight)
                nn.init.zeros_(module.in_proj_bias)
                nn.init.xavier_uniform_(module.out_proj.weight)
                nn.init.zeros_(module.out_proj.bias)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=self.width**-0.5)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits of the next byte at every position of ``tokens`` (``batch x length`` byte values)."""
        length = tokens.shape[1]
        if length > self.positions.shape[0]:
            raise ValueError(f"sequence length {length} exceeds max_length {self.positions.shape[0]}")
        x = self.embedding(tokens) * math.sqrt(self.width) + self.positions[:length]
        x = self.embedding_dropout(x)
        mask = torch.triu(torch.full((length, length), float("-inf"), device=tokens.device), diagonal=1)
        for block in self.blocks:
            x = block(x, mask)
        return self.output(self.final_norm(x))


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet of depth ``6n + 2``: a 3x3 stem, three stages of ``n`` basic blocks, global pooling."""

    def __init__(self, depth: int = 20, width: int = 16, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        channels = width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(_BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: Tensor) -> Tensor:
        """Class logits of a batch of images ``(batch, channels, height, width)``."""
        x = self.stages(self.stem(images))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
