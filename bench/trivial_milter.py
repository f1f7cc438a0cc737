"""The reference for bench/milter_overhead.py: a pymilter milter that does nothing at all."""

from __future__ import annotations

import sys

import Milter


class Trivial(Milter.Base):  # type: ignore[misc]
    pass


def main() -> None:
    Milter.factory = Trivial
    Milter.runmilter("trivial", sys.argv[1], timeout=60)


if __name__ == "__main__":
    main()
