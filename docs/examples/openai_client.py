"""The official `openai` client against signalroute: a routed request, what the routing
headers and the `signalroute` field say, and a stream.

Run it against a running service: `python openai_client.py http://127.0.0.1:8000/v1`
(with `SIGNALROUTE_AUTH=keys`, pass an API key as the second argument).
"""

import sys

from openai import OpenAI

QUESTION = "Write a python function to identify non-prime numbers."


def main(base_url: str = "http://127.0.0.1:8000/v1", api_key: str = "unused") -> dict[str, str]:
    client = OpenAI(base_url=base_url, api_key=api_key)
    messages = [{"role": "user", "content": QUESTION}]

    # A route profile as the model: signalroute picks the arm.
    raw = client.chat.completions.with_raw_response.create(
        model="signalroute/auto",
        messages=messages,
        extra_body={"hints": {"task": "code"}},  # optional: what kind of request this is
    )
    completion = raw.parse()
    print("answered by", completion.model)
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-signalroute-")}
    print(headers)  # request id, profile, arm, probability, cost

    routing = (completion.model_extra or {})["signalroute"]
    for decision in routing["trace"]["decisions"]:
        print(decision["stage"], decision["arm"], decision["probability"], decision["outcome"])

    # A stream: the routing details ride on the chunk that carries the finish_reason.
    stream = client.chat.completions.create(
        model="signalroute/auto", messages=messages, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        extra = chunk.model_extra or {}
        if "signalroute" in extra:
            print("\nstreamed by", chunk.model, "for", extra["signalroute"]["cost_usd"], "USD")
    return headers


if __name__ == "__main__":
    main(*sys.argv[1:])
