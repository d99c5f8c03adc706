"""MovieLens 100K for real, through the offline fallback (the recbole wheel from PyPI)."""

import pytest

from embedrec.config import Config
from embedrec.data.dataset import load_dataset
from embedrec.ingestion import ingest


@pytest.mark.network
@pytest.mark.slow
def test_ml100k_through_the_offline_fallback(tmp_path, caplog):
    cfg = Config()
    cfg = cfg.updated({"split.valid": 0.0, "split.test": 0.0})
    s = ingest(cfg.data, cfg.split, output=tmp_path / "ml")
    assert s["counts"] == {"users": 943, "movies": 1682, "ratings": 100000}
    ds = load_dataset(tmp_path / "ml")
    m = ds.movies.set_index("movie_id")
    assert m.loc[1, "title"] == "Toy Story" and m.loc[1, "year"] == 1995
    assert list(m.loc[1, "genres"]) == ["Animation", "Children", "Comedy"]
    assert set(ds.users.columns) >= {"age", "gender", "occupation", "zip"}
