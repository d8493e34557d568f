"""VW's readable model of a saved policy, with feature names (``--invert_hash``).

A saved VW model keeps hashed weights only: VW learns a feature's name when an example that
holds it passes through a workspace started with ``--invert_hash``. So the contexts whose
weights should be named are run through a fresh workspace over the model (prediction only:
no weight changes), and the readable model VW writes at ``finish`` is returned as text.
``learner.inspection.parse_readable_model`` reads it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import vowpalwabbit

from learner.context import Context
from learner.vw_format import NamespaceMemo, adf_lines


def readable_model(model: bytes, contexts: Iterable[Context]) -> str:
    """The ``--invert_hash`` text of ``model`` (bytes of a saved ``--cb_explore_adf`` or
    ``--cb_adf`` model), naming every non-zero weight that a feature of ``contexts`` uses.

    Weights no given context uses are listed too, without a name (their hash index only).
    """
    with tempfile.TemporaryDirectory() as folder:
        model_path = os.path.join(folder, "policy.vw")
        readable_path = os.path.join(folder, "readable.txt")
        with open(model_path, "wb") as handle:
            handle.write(model)
        workspace = vowpalwabbit.Workspace(f"--quiet -i {model_path} --invert_hash {readable_path}")
        try:
            memo: NamespaceMemo = {}
            seen: set[tuple[str, ...]] = set()
            for context in contexts:
                lines = tuple(adf_lines(context, memo=memo))
                if lines not in seen:  # a context's names are learned once
                    seen.add(lines)
                    workspace.predict(list(lines))
        finally:
            workspace.finish()
        with open(readable_path, encoding="utf-8") as handle:
            return handle.read()
