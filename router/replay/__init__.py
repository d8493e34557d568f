"""The replay model pool: recorded RouterBench answers served over OpenAI-compatible HTTP.

Modules, one concept each: ``dataset`` (the recorded rows), ``ngrams`` (hashed character
n-grams), ``matching`` (incoming prompt -> recorded prompt), ``faults`` (the seeded fault plan),
``protocol`` (the OpenAI request/response shapes), ``streaming`` (paced SSE), ``judge`` (the
replayed LLM-as-judge) and ``app`` (``create_replay_app``). Importing this package does nothing.
"""
