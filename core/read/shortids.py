"""Short ids that tell runs apart: the shortest unused tail of an id, assigned in log order.

rtrace's ids are time-ordered UUIDs, so their heads are alike (every run of one
second shares its first 8 hex digits) and their tails are random. A run's short
id is the last ``MIN_LENGTH`` characters of its id (dashes dropped), or more
when that tail was already given to an earlier, different id in the same read
of the log. Reading a log assigns the same short ids every time, so the short
id a table shows is accepted back by ``--run`` / ``--trace`` and names one run.
Memory: one small entry per distinct id (the owner is kept as hash bits, not the id).
"""

from __future__ import annotations

MIN_LENGTH = 7  # git's default: 28 bits; a collision only lengthens the later id


# A short id of MIN_LENGTH lowercase hex digits (nearly all of them) is kept as the number it
# spells, ~30 bytes less than the string; its holder as 30 bits of the full id's hash.
_HEX = frozenset("0123456789abcdef")
_OWNER_BITS = (1 << 30) - 1  # a small int; two ids with one tail and these 30 bits: 1 in 10^9


def _key(short: str) -> int | str:
    """How ``short`` is kept: one key per short id, never two for one or one for two."""
    if len(short) == MIN_LENGTH and _HEX.issuperset(short):
        return int(short, 16)
    return short


class ShortIds:
    """Assigns each distinct id one short id, unique among all assigned so far."""

    __slots__ = ("_owner",)

    def __init__(self) -> None:
        self._owner: dict[int | str, int] = {}  # short id (``_key``) -> hash bits of the full id that holds it

    def __call__(self, full_id: str) -> str:
        """The short id of ``full_id`` (assigned now if it has none yet)."""
        owner = hash(full_id) & _OWNER_BITS
        taken = self._owner
        tail = full_id[-MIN_LENGTH - 1:]
        if len(tail) > MIN_LENGTH and "-" not in tail:  # a UUID's last group: the tail is the id's, dashes or not
            short = tail[1:]
            key = _key(short)
            holder = taken.get(key)
            if holder is None:
                taken[key] = owner
                return short
            if holder == owner:
                return short
        plain = full_id.replace("-", "")
        length = MIN_LENGTH
        while True:
            short = plain[-length:] if length < len(plain) else plain
            key = _key(short)
            holder = taken.get(key)
            if holder is None:
                taken[key] = owner
                return short
            if holder == owner or length >= len(plain):
                return short  # already this id's (or nothing longer to take: the id itself)
            length += 1

    def __len__(self) -> int:
        return len(self._owner)
