"""A model's life past its run folder: a copy holds the folder on its own, a moved run is named by its old path,
a closed in-memory model says how to get one back (a Python-library review)."""

import copy
import os
import shutil

import pytest

import embedrec as er
from embedrec.fsutil import locks


def _own_run(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run.cfg.run.dir, run, symlinks=True)
    return run


def test_a_copy_holds_the_run_folder_on_its_own(trained_run, tmp_path, monkeypatch):
    m = er.open(_own_run(trained_run, tmp_path))
    user = int(m.user_ids[0])
    want = m.recommend(user, k=3).movie_ids[0].tolist()
    opened = []
    real = locks.FolderHold.__init__
    monkeypatch.setattr(locks.FolderHold, "__init__", lambda self, *a, **k: opened.append(a) or real(self, *a, **k))
    c = copy.copy(m)
    assert len(opened) == 1 and c.engine.run.hold is not m.engine.run.hold and c.engine.run.hold.fd is not None
    m.close()  # the original lets go of its own lock only
    assert c.engine.run.hold.fd is not None
    assert c.recommend(user, k=3).movie_ids[0].tolist() == want
    c.close()
    d = copy.deepcopy(er.open(tmp_path / "run"))  # in memory, holding nothing, as a pickle
    assert d.recommend(user, k=3).movie_ids[0].tolist() == want


def test_a_moved_run_is_named_by_its_old_path(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = er.open(_own_run(trained_run, tmp_path))
    os.rename(tmp_path / "run", tmp_path / "moved")
    with pytest.raises(er.ArtifactError) as e:
        m.evaluate("test")
    assert str(e.value).startswith(f"the model folder '{m.engine.run.path}' this model reads ")
    assert str(e.value).endswith("from is gone (its run folder 'run' too: moved or removed); open the run again: "
                                 "er.open('NEW/PATH') where it is now, or train it again if it was removed")
    m.close()


def test_a_closed_model_says_how_to_get_it_back(trained_run, tmp_path):
    from embedrec.trained import TrainedModel

    tm = trained_run.model
    fresh = copy.copy(tm)  # (the session's model stays open)
    assert isinstance(fresh, TrainedModel) and fresh._saved is not None
    fresh.close()
    with pytest.raises(er.UsageError, match=r"open the run again \(er\.open\('.+'\)\) to use it"):
        fresh.recommend(1, k=1)
    unsaved = copy.copy(tm)
    unsaved._saved = None
    unsaved.close()
    with pytest.raises(er.UsageError) as e:
        unsaved.recommend(1, k=1)
    assert str(e.value) == ("this model was closed, and it was never saved, so no run holds it: train it again "
                            "(er.train), or save it first (model.save()) and er.open its run after a close")
