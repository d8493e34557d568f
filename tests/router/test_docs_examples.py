"""The scripts under ``docs/examples`` (which the documentation includes verbatim) run as a
user would run them, against a running service: real uvicorn, the embedded store, the replay
pool, or a local OpenAI-compatible server for the pool file."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI

from router.app import create_app
from router.background import RunningService, serve_in_background
from router.pool import load_pool
from router.settings import Settings
from store.database import Database
from tests.router.conftest import REPO_ROOT
from tests.router.fake_openai import FakeOpenAI
from tests.router.threaded_server import threaded_server

EXAMPLES = REPO_ROOT / "docs" / "examples"


def example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_service(
    database: Database, database_url: str, replay_app: FastAPI
) -> Iterator[RunningService]:
    settings = Settings(database_url=database_url, port=0, seed=1)
    with serve_in_background(
        settings, app_factory=lambda s: create_app(s, replay_app=replay_app)
    ) as service:
        yield service


def test_openai_client(demo_service: RunningService, capsys: pytest.CaptureFixture[str]) -> None:
    headers = example("openai_client").main(f"{demo_service.base_url}/v1")
    assert headers["x-signalroute-profile"] == "signalroute/auto"
    assert 0 < float(headers["x-signalroute-probability"]) <= 1
    assert headers["x-signalroute-arm"] in demo_service.runtime.pool.names
    printed = capsys.readouterr().out
    assert f"answered by {headers['x-signalroute-arm']}" in printed
    assert "streamed by" in printed


def test_feedback_loop(demo_service: RunningService) -> None:
    module = example("feedback_loop")
    logged = module.main(demo_service.base_url)
    expected = 1.0 if module.passes_my_check(logged["output"]) else 0.0
    rewards = [reward for decision in logged["decisions"] for reward in decision["rewards"]]
    assert {(r["source"], r["value"]) for r in rewards if r["source"] == "tests"} == {
        ("tests", expected)
    }


def test_pool_file_serves_both_arms(database: Database, database_url: str, tmp_path: Path) -> None:
    pool = load_pool(EXAMPLES / "pool.yaml")  # the file as shipped is valid
    assert pool.names == ("gpt-4o-mini", "local-llama")
    fake = FakeOpenAI()
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=0, log_level="warning")
    with threaded_server(config, "fake-openai") as provider_url:
        # The same file with both providers (and the judge) at the local server.
        document = yaml.safe_load((EXAMPLES / "pool.yaml").read_text(encoding="utf-8"))
        for arm in [*document["arms"], document["judge"]]:
            arm["base_url"] = f"{provider_url}/v1"
        local = tmp_path / "pool.yaml"
        local.write_text(yaml.safe_dump(document), encoding="utf-8")
        settings = Settings(database_url=database_url, port=0, seed=1, pool_config=local)
        with (
            serve_in_background(settings) as service,
            httpx.Client(base_url=service.base_url, timeout=30) as client,
        ):
            models = [m["id"] for m in client.get("/v1/models").json()["data"]]
            assert models == [
                "signalroute/auto",
                "signalroute/local-first",
                "gpt-4o-mini",
                "local-llama",
            ]
            for model in ("local-llama", "signalroute/local-first"):
                answer = client.post(
                    "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                )
                assert answer.status_code == 200, answer.text
                content = answer.json()["choices"][0]["message"]["content"]
                assert content.startswith("fake answer to:"), content
    sent = {body["model"] for body in fake.bodies}
    assert "llama-3.1-8b-instruct" in sent


def test_the_readme_quickstart(demo_service: RunningService) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1, "the README has one Python quickstart"
    code = blocks[0].replace("http://localhost:8000", demo_service.base_url)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    first = printed.getvalue().splitlines()[0].split()
    assert first[0] in demo_service.runtime.pool.names
    assert 0 < float(first[1]) <= 1


CURL = re.compile(
    r"curl -s localhost:8000(?P<path>/\S+) -H 'content-type: application/json' -d '(?P<body>.*?)'",
    re.DOTALL,
)


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_curl_quickstarts_route(demo_service: RunningService, page: str) -> None:
    """Every routing request a quickstart shows with curl is answered as it says (the bad
    input example with its 400), by a running service."""
    text = (REPO_ROOT / page).read_text(encoding="utf-8")
    calls = [
        (m["path"], json.loads(m["body"]))
        for m in CURL.finditer(text)
        if m["path"] in ("/route-and-run", "/v1/chat/completions")
    ]
    assert calls, f"{page} shows no routing request"
    with httpx.Client(base_url=demo_service.base_url, timeout=60) as client:
        for path, body in calls:
            answer = client.post(path, json=body)
            expected = 400 if body.get("messages") == [] else 200
            assert answer.status_code == expected, (path, body, answer.text)


def test_the_metrics_page_lists_every_metric(demo_service: RunningService) -> None:
    """The table in docs/operations/observability.md names exactly the metrics a running
    service exports."""
    with httpx.Client(base_url=demo_service.base_url, timeout=30) as client:
        exposition = client.get("/metrics").text
    exported = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE signalroute_"):
            _, _, name, kind = line.split()
            counter = kind == "counter" and not name.endswith("_total")
            exported.add(f"{name}_total" if counter else name)
    page = (REPO_ROOT / "docs" / "operations" / "observability.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(signalroute_[a-z_]+)`", page))
    assert exported == documented
