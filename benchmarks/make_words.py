"""Regenerate ``pyro_ar/program/data/words.npz``, the English words data set of ``--data words``.

Source: ``/usr/share/dict/american-english`` from Debian's ``wamerican`` package (SCOWL,
public domain; ``apt-get install wamerican``). Kept: words of lower-case letters a-z only
(no capitals, apostrophes or accents) of at most ``MAX_LETTERS`` letters, deduplicated and
sorted, then split with a fixed seed into train / valid / test. Each word is stored as
``MAX_LETTERS + 1`` codes (uint8): 1..26 for a..z, then 0 (end of word) to the end, so every
word ends with at least one end symbol.

    python benchmarks/make_words.py [--source PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

MAX_LETTERS = 12
NUM_VALID = NUM_TEST = 5000
SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "pyro_ar" / "program" / "data" / "words.npz"


def read_words(path: Path) -> list:
    """The kept words of the list at ``path``, sorted."""
    text = path.read_text(encoding="utf-8")
    return sorted({w for w in text.split() if re.fullmatch(r"[a-z]+", w) and len(w) <= MAX_LETTERS})


def encode(words: list) -> np.ndarray:
    """``(N, MAX_LETTERS + 1)`` uint8 codes: letters 1..26, end/padding 0."""
    codes = np.zeros((len(words), MAX_LETTERS + 1), dtype=np.uint8)
    for row, word in enumerate(words):
        codes[row, : len(word)] = np.frombuffer(word.encode("ascii"), dtype=np.uint8) - ord("a") + 1
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/dict/american-english"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    codes = encode(read_words(args.source))
    perm = np.random.default_rng(SEED).permutation(len(codes))
    valid, test, train = np.split(codes[perm], [NUM_VALID, NUM_VALID + NUM_TEST])
    np.savez_compressed(args.out, train=train, valid=valid, test=test)
    print(f"wrote {args.out}: train {len(train)}, valid {len(valid)}, test {len(test)} words "
          f"of <= {MAX_LETTERS} letters ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
