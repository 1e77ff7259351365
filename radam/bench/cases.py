"""The parameter lists the benchmark steps over, and the bytes a step moves per parameter."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["BYTES_PER_PARAM", "CASES", "DEFAULT_CASES", "HOST_ONLY_CASES", "gpt2_small_shapes", "cpu10m_shapes"]

BYTES_PER_PARAM = 28  # float32: read theta, g, m, v; write theta, m, v


def gpt2_small_shapes() -> list[tuple[int, ...]]:
    """The parameter shapes of GPT-2 small (12 layers, width 768, vocabulary 50257, 1024 positions; tied output)."""
    d, vocab, positions, layers = 768, 50257, 1024, 12
    shapes: list[tuple[int, ...]] = [(vocab, d), (positions, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]  # ln_1, attention qkv and projection
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # ln_2, MLP
    return shapes + [(d,), (d,)]  # ln_f


def cpu10m_shapes() -> list[tuple[int, ...]]:
    """A Transformer-shaped list of about 10M parameters (width 256, 8 layers, vocabulary 16384)."""
    d, vocab, positions, layers = 256, 16384, 512, 8
    shapes: list[tuple[int, ...]] = [(vocab, d), (positions, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


CASES: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "gpt2": gpt2_small_shapes,
    "small": lambda: [(4096,)] * 2000,
    "large": lambda: [(2**26,)],
    "cpu10m": cpu10m_shapes,
}

DEFAULT_CASES = {"cuda": ["gpt2", "small", "large"], "cpu": ["cpu10m"]}
HOST_ONLY_CASES = ["gpt2", "small"]
