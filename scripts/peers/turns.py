"""The ADK runner's turn, as `adk_load --mode service` runs it through this crate, for the
Python session services scripts/bench-peers measures (sqlspec_turns.py,
adk_database_turns.py): per conversation `create_session`; per turn `get_session` with the
newest 20 events, then two `append_event`s carrying state deltas (`user:` every turn,
`app:` on the first); then a final `get_session` to see what was persisted.
"""

import asyncio
import json
import resource
import time
import uuid

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

APP = "peers_app"


def text(role, conv, turn):
    return types.Content(
        role=role,
        parts=[
            types.Part(
                text=f"Turn {turn} of conversation {conv}: a message of ordinary length, about what "
                "an assistant and a user say to each other in one exchange, padded to a typical size."
            )
        ],
    )


async def conversation(service, run, conv, turns, latencies, check):
    session_id = f"{run}-{conv}"
    user_id = f"user-{conv}"
    await service.create_session(
        app_name=APP, user_id=user_id, state={"stage": "start", "turns": 0}, session_id=session_id
    )
    newest = GetSessionConfig(num_recent_events=20)
    for turn in range(turns):
        started = time.perf_counter()
        session = await service.get_session(app_name=APP, user_id=user_id, session_id=session_id, config=newest)
        asked = Event(
            invocation_id=f"inv-{turn}",
            author="user",
            content=text("user", conv, turn),
            actions=EventActions(state_delta={"user:last_turn": turn}),
        )
        await service.append_event(session, asked)
        delta = {"turns": turn + 1, "stage": f"turn-{turn}"}
        if turn == 0:
            delta["app:last_conversation"] = conv
        answer = Event(
            invocation_id=f"inv-{turn}",
            author="assistant",
            content=text("model", conv, turn),
            actions=EventActions(state_delta=delta),
            turn_complete=True,
        )
        await service.append_event(session, answer)
        latencies.append(time.perf_counter() - started)
    stored = await service.get_session(app_name=APP, user_id=user_id, session_id=session_id)
    check["sessions"] += 1
    check["state_persisted"] += stored.state.get("turns") == turns
    check["user_scope_persisted"] += stored.state.get("user:last_turn") == turns - 1
    two = GetSessionConfig(num_recent_events=2)
    recent = await service.get_session(app_name=APP, user_id=user_id, session_id=session_id, config=two)
    # Which 2 events came back: the newest (the last turn's) or the oldest.
    last = recent.events[-1].invocation_id if recent.events else None
    check["newest_events"] += last == f"inv-{turns - 1}"


async def measure(contender, service, close, conversations, concurrency, turns):
    """Runs the conversations, `concurrency` at a time, then awaits `close()`; prints the
    JSON line scripts/bench-peers reads."""
    run = uuid.uuid4().hex[:8]
    latencies, check = [], {"sessions": 0, "state_persisted": 0, "user_scope_persisted": 0, "newest_events": 0}
    queue = list(range(conversations))

    async def worker():
        while queue:
            conv = queue.pop()
            await conversation(service, run, conv, turns, latencies, check)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    await close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "contender": contender,
                "turns": n,
                "seconds": round(seconds, 3),
                "turns_per_s": round(n / seconds, 1),
                "turn_p50_ms": round(latencies[n // 2] * 1e3, 3),
                "turn_p99_ms": round(latencies[min(n - 1, n * 99 // 100)] * 1e3, 3),
                "cpu_us_per_turn": round(cpu * 1e6 / n, 1),
                "peak_rss_mib": round(cpu1.ru_maxrss / 1024, 1),
                "persisted": check,
            }
        )
    )
