"""Seeded, vectorised fake names: people, companies, e-mail addresses and ids.

Names come from the word lists in :mod:`keepwell.demo.vocab`, drawn with numpy and glued with
Arrow string kernels, so a million names cost well under a second. Company names are unique for
the first ~9,600 customers (a bijection of the customer number), then repeat, as real ones do.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keepwell.demo import vocab

BRANDS = tuple(h + t for h in vocab.BRAND_HEADS for t in vocab.BRAND_TAILS if h.lower() != t)
_NOUNS_PER_INDUSTRY = min(len(nouns) for _, _, nouns in vocab.INDUSTRIES)
_COMBOS = len(BRANDS) * _NOUNS_PER_INDUSTRY
_STRIDE = 7_919  # prime, coprime with _COMBOS: customer number -> combination is a bijection


def _flat(lists: dict[str, tuple[str, ...]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    words: list[str] = []
    offsets, sizes = [], []
    for region in vocab.REGIONS:
        offsets.append(len(words))
        sizes.append(len(lists[region]))
        words.extend(lists[region])
    return pa.array(words), np.array(offsets), np.array(sizes)


_FIRST = _flat(vocab.FIRST_NAMES)
_LAST = _flat(vocab.LAST_NAMES)


def _pick(rng: np.random.Generator, table: tuple, region: np.ndarray) -> pa.Array:
    words, offsets, sizes = table
    index = offsets[region] + (rng.random(len(region)) * sizes[region]).astype(np.int64)
    return words.take(pa.array(index))


def person_names(rng: np.random.Generator, region: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """First and last names for people of the given name regions (indexes of vocab.REGIONS)."""
    return _pick(rng, _FIRST, region), _pick(rng, _LAST, region)


def company_names(number: np.ndarray, industry: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Display names ("Bluefield Travel") and domain slugs ("bluefield-travel") of companies.

    ``number`` is the customer number (unique names while < ~9,600), ``industry`` an index
    of vocab.INDUSTRIES.
    """
    combo = (number.astype(np.int64) * _STRIDE + 1_237) % _COMBOS
    brand = pa.array(BRANDS).take(pa.array(combo % len(BRANDS)))
    nouns = [nouns[i] for _, _, nouns in vocab.INDUSTRIES for i in range(_NOUNS_PER_INDUSTRY)]
    noun = pa.array(nouns).take(pa.array(industry * _NOUNS_PER_INDUSTRY + combo // len(BRANDS)))
    name = pc.binary_join_element_wise(brand, noun, " ")
    slug = pc.utf8_lower(pc.binary_join_element_wise(brand, noun, "-"))
    return name, slug


def emails(first: pa.Array, last: pa.Array, domain: pa.Array) -> pa.Array:
    """``first.last@domain`` in lower case."""
    local = pc.binary_join_element_wise(first, last, ".")
    return pc.utf8_lower(pc.binary_join_element_wise(local, domain, "@"))


def numbered(prefix: str, number: np.ndarray, width: int) -> pa.Array:
    """Ids such as ``C0000042``: ``prefix`` + zero-padded ``number``."""
    digits = pc.utf8_lpad(pa.array(number.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def suffixed(base: pa.Array, separator: str, number: np.ndarray, width: int) -> pa.Array:
    """Ids such as ``C0000042-S03``: ``base`` + ``separator`` + zero-padded ``number``."""
    digits = pc.utf8_lpad(pa.array(number.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(base, pa.scalar(separator), digits, "")
