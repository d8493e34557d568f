"""Offline policy evaluation of logged traffic: the ``signalroute replay`` command.

(Not to be confused with ``router.tools.replay_pool``, the replay *model pool* that serves recorded
RouterBench answers.) The estimators live in ``learner.ope``; this package reads the logs
(``loading``), turns candidate specs into policies (``specs``), writes the reports
(``report``), wires the command (``arguments``, ``replay_cli``) and validates the
estimators against a routing matrix's ground truth (``validate``).
"""
