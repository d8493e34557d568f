"""Choosing the query embedder by name: the one switch behind ``SIGNALROUTE_EMBEDDER``.

``hashing`` needs nothing beyond numpy; ``minilm`` needs the ``semantic`` extra and loads its
model when it is created (about a second), never at import.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from features.embedding import Embedder, HashingEmbedder

EmbedderName = Literal["hashing", "minilm"]
"""``hashing``: signed n-gram hashing. ``minilm``: all-MiniLM-L6-v2, int8 ONNX, on the CPU."""

EMBEDDER_NAMES: Final[tuple[str, ...]] = get_args(EmbedderName)


def create_embedder(name: EmbedderName, *, threads: int = 1) -> Embedder:
    """A new embedder of kind ``name``; ``threads`` applies to model-based ones.

    Raises ConfigError when ``minilm`` is asked for without the ``semantic`` extra, and
    ValueError for an unknown name.
    """
    if name == "hashing":
        return HashingEmbedder()
    if name == "minilm":
        from features.sentence_model import SentenceModelEmbedder, minilm_files

        return SentenceModelEmbedder(minilm_files(), threads=threads)
    raise ValueError(f"unknown embedder {name!r}; expected one of {', '.join(EMBEDDER_NAMES)}")
