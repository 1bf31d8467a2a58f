"""This process's counters: a window counts, ends, gives back and clears, and a flood of keys is swept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.platform.counters import MemoryCounters

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_window_counts_until_it_ends_then_starts_afresh() -> None:
    counters = MemoryCounters()
    assert await counters.hit("k", 60, NOW) == (1, 60)
    assert await counters.hit("k", 60, NOW + timedelta(seconds=20)) == (2, 40)
    assert await counters.hit("other", 60, NOW) == (1, 60)
    assert await counters.hit("k", 60, NOW + timedelta(seconds=60)) == (1, 60)


async def test_give_back_and_clear() -> None:
    counters = MemoryCounters()
    for _ in range(3):
        await counters.hit("k", 60, NOW)
    await counters.give_back("k")
    assert (await counters.hit("k", 60, NOW))[0] == 3
    await counters.clear("k")
    assert (await counters.hit("k", 60, NOW))[0] == 1
    await counters.give_back("never-hit")  # harmless
    assert (await counters.hit("never-hit", 60, NOW))[0] == 1


async def test_ended_windows_are_swept_when_keys_pile_up() -> None:
    counters = MemoryCounters()
    for n in range(MemoryCounters.SWEEP_ABOVE):
        await counters.hit(f"old-{n}", 60, NOW)
    later = NOW + timedelta(minutes=5)
    await counters.hit("new", 60, later)
    await counters.hit("newer", 60, later)
    assert len(counters._windows) == 2  # the old windows had ended: swept
