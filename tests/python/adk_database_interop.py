"""The Python side of tests/adk_database_interop.rs: google-adk's own
`DatabaseSessionService` (schema version 1) on the database the Rust test names.

Usage: python adk_database_interop.py '<json request>'; prints one JSON object.

Request: {"url": SQLAlchemy async URL, "search_path": schema | null (PostgreSQL),
          "legacy": bool,  # first make the tables of schema version 0 (google-adk < 1.22)
          "sqlite_service": bool,  # google-adk's SqliteSessionService on the file "url"
          "go_file": path | null,  # "append_after_go": load, write <go_file>.ready, wait
          "ops": [op, ...]}
Ops, run in order on one service (each answer in "answers", in order):
  {"op": "create", "app", "user", "session_id", "state"}      -> session
  {"op": "get", "app", "user", "session_id",
   "num_recent_events"?: n, "after_timestamp"?: seconds}       -> session | null
  {"op": "append", "app", "user", "session_id", "events": [spec, ...]}
                                                               -> session after, or {"stale": true}
  {"op": "append_after_go", ... as append}                     -> as append
  {"op": "list", "app", "user"?: user}                         -> [session without events]
  {"op": "delete", "app", "user", "session_id"}                -> null
  {"op": "user_state", "app", "user"}                          -> the user's state
Event spec: {"author", "text"?, "invocation_id"?, "state_delta"?, "transfer_to_agent"?,
             "artifact_delta"?, "branch"?, "usage_tokens"?, "long_running_tool_ids"?,
             "custom_metadata"?, "turn_complete"?}
Sessions: {"id", "app_name", "user_id", "state", "last_update_time", "events": [model_dump]}.
"""

import asyncio
import json
import os
import sys

try:
    from google.adk.errors._stale_session_error import StaleSessionError
except ImportError:  # google-adk 1.x raises a ValueError with the same message
    StaleSessionError = None
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.genai import types


def session_json(session):
    return {
        "id": session.id,
        "app_name": session.app_name,
        "user_id": session.user_id,
        "state": session.state,
        "last_update_time": session.last_update_time,
        "events": [e.model_dump(mode="json", exclude_none=True) for e in session.events],
    }


def make_event(spec):
    actions = EventActions(
        state_delta=spec.get("state_delta", {}),
        artifact_delta=spec.get("artifact_delta", {}),
        transfer_to_agent=spec.get("transfer_to_agent"),
    )
    kwargs = {}
    if "text" in spec:
        role = "user" if spec["author"] == "user" else "model"
        kwargs["content"] = types.Content(role=role, parts=[types.Part(text=spec["text"])])
    if "usage_tokens" in spec:
        kwargs["usage_metadata"] = types.GenerateContentResponseUsageMetadata(
            total_token_count=spec["usage_tokens"]
        )
    for key in ("branch", "custom_metadata", "turn_complete"):
        if key in spec:
            kwargs[key] = spec[key]
    if "long_running_tool_ids" in spec:
        kwargs["long_running_tool_ids"] = set(spec["long_running_tool_ids"])
    return Event(
        author=spec["author"],
        invocation_id=spec.get("invocation_id", "inv-py"),
        actions=actions,
        **kwargs,
    )


async def wait_for_go(go_file):
    open(go_file + ".ready", "w").close()
    for _ in range(3000):
        if os.path.exists(go_file):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("no go file")


async def run(service, op, go_file):
    kind = op["op"]
    if kind == "create":
        s = await service.create_session(
            app_name=op["app"], user_id=op["user"], state=op.get("state"),
            session_id=op.get("session_id"),
        )
        return session_json(s)
    if kind == "get":
        config = None
        if "num_recent_events" in op or "after_timestamp" in op:
            config = GetSessionConfig(
                num_recent_events=op.get("num_recent_events"),
                after_timestamp=op.get("after_timestamp"),
            )
        s = await service.get_session(
            app_name=op["app"], user_id=op["user"], session_id=op["session_id"], config=config
        )
        return session_json(s) if s else None
    if kind in ("append", "append_after_go"):
        s = await service.get_session(
            app_name=op["app"], user_id=op["user"], session_id=op["session_id"]
        )
        if kind == "append_after_go":
            await wait_for_go(go_file)
        try:
            for spec in op["events"]:
                await service.append_event(s, make_event(spec))
        except Exception as e:  # noqa: BLE001 - the class tells a stale copy apart
            # google-adk 1.x: DatabaseSessionService's and SqliteSessionService's messages.
            stale = isinstance(e, StaleSessionError) if StaleSessionError else (
                isinstance(e, ValueError)
                and ("modified in storage" in str(e) or "stale session" in str(e))
            )
            if not stale:
                raise
            return {"stale": True}
        return session_json(s)
    if kind == "list":
        r = await service.list_sessions(app_name=op["app"], user_id=op.get("user"))
        return [session_json(s) for s in r.sessions]
    if kind == "delete":
        await service.delete_session(
            app_name=op["app"], user_id=op["user"], session_id=op["session_id"]
        )
        return None
    if kind == "user_state":
        if hasattr(service, "get_user_state"):
            return await service.get_user_state(app_name=op["app"], user_id=op["user"])
        # google-adk 1.x has no get_user_state: the user's keys of any of their sessions.
        listed = await service.list_sessions(app_name=op["app"], user_id=op["user"])
        for s in listed.sessions:
            full = await service.get_session(app_name=op["app"], user_id=op["user"], session_id=s.id)
            return {k[5:]: v for k, v in full.state.items() if k.startswith("user:")}
        return {}
    raise ValueError(f"unknown op {kind}")


async def main(req):
    kwargs = {}
    if req.get("search_path"):
        kwargs["connect_args"] = {"server_settings": {"search_path": req["search_path"]}}
    if req.get("sqlite_service"):
        # What `sqlite://` session URIs and `adk web`'s local storage use: its own layout.
        from google.adk.sessions.sqlite_session_service import SqliteSessionService

        service = SqliteSessionService(db_path=req["url"])
    else:
        service = DatabaseSessionService(db_url=req["url"], **kwargs)
    if req.get("legacy"):
        # As an ADK from before 1.22 made them; the service then keeps to version 0.
        from google.adk.sessions.schemas.v0 import Base as BaseV0

        async with service.db_engine.begin() as conn:
            await conn.run_sync(BaseV0.metadata.create_all)
    try:
        answers = [await run(service, op, req.get("go_file")) for op in req["ops"]]
    finally:
        if hasattr(service, "close"):  # google-adk 1.x's SqliteSessionService has none
            await service.close()
    return {"answers": answers}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
