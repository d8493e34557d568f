import argparse
import uuid
from pathlib import Path

import pytest

from features.errors import ConfigError
from router.settings import Settings
from router.tools.service_bench.decision import (
    PARTS,
    add_arguments,
    gaps_of,
    markdown,
    measure,
    run,
    sizes_of,
)
from store.embedded import EmbeddedPostgres

PROMPTS = (
    "Write a Python function that reverses a linked list.",
    "What is the capital of Australia, and why is it not Sydney?",
    "Summarise the causes of the First World War in three sentences.",
)


async def test_the_decision_is_timed_as_the_index_fills(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """Each block times n decide-only requests on the service's runtime, after as many
    requests as its size; the index holds every request routed until its capacity."""
    settings = Settings(
        database_url=embedded_postgres.create_database(f"bench_decision_{uuid.uuid4().hex[:8]}"),
        data_dir=tmp_path,
        history_index_rows=8,
    )
    report = await measure(settings, PROMPTS, (0, 10), n=3, gaps_ms=(0.0, 5.0))

    first, second = report["blocks"]
    assert (first["routed_before"], second["routed_before"]) == (0, 10)
    assert first["index_rows"] == 0  # nothing routed yet
    assert second["index_rows"] == 8  # 10 routed: the index holds its capacity
    assert second["index_capacity"] == 8
    for block in report["blocks"]:
        for part in PARTS:
            assert block[part]["n"] == 3
            assert 0.0 <= block[part]["p50"] <= block[part]["p99"]
        # the parts happen within the decision
        assert block["embed_ms"]["p50"] <= block["decision_ms"]["p99"]
    assert [gap["gap_ms"] for gap in report["gaps"]] == [0.0, 5.0]
    assert all(gap[part]["n"] == 3 for gap in report["gaps"] for part in PARTS)
    table = markdown(report)
    assert "| 10 | 8 |" in table
    assert "| 5 | " in table
    assert table.count("\n| ") == 6  # two headers, a row per block and per gap


def test_sizes_must_increase_and_gaps_be_durations() -> None:
    assert sizes_of("0,300,1000") == (0, 300, 1000)
    for bad in ("300,100", "1,1", "-1,5", "a,b"):
        with pytest.raises(ValueError, match="--sizes"):
            sizes_of(bad)
    assert gaps_of("0,2.5,10") == (0.0, 2.5, 10.0)
    assert gaps_of("") == ()
    for bad in ("-1", "x", "nan"):
        with pytest.raises(ValueError, match="--gaps"):
            gaps_of(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sizes", "5,1"], "--sizes must be distinct"),
        (["--gaps=-2"], "--gaps must be >= 0"),
        (["--n", "0"], "--n must be >= 1"),
    ],
)
def test_a_bad_option_is_one_clear_error_before_any_work(
    options: list[str], message: str, tmp_path: Path
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([*options, "--out", str(tmp_path / "out")])
    with pytest.raises(ConfigError, match=message):
        run(args)
    assert not (tmp_path / "out").exists()
