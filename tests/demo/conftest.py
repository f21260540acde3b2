"""Generated demo data shared by the demo tests (generated once per test session and worker)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from keepwell.demo.generator import DemoManifest, generate

END = date(2026, 6, 1)
"""A fixed end of history, so every run of the tests sees the same data."""


class Demo:
    """A generated demo directory with its files loaded as DataFrames on demand."""

    def __init__(self, manifest: DemoManifest) -> None:
        self.manifest = manifest
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            if name == "events":
                table = ds.dataset(self.manifest.files["events"], format="parquet").to_table()
                self._frames[name] = table.to_pandas()
            else:
                path = self.manifest.truth if name == "truth" else self.manifest.files[name]
                self._frames[name] = pd.read_csv(path, keep_default_na=False, na_values=[""])
        return self._frames[name]

    @property
    def dir(self) -> Path:
        return self.manifest.out_dir


@pytest.fixture(scope="session")
def saas_demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The default-size SaaS business (2,000 customers, 24 months)."""
    return Demo(generate(tmp_path_factory.mktemp("saas"), end=END))


@pytest.fixture(scope="session")
def shop_demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The default-size shop business."""
    return Demo(generate(tmp_path_factory.mktemp("shop"), business="shop", end=END))
