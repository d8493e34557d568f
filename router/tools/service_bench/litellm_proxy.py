"""LiteLLM's proxy as the reference the service benchmarks measure signalroute against.

LiteLLM is not a dependency: it is installed on its own (``pip install 'litellm[proxy]'`` in
a virtual environment of its own) and given as the path of its ``litellm`` executable. It is
pointed at the same replay pool as the router, one model entry per arm, so both forward the
same requests to the same recorded answers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from features.errors import ConfigError
from router.tools.service_bench.processes import free_port, server_process

KEY = "sk-service-bench"
"""The proxy's master key: the only key it accepts (loopback only, never a real secret)."""


@dataclass(frozen=True)
class LiteLLM:
    """A running proxy: its base URL, the key it accepts and its process id."""

    url: str
    key: str
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


def config_yaml(models: Sequence[str], replay_url: str) -> str:
    """LiteLLM's ``model_list``: each model an OpenAI-compatible entry on the replay pool."""
    entries = []
    for model in models:
        entries.append(
            f'  - model_name: "{model}"\n'
            f"    litellm_params:\n"
            f'      model: "openai/{model}"\n'
            f'      api_base: "{replay_url}/v1"\n'
            f'      api_key: "unused"\n'
        )
    return "model_list:\n" + "".join(entries)


def version(executable: Path | None) -> str | None:
    """The installed LiteLLM's version, read with the Python beside its executable."""
    if executable is None:
        return None
    python = executable.parent / "python"
    try:
        result = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


@contextmanager
def maybe_litellm(
    executable: Path | None,
    models: Sequence[str],
    replay_url: str,
    work: Path,
    *,
    workers: int = 1,
    key: str = KEY,
) -> Iterator[LiteLLM | None]:
    """LiteLLM's proxy with ``workers`` worker processes, ready, for the block; None (and
    nothing started) when ``executable`` is None.

    Raises ConfigError when the executable does not exist or the proxy is not ready in 180 s
    (its output is in ``work/litellm.log``).
    """
    if executable is None:
        yield None
        return
    if not executable.exists():
        raise ConfigError(f"--litellm {executable}: no such file")
    port = free_port()
    (work / "litellm.yaml").write_text(config_yaml(models, replay_url))
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY_DISABLED": "True",
        "LITELLM_MASTER_KEY": key,
    }
    args = [
        str(executable),
        *("--config", str(work / "litellm.yaml")),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--num_workers", str(workers)),
    ]
    url = f"http://127.0.0.1:{port}"
    with server_process(
        args, env, work / "litellm.log", f"{url}/health/liveliness", timeout_s=180
    ) as process:
        yield LiteLLM(url, key, process.pid)
