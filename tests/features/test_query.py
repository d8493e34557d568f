import hashlib
import itertools
import re
from collections import Counter

import numpy as np
import pytest

from features.categories import CategoryIndex
from features.embedding import HashingEmbedder, cosine
from features.language import detect_language
from features.query import (
    check_hints,
    embed_query,
    estimate_complexity,
    last_user_text,
    query_signals,
    reasoning_hits,
)
from features.words import words_in, words_of
from tests.features.test_embedding import corpus


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


# The hint patterns as regular expressions over the lower-cased prompt: the definition the
# word look-ups of ``query_signals`` must agree with.
CODE_HINTS = re.compile(
    r"\b(def|class|function|return|import|python|javascript|java|sql|regex|code|compile|bug)\b"
)
REASONING_HINTS = re.compile(
    r"\b(why|prove|explain|derive|step by step|compare|analy[sz]e|optimi[sz]e|design|"
    r"trade-?offs?|calculate|compute)\b"
)
JSON_HINT = re.compile(r"\bjson\b")
HINT_TEXTS = [
    "Why? Explain step by step, then step by step by step again.",
    "The trade-offs and tradeoffs of a trade-off: trade-offsx, trade off, tradeoffs_2",
    "Write a Python function (def f) returning JSON; jsonify is not json_x nor JSON.",
    "Analyse, analyze, optimise and OPTIMIZE the design; compute and calculate.",
    "codes, bugs, javas and sqlite are none of the hints, but code_ is not either",
    "naïve café: prove it, Größe, 東京 why, step\tby step, step  by step, STEP BY STEP",
    "",
]


def hint_corpus() -> list[str]:
    """The texts above, and seeded ones made of hint words, near misses and separators."""
    rng = np.random.default_rng(3)
    pieces = (
        "why prove step by trade off offs - tradeoff json JSON code codes def _ 1 "
        "analyze analyse optimizes design, compute? é 東 \n".split(" ")
    )
    generated = ["".join(rng.choice(pieces, size=int(rng.integers(1, 60)))) for _ in range(400)]
    generated += [" ".join(rng.choice(pieces, size=int(rng.integers(1, 60)))) for _ in range(400)]
    return HINT_TEXTS + generated


@pytest.mark.parametrize("text", hint_corpus())
def test_hint_words_agree_with_the_hint_patterns(
    text: str, embedder: HashingEmbedder, categories: CategoryIndex
) -> None:
    signals = query_signals(
        [{"role": "user", "content": text}], None, embedder.embed(text), categories
    )
    lowered = text.lower()
    assert signals.json_requested == bool(JSON_HINT.search(lowered))
    assert signals.code_hint == bool(CODE_HINTS.search(lowered))
    expected = estimate_complexity(
        signals.tokens_est, 0, text.count("?"), len(REASONING_HINTS.findall(lowered)), 1
    )
    assert signals.complexity == expected


def test_reasoning_hits_count_each_match() -> None:
    text = "why why? step by step, trade-offs and tradeoff; compute".lower()
    assert reasoning_hits(text, Counter(words_of(text))) == 6


def letter_run_language(text: str) -> str:
    """``detect_language`` with the letter runs found by the regular expression and
    counted one by one (its definition), for the texts that reach the stopwords."""
    hits = dict.fromkeys(["en", "es", "fr", "de", "pt", "it"], 0)
    from features.language import _STOPWORD_LANGUAGES

    words = re.findall(r"[^\W\d_]+", text[:2000].lower())
    if not words:
        return "unknown"
    for word in words:
        for language in _STOPWORD_LANGUAGES.get(word, ()):
            hits[language] += 1
    scores = sorted(((count, language) for language, count in hits.items()), reverse=True)
    (best_hits, best), (runner_up, _) = scores[0], scores[1]
    if best_hits >= 2 and best_hits > runner_up and best_hits >= 1.5 * runner_up:
        return best
    return "unknown"


@pytest.mark.parametrize(
    "text",
    [
        *HINT_TEXTS[:5],
        "the cat and the dog, which is not what you have",
        "el gato y la casa de los perros que es para con",
        "le chat et les chiens qui est pour dans une maison",
        "der Hund und die Katze ist nicht ein Haus mit von",
        "the_the the1the l'homme d'état n'est pas",
    ],
)
def test_stopword_language_matches_its_definition(text: str) -> None:
    assert detect_language(text) == letter_run_language(text)


@pytest.mark.parametrize(
    "text",
    [
        "the cat and the dog, which is not what you have",
        "the_the the1the l'homme d'état n'est pas",
        "THE2THE and_the with 3 the_4_is: what_is it",
        "el_gato y la casa de los perros que es para con",
        "12 34 __ 5_6",
        "the and is " * 300,  # longer than the sample: split from the sample, not the words
    ],
)
def test_the_language_from_the_prompts_words_is_the_language_from_its_letters(text: str) -> None:
    assert detect_language(text, words=words_in(text)) == detect_language(text)
    assert detect_language(text) == letter_run_language(text)


def test_the_language_is_the_same_with_the_words_on_random_text() -> None:
    for text in corpus(300, seed=3):
        assert detect_language(text, words=words_in(text)) == detect_language(text), text[:80]
