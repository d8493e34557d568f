"""``signalroute bench`` end to end: a matrix file in, its own embedded Postgres, a worker
process, the report out."""

import json
from pathlib import Path

import pytest

from router.cli import main
from router.tools.routing_bench.tables import save_matrix
from tests.router.tools.routing_bench.synthetic import synthetic_matrix, synthetic_rows


def test_bench_command_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix_path = tmp_path / "matrix.jsonl"
    save_matrix(synthetic_matrix(30), matrix_path)
    out = tmp_path / "report"
    code = main(
        [
            "bench",
            "--matrix",
            str(matrix_path),
            "--judge-model",
            "mid",
            "--variants",
            "pre",
            "--pre-lambdas",
            "0.3,5",
            "--task-hint",
            "--seeds",
            "0",
            "--workers",
            "1",
            "--no-plots",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "matrix"
    assert report["judge_simulation"]["judge_model"] == "mid"
    assert report["settings"]["pre_lambdas"] == [0.3, 5.0]
    assert report["settings"]["hints"] == ["task"]
    printed = capsys.readouterr().out
    assert "| signalroute/pre | learned | 0.3 |" in printed
    assert "| signalroute/pre | learned | 5 |" in printed
    assert "is told each prompt's task as the request hint `task`" in printed
    assert "Judge simulation" in printed
    cpu = report["cpu_seconds"]  # the worker process and the main one, and the server's
    assert cpu["benchmark"] > 0
    assert cpu["postgres"] is None or cpu["postgres"] > 0
    assert "CPU: " in printed
    assert "CPU-s in the benchmark's processes" in printed


def test_bench_command_explains_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "--matrix", str(tmp_path / "absent.csv"), "--workers", "1"])
    assert code == 2
    assert "routing matrix not found" in capsys.readouterr().err
    code = main(["bench", "--dataset", "routerbench", "--judge-model", "x"])
    assert code == 2
    assert "--judge-model applies to --matrix only" in capsys.readouterr().err


def test_a_model_name_no_arm_can_have_is_one_clear_error_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {**row, "model": "claude 3 haiku"} if row["model"] == "mid" else row
        for row in synthetic_rows(20)
    ]
    matrix_path = tmp_path / "matrix.jsonl"
    matrix_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["bench", "--matrix", str(matrix_path), "--workers", "1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "'claude 3 haiku'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "report.json").exists()


def test_models_restricts_the_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix_path = tmp_path / "matrix.jsonl"
    save_matrix(synthetic_matrix(30), matrix_path)
    out = tmp_path / "report"
    args = ["bench", "--matrix", str(matrix_path), "--models", "cheap,strong"]
    args += ["--variants", "pre", "--seeds", "0", "--workers", "1", "--no-plots"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["models"] == ["cheap", "strong"]
    assert report["judge_simulation"]["judge_model"] == "cheap"
    assert report["settings"]["lambdas_chosen_on_train"] is True
    assert len(report["settings"]["pre_lambdas"]) == 2
    assert main([*args[:4], "cheap,nope", *args[5:], "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err
