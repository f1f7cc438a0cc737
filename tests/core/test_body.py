"""The body buffer: what goes in comes out, in bounded chunks, in memory or spooled."""

from __future__ import annotations

import random

import pytest

from mailwarden.core.model import Body


@pytest.mark.parametrize("seed", range(4))
def test_chunks_return_exactly_what_was_written(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(seed)
    for _ in range(300):
        threshold = rnd.choice([0, 10, 1000, 1 << 20])
        body, data = Body(threshold), b""
        for _ in range(rnd.randint(0, 4)):
            chunk = rnd.randbytes(rnd.choice([0, 1, 5, 100, 3000]))
            body.write(chunk)
            data += chunk
        monkeypatch.setattr(Body, "CHUNK", rnd.choice([3, 1000, 65536]))
        limit = rnd.choice([None, 0, 1, 7, 500, 100000])
        out = list(body.chunks(limit))
        assert b"".join(out) == (data if limit is None else data[:limit])
        assert all(0 < len(c) <= Body.CHUNK for c in out)
        assert body.size == len(data)
        assert body.spooled == (len(data) > threshold)
        body.close()
