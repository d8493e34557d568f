"""The learned run's protocol: learn over train, score test with learning off, then learn on."""

import numpy as np

from features.embedding import HashingEmbedder
from router.bench.learned import TENANT, VARIANTS, LearnedRunner, LearnedSpec, RunSettings
from store import decisions as decision_log
from store import embeddings as embedding_store
from store.database import Database
from tests.router.bench.synthetic import synthetic_matrix


def test_frozen_pass_serves_pre_only_variants_without_the_judge() -> None:
    assert VARIANTS["pre"].stages("always", learning=True).judge == "always"
    assert VARIANTS["pre"].stages("always", learning=False).judge == "never"
    assert VARIANTS["escalation"].stages("always", learning=False).judge == "always"
    assert VARIANTS["full"].stages("on_doubt", learning=False).components


async def test_frozen_pass_neither_learns_nor_remembers(database: Database) -> None:
    matrix = synthetic_matrix(50)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong",))
    runner = LearnedRunner(matrix, database, settings)
    train, test = matrix.rows("train"), matrix.rows("test")
    run = await runner.run(LearnedSpec("pre", 0.3, seed=0), list(train), list(test))
    assert run.frozen.rows.tolist() == test.tolist()
    assert run.decisions_per_s > 0
    async with database.connection() as conn:
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
        stored = await embedding_store.nearest(
            conn, HashingEmbedder().embed(matrix.prompts[0].text), k=200, tenant=TENANT
        )
    versions = [d.policy_version for d in pre]
    assert versions[:35] == list(range(35))  # learning: one update per request
    assert versions[35:50] == [35] * 15  # frozen: the policy stays as train left it
    assert versions[50:] == list(range(35, 50))  # online: learning again
    assert len(stored) == 35 + 15  # frozen requests are never neighbours
    assert np.isfinite(run.online.cost_usd).all()
