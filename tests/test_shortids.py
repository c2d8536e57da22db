"""Short ids: the compact map (a 7-hex-digit short id kept as the number it spells, its holder as
hash bits) assigns exactly what a plain map from short id to full id assigns, for any ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rtrace.core.read.shortids import MIN_LENGTH, ShortIds


class PlainShortIds:
    """The rule with nothing compacted: short id (a str) -> the full id that holds it."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}

    def __call__(self, full_id: str) -> str:
        tail = full_id[-MIN_LENGTH - 1:]
        if len(tail) > MIN_LENGTH and "-" not in tail:
            short = tail[1:]
            holder = self.owner.setdefault(short, full_id)
            if holder == full_id:
                return short
        plain = full_id.replace("-", "")
        length = MIN_LENGTH
        while True:
            short = plain[-length:] if length < len(plain) else plain
            holder = self.owner.setdefault(short, full_id)
            if holder == full_id or length >= len(plain):
                return short
            length += 1


# UUIDs (lower and upper case), ids that are hex but for a letter, `_`, `+`, a space, non-ASCII
# digits, and ids of 6 to 9 characters from two letters (tails that collide all the time).
_CHARS = st.sampled_from([*"0123456789abcdefABCDEF-_+ gz", "é", "٣"])
IDS = st.one_of(st.text(_CHARS, max_size=12), st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
                st.text(st.sampled_from("0a-"), min_size=6, max_size=9))


@settings(max_examples=400, deadline=None)
@given(st.lists(IDS, max_size=25).flatmap(
    lambda ids: st.permutations(ids + ids[: len(ids) // 2] + [i.swapcase() for i in ids[len(ids) // 2:]])))
def test_short_ids_are_those_of_a_plain_map(ids: list[str]) -> None:
    compact, plain = ShortIds(), PlainShortIds()
    for full_id in ids:  # some ids asked again, and some in the other case: one tail, two ids
        assert compact(full_id) == plain(full_id), (ids, full_id)
