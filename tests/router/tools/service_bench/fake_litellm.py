"""A stand-in for LiteLLM's proxy executable in tests (LiteLLM is not a dependency): it takes
the same ``--config/--host/--port/--num_workers`` arguments, answers
``/health/liveliness``, checks the master key and forwards ``/v1/chat/completions`` to the
``api_base`` its config names for the model."""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--num_workers", type=int, default=1)
    args = parser.parse_args()
    with open(args.config) as source:
        config: dict[str, Any] = yaml.safe_load(source)
    bases = {m["model_name"]: m["litellm_params"]["api_base"] for m in config["model_list"]}
    key = os.environ["LITELLM_MASTER_KEY"]
    upstream = httpx.Client(timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health/liveliness":
                self._answer(200, b'"I\'m alive!"')
            else:
                self._answer(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("authorization") != f"Bearer {key}":
                self._answer(401, b'{"error": "bad key"}')
                return
            request = json.loads(body)
            base = bases.get(request.get("model"))
            if self.path != "/v1/chat/completions" or base is None:
                self._answer(400, b'{"error": "unknown model or path"}')
                return
            response = upstream.post(f"{base}/chat/completions", content=body)
            self._answer(response.status_code, response.content)

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
