"""The dashboard in a real headless Chromium, against a running service with the demo pool,
traffic and feedback: it signs in, renders every arm with its estimates, draws its charts,
opens a request's trace, and logs no console error.

The browser is the system's Chromium (``/usr/bin/chromium``, Debian's ``chromium`` package,
which ``make test`` installs when it runs as root), driven by Playwright; Playwright's own
browser downloads are never used. ``pytest --dashboard-screenshots DIR`` also saves the
screenshots the documentation shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.cli import main
from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from tests.router.dashboard.traffic import send_traffic
from tests.router.service.conftest import ServiceFactory
from tests.router.service.keys import bearer, new_key

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OPERATOR = "operator-secret-token"
NO_VALUE = "\N{EN DASH}"
"""What the page shows for a number it does not have."""
TRAFFIC_CHARTS = ("chart-decisions", "chart-reward", "chart-cost", "chart-latency")

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (the 'dev' extra)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not await asyncio.to_thread(CHROMIUM.is_file):
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package (`make test` "
            "does, when it runs as root)"
        )
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path | None:
    folder = request.config.getoption("--dashboard-screenshots")
    if folder is None:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def canvas_size(page: Any, canvas_id: str) -> tuple[float, float]:
    box = await page.locator(f"#{canvas_id}").bounding_box()
    assert box is not None, f"{canvas_id} is not displayed"
    return box["width"], box["height"]


async def test_dashboard_renders_the_running_service_in_chromium(
    service: ServiceFactory,
    database: Database,
    database_url: str,
    replay_dataset: ReplayDataset,
    browser: Any,
    screenshots: Path | None,
    tmp_path: Path,
) -> None:
    acme, _ = await new_key(database, "acme")
    globex, _ = await new_key(database, "globex")
    reports = tmp_path / "reports"
    async with service(
        auth="keys",
        shared_tenants=["*"],  # the shared policies learn (and are snapshotted) as before
        metrics_token=OPERATOR,
        snapshot_every=5,
        tenant_budget_usd=1.0,
        session_budget_usd=0.25,
        dashboard_reports=str(reports),
    ) as client:
        await send_traffic(client, replay_dataset, 24, headers=bearer(acme), session="checkout")
        await send_traffic(client, replay_dataset, 6, headers=bearer(globex))
        # The newest offline-evaluation report, written by the real command.
        code = await asyncio.to_thread(
            main,
            [
                "evaluate",
                "--no-progress",
                "--no-plot",
                "--bootstrap",
                "50",
                "--database-url",
                database_url,
                "--out",
                str(reports / "latest"),
                "--candidate",
                "logging",
                "--candidate",
                "deployed",
            ],
        )
        assert code == 0
        pool = client.runtime.pool.names
        policies = (await client.get("/dashboard/api/policies", headers=bearer(OPERATOR))).json()
        requests = (await client.get("/dashboard/api/requests", headers=bearer(OPERATOR))).json()

        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on(
            "console",
            lambda message: (
                problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "requestfailed",
            lambda failed: problems.append(f"request failed: {failed.url}"),
        )

        await page.goto(f"{client.base_url}/dashboard")
        # Keys mode: the page asks for a token before it shows anything.
        await page.locator("#login").wait_for(state="visible")
        assert await page.locator("#content").is_hidden()
        await page.fill("#token", OPERATOR)
        await page.click("#login-form button")
        await page.wait_for_selector("body[data-loaded=true]")
        assert await page.locator("#scope").text_content() == "all tenants"

        # Every arm of the pool is in the pre-generation policy's table with its estimates.
        pre = next(p for p in policies["policies"] if p["stage"] == "pre")
        for arm in pre["arms"]:
            cells = page.locator(f"#policy-table-pre tr[data-arm='{arm['arm']}'] td")
            texts = await cells.all_text_contents()
            assert texts[0] == arm["arm"]
            if arm["estimated_reward"] is not None:
                assert float(texts[4]) == pytest.approx(arm["estimated_reward"], abs=1e-3)
            else:
                assert texts[4] == NO_VALUE
        shown = await page.locator("#policy-table-pre tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.arm)"
        )
        assert set(pool) <= set(shown)
        assert any(a["estimated_reward"] is not None for a in pre["arms"])
        health_arms = await page.locator("#health-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.arm)"
        )
        assert health_arms == list(pool)

        # The charts are drawn: Chart.js owns each canvas, and each has a size.
        for canvas_id in (*TRAFFIC_CHARTS, "chart-policy-pre"):
            width, height = await canvas_size(page, canvas_id)
            assert width > 100
            assert height > 100
            drawn = await page.evaluate(
                "id => Chart.getChart(document.getElementById(id)).data.datasets.length",
                canvas_id,
            )
            assert drawn > 0, canvas_id

        # A context group narrows the table to its decisions.
        group = pre["groups"][0]
        await page.select_option("select[aria-label='context group of stage pre']", group["group"])
        routed = await page.locator(
            "#policy-table-pre tbody tr td:nth-child(2)"
        ).all_text_contents()
        assert sum(int(n) for n in routed) == group["decisions"]
        await page.select_option("select[aria-label='context group of stage pre']", "")

        # Spend against budgets, and the offline-evaluation report.
        tenants = await page.locator("#spend-tenants tbody tr td:first-child").all_text_contents()
        assert set(tenants) == {"acme", "globex"}
        assert await page.locator("#offline-table").is_visible()
        candidates = await page.locator(
            "#offline-table tbody tr td:first-child"
        ).all_text_contents()
        assert "logging" in candidates

        if screenshots is not None:
            await page.select_option("#traffic-minutes", "5")
            await page.wait_for_function(
                "() => document.getElementById('traffic-note')"
                ".textContent.includes('buckets of 10 s')"
            )
            await page.locator("#traffic").screenshot(path=screenshots / "dashboard-traffic.png")
            await page.locator("#policies").screenshot(path=screenshots / "dashboard-policies.png")

        # The trace of the newest request opens with its decisions, PMFs and signals.
        newest = requests["requests"][0]
        trace = (
            await client.get(f"/dashboard/api/requests/{newest['id']}", headers=bearer(OPERATOR))
        ).json()
        await page.click(f"#request-table tr[data-request='{newest['id']}']")
        await page.locator("#trace").wait_for(state="visible")
        await page.wait_for_function(
            "id => document.getElementById('trace-id').textContent === id", arg=newest["id"]
        )
        steps = await page.locator("#trace-decisions tbody tr").count()
        assert steps == newest["decisions"]
        width, height = await canvas_size(page, "chart-pmf")
        assert width > 100
        assert height > 100
        assert await page.locator("#trace-signals tbody tr").count() > 5
        masked = sum(len(d["masked"] or {}) for d in trace["decisions"])
        masked_rows = await page.locator("#trace-masked tbody tr:not(.empty)").count()
        assert masked_rows == masked
        assessment = await page.locator("#trace-assessment").text_content()
        assert assessment is not None
        assert "validation" in assessment or "quality" in assessment

        if screenshots is not None:
            await page.locator("#trace").screenshot(path=screenshots / "dashboard-trace.png")
            await page.locator("#requests .table-wrap").first.screenshot(
                path=screenshots / "dashboard-requests.png"
            )
            await page.locator("#offline").screenshot(path=screenshots / "dashboard-offline.png")
            await page.locator("#spend").screenshot(path=screenshots / "dashboard-spend.png")
            await page.locator("#health").screenshot(path=screenshots / "dashboard-health.png")

        # A tenant's key shows that tenant only.
        tenant_page = await browser.new_page()
        await tenant_page.goto(f"{client.base_url}/dashboard#token={acme}")
        await tenant_page.wait_for_selector("body[data-loaded=true]")
        assert await tenant_page.locator("#scope").text_content() == "tenant acme"
        tenants = await tenant_page.locator(
            "#request-table tbody tr td:nth-child(2)"
        ).all_text_contents()
        assert set(tenants) == {"acme"}
        assert "token=" not in tenant_page.url  # the token leaves the address bar

    assert problems == []
