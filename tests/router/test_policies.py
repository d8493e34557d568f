"""The policy registry restores each stage from the log, and survives what it cannot read."""

import uuid

import pytest

from learner.config import PolicyConfig
from router.lifecycle.journal import JournalWriter, PendingRequest
from router.policies import PolicyRegistry
from store.database import Database
from tests.router.lifecycle.test_journal import DONE, ROW, a_journal


async def test_a_logged_context_it_cannot_read_is_skipped_not_fatal(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A decision row whose context is not a context (an old or foreign writer's) must not
    stop the service from starting: the policy relearns from the rest and says what it
    skipped."""
    writer = JournalWriter(database)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
    writer.submit(a_journal(request_id), DONE)  # its context is {"log_tokens": 2.0}
    await writer.drain()
    policies = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)})
    await policies.load()
    try:
        assert policies.get("pre").updates == 0
        assert "skipped 1 logged rewards" in caplog.text
    finally:
        await policies.close()
