"""The buzhash rolling hash (github.com/kch42/buzhash) with Noms's 67-byte window (NOMS-VALUES.md 7.2)."""

from __future__ import annotations

WINDOW = 67

_TABLE_HEX = """
12bd9527 f4140cea 987bd6e1 79079850 afbfd539 d350ce0a 82973931 9fc32b9c
28003b88 c30c13aa 6b678c34 5844ef1d aa552c18 4a77d3e8 d1f62ea0 6599417c
fbe30e7a f9e2d5ee a1fca42e 41548969 116d5b59 aeda1e1a c5191c17 54b9a3cb
727e492a 5c432f91 31a50bce c2696af6 217c8020 1262aefc ace75924 9876a04f
af300bc2 3ffce3f6 d6680fb5 d0b1ced8 6651f842 736fadef bc2d3429 b03d2904
7e634ba4 dfd87d8c 7988d63a 4be4d933 6a8d0382 9e132d62 3ee9c95f fec05b97
6907ad34 8616cfcc a6aabf24 8ad1c92e 4f2affc0 b87519db 6576eaf6 15dbe00a
63e1dd82 a36b6a81 eead99b3 bc6a4309 3478d1a7 2182bcc0 dd50cfce 7cb25580
73075483 503b7f42 4cd50d63 3f4d94c9 385fcbb7 90daf16c ece10b8e 11c1cb04
816a899b 69a29d06 fb090b37 f98ef13c 07653435 9f15dc42 3b43abdf 1334283f
93f3d9af 0cbdfe71 a788a614 4f54d2f0 d4374fc7 70557ce7 f741fce8 e4b6f661
c630cb98 387a6366 72f428fd 539009db c53e3810 1e1a52e5 7d6816b0 040f9b81
9c99c9fb 9f3af3d2 774d1061 d5c840ea 8e1480fe 6ee4023c 2fbda535 d88eff7a
d8632a2a 43c4e024 3ef27971 c72866fd e35cc630 46d96220 437a8384 e92caf0c
6290a47e a7bb9238 0e1000f9 49e76bdc 3acfb4b8 03582b8e 6ea2de4e 2ec1008d
fcc8df69 91c2fe0a b471c7d9 778be812 70d29ad1 76411cbf c302e81c 4e445194
22e3aa72 b65762e9 a280db05 827aa70e 4c531a9d 7a60bf4a 8fd95a44 2289aef0
cd50ddc4 639aae69 5fe85ed6 4ed724ff 00f04f7d 95a5fcb0 88255d15 a603d2c9
f6956a5b 53ea7f3e b570f225 2b3be203 a181e40e c413cdce a7cb1ebb cf258b1f
516eb016 ca204586 d1e69894 e85a73d3 7db2d382 ae73b463 3598d643 5087c864
d91f30b6 e1d4d1e7 73b3b337 ceac1233 8edf7845 a69c45c9 db5db3ab 28cfade8
ebfa49e7 cbc2a659 59cce971 959a01af 8ee9aae7 fb2f01c6 5a752836 9ed12981
618d05b6 93ec12b3 4590c779 ed1317a2 03fe5835 7ad3c6f7 d4aad5b5 1a995ed7
247bfaa4 69c2c799 745fa405 c5b9f239 c3d9aebc a6f60e0b df1e91d7 ab8e041c
ee3188c6 37377a9e c0e1a3bf 19a5a9e4 56cb9556 c4d33d3f fb1eb03e f9557057
1be31d37 d1fa65f1 f518d714 570ac722 f26cf66a 24794d47 8ba2e402 3f5137e6
35be1453 43350478 9f05ee88 364cf9cf 39a23ee7 a4db8d49 c2ebb3d2 c6fb99d5
e014dfb0 7156d425 e090a87a 4cc12f78 1b30f503 06694a7a 68198cd1 2f8345bd
9d79198e d871943f 22ef6cf4 e81b1c15 067b61d8 fc4ea4f5 fe6dab57 1bf744ba
a70b6a25 afe6e412 c6c1a05c 8ffbe3ce c4270af1 f3f36373 c4507dd8 5e6fd1e2
58cd9739 47d3c5b5 e1d5a343 3d4dea4a 893d91ae bb2a5e2a 0d57b800 652a7cc9
6a68ccfd 62529f0b ec5f36d6 766cceda 96ca63ef a0499838 d9030f59 8185f4d2
"""

TABLE: tuple[int, ...] = tuple(int(word, 16) for word in _TABLE_HEX.split())


def _rotl32(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


OUT_TABLE: tuple[int, ...] = tuple(_rotl32(t, WINDOW % 32) for t in TABLE)
"""``T[b]`` rotated by the window size: what a byte contributes when it leaves the window."""


class BuzHash:
    """Rolling hash state; ``hash_byte`` returns the new 32-bit sum."""

    __slots__ = ("state", "window", "pos", "full")

    def __init__(self) -> None:
        self.state = 0
        self.window = bytearray(WINDOW)
        self.pos = 0
        self.full = False

    def hash_byte(self, b: int) -> int:
        if self.pos == WINDOW:
            self.full = True
            self.pos = 0
        s = ((self.state << 1) & 0xFFFFFFFF) | (self.state >> 31)
        if self.full:
            s ^= OUT_TABLE[self.window[self.pos]]
        self.window[self.pos] = b
        self.pos += 1
        s ^= TABLE[b]
        self.state = s
        return s
