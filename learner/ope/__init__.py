"""Off-policy evaluation: what a candidate policy would have earned on logged decisions.

Pure functions and values, no I/O: ``log`` (logged decisions as columns), ``estimators``
(IPS, SNIPS, DM, DR, effective sample size), ``bootstrap`` (paired confidence intervals),
``support`` (where a candidate leaves the logging policy's support), ``candidates`` (static,
rule-based and VW policies as probability matrices), ``reward_model`` (the cross-fitted
direct model), ``training`` (counterfactual training), ``evaluation`` (all of it together)
and the ``dsjson`` / ``jsonl`` codecs.
"""
