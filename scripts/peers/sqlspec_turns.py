"""The ADK runner's turn (turns.py) through SQLSpec 0.41.1's SQLSpecSessionService over its
asyncpg store, as `adk_load --mode service` runs it through this crate. Prints one JSON
line.

    python sqlspec_turns.py URL CONVERSATIONS CONCURRENCY POOL_SIZE TURNS

Run by scripts/bench-peers with the venv of tests/python/requirements.txt.
"""

import asyncio
import sys

from sqlspec.adapters.asyncpg import AsyncpgConfig
from sqlspec.adapters.asyncpg.adk import AsyncpgADKStore
from sqlspec.extensions.adk import SQLSpecSessionService

from turns import measure


async def main(url, conversations, concurrency, pool_size, turns):
    ext = {"adk": {"session_table": "adk_sessions", "events_table": "adk_events"}}
    config = AsyncpgConfig(
        connection_config={"dsn": url, "min_size": pool_size, "max_size": pool_size}, extension_config=ext
    )
    store = AsyncpgADKStore(config)
    await store.create_tables()
    service = SQLSpecSessionService(store)
    await measure("sqlspec", service, config.close_pool, conversations, concurrency, turns)


if __name__ == "__main__":
    url, conversations, concurrency, pool_size, turns = sys.argv[1:6]
    asyncio.run(main(url, int(conversations), int(concurrency), int(pool_size), int(turns)))
