"""The Python side of tests/items_python_interop.rs and tests/items_advanced_sqlite.rs:
the OpenAI Agents SDK's `SQLAlchemySession` (openai-agents 0.25.0), its built-in
`SQLiteSession` (the SDK's default store), its `AsyncSQLiteSession` (aiosqlite, the same
tables), or its `AdvancedSQLiteSession` (branches and usage beside the same tables), on
the tables the Rust test names.

Usage: python items_interop.py '<json request>'; prints one JSON object.

Request: {"backend": "postgres" | "sqlite", "url": DSN or SQLite file path,
          "impl": "sqlalchemy" (default) | "sqlite_session" | "async_sqlite"
                  | "advanced" (SQLite only),
          "sessions_table": ..., "messages_table": ..., "create_tables": bool,
          "session_id": ...,
          "ops": [[op, arg], ...],        # run in order, one result each
          "go_file": path | null,         # connect, write <go_file>.ready, wait for go_file
          "reflect": bool}                # also describe the two tables
Ops:     ["add", [item, ...]]  one add_items call      -> null
         ["add_each", [item, ...]]  one call per item  -> null
         ["get", limit | null]                          -> [item, ...]
         ["pop", n]  n pop_item calls                   -> [item | null, ...]
         ["clear", null]                                -> null
       advanced only:
         ["get_on", [limit, branch]]  get_items on a branch -> [item, ...]
         ["branch", [turn, name]]  create_branch_from_turn (and switch) -> name
         ["switch", branch]                             -> null
         ["turns", null]  get_conversation_turns: [[turn, full_content], ...]
         ["tools", null]  get_tool_usage: [[tool, count, turn], ...]
         ["branches", null]  list_branches: [[branch, messages, user turns], ...]
Answer:  {"results": [...], "schema": {...} | null}
"""

import asyncio
import json
import os
import sys

from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.extensions.memory.async_sqlite_session import AsyncSQLiteSession
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from agents.memory.sqlite_session import SQLiteSession
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine


def engine_url(req):
    if req["backend"] == "postgres":
        url = req["url"]
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme):]
        raise ValueError(f"not a PostgreSQL URL: {url}")
    return "sqlite+aiosqlite:///" + req["url"]


def describe(sync_conn, sessions, messages):
    """The two tables as SQLAlchemy reflects them, with their own names replaced, so that
    tables created by either side compare equal."""
    insp = inspect(sync_conn)

    def norm(value):
        text = str(value)
        return text.replace(messages, "<messages>").replace(sessions, "<sessions>")

    out = {}
    for role, table in (("sessions", sessions), ("messages", messages)):
        sql = None
        if sync_conn.dialect.name == "sqlite":
            sql = sync_conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).scalar()
        out[role] = {
            # SQLite only: AUTOINCREMENT (ids never reused after a pop), which reflection omits.
            "autoincrement": "AUTOINCREMENT" in sql.upper() if sql else None,
            "columns": [
                {
                    "name": c["name"],
                    "type": str(c["type"]),
                    "nullable": c["nullable"],
                    "default": norm(c["default"]) if c.get("default") is not None else None,
                }
                for c in insp.get_columns(table)
            ],
            "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    {
                        "columns": fk["constrained_columns"],
                        "table": norm(fk["referred_table"]),
                        "referred": fk["referred_columns"],
                        "ondelete": (fk.get("options") or {}).get("ondelete"),
                    }
                    for fk in insp.get_foreign_keys(table)
                ),
                key=json.dumps,
            ),
            "indexes": sorted(
                (
                    {"name": norm(i["name"]), "columns": i["column_names"], "unique": bool(i["unique"])}
                    for i in insp.get_indexes(table)
                ),
                key=json.dumps,
            ),
        }
    return out


async def main(req):
    engine = create_async_engine(engine_url(req))
    if req.get("impl") == "advanced":
        session = AdvancedSQLiteSession(
            session_id=req["session_id"],
            db_path=req["url"],
            create_tables=req["create_tables"],
            sessions_table=req["sessions_table"],
            messages_table=req["messages_table"],
        )
    elif req.get("impl", "sqlalchemy") == "sqlite_session":
        # Creates its tables (IF NOT EXISTS) whatever create_tables says.
        session = SQLiteSession(
            req["session_id"],
            db_path=req["url"],
            sessions_table=req["sessions_table"],
            messages_table=req["messages_table"],
        )
    elif req.get("impl") == "async_sqlite":
        session = AsyncSQLiteSession(
            req["session_id"],
            db_path=req["url"],
            sessions_table=req["sessions_table"],
            messages_table=req["messages_table"],
        )
    else:
        session = SQLAlchemySession(
            req["session_id"],
            engine=engine,
            create_tables=req["create_tables"],
            sessions_table=req["sessions_table"],
            messages_table=req["messages_table"],
        )
    go = req.get("go_file")
    if go:
        # Connected and warm before the other side starts: then say so, and wait.
        await session.get_items(1)
        open(go + ".ready", "w").close()
    while go and not os.path.exists(go):
        await asyncio.sleep(0.005)
    results = []
    for op, arg in req["ops"]:
        if op == "add":
            await session.add_items(arg)
            results.append(None)
        elif op == "add_each":
            for item in arg:
                await session.add_items([item])
            results.append(None)
        elif op == "get":
            results.append(await session.get_items(arg))
        elif op == "pop":
            results.append([await session.pop_item() for _ in range(arg)])
        elif op == "clear":
            await session.clear_session()
            results.append(None)
        elif op == "get_on":
            results.append(await session.get_items(arg[0], branch_id=arg[1]))
        elif op == "branch":
            results.append(await session.create_branch_from_turn(arg[0], arg[1]))
        elif op == "switch":
            await session.switch_to_branch(arg)
            results.append(None)
        elif op == "turns":
            turns = await session.get_conversation_turns()
            results.append([[t["turn"], t["full_content"]] for t in turns])
        elif op == "tools":
            results.append([list(t) for t in await session.get_tool_usage()])
        elif op == "branches":
            branches = await session.list_branches()
            results.append(
                [[b["branch_id"], b["message_count"], b["user_turns"]] for b in branches]
            )
        else:
            raise ValueError(f"unknown op {op}")
    schema = None
    if req.get("reflect"):
        async with engine.connect() as conn:
            schema = await conn.run_sync(describe, req["sessions_table"], req["messages_table"])
    await engine.dispose()
    if isinstance(session, SQLiteSession):
        session.close()
    if isinstance(session, AsyncSQLiteSession):
        await session.close()
    return {"results": results, "schema": schema}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
