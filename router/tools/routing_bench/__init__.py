"""``signalroute bench``: cost and quality of learned routing against baselines, on recorded data.

The input is a routing matrix (``matrix``): every model's recorded quality and cost on every
prompt. The learned policies run through the real ``Router`` (features, VW, kNN history,
validators), with only the provider call replaced by a look-up into the matrix and the judge
by the recorded-label judge (``providers``). Baselines and metrics are pure functions of the
matrix (``baselines``, ``metrics``); ``run`` drives the router, ``report`` and ``plots`` write
the results.
"""
