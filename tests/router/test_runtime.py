import pytest

from features.errors import ConfigError
from router.runtime import check_embedder
from router.settings import Settings
from store import embeddings
from store.database import Database
from tests.store.factories import a_request, unit


async def test_a_store_of_another_embedders_vectors_is_refused_by_name(
    database: Database,
) -> None:
    await check_embedder(database, Settings(embedder="hashing"))
    async with database.connection() as conn:
        request = await a_request(conn, tenant="acme")
        await embeddings.insert_embedding(
            conn, request_id=request.id, tenant="acme", user_id=None, embedding=unit(1, 0)
        )
    await check_embedder(database, Settings(embedder="hashing"))
    with pytest.raises(ConfigError, match=r"'hashing' embedder.*SIGNALROUTE_EMBEDDER=hashing"):
        await check_embedder(database, Settings(embedder="minilm"))
