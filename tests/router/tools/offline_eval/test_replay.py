"""``signalroute replay`` against the real embedded store: decisions and rewards logged with
the store's own functions, the command run as a user runs it, its reports read back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from learner.config import PolicyConfig
from learner.ope.log import BanditLog
from learner.ope.training import train_policy
from router.cli import main
from store import decisions, requests, rewards, snapshots
from store.database import Database
from tests.learner.ope.synthetic import LOGGING, simulate

N = 240


async def _log_traffic(database: Database) -> dict[str, Any]:
    """N decisions of tenant acme (every 4th also gets a later thumbs reward), 20 decisions
    of another tenant, 10 'post' decisions, 5 decisions without a reward, and a snapshot."""
    log = simulate(N + 35, np.random.default_rng(11))
    latest: list[float] = []
    async with database.connection() as conn:
        for i, decision in enumerate(log.decisions):
            tenant = "acme" if i < N or i >= N + 20 else "other"
            stage = "post" if N + 20 <= i < N + 30 else "pre"
            request = await requests.insert_request(
                conn, messages=[{"role": "user", "content": f"q{i}"}], params={}, tenant=tenant
            )
            row = await decisions.insert_decision(
                conn,
                request_id=request.id,
                stage=stage,
                context=decision.context.to_json(),
                arms=list(decision.context.arm_names),
                chosen_arm=decision.chosen_arm,
                probability=decision.probability,
                pmf=dict(decision.pmf),
                policy_name="pre",
                policy_version=i,
            )
            if i >= N + 30:
                continue  # no reward yet
            await rewards.record_reward(
                conn, decision_id=row.id, value=decision.reward, source="immediate"
            )
            value = decision.reward
            if i % 4 == 0:
                value = 1.0 - decision.reward
                await rewards.record_reward(conn, decision_id=row.id, value=value, source="thumbs")
            if i < N:
                latest.append(value)
        config = PolicyConfig(exploration="epsilon", epsilon=0.1)
        policy = train_policy(BanditLog.from_decisions(log.decisions[:N]), "pre", config)
        state = policy.state()
        policy.close()
        await snapshots.save_snapshot(
            conn, "pre", state.model, {"updates": state.updates, "config": asdict(config)}
        )
    return {"latest": latest}


def _replay(*argv: str) -> int:
    return main(["replay", "--no-progress", "--bootstrap", "50", *argv])


@pytest.fixture
async def traffic(database: Database) -> dict[str, Any]:
    return await _log_traffic(database)


async def test_replay_compares_candidates_on_logged_traffic(
    traffic: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code = await asyncio.to_thread(
        _replay,
        "--database-url", database_url,
        "--tenant", "acme",
        "--out", str(out),
        "--candidate", "logging",
        "--candidate", "deployed",
        "--candidate", "always:good",
        "--candidate", "rule:code=good,*=fast",
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "replay.json").read_text())
    assert report["n_logged"] == N
    assert report["without_reward"] == 5
    assert report["stage"] == "pre"
    names = [c["name"] for c in report["candidates"]]
    assert names == ["logging", "deployed", "always:good", "rule:code=good,*=fast"]
    logging = report["candidates"][0]
    # the logging policy's IPS is the mean of each decision's latest reward (thumbs win)
    assert logging["estimates"]["ips"]["value"] == pytest.approx(np.mean(traffic["latest"]))
    for candidate in report["candidates"]:
        for estimate in candidate["estimates"].values():
            assert estimate["low"] <= estimate["value"] <= estimate["high"]
        assert candidate["support"]["supported"]
    markdown = (out / "replay.md").read_text()
    assert "| always:good |" in markdown
    assert (out / "replay.png").stat().st_size > 1000


async def test_reward_source_and_stage_filters(
    traffic: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "thumbs"
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--reward-source", "thumbs",
        "--candidate", "logging", "--out", str(out), "--no-plot",
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "replay.json").read_text())
    # every 4th of the 260 'pre' decisions with rewards (acme and other) has a thumbs reward
    assert report["n_logged"] == len(range(0, N + 20, 4))
    post = tmp_path / "post"
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--stage", "post",
        "--candidate", "logging", "--out", str(post), "--no-plot",
    )  # fmt: skip
    assert code == 0
    assert json.loads((post / "replay.json").read_text())["n_logged"] == 10


async def test_export_and_reimport_dsjson(
    traffic: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    exported = tmp_path / "log.dsjson"
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--tenant", "acme", "--export", str(exported)
    )
    assert code == 0
    assert len(exported.read_text().splitlines()) == N
    out = tmp_path / "from-file"
    code = await asyncio.to_thread(
        _replay, "--input", str(exported), "--candidate", "logging",
        "--candidate", "vw:exploration=epsilon,epsilon=0.05", "--out", str(out), "--no-plot",
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "replay.json").read_text())
    assert report["n_logged"] == N
    logging = report["candidates"][0]["estimates"]["ips"]["value"]
    assert logging == pytest.approx(np.mean(traffic["latest"]))


async def test_counterfactual_training_on_held_out_logs(
    traffic: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "trained"
    model = tmp_path / "trained.vw"
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--tenant", "acme",
        "--candidate", "logging", "--train", "cb_type=ips,exploration=epsilon,epsilon=0.05",
        "--save-model", str(model), "--out", str(out), "--no-plot",
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "replay.json").read_text())
    assert report["holdout"] == {"fraction": 0.3, "train": 168, "evaluated": 72}
    assert report["n_logged"] == 72
    assert "--cb_type ips" in report["trained"]["vw_args"]
    assert report["candidates"][-1]["name"].startswith("trained(")
    assert model.stat().st_size > 0
    reuse = tmp_path / "reuse"
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--tenant", "acme",
        "--candidate", f"model:{model}", "--out", str(reuse), "--no-plot",
    )  # fmt: skip
    assert code == 0


async def test_no_matching_decisions_is_a_clear_error(
    database: Database, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(
        _replay, "--database-url", database_url, "--candidate", "logging",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert "no logged decisions with a reward" in capsys.readouterr().err


def test_unknown_candidate_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay("--input", str(tmp_path / "x.jsonl"), "--candidate", "best:arm") == 2
    assert "unknown candidate 'best:arm'" in capsys.readouterr().err
    assert _replay("--input", str(tmp_path / "x.jsonl"), "--candidate", "vw:eps=1") == 2
    assert "unknown key 'eps'" in capsys.readouterr().err


def test_logging_constant_is_a_valid_pmf() -> None:
    assert all(sum(p.values()) == pytest.approx(1.0) for p in LOGGING.values())
