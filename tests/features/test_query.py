import hashlib
import itertools
import re

import numpy as np
import pytest

from features.categories import CategoryIndex
from features.embedding import HashingEmbedder, cosine
from features.language import detect_language
from features.query import check_hints, embed_query, last_user_text, query_signals


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="module")
def categories(embedder: HashingEmbedder) -> CategoryIndex:
    return CategoryIndex.build(embedder)


def test_embedding_is_unit_deterministic_and_semantic(embedder: HashingEmbedder) -> None:
    a = embedder.embed("Write a python function to sort a list")
    assert a.shape == (384,)
    assert np.isclose(np.linalg.norm(a), 1.0)
    assert np.array_equal(a, HashingEmbedder().embed("Write a python function to sort a list"))
    near = embedder.embed("write a Python function that sorts lists")
    far = embedder.embed("Which planet is closest to the sun?")
    assert cosine(a, near) > cosine(a, far) + 0.3


def token_by_token(text: str, dim: int = 384) -> np.ndarray:
    """The embedding's definition: every word (1.0), word pair (0.7) and character trigram
    of a word (0.3) hashed one by one into a signed slot, summed, normalised."""
    words = re.findall(r"\w+", text.lower())
    tokens = [(f"w:{w}", 1.0) for w in words]
    tokens += [(f"b:{a} {b}", 0.7) for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f"<{word}>"
        tokens += [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
    vector = np.zeros(dim)
    for token, weight in tokens:
        value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        vector[value % dim] += weight if (value >> 63) & 1 else -weight
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize(
    "text",
    [
        "Write a python function to sort a list",
        "the the the the cat sat on the the mat",  # repeated words and pairs
        "Überprüfe die Größe: 東京 is in Japan, naïve café 42!",
        "x",
    ],
)
def test_embedding_matches_its_token_by_token_definition(text: str) -> None:
    embedder = HashingEmbedder(cache_size=1)  # cached and uncached words alike
    for _ in range(2):
        assert np.allclose(embedder.embed(text), token_by_token(text), atol=1e-6)


def test_embedding_of_empty_text_is_zero(embedder: HashingEmbedder) -> None:
    assert not embedder.embed("  ...  ").any()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What is the capital of France and why is it there?", "en"),
        ("¿Cuál es la capital de Francia y por qué está allí?", "es"),
        ("Quelle est la capitale de la France et pourquoi est-elle là ?", "fr"),
        ("Was ist die Hauptstadt von Frankreich und warum ist sie nicht dort?", "de"),
        ("Какая столица Франции?", "ru"),
        ("フランスの首都はどこですか", "ja"),
        ("法国的首都是哪里", "zh"),
        ("12345 + 678", "unknown"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_query_signals_of_a_code_prompt(
    embedder: HashingEmbedder, categories: CategoryIndex
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {
            "role": "user",
            "content": "Why does this fail? Fix the bug:\n```python\ndef f(x):\n  return x +\n```",
        },
    ]
    signals = query_signals(messages, None, embed_query(embedder, messages), categories)
    assert signals.code_blocks == 1
    assert signals.code_hint
    assert signals.depth == 2
    assert signals.has_system
    assert signals.questions == 1
    assert not signals.json_requested
    assert signals.language == "en"
    assert max(signals.categories, key=lambda c: signals.categories[c]) == "code"
    features = signals.as_features()
    assert features["code_blocks"] == 1.0
    assert "cat_code" in features
    assert not any(name.startswith("hint_") for name in features)


def test_hints_become_indicator_features(
    embedder: HashingEmbedder, categories: CategoryIndex
) -> None:
    messages = [{"role": "user", "content": "SELECT the ten largest orders"}]
    embedding = embed_query(embedder, messages)
    hints = {"task": "sql", "area": "billing"}
    features = query_signals(messages, None, embedding, categories, hints).as_features()
    assert features["hint_task"] == "sql"
    assert features["hint_area"] == "billing"
    # In key order, whatever order they came in: the same hints give the same context.
    reordered = query_signals(messages, None, embedding, categories, dict(reversed(hints.items())))
    assert list(reordered.as_features()) == list(features)


def test_query_signals_json_and_images(
    embedder: HashingEmbedder, categories: CategoryIndex
) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this picture"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    signals = query_signals(messages, schema, embed_query(embedder, messages), categories)
    assert signals.image_parts == 1
    assert signals.json_requested
    assert signals.schema_given
    assert last_user_text(messages) == "Describe this picture"


def test_complexity_grows_with_harder_prompts(
    embedder: HashingEmbedder, categories: CategoryIndex
) -> None:
    def complexity(text: str) -> float:
        messages = [{"role": "user", "content": text}]
        return query_signals(messages, None, embed_query(embedder, messages), categories).complexity

    easy = complexity("hi")
    hard = complexity(
        "Explain step by step why this algorithm is O(n log n), prove it, and compare the "
        "trade-offs with a heap-based design. " * 20
    )
    assert 0.0 <= easy < hard <= 1.0


def test_categories_need_exemplars(embedder: HashingEmbedder) -> None:
    with pytest.raises(ValueError, match="exemplar"):
        CategoryIndex.build(embedder, {"code": []})


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ({"task": "sql", "tier": "gold.v2"}, None),
        ({"task": "x" * 64}, None),
        ({"Task": "sql"}, "lower-case identifier"),
        ({"task": ""}, "1 to 64"),
        ({"task": "x" * 65}, "1 to 64"),
        ({"task": "a|b"}, "got 'a|b'"),
        ({"task": " sql"}, "starting with a letter or digit"),
        ({"task": "sq\x1bl"}, "got 'sq\\x1bl'"),
        ({"task": 3}, "got 3"),
        ({f"k{i}": "v" for i in range(9)}, "at most 8 hints"),
    ],
)
def test_check_hints(hints: dict[str, object], message: str | None) -> None:
    if message is None:
        assert check_hints(hints) == hints
    else:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_hints(hints)
