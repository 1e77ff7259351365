"""Repository tooling for the book (not part of the ``radam`` package): Colab editions, publishing, releases."""
