"""The ADK runner's turn (turns.py) through google-adk's own DatabaseSessionService
(SQLAlchemy over asyncpg or aiosqlite, schema version 1), as
`adk_load --mode service --tables adk` runs it through this crate on the same tables; a
SQLAlchemy pool of POOL_SIZE, no overflow. Prints one JSON line.

    python adk_database_turns.py URL CONVERSATIONS CONCURRENCY POOL_SIZE TURNS

URL is SQLAlchemy's: postgresql+asyncpg://… or sqlite+aiosqlite:///path. Run by
scripts/bench-peers with the venv of tests/python/requirements.txt.
"""

import asyncio
import sys

from google.adk.sessions.database_session_service import DatabaseSessionService

from turns import measure


async def main(url, conversations, concurrency, pool_size, turns):
    kwargs = {} if url.startswith("sqlite") else {"pool_size": pool_size, "max_overflow": 0}
    service = DatabaseSessionService(db_url=url, **kwargs)
    await service.prepare_tables()
    await measure("google-adk", service, service.close, conversations, concurrency, turns)


if __name__ == "__main__":
    url, conversations, concurrency, pool_size, turns = sys.argv[1:6]
    asyncio.run(main(url, int(conversations), int(concurrency), int(pool_size), int(turns)))
