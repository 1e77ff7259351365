"""``python -m radam.bench``: see :mod:`radam.bench`."""

from radam.bench.cli import main

main()
