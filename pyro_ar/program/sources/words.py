"""``--data words``: English words as sequences of letters, for character-level models.

60,678 words of lower-case letters a-z, at most 12 letters each, from the public-domain
SCOWL word list of Debian's ``wamerican`` package (``benchmarks/make_words.py`` rebuilds
the file from ``/usr/share/dict/american-english``). Each word is 13 categorical codes:
1..26 for a..z, then 0 (end of word, repeated as padding), so a model also learns where words
end. Fixed split: train 50,678, valid 5,000, test 5,000 words.
"""

from __future__ import annotations

import string
from importlib import resources

import numpy as np

from pyro_ar.program.data_files import SPLIT_NAMES, RawSource, register_source

__all__ = ["WORDS_ALPHABET", "load_words"]

#: The symbol of each code: "" (end of word / padding) for 0, then a..z.
WORDS_ALPHABET = ["", *string.ascii_lowercase]


def load_words() -> RawSource:
    """The words data set as a :class:`RawSource` of categorical codes (float64, ``(N, 13)``)."""
    with resources.files("pyro_ar.program").joinpath("data", "words.npz").open("rb") as f, np.load(f) as arrays:
        splits = {name: arrays[name].astype(np.float64) for name in SPLIT_NAMES}
    return RawSource("words", splits, alphabet=WORDS_ALPHABET)


register_source("words", load_words)
