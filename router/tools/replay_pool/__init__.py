"""The replay model pool: recorded RouterBench answers (and BFCL's recorded tool calls) served
over OpenAI-compatible HTTP.

Modules, one concept each: ``dataset`` (the recorded rows), ``ngrams`` (hashed character
n-grams), ``matching`` (incoming prompt -> recorded prompt), ``faults`` (the seeded fault plan),
``conditions`` (latency profiles and degradation episodes), ``protocol`` (the OpenAI
request/response shapes), ``streaming`` (paced SSE), ``judge`` (the replayed LLM-as-judge),
``bfcl`` (BFCL's recorded run), ``tool_arms`` (its native function-calling configurations as
tool-calling arms) and ``app`` (``create_replay_app``). Importing this package does nothing.
"""
