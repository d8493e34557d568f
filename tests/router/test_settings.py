import pydantic
import pytest

from router.settings import Settings


def test_the_embedder_is_hashing_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALROUTE_EMBEDDER", raising=False)
    assert Settings().embedder == "hashing"
    monkeypatch.setenv("SIGNALROUTE_EMBEDDER", "minilm")
    assert Settings().embedder == "minilm"


def test_an_unknown_embedder_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALROUTE_EMBEDDER", "word2vec")
    with pytest.raises(pydantic.ValidationError, match="hashing"):
        Settings()
