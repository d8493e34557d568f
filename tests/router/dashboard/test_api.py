"""The dashboard's page, assets and JSON from a running service: who sees what, and that the
numbers are the logged traffic's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from tests.router.dashboard.traffic import send_traffic
from tests.router.service.conftest import ServiceFactory
from tests.router.service.keys import bearer, new_key

OPERATOR = "operator-secret-token"


async def test_page_and_assets_are_served_from_the_package(service: ServiceFactory) -> None:
    async with service() as client:
        page = await client.get("/dashboard")
        script = await client.get("/dashboard/static/dashboard.js")
        chart = await client.get("/dashboard/static/vendor/chart.js/chart.umd.js")
        licence = await client.get("/dashboard/static/vendor/chart.js/LICENSE.md")
        unknown = await client.get("/dashboard/static/../app.py")
        other = await client.get("/dashboard/static/index.html")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<canvas id="chart-decisions">' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "Chart.js v4." in chart.text[:200]
    assert "MIT License" in licence.text
    assert unknown.status_code == 404
    assert other.status_code == 404
    assert "no dashboard asset" in other.json()["error"]["message"]


async def test_keys_mode_a_tenant_sees_its_own_the_operator_everything(
    service: ServiceFactory,
    database: Database,
    replay_dataset: ReplayDataset,
    tmp_path: Path,
) -> None:
    acme, _ = await new_key(database, "acme")
    globex, _ = await new_key(database, "globex")
    report = tmp_path / "reports" / "2026-12-06"
    report.mkdir(parents=True)
    (report / "replay.json").write_text(
        json.dumps({"n_logged": 3, "logged_reward": 0.5, "stage": "pre", "candidates": []})
    )
    async with service(
        auth="keys",
        metrics_token=OPERATOR,
        tenant_budget_usd=10.0,
        dashboard_reports=str(tmp_path / "reports"),
    ) as client:
        acme_bodies = await send_traffic(
            client, replay_dataset, 4, headers=bearer(acme), session="s1"
        )
        globex_bodies = await send_traffic(client, replay_dataset, 2, headers=bearer(globex))
        anonymous = await client.get("/dashboard/api/overview")
        access = (await client.get("/dashboard/api/access")).json()
        wrong = await client.get("/dashboard/api/overview", headers=bearer("not-the-token"))
        views = {}
        for name, headers in (
            ("acme", bearer(acme)),
            ("operator", bearer(OPERATOR)),
        ):
            views[name] = {
                path: (await client.get(f"/dashboard/api/{path}", headers=headers)).json()
                for path in ("overview", "traffic", "policies", "requests", "spend", "offline")
            }
        other_trace = await client.get(
            f"/dashboard/api/requests/{globex_bodies[0]['id']}", headers=bearer(acme)
        )
        own_trace = await client.get(
            f"/dashboard/api/requests/{acme_bodies[0]['id']}", headers=bearer(acme)
        )
        operator_trace = await client.get(
            f"/dashboard/api/requests/{globex_bodies[0]['id']}", headers=bearer(OPERATOR)
        )
        health = (await client.get("/dashboard/api/health", headers=bearer(acme))).json()
        bad_range = await client.get("/dashboard/api/traffic?minutes=0", headers=bearer(acme))
        pool = client.runtime.pool.names

    assert anonymous.status_code == 401
    assert access == {"auth": "keys"}
    assert wrong.status_code == 401
    acme_view, operator_view = views["acme"], views["operator"]
    assert acme_view["overview"]["scope"] == "acme"
    assert acme_view["overview"]["operator"] is False
    assert operator_view["overview"]["scope"] is None
    assert [a["arm"] for a in operator_view["overview"]["arms"]] == list(pool)

    # Requests: a tenant sees its own only; the operator sees both tenants'.
    assert {r["tenant"] for r in acme_view["requests"]["requests"]} == {"acme"}
    assert len(acme_view["requests"]["requests"]) == 4
    assert {r["tenant"] for r in operator_view["requests"]["requests"]} == {"acme", "globex"}
    newest = operator_view["requests"]["requests"][0]
    assert newest["id"] == globex_bodies[-1]["id"]
    assert newest["model"] == globex_bodies[-1]["model"]
    assert newest["cost_usd"] == pytest.approx(globex_bodies[-1]["cost_usd"])
    assert newest["decisions"] == len(globex_bodies[-1]["trace"]["decisions"])

    # Traffic: the pre-stage decisions per arm add up to the requests seen.
    def pre_decisions(view: dict[str, dict[str, object]]) -> int:
        rows = view["traffic"]["rows"]
        assert isinstance(rows, list)
        return sum(r["decisions"] for r in rows if r["stage"] == "pre")

    assert pre_decisions(acme_view) == 4
    assert pre_decisions(operator_view) == 6
    costs = [r["cost_usd"] for r in operator_view["traffic"]["rows"] if r["stage"] == "pre"]
    assert all(c is not None and c >= 0 for c in costs)
    assert bad_range.status_code == 400

    # Policies: the caller's decisions only, every pool arm listed for the pre stage.
    acme_pre = next(p for p in acme_view["policies"]["policies"] if p["stage"] == "pre")
    assert acme_pre["decisions"] == 4
    assert set(pool) <= {a["arm"] for a in acme_pre["arms"]}

    # Spend against the budget.
    [acme_spend] = acme_view["spend"]["tenants"]
    assert acme_spend["tenant"] == "acme"
    assert acme_spend["requests"] == 4
    assert acme_spend["cost_usd"] == pytest.approx(sum(b["cost_usd"] for b in acme_bodies))
    assert acme_spend["budget_used"] == pytest.approx(acme_spend["cost_usd"] / 10.0, abs=1e-4)
    assert [s["session"] for s in acme_view["spend"]["sessions"]] == ["s1"]
    assert {s["tenant"] for s in operator_view["spend"]["tenants"]} == {"acme", "globex"}

    # Traces: another tenant's request is absent for a key, present for the operator.
    assert other_trace.status_code == 404
    assert own_trace.status_code == 200
    assert own_trace.json()["trace"]["assessment"]
    assert operator_trace.status_code == 200

    # Health covers every arm; the offline report is the operator's.
    assert [a["arm"] for a in health["arms"]] == list(pool)
    assert all(a["circuit"] == "closed" for a in health["arms"])
    assert any(a["latency_p95_ms"] is not None for a in health["arms"])
    assert acme_view["offline"]["available"] is False
    offline = operator_view["offline"]
    assert offline["available"] is True
    assert offline["path"] == "2026-12-06/replay.json"
    assert offline["report"]["n_logged"] == 3


async def test_local_mode_shows_everything_and_says_when_there_is_no_report(
    service: ServiceFactory, tmp_path: Path
) -> None:
    async with service(dashboard_reports=str(tmp_path / "none")) as client:
        overview = (await client.get("/dashboard/api/overview")).json()
        offline = (await client.get("/dashboard/api/offline")).json()
        traffic = (await client.get("/dashboard/api/traffic?minutes=15")).json()

    assert overview["scope"] is None
    assert overview["operator"] is True
    assert offline["available"] is False
    assert "signalroute evaluate" in offline["reason"]
    assert traffic["bucket_s"] == 15
    assert traffic["rows"] == []
