"""The per-level chunk-boundary detector of the prolly-tree chunker (NOMS-VALUES.md 7.3, 7.4).

Value levels append each item's encoding to ``src`` and run the "sloppy"
Snappy-like estimator over it; its output (literal bytes and 3-byte copy
codes), XORed with the level salt, feeds a buzhash.  A boundary is found when
the low 12 bits of the hash are all ones.  Blob leaves hash raw bytes instead
(``hash_byte``).  The buzhash is inlined in ``_update`` because this loop runs
once per encoded byte.
"""

from __future__ import annotations

from nbs.noms.buzhash import OUT_TABLE, TABLE, WINDOW, BuzHash

PATTERN = 0x0FFF
MAX_CHUNK_BYTES = 1 << 24

SLOPPY_TABLE_SIZE = 1 << 14
SLOPPY_TABLE_MASK = SLOPPY_TABLE_SIZE - 1
SLOPPY_MAX_OFFSET = (1 << 12) - 1
SLOPPY_MAX_LENGTH = (1 << 12) - 1


def copy_min_length(offset: int) -> int:
    """Shortest copy worth emitting at ``offset``: 4 for the nearer half of the window, 8 next, ..."""
    i = 12 - (4096 - offset).bit_length()
    return 4 << i if i > 0 else 4


class RollingValueHasher:
    """Boundary detection state for one tree level (salt = level mod 256)."""

    __slots__ = ("salt", "crossed", "bz", "src", "idx", "matching", "moff", "mlen", "table")

    def __init__(self, salt: int) -> None:
        self.salt = salt
        self.reset()

    def reset(self) -> None:
        self.crossed = False
        self.bz = BuzHash()
        self.src = bytearray()
        self.idx = 0
        self.matching = False
        self.moff = 0
        self.mlen = 0
        self.table = [0] * SLOPPY_TABLE_SIZE

    def hash_byte(self, b: int) -> bool:
        """Feed one raw byte (blob leaves); returns whether a boundary has been crossed."""
        if not self.crossed:
            s = self.bz.hash_byte(b ^ self.salt)
            self.crossed = (s & PATTERN) == PATTERN
        return self.crossed

    def hash_encoded(self, data: bytes) -> bool:
        """Append an item's encoding and run the sloppy estimator over the new bytes."""
        self.src += data
        if not self.crossed:
            self._update()
        return self.crossed

    def _update(self) -> None:
        src = self.src
        limit = len(src) - 3
        idx = self.idx
        if idx >= limit:
            return
        forced = len(src) > MAX_CHUNK_BYTES
        salt = self.salt
        table = self.table
        matching, moff, mlen = self.matching, self.moff, self.mlen
        bz = self.bz
        state, window, wpos, full = bz.state, bz.window, bz.pos, bz.full
        crossed = False

        # ``emit`` bytes go through this inlined buzhash; it returns True at a boundary.
        def emit(b: int) -> bool:
            nonlocal state, wpos, full, crossed
            b ^= salt
            if wpos == WINDOW:
                full = True
                wpos = 0
            s = ((state << 1) & 0xFFFFFFFF) | (state >> 31)
            if full:
                s ^= OUT_TABLE[window[wpos]]
            window[wpos] = b
            wpos += 1
            state = s ^ TABLE[b]
            crossed = forced or (state & PATTERN) == PATTERN
            return crossed

        while idx < limit:
            h = ((((src[idx] | (src[idx + 1] << 8) | (src[idx + 2] << 16) | (src[idx + 3] << 24))
                   * 0x1E35A7BD) & 0xFFFFFFFF) >> 20) & SLOPPY_TABLE_MASK
            if matching and (mlen > SLOPPY_MAX_LENGTH or src[idx] != src[moff + mlen]):
                offset, length = idx - (moff + mlen), mlen
                matching, moff, mlen = False, 0, 0
                if length >= copy_min_length(offset):
                    if (emit((offset >> 4) & 0xFF) or emit(((offset << 4) | (length >> 4)) & 0xFF)
                            or emit(length & 0xFF)):
                        break
                elif any(emit(src[j]) for j in range(idx - length, idx)):
                    break
            if idx > 0 and (not matching or mlen < 3):
                mp = table[h]
                if idx > mp and src[idx] == src[mp] and idx - mp <= SLOPPY_MAX_OFFSET and (
                        not matching or mp >= moff + 4):
                    if matching and any(emit(src[j]) for j in range(idx - mlen, idx)):
                        break
                    matching, moff, mlen = True, mp, 0
            table[h] = idx
            if matching:
                mlen += 1
            else:
                # A literal: the same steps as ``emit``, inlined because this is the hot path.
                b = src[idx] ^ salt
                if wpos == WINDOW:
                    full = True
                    wpos = 0
                state = ((state << 1) & 0xFFFFFFFF) | (state >> 31)
                if full:
                    state ^= OUT_TABLE[window[wpos]]
                window[wpos] = b
                wpos += 1
                state ^= TABLE[b]
                if forced or (state & PATTERN) == PATTERN:
                    crossed = True
                    break
            idx += 1

        self.idx = idx
        self.matching, self.moff, self.mlen = matching, moff, mlen
        bz.state, bz.pos, bz.full = state, wpos, full
        self.crossed = crossed
