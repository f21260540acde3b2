"""Small vectorised helpers shared by the demo simulations (draws, record ledgers, strings)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class ChunkResult:
    """One simulated chunk: its rows per output file, and its event batches (a generator
    that must be consumed after the tables are taken, as both draw from one generator)."""

    tables: dict[str, pa.Table]
    events: Iterator[pa.Table]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def choice(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    """``n`` indexes drawn with the given (unnormalised) weights."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1)


def choice_rows(rng: np.random.Generator, matrix, row: np.ndarray) -> np.ndarray:
    """One index per element of ``row``, drawn with the probabilities ``matrix[row]``."""
    cdf = np.cumsum(np.asarray(matrix, dtype=np.float64), axis=1)[row]
    return np.minimum((rng.random(len(row))[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.normal(size=n))


@dataclass
class Ledger:
    """Records collected column-wise during a simulation, concatenated at the end."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **values: np.ndarray) -> None:
        for key, value in values.items():
            self.columns.setdefault(key, []).append(np.asarray(value))

    def frame(self, *keys: str, by: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The columns ``keys``, rows sorted by the columns ``by`` (first = primary key)."""
        out = {
            k: np.concatenate(self.columns[k]) if k in self.columns else np.zeros(0, np.int64)
            for k in keys
        }
        if by:
            order = np.lexsort(tuple(out[k] for k in reversed(by)))
            out = {k: v[order] for k, v in out.items()}
        return out


def rank_within(group: np.ndarray) -> np.ndarray:
    """1-based running number of each row within its group (rows sorted by group)."""
    if len(group) == 0:
        return np.zeros(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    return np.arange(len(group)) - first + 1


def strings(options: tuple[str, ...], index: np.ndarray) -> pa.Array:
    """``options[index]`` as an Arrow string array; a negative index gives null."""
    index = np.asarray(index, dtype=np.int64)
    missing = index < 0
    return pa.array(options, pa.string()).take(pa.array(np.where(missing, 0, index), mask=missing))


def join_tags(present: dict[str, np.ndarray]) -> pa.Array:
    """Tag names joined with ';' per row where their mask is set; null when a row has none."""
    columns = [strings((tag,), np.where(mask, 0, -1)) for tag, mask in present.items()]
    joined = pc.binary_join_element_wise(*columns, ";", null_handling="replace")
    joined = pc.utf8_trim(pc.replace_substring_regex(joined, ";{2,}", ";"), ";")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
