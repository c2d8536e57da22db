"""A run's own time (``trees.own_ms``: its duration less what its children cover), which ``stats`` reports as
``mean_self_ms`` and ``show --format table`` as ``self``, is exactly what its straightforward definition gives:
each child's start read as an offset from the run's by ``_offset_ms``, the spans clipped to the run and joined.
``own_ms`` reads the run's timestamp once and takes children of the same second by their microseconds; these
tests hold it to the definition on timestamps of every shape a log may have (other seconds, minutes, hours;
parts that do not parse, or that ``int`` parses oddly; other lengths; not strings).
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rtrace.core.read.trees import _offset_ms, own_ms


def reference(total: float, begin: Any, children: list[tuple[Any, float | None]]) -> float | None:
    spans = []
    for child_ts, took in children:
        lo = _offset_ms(begin, child_ts)
        if lo is None:
            return None
        hi = total if took is None else lo + took  # a child that never ended covers the rest
        spans.append((max(0.0, lo), min(total, hi)))
    covered, reach = 0.0, 0.0
    for lo, hi in sorted(spans):
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return max(0.0, total - covered)


# Pieces of "2026-11-24T10:MM:SS.ffffffZ": mostly a few seconds of one minute, so children share the run's
# second, minute or neither; odd pieces int() rejects ("4x") or reads although they are no digits (" 4", "+4").
US = st.integers(0, 999_999).map(lambda us: f"{us:06d}")
MINUTES = st.one_of(st.just("00"), st.sampled_from(["00", "01", "0x"]))
SECONDS = st.one_of(st.just("40"), st.sampled_from(["40", "41", "59", "4x", " 4", "+4", "٤٠"]))
MICROS = st.one_of(US, US, US, st.sampled_from(["00x000", " 12345", "+12345", "1_2345", "٠٠٠٠٠١"]))
STAMP = st.builds(lambda m, s, us, dot: f"2026-11-24T10:{m}:{s}{dot}{us}Z", MINUTES, SECONDS, MICROS,
                  st.one_of(st.just("."), st.just(","), st.just(".")))
TS = st.one_of(STAMP, STAMP, STAMP, st.sampled_from([None, 5, "2026-11-24T10:00:40Z", "2026-11-24T10:00:40.1234567Z", ""]))
DURATION = st.one_of(st.integers(0, 3 * 10**15).map(lambda n: n / 10**12), st.integers(0, 3 * 10**15).map(lambda n: n / 10**12),
                     st.floats(0, 3000, allow_nan=False), st.sampled_from([0.0, -0.0, 1.0, 2999.999]))


@st.composite
def runs(draw: Any) -> tuple[float, Any, list[tuple[Any, float | None]]]:
    """A run's duration and start, and its children's starts (often in the run's second) and durations."""
    begin = draw(st.one_of(st.builds(lambda us: f"2026-11-24T10:00:40.{us}Z", US), TS))
    if isinstance(begin, str):
        clean, same_second = (st.builds(lambda us: f"{begin[:20]}{us}Z", micros) for micros in (US, MICROS))
    else:
        clean = same_second = TS
    children = draw(st.lists(st.tuples(st.one_of(clean, clean, clean, clean, clean, clean, same_second, TS), st.one_of(st.none(), DURATION, DURATION)),
                             max_size=5))
    return draw(DURATION), begin, children


@settings(max_examples=1500, deadline=None)
@given(run=runs())
def test_own_time_is_the_duration_less_what_the_children_cover(run: tuple[float, Any, list[tuple[Any, float | None]]]) -> None:
    got, want = own_ms(*run), reference(*run)
    assert repr(got) == repr(want)  # the same float, to the last bit (and the same None)


def test_own_time_of_many_runs_as_rtrace_writes_them() -> None:
    """Well-formed timestamps, children mostly in the run's second: every float as the definition gives it."""
    rng = random.Random(14)
    for _ in range(10_000):
        def stamp(second: int) -> str:
            return f"2026-11-24T10:{second // 60:02d}:{second % 60:02d}.{rng.randrange(10**6):06d}Z"
        second = rng.choice([59, 100, 119])
        begin = stamp(second)
        children = [(stamp(second + rng.choice([0, 0, 0, 0, 1, 2])), rng.choice([None, rng.uniform(0, 1500)]))
                    for _ in range(rng.randrange(1, 5))]
        total = rng.choice([rng.uniform(0, 3000), float(rng.randrange(3000))])
        assert repr(own_ms(total, begin, children)) == repr(reference(total, begin, children)), (total, begin, children)


def test_children_of_the_same_second_other_seconds_and_minutes() -> None:
    begin = "2026-11-24T10:00:40.500000Z"
    # 40.5 s + 100 ms: the first child, 100 ms long; the second starts at 59.9 s (19.4 s in) and runs past the end.
    children = [("2026-11-24T10:00:40.600000Z", 100.0), ("2026-11-24T10:00:59.900000Z", None)]
    assert own_ms(20_000.0, begin, children) == reference(20_000.0, begin, children) == 20_000.0 - 100.0 - 600.0
    assert own_ms(100.0, begin, [("2026-11-24T10:01:40.500000Z", 5.0)]) == 100.0  # a minute later: past the end
    assert own_ms(100.0, begin, [("2026-11-24T10:00:4x.500000Z", 5.0)]) is None  # a start that does not read
    assert own_ms(100.0, "2026-11-24T10:00:4x.500000Z", [("2026-11-24T10:00:4x.600000Z", 5.0)]) is None
