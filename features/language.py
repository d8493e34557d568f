"""A small, dependency-free language guess: writing system first, then stopwords for Latin."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping

from features.words import Words

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are of to in that it for with as was on be this which what a an you "
        "your by or not have has from can will how".split()
    ),
    "es": frozenset(
        "el la los las que y en un una es por con para como del se lo su al más pero".split()
    ),
    "fr": frozenset(
        "le la les des et est un une que en pour dans qui pas sur du au avec ce il".split()
    ),
    "de": frozenset(
        "der die das und ist nicht ein eine zu den mit von sich auf für dem ich auch".split()
    ),
    "pt": frozenset("os as que em um uma para com não do da por se no na dos das mais mas".split()),
    "it": frozenset(
        "il la di che un una per non sono del della con si le gli nel alla anche".split()
    ),
}

_SCRIPTS = (
    ("CJK", "zh"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CYRILLIC", "ru"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("DEVANAGARI", "hi"),
    ("GREEK", "el"),
    ("THAI", "th"),
)

LANGUAGES = (
    "en",
    "es",
    "fr",
    "de",
    "pt",
    "it",
    "zh",
    "ja",
    "ko",
    "ru",
    "ar",
    "he",
    "hi",
    "el",
    "th",
    "unknown",
)


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    for marker, language in _SCRIPTS:
        if marker in name:
            return language
    return None


_LATIN_LETTER = re.compile(r"[A-Za-z]")
_ASCII_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_NON_LETTER_TO_SPACE = bytes(c if c in _ASCII_LETTERS else 32 for c in range(256))


def _letter_runs(lowered: str) -> list[str]:
    """The runs of letters of ``lowered`` (``[^\\W\\d_]+``); ASCII text takes a byte
    translation and a split instead of the regular expression (the same runs)."""
    if lowered.isascii():
        return lowered.encode("ascii").translate(_ASCII_NON_LETTER_TO_SPACE).decode("ascii").split()
    return _WORD.findall(lowered)


_STOPWORD_LANGUAGES: dict[str, tuple[str, ...]] = {}
for _language, _words in _STOPWORDS.items():
    for _word in _words:
        _STOPWORD_LANGUAGES[_word] = (*_STOPWORD_LANGUAGES.get(_word, ()), _language)


def _stopword_hits(counts: Mapping[str, int]) -> dict[str, int]:
    """Each stopword language's hits among the counted words."""
    hits_of = dict.fromkeys(_STOPWORDS, 0)
    for word in _STOPWORD_LANGUAGES.keys() & counts.keys():
        for language in _STOPWORD_LANGUAGES[word]:
            hits_of[language] += counts[word]
    return hits_of


def detect_language(text: str, *, sample_chars: int = 2000, words: Words | None = None) -> str:
    """An ISO 639-1 code from ``LANGUAGES``: the dominant non-Latin script, else stopwords.

    Japanese wins over Chinese when any kana appears, since Japanese text mixes both.
    ``words``, the text's words (``features.words.words_in``) when the caller has them, spare
    an ASCII text within the sample a second split: its letter runs are its words, those with
    digits or underscores cut at them.
    """
    sample = text[:sample_chars]
    ascii_sample = sample.isascii()
    if ascii_sample:  # every ASCII letter is Latin: straight to the stopwords
        if _LATIN_LETTER.search(sample) is None:
            return "unknown"
    else:
        counts: dict[str, int] = {}
        letters = 0
        for char in sample:
            if char.isalpha():
                letters += 1
                if ord(char) > 0x24F:
                    language = _script(char)
                    if language is not None:
                        counts[language] = counts.get(language, 0) + 1
        if letters == 0:
            return "unknown"
        if counts:
            language, count = max(counts.items(), key=lambda item: item[1])
            if count / letters > 0.3:
                return "ja" if counts.get("ja") else language
    if words is not None and ascii_sample and len(text) <= sample_chars:
        hits_of = _stopword_hits(words.counts)
        for word in itertools.filterfalse(str.isalpha, words.counts):  # digits or underscores
            for run in word.translate(_ASCII_NON_LETTER_TO_SPACE).split():
                for language in _STOPWORD_LANGUAGES.get(run, ()):
                    hits_of[language] += words.counts[word]
    else:
        runs = Counter(_letter_runs(sample.lower()))
        if not runs:
            return "unknown"
        hits_of = _stopword_hits(runs)
    scores = sorted(((hits, language) for language, hits in hits_of.items()), reverse=True)
    (hits, best), (runner_up, _) = scores[0], scores[1]
    # Confident only with a few hits and a clear lead: short or mixed text stays unknown.
    if hits >= 2 and hits > runner_up and hits >= 1.5 * runner_up:
        return best
    return "unknown"
