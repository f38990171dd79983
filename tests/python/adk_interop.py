"""The Python side of tests/adk_python_interop.rs: SQLSpec 0.41.1's ADK store and session
service, on the tables the Rust test names.

Usage: python adk_interop.py '<json request>'; prints one JSON object.

Request: {"backend": "postgres" | "sqlite", "url": DSN or SQLite file path,
          "session_table": ..., "events_table": ...,
          "create_tables": bool,
          "app_state_table": ..., "user_state_table": ..., "metadata_table": ... (SQLSpec >= 0.51),
          "write": {"app": ..., "user": ..., "session_id": ...,
                    "session_only": bool,   # create the session, append nothing
                    "scoped": bool} | null,  # app: and user: keys in the first event's delta
          "append": {"app": ..., "user": ..., "session_id": ..., "text": ...,
                     "state_delta": {...}} | null,  # one more event, through the service
          "go_file": path | null,  # with append: load, write <go_file>.ready, wait for it
Answer also: "appended": <event>, or "stale": true when the service refused the append.
          "read": {"app": ..., "user": ..., "session_id": ...} | null}
Answer:  {"written": <session>, "read": <session> | null}, sessions as session_json writes them.
"""

import asyncio
import json
import os
import sys

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types
from sqlspec.extensions.adk import SQLSpecSessionService


def make_store(req):
    ext = {"adk": {"session_table": req["session_table"], "events_table": req["events_table"]}}
    # SQLSpec 0.51 and later: its app, user and metadata tables.
    for key in ("app_state_table", "user_state_table", "metadata_table"):
        if key in req:
            ext["adk"][key] = req[key]
    if req["backend"] == "postgres":
        from sqlspec.adapters.asyncpg import AsyncpgConfig
        from sqlspec.adapters.asyncpg.adk import AsyncpgADKStore

        config = AsyncpgConfig(connection_config={"dsn": req["url"]}, extension_config=ext)
        return config, AsyncpgADKStore(config)
    from sqlspec.adapters.aiosqlite import AiosqliteConfig
    from sqlspec.adapters.aiosqlite.adk import AiosqliteADKStore

    config = AiosqliteConfig(connection_config={"database": req["url"]}, extension_config=ext)
    return config, AiosqliteADKStore(config)


def event_json(event):
    return {
        "id": event.id,
        "author": event.author,
        "invocation_id": event.invocation_id,
        "branch": event.branch,
        "timestamp": event.timestamp,
        # Only the fields that were set: what a Rust pickle carries, and what Rust reads.
        "actions": event.actions.model_dump(mode="json", exclude_unset=True),
        "long_running_tool_ids": sorted(event.long_running_tool_ids)
        if event.long_running_tool_ids is not None
        else None,
        "content": event.content.model_dump(mode="json", exclude_none=True) if event.content else None,
        "custom_metadata": event.custom_metadata,
        "turn_complete": event.turn_complete,
        "error_code": event.error_code,
    }


def session_json(session):
    return {
        "id": session.id,
        "app_name": session.app_name,
        "user_id": session.user_id,
        "state": session.state,
        "events": [event_json(e) for e in session.events],
    }


async def write(service, w):
    session = await service.create_session(
        app_name=w["app"], user_id=w["user"], session_id=w["session_id"], state={"lang": "py", "n": 1}
    )
    if w.get("session_only"):
        return session_json(session)
    first = Event(
        invocation_id="inv-py-1",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="Hello from Python \u00e9")]),
        actions=EventActions(
            state_delta={"topic": "rust", "count": 3, "big": 2**40, "nested": {"a": [1, 2.5, None, True]}}
            | ({"app:tier": "gold", "user:theme": "dark"} if w.get("scoped") else {}),
            artifact_delta={"notes.txt": 2},
            transfer_to_agent="billing",
            escalate=False,
        ),
        long_running_tool_ids={"call_1", "call_2"},
        custom_metadata={"trace": "t1"},
    )
    second = Event(
        invocation_id="inv-py-1",
        author="agent",
        branch="root.billing",
        content=types.Content(role="model", parts=[types.Part(text="On it.")]),
        actions=EventActions(
            skip_summarization=True,
            requested_tool_confirmations={
                "call_1": ToolConfirmation(hint="Pay 12.50?", payload={"amount": 12.5})
            },
            compaction=EventCompaction(
                start_timestamp=1.0,
                end_timestamp=2.0,
                compacted_content=types.Content(role="model", parts=[types.Part(text="summary")]),
            ),
            end_of_agent=True,
        ),
        turn_complete=True,
    )
    for event in (first, second):
        await service.append_event(session, event)
    return session_json(session)


async def main(req):
    config, store = make_store(req)
    try:
        if req.get("create_tables"):
            await store.create_tables()
        service = SQLSpecSessionService(store)
        answer = {"written": None, "read": None}
        if req.get("write"):
            answer["written"] = await write(service, req["write"])
        if req.get("append"):
            a = req["append"]
            session = await service.get_session(app_name=a["app"], user_id=a["user"], session_id=a["session_id"])
            go = req.get("go_file")
            if go:
                # Holding the session as loaded: say so, and append once told to.
                open(go + ".ready", "w").close()
                while not os.path.exists(go):
                    await asyncio.sleep(0.005)
            event = Event(
                invocation_id="inv-py-2",
                author="user",
                content=types.Content(role="user", parts=[types.Part(text=a.get("text", "again"))]),
                actions=EventActions(state_delta=a.get("state_delta", {})),
            )
            try:
                await service.append_event(session, event)
                answer["appended"] = event_json(event)
            except Exception as e:  # noqa: BLE001 - the test reads the error's class
                # SQLSpec before 0.61 raises a ValueError with the same message.
                if type(e).__name__ != "StaleSessionError" and "modified in storage" not in str(e):
                    raise
                answer["stale"] = True
        if req.get("read"):
            r = req["read"]
            session = await service.get_session(app_name=r["app"], user_id=r["user"], session_id=r["session_id"])
            answer["read"] = session_json(session) if session is not None else None
        print(json.dumps(answer))
    finally:
        await config.close_pool()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
