"""A lasting update of users' vectors without retraining (embedrec/user_update.py, er.update_users, embedrec
update-users): the users named in a ratings file re-solved as the run's als training solved them, published as the
run's new model folder (implicit's partial_fit_users)."""

import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embedrec as er
from embedrec.config import load_config
from embedrec.errors import Busy, DataError, NotFoundError, UsageError
from embedrec.run_updates import trained_movies, trained_users, updates_said, updates_summary
from embedrec.user_update_write import merged_seen

sys.path.insert(0, str(Path(__file__).parent))
from test_reliability import invoke, one_line  # noqa: E402  (the CLI through CliRunner; a failure's one line)
from test_trend import _cfg, _hits_dataset  # noqa: E402  (datasets of rows in memory)
from test_update import _tastes_dataset  # noqa: E402


def write_ratings(path: Path, rows, header="user_id,movie_id,rating") -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------ by hand
def test_merged_seen_by_hand():
    """Three users' seen movies [1, 4] [] [0, 2, 7] with weights; user 0 gains 2 and 5, user 1 gains 3, user 2
    nothing: each user's movies stay sorted, weights follow their movies, the row pointers shift, dtypes kept."""
    ptr = np.array([0, 2, 2, 5], np.int64)
    idx = np.array([1, 4, 0, 2, 7], np.int32)
    w = np.array([1.0, 2.0, 3.0, 0.0, 4.0], np.float32)
    p, i, ww = merged_seen(ptr, idx, w, np.array([0, 1]), [np.array([2, 5]), np.array([3])],
                           [np.array([9.0, 0.0]), np.array([8.0])])
    assert p.tolist() == [0, 4, 5, 8] and i.tolist() == [1, 2, 4, 5, 3, 0, 2, 7]
    assert ww.tolist() == [1.0, 9.0, 2.0, 0.0, 8.0, 3.0, 0.0, 4.0]
    assert (p.dtype, i.dtype, ww.dtype) == (np.int64, np.int32, np.float32)
    same = merged_seen(ptr, idx, w, np.zeros(0, np.int64), [], [])
    assert [a.tolist() for a in same] == [ptr.tolist(), idx.tolist(), w.tolist()]


def test_updates_said_by_hand():
    assert updates_said({}) is None and updates_said({"updates": "x"}) is None
    one = {"at": "T1", "users": 100, "pairs_solved": 1000}
    assert updates_said({"updates": [one]}) == ("update-users re-solved 100 of its users with 1,000 ratings made "
                                                "since training, at T1")
    assert updates_said({"updates": [one, {**one, "at": "T2", "users": 3}]}) == (
        "update-users re-solved its users with ratings made since training 2 times, 103 user re-solves and 2,000 "
        "ratings in all, the last at T2")  # a user re-solved in both counts twice: the records keep no user ids
    assert updates_said({"updates": [{"at": "T1", "users": 1, "pairs_solved": 1}]}) == (
        "update-users re-solved 1 of its users with 1 rating made since training, at T1")
    # users added: said beside those re-solved, or alone
    assert updates_said({"updates": [{**one, "users_added": 20, "users_in_all": 120}]}) == (
        "update-users re-solved 100 of its users and added 20 new users with 1,000 ratings made since training, "
        "at T1")
    assert updates_said({"updates": [{**one, "users": 0, "users_added": 1, "users_in_all": 1}]}) == (
        "update-users added 1 new user with 1,000 ratings made since training, at T1")
    # several updates whose records count distinct users (users_in_all): a user updated twice is one user
    two = [{**one, "users_added": 20, "users_in_all": 120}, {**one, "at": "T2", "users": 30, "users_in_all": 130}]
    assert updates_said({"updates": two}) == (
        "update-users updated the run with ratings made since training 2 times, 130 users in all (20 of them "
        "added), with 2,000 ratings, the last at T2")
    assert updates_summary({"updates": two}) == {"updates": 2, "users": 110, "users_added": 20, "ratings": 2000,
                                                  "distinct": True, "at": "T2", "movies_added": 0}
    # a record of before users_in_all (null) among them: re-solves summed, said as such
    assert updates_said({"updates": [one, {**two[1], "users_added": 2, "users_in_all": None}]}) == (
        "update-users re-solved its users with ratings made since training 2 times, 130 user re-solves and 2 new "
        "users added and 2,000 ratings in all, the last at T2")
    assert trained_users({"n_users": 945, "updates": two}) == 925 and trained_users({"n_users": 943}) == 943
    # movies added (update-users --new-movies): said with the ratings, and told apart from the dataset's
    three = [*two, {**one, "at": "T3", "users": 5, "users_in_all": 135, "movies_added": 2, "n_movies": 1652}]
    assert updates_said({"updates": three}) == (
        "update-users updated the run with ratings made since training 3 times, 135 users in all (20 of them "
        "added), with 3,000 ratings (adding 2 new movies), the last at T3")
    assert trained_movies({"n_movies": 1652, "updates": three}) == 1650 and trained_movies({"n_movies": 9}) == 9


def test_updates_records_that_do_not_add_up_are_refused_by_hand(tmp_path):
    """run_updates.check_updates (load_run's and verify's): the records' users_added are the users after the
    dataset's (dataset.counts.users, where recorded), each record's n_users the users after it; a red team's
    re-sealed users_added 2000, or none at all with updated_users.npy listed, changed which users were added."""
    from embedrec.errors import ArtifactError
    from embedrec.run_updates import check_updates

    def check(manifest):
        check_updates(manifest, tmp_path / "manifest.json", "fix")

    records = [{"users": 1, "users_added": 5, "n_users": 948}, {"users": 0, "users_added": 5, "n_users": 953}]
    ds = {"counts": {"users": 943}}
    check({"n_users": 953, "dataset": ds, "updates": records})
    check({"n_users": 943, "dataset": ds})  # a trained model (its n_users checked against its tables)
    check({"n_users": 953, "updates": records})  # a dataset that records no counts
    for manifest, said in (
            ({"n_users": 953, "dataset": ds, "updates": [{**records[0], "users_added": 10}, records[1]]},
             "'updates[*].users_added' add up to 15 users, where the run's 953 (n_users) less its dataset's 943 "
             "(dataset.counts.users) are 10"),
            ({"n_users": 953, "updates": [{**records[0], "users_added": 2000}, records[1]]},
             "'updates[*].users_added' add up to 2,005 users, more than the run's 953 (n_users)"),
            ({"n_users": 953, "updates": [records[0], {**records[1], "n_users": 952}]},
             "'updates[1].n_users' is 952, where the users before it and its users_added make 953"),
            ({"n_users": 953, "updates": [{**records[0], "users_added": True}, records[1]]},
             "'updates[0].users_added' is true, not a whole number >= 0"),
            # update-users --new-movies' movies: as the users (trained_movies reads them)
            ({"n_users": 953, "n_movies": 1653, "dataset": {"counts": {"users": 943, "movies": 1650}},
              "updates": [{**records[0], "movies_added": 2, "n_movies": 1652}, records[1]]},
             "'updates[*].movies_added' add up to 2 movies, where the run's 1,653 (n_movies) less its dataset's "
             "1,650 (dataset.counts.movies) are 3"),
            ({"n_users": 953, "n_movies": 1652, "updates": [{**records[0], "movies_added": 2, "n_movies": 1651},
                                                            records[1]]},
             "'updates[0].n_movies' is 1,651, where the movies before it and its movies_added make 1,652"),
            ({"n_users": 953, "n_movies": 1652, "updates": [{**records[0], "movies_added": 2, "n_movies": 1652},
                                                            {**records[1], "movies_resolved": 3}]},
             "'updates[1].movies_resolved' is 3, more than the 2 movies earlier updates added"),
            ({"n_users": 943, "dataset": ds, "updates": [], "checksums": {"updated_users.npy": {}}},
             "'updates' records no update, though it lists updated_users.npy")):
        with pytest.raises(ArtifactError, match=re.escape(f"run manifest '{tmp_path / 'manifest.json'}': {said}")):
            check(manifest)


# ------------------------------------------------------------------------------------ trained runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Saved als runs, never written to (each test copies the one it updates): :func:`saved_runs`."""
    return saved_runs(tmp_path_factory.mktemp("update-users"))


def saved_runs(tmp: Path) -> dict:
    """'taste', six planted tastes (users like the movies of their own), fitted with the recency weight (a new
    rating weighs 1 + 2); 'hits', users' tastes and recent hits, fitted with the recency weight, recent popularity
    and users' activity weights (user_scale.npy): saved runs in ``tmp``."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        for name, ds, sets in (("taste", _tastes_dataset(), ("train.als_recency=2",)),
                               ("hits", _hits_dataset(), ("train.als_recency=2", "train.als_trend=4",
                                                          "train.als_trend_activity=1"))):
            ds.path = tmp / name / "ds"  # (an in-memory dataset: a run records where its dataset is)
            er.train(ds, _cfg(*sets, f"run.dir={tmp / name / 'run'}")).save()
            out[name] = tmp / name / "run"
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def arrays(run: Path) -> dict:
    return {n: np.load(run / "current" / f"{n}.npy") for n in ("user_factors", "seen_indptr", "seen_indices",
                                                                "solve_weights")}


def fresh_movies(m, user, n: int, taste: int | None = None) -> list:
    """``n`` movie ids ``user`` has not seen (of ``taste``, the planted one, movie id - 1 mod 6, where given)."""
    e = m.engine
    seen = {int(e.movie_ids[r]) for r in e.seen(e.users.rows([user])[0][0])}
    return [i for i in (int(x) for x in e.movie_ids) if i not in seen and (taste is None or (i - 1) % 6 == taste)][:n]


def test_carry_over_is_the_one_loop_of_both_writers(runs, tmp_path):
    """artifacts.carry_over (index rebuild's and update-users' loop): every file of the served folder but the
    manifest, the names written anew, the suffixes rebuilt and the names left out, copied byte for byte; a file the
    manifest does not list is refused before the copy, and a listed one that is gone too (saying what cannot be
    done)."""
    from embedrec.artifacts import carry_over
    from embedrec.errors import ArtifactError
    from embedrec.run import load_run

    run = load_run(copy_run(runs["taste"], tmp_path / "run"))
    names = {p.name for p in run.path.iterdir()}
    out = tmp_path / "new"
    out.mkdir()
    carry_over(run, out, "why", written=("user_factors.npy",), rebuilt=(".faiss",), left_out=("metrics.json",))
    kept = names - {"manifest.json", "user_factors.npy", "metrics.json"} - {n for n in names if n.endswith(".faiss")}
    assert {p.name for p in out.iterdir()} == kept and "seen_indices.npy" in kept
    assert all((out / n).read_bytes() == (run.path / n).read_bytes() for n in kept)
    (run.path / "notes.txt").write_text("mine")
    for n in ("new2", "new3"):
        (tmp_path / n).mkdir()
    with pytest.raises(ArtifactError, match="notes.txt' is not listed in its manifest"):
        carry_over(run, tmp_path / "new2", "why")
    (run.path / "notes.txt").unlink()
    (run.path / "popularity.npy").unlink()
    with pytest.raises(ArtifactError, match="popularity.npy' is missing; the index cannot be rebuilt: "):
        carry_over(run, tmp_path / "new3", "the index cannot be rebuilt")


def test_an_update_built_on_an_update_links_what_it_carries(runs, tmp_path, monkeypatch):
    """A scale review: every update-users rewrote and hashed every file of the model, the movie factors, indexes and
    tables it leaves as they are too (597 MB written, 712 MB hashed at 1M users). An update built on an update now
    hard-links them (one inode, hashed once as it is linked, its checksum carried into the new manifest); the first
    update copies them from the trained model, which keeps its own bytes to be served again after damage (a file
    damaged in place is damaged in every folder linked to it); without hard links they are copied; a damaged one
    is refused before anything is published."""
    import errno

    import embedrec.fsutil.integrity as fsutil

    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        picks = fresh_movies(m, 2, 4)
    files = [write_ratings(tmp_path / f"u{i}.csv", [(2, picks[i], 1)]) for i in range(4)]
    carried = ("movie_factors.npy", "movies.json", "movies.parquet", "movies_ip.faiss", "config.yaml")
    written = ("user_factors.npy", "seen_indices.npy", "solve_weights.npy")

    def shared(a: Path, b: Path) -> set[str]:
        return {p.name for p in a.iterdir() if (b / p.name).exists() and os.path.samefile(p, b / p.name)}

    trained = Path(os.path.realpath(run / "current"))
    er.update_users(run, files[0])
    first = Path(os.path.realpath(run / "current"))
    assert shared(trained, first) == set()  # the trained model keeps its own bytes
    hashed = []
    real = fsutil.sha256_file
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    er.update_users(run, files[1])
    second = Path(os.path.realpath(run / "current"))
    assert set(carried) <= shared(first, second) and not set(written) & shared(first, second)
    assert all(hashed.count(n) == 1 for n in carried), hashed  # as linked, not again for the manifest
    old, new = (json.loads((f / "manifest.json").read_text())["checksums"] for f in (first, second))
    assert all({k: new[n][k] for k in ("sha256", "bytes")} == {k: old[n][k] for k in ("sha256", "bytes")}
               for n in carried)
    assert invoke("verify", run).exit_code == 0 and shared(trained, second) == set()

    def no_links(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    with monkeypatch.context() as mp:  # a file system without hard links (or another one): copied, as before
        mp.setattr(os, "link", no_links)
        er.update_users(run, files[2])
    third = Path(os.path.realpath(run / "current"))
    assert shared(second, third) == set() and invoke("verify", run).exit_code == 0

    damaged = third / "movies_cos.faiss"  # read by no open of this run: only the link's hash tells
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))
    with pytest.raises(er.ArtifactError, match=r"run artifact '.*movies_cos\.faiss' does not match its checksum"):
        er.update_users(run, files[3])
    assert Path(os.path.realpath(run / "current")) == third and not list(run.glob(".artifacts-*"))


def test_an_update_hashes_the_arrays_it_writes_as_it_writes_them(runs, tmp_path, monkeypatch):
    """A scale review: update-users copied its 512 MB user table to change a few rows, and hashed it twice after
    writing it (the array for the manifest's files, then the file read back for its checksums). The table is now
    written a block at a time from the one served, its re-solved rows replaced and the added users' after it, and
    each array is hashed as it is written (np.save's bytes), never read back; the manifest's checksums are the
    files' (verify). A file the writer hashed that changed before the manifest records it is hashed again and
    refused."""
    import embedrec.fsutil.integrity as fsutil
    from embedrec.artifacts import PatchedRows, save_hashed
    from embedrec.errors import ArtifactError
    from embedrec.run_publish import _record_checksums

    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        picks = fresh_movies(m, 2, 1)
        row = int(m.engine.users.rows([2])[0][0])
    old = np.load(run / "current" / "user_factors.npy")
    hashed = []
    real = fsutil.sha256_file
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    monkeypatch.setattr(PatchedRows, "BLOCK", 1000)  # the user table written in blocks of a few rows
    er.update_users(run, write_ratings(tmp_path / "u.csv", [(2, picks[0], 1), (999_999, picks[0], 1)]))
    written = ("user_factors.npy", "seen_indptr.npy", "seen_indices.npy", "solve_weights.npy", "update_pairs.npy")
    assert not set(written) & set(hashed), hashed
    new = np.load(run / "current" / "user_factors.npy")
    others = np.arange(len(old)) != row
    assert new.shape == (len(old) + 1, old.shape[1]) and np.array_equal(new[:-1][others], old[others])
    assert not np.array_equal(new[row], old[row]) and new[-1].any()
    assert invoke("verify", run).exit_code == 0

    table = np.arange(40, dtype=np.float32).reshape(10, 4)  # by hand: blocks of 2 rows, rows 0, 3 and 9 replaced
    np.save(tmp_path / "base.npy", table)
    monkeypatch.setattr(PatchedRows, "BLOCK", 32)
    patched = PatchedRows(np.load(tmp_path / "base.npy", mmap_mode="r"), {0: [-1] * 4, 3: [-2] * 4, 9: [-3] * 4},
                          np.full((2, 4), 7.0))
    assert len(list(patched.blocks())) == 6
    got = save_hashed(tmp_path / "patched.npy", patched)
    want = table.copy()
    want[[0, 3, 9]] = [[-1] * 4, [-2] * 4, [-3] * 4]
    want = np.concatenate([want, np.full((2, 4), 7.0, np.float32)])
    np.save(tmp_path / "want.npy", want)
    assert (tmp_path / "patched.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    # one SHA-256, the file's: its manifest `files` entry and its checksum alike (session 58)
    assert got[0] == got[1][0]["sha256"] and got[1][0] == fsutil.file_entry(tmp_path / "want.npy")

    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "manifest.json").write_text("{}")
    np.save(tmp_path / "f" / "a.npy", np.arange(3))
    entry = {"sha256": "0" * 64, "bytes": (tmp_path / "f" / "a.npy").stat().st_size}
    with pytest.raises(ArtifactError, match=r"'.*a\.npy' changed after it was written or carried over"):
        _record_checksums(tmp_path / "f", hashed={"a.npy": (entry, [0, 0, 0])})


def test_an_update_is_the_als_solve_by_hand(runs, tmp_path):
    """The known answer: the updated vector of each named user is p = A^-1 Q_S^T w of the run's user solve, written
    out here from its recorded numbers -- A = a0 s Q^T Q + Q_S^T W Q_S + reg (n + a0 N)^nu I over the weights the
    run recorded for the user's training pairs and, for each new like, 1 + g (the latest place) -- and the other
    users' vectors are the same bytes."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    e = m.engine
    solve = e.training_ratings["solve"]
    before = arrays(run)
    new = {2: fresh_movies(m, 2, 3), 40: fresh_movies(m, 40, 2)}
    f = write_ratings(tmp_path / "since.csv", [(u, i, 1) for u, ids in new.items() for i in ids])
    record = er.update_users(run, f)
    m.close()
    assert (record["users"], record["pairs"], record["pairs_solved"]) == (2, 5, 5) and solve["recency"] == 2
    after = arrays(run)
    Q = np.asarray(e.Q, np.float64)
    for user, ids in new.items():
        row = int(e.users.rows([user])[0][0])
        a, b = int(before["seen_indptr"][row]), int(before["seen_indptr"][row + 1])
        w = before["solve_weights"][a:b].astype(np.float64)
        rows = np.concatenate([before["seen_indices"][a:b][w > 0], [int(e.movie_rows([i])[0][0]) for i in ids]])
        w = np.concatenate([w[w > 0], np.full(len(ids), 1.0 + solve["recency"])])
        a0 = solve["a0"] * solve["user_unobserved"]
        lam = solve["reg"] * (rows.size + solve["a0"] * Q.shape[0]) ** solve["reg_exponent"]
        A = a0 * Q.T @ Q + (Q[rows] * w[:, None]).T @ Q[rows] + lam * np.eye(Q.shape[1])
        np.testing.assert_allclose(after["user_factors"][row], np.linalg.solve(A, Q[rows].T @ w), rtol=1e-5,
                                   atol=1e-7)
    changed = np.flatnonzero((after["user_factors"] != before["user_factors"]).any(axis=1))
    assert changed.tolist() == sorted(int(e.users.rows([u])[0][0]) for u in new)
    keep = np.setdiff1d(np.arange(before["user_factors"].shape[0]), changed)
    assert after["user_factors"][keep].tobytes() == before["user_factors"][keep].tobytes()


def test_own_training_rows_add_nothing(runs, tmp_path, caplog):
    """A user's own training rows given again are ratings the run holds: nothing is re-solved or published, the
    run serves the same folder (a re-solve from the recorded weights alone would move the vector by what
    training's conjugate-gradient steps left of the exact solve: tests/test_update.py). Beside a new rating of
    another user, that user alone changes."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    e = m.engine
    own = [(2, int(e.movie_ids[r]), 1) for r in e.seen(int(e.users.rows([2])[0][0]))]
    m.close()
    folder = os.readlink(run / "current")
    before = arrays(run)
    record = er.update_users(run, write_ratings(tmp_path / "own.csv", own))
    assert record["model_folder"] is None and record["pairs"] == 0 and os.readlink(run / "current") == folder
    assert f"nothing to update: the run already holds every rating in '{tmp_path / 'own.csv'}' of its 1 user" \
        in caplog.text
    other = fresh_movies(er.open(run), 9, 1)
    record = er.update_users(run, write_ratings(tmp_path / "both.csv", [*own, (9, other[0], 1)]))
    assert (record["users"], record["users_named"], record["pairs"]) == (1, 2, 1)
    after = arrays(run)
    row2, row9 = (int(e.users.rows([u])[0][0]) for u in (2, 9))
    assert after["user_factors"][row2].tobytes() == before["user_factors"][row2].tobytes()
    assert (after["user_factors"][row9] != before["user_factors"][row9]).any()


def test_new_likes_of_a_planted_taste_move_the_served_list(runs, tmp_path):
    """Told that users liked eight movies of another taste since training, their served lists (recommend, after
    the update, in a fresh open) take 30-50% of it where they held 0-10%, leave the new movies out, equal what
    the per-request re-solve gave before (recommend_new(user=...)), and split exactly into their rated movies,
    the new ones among them (explain: the recorded weights and the solve agree)."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    users = (1, 2, 9, 40)
    new = {u: fresh_movies(m, u, 8, ((u - 1) % 6 + 3) % 6) for u in users}
    before = {u: m.recommend(u, k=10).movie_ids[0] for u in users}
    per_request = {u: m.recommend_new(liked=new[u], user=u, k=10) for u in users}
    m.close()
    er.update_users(run, write_ratings(tmp_path / "since.csv", [(u, i) for u in users for i in new[u]],
                                       header="user_id,movie_id"))
    with er.open(run) as m:
        for u in users:
            own, other = (u - 1) % 6, ((u - 1) % 6 + 3) % 6
            res = m.recommend(u, k=10)
            after = res.movie_ids[0]
            share = [np.mean([(i - 1) % 6 == t for i in ids]) for ids in (before[u], after) for t in (own, other)]
            assert share[0] >= 0.7 and share[1] <= 0.1 and share[3] >= 0.3, (u, share)
            assert not set(after) & set(new[u])
            assert list(after) == list(per_request[u].movie_ids[0])
            np.testing.assert_allclose(res.scores[0], per_request[u].scores[0], rtol=1e-5)
            x = m.explain(u, int(after[0]), n=50)
            assert set(new[u]) <= set(x.movie_ids)  # the new movies are parts of the score
            assert abs(x.remainder) < 1e-5 * abs(x.score)


def test_a_dataframe_of_ratings_updates_users_as_its_file_does(runs, tmp_path, monkeypatch):
    """A notebook review: er.update_users took a file only, where er.ingest and recommend_new(rated=) take a
    DataFrame. A frame is written to the cache as Parquet and read as that file: the same user vectors as the CSV
    of the same rows; a bad cell is said of the frame, as ingest's are, and leaves no cache file."""
    import pandas as pd

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    a, b = copy_run(runs["taste"], tmp_path / "a"), copy_run(runs["taste"], tmp_path / "b")
    with er.open(a) as m:
        rows = [(u, i) for u in (1, 2) for i in fresh_movies(m, u, 4, 3)]
    er.update_users(a, write_ratings(tmp_path / "since.csv", rows, header="user_id,movie_id"))
    got = er.update_users(b, pd.DataFrame(rows, columns=["user_id", "movie_id"]))
    assert got["pairs"] == len(rows)
    np.testing.assert_array_equal(arrays(a)["user_factors"], arrays(b)["user_factors"])
    cached = sorted((tmp_path / "cache" / "dataframes").iterdir())
    with pytest.raises(DataError, match=r"^the DataFrame: row 1 \(df.iloc\[0\]\): column 'user_id' is empty"):
        er.update_users(b, pd.DataFrame({"user_id": [None, 2.0], "movie_id": [1, 2]}))
    assert sorted((tmp_path / "cache" / "dataframes").iterdir()) == cached  # (the failed call's copy removed)
    with pytest.raises(UsageError, match=r"^update_users: the DataFrame has no rows"):  # (a review: 'ingest: ...')
        er.update_users(b, pd.DataFrame({"user_id": pd.Series([], dtype="int64"),
                                         "movie_id": pd.Series([], dtype="int64")}))


def test_a_second_update_composes(runs, tmp_path):
    """Two updates, one after the other, give what one update with both files' ratings gives (a run with the
    recency weight, recent popularity and activity weights: the solve weights, the divisors and the vectors),
    since the second re-solve reads the weights the first recorded; and every re-solved user's explanation leaves
    nothing but float rounding (its recorded weights and divisor are its solve's)."""
    one, two = (copy_run(runs["hits"], tmp_path / n) for n in ("one", "two"))
    m = er.open(one)
    users = [3, 17, 41, 200]
    picks = {u: fresh_movies(m, u, 6) for u in users}
    m.close()
    first = [(u, i, 1) for u in users for i in picks[u][:3]]
    second = [(u, i, 1) for u in users[1:] for i in picks[u][3:]]
    done = er.update_users(one, write_ratings(tmp_path / "a.csv", first))
    er.update_users(one, write_ratings(tmp_path / "b.csv", second))
    er.update_users(two, write_ratings(tmp_path / "ab.csv", first + second))
    a, b = arrays(one), arrays(two)
    for name in ("seen_indptr", "seen_indices", "solve_weights"):
        assert np.array_equal(a[name], b[name]), name
    np.testing.assert_allclose(a["user_factors"], b["user_factors"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(*(np.load(r / "current" / "user_scale.npy") for r in (one, two)), rtol=1e-5)
    manifest = json.loads((one / "current" / "manifest.json").read_text())
    assert [u["pairs"] for u in manifest["updates"]] == [12, 9]
    assert manifest["updates"][1]["before"] == done["model_folder"] != os.readlink(one / "current")
    # the pairs as the files gave them (run_layout.UPDATE_PAIRS): the second update's after the first's, the
    # pairs one file with both gives; carried over by index rebuild as they are
    got, both = (np.load(r / "current" / "update_pairs.npy") for r in (one, two))
    with er.open(one) as m:
        rows = {u: int(m.engine.users.rows([u])[0][0]) for u in users}
        key = [(rows[u], int(m.engine.movie_rows([i])[0][0])) for u, i, _ in first]
    assert got.shape == (21,) and sorted(zip(got["user_idx"][:12].tolist(), got["movie_idx"][:12].tolist())) == \
        sorted(key)
    assert sorted(zip(got["user_idx"].tolist(), got["movie_idx"].tolist())) == \
        sorted(zip(both["user_idx"].tolist(), both["movie_idx"].tolist()))
    assert (got["rating"] == 1).all() and np.isnan(got["timestamp"]).all()  # (no timestamp column)
    assert invoke("index", "rebuild", "--run", one).exit_code == 0 and invoke("verify", one).exit_code == 0
    assert np.load(one / "current" / "update_pairs.npy").tobytes() == got.tobytes()
    with er.open(one) as m:
        for u in users:
            top = int(m.recommend(u, k=1).movie_ids[0][0])
            x = m.explain(u, top, n=100)
            assert abs(x.remainder) < 1e-5 * max(1.0, abs(x.score)), (u, x.remainder, x.score)


def test_the_trained_model_is_kept_while_its_updates_are_served(runs, tmp_path, caplog, monkeypatch):
    """Three updates in a row keep the trained model's folder (the first record's ``before``), which publishing's
    newest-two pruning removed at the second (a red team): it passes verify, and rolled back to it the run serves
    the trained vectors again; the first update's folder, neither newest nor the trained one, is pruned as before.
    A train that replaces the updated model no longer keeps it."""
    run = copy_run(runs["taste"], tmp_path / "run")
    trained = os.readlink(run / "current")
    P = np.load(run / "current" / "user_factors.npy")
    m = er.open(run)
    picks = fresh_movies(m, 2, 3)
    m.close()
    with caplog.at_level(logging.INFO, "embedrec"):
        folders = [er.update_users(run, write_ratings(tmp_path / f"u{i}.csv", [(2, picks[i], 1)]))["model_folder"]
                   for i in range(3)]
    assert f"and the trained model its updates are built on ({trained}) while a model updated from it is served" \
        in caplog.text
    # three updates of one user: one user updated in all (distinct users, not re-solves summed)
    assert f"re-solved 1 of the 1 user named in '{tmp_path / 'u2.csv'}' with 1 new rating; 1 user updated since " \
        "training in all (" in caplog.text
    assert sorted(p.name for p in run.glob("artifacts-*")) == sorted([trained, *folders[1:]])
    manifest = json.loads((run / "current" / "manifest.json").read_text())
    assert [u["before"] for u in manifest["updates"]] == [trained, *folders[:2]]
    assert invoke("verify", run / trained).exit_code == 0
    os.symlink(trained, run / "current.new")
    os.replace(run / "current.new", run / "current")
    assert invoke("verify", run).exit_code == 0
    with er.open(run) as m:
        assert np.asarray(m.engine.P).tobytes() == P.tobytes()
    os.symlink(folders[2], run / "current.new")  # served again: a train replacing it keeps what train keeps
    os.replace(run / "current.new", run / "current")
    ds = _tastes_dataset()
    ds.path = runs["taste"].parent / "ds"
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    er.train(ds, _cfg("train.als_recency=2", f"run.dir={run}")).save()
    assert sorted(p.name for p in run.glob("artifacts-*"))[:-1] == [folders[2]]


@pytest.mark.parametrize("name", ["config.yaml", "popularity.npy"])
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_fifo_or_a_folder_in_place_of_a_carried_file_is_said_as_recommend_says_it(runs, tmp_path, name, kind):
    """A red team: update-users said "run artifact '.../config.yaml' is missing; its users cannot be updated" of a
    FIFO or a folder there (artifacts.check_listed), where recommend and export say what it is: the same line now
    (fsutil.files.in_place_error), and a file that is gone is still said as missing, with what cannot be done."""
    run = copy_run(runs["taste"], tmp_path / "run")
    p = Path(os.path.realpath(run / "current")) / name
    p.unlink()
    os.mkfifo(p) if kind == "fifo" else p.mkdir()
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1)])
    said = f"error: run artifact '{p}' is not a regular file ({'a FIFO' if kind == 'fifo' else 'a folder'}); rerun " \
           f"'embedrec train --run {run}' with the -c/--set it was trained with"
    for args in (("update-users", "--ratings", f, "--run", run, "--set", "data.header=true"),
                 ("index", "rebuild", "--run", run)):
        r = invoke(*args)  # (update-users first warns that config.yaml, its reading settings, cannot be read)
        assert r.exit_code == 1 and "Traceback" not in r.stderr and r.stderr.splitlines()[-1] == said, r.stderr
    os.unlink(p) if kind == "fifo" else p.rmdir()
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == (
        f"error: run artifact '{p}' is missing; its users cannot be updated: rerun 'embedrec train --run {run}' with "
        "the -c/--set it was trained with"), r.stderr


def test_a_damaged_or_missing_index_file_alone_is_said_with_verify_s_rebuild(runs, tmp_path):
    """A red team: update-users on a run whose FAISS index alone was damaged said to train the run again, where
    verify says (and docs/reliability.md promises) to build it again with index rebuild: the same advice now
    (run_fixes.files_fix), for a damaged file and a missing one, and the update goes through once it is
    followed."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import index_fix

    run = copy_run(runs["taste"], tmp_path / "run")
    folder = Path(os.path.realpath(run / "current"))
    p = folder / "movies_ip.faiss"
    size = p.stat().st_size
    p.write_bytes(b"")
    fix = cli_terms(index_fix(folder, json.loads((folder / "manifest.json").read_text())["index"]))
    assert fix.startswith(f"build it again from the run's embeddings: 'embedrec index rebuild --run {run}")
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1)])
    update = ("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    r = invoke(*update)
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == \
        f"error: run artifact '{p}' is damaged (0 bytes, its manifest says {size:,}); {fix}", r.stderr
    r = invoke("verify", run)
    assert r.exit_code == 1 and r.stderr.strip().endswith(f"; {fix}"), r.stderr
    p.unlink()
    r = invoke(*update)
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == \
        f"error: run artifact '{p}' is missing; its users cannot be updated: {fix}", r.stderr
    assert invoke("index", "rebuild", "--run", run).exit_code == 0
    r = invoke(*update)
    assert r.exit_code == 0 and invoke("verify", run).exit_code == 0, r.stderr


def _far_row(a):
    a = a.copy()
    a[5] = 10 ** 6
    return a


def _twice(a):
    a = a.copy()
    a[1] = a[0]
    return a


def _id_of(run, kind: str, row: int) -> str:
    """The id of ``row`` in the run's served ``kind``_ids.npy."""
    return str(np.load(run / "current" / f"{kind}_ids.npy")[row])


RESEALED = {  # a re-sealed run's edit the checksums pass: the file, the edit, what the readers say, who says it
    "seen row": ("seen_indices.npy", _far_row, "seen_indices.npy holds movie rows outside 0..{last}",
                 lambda run, u: [["recommend", "--run", run, "--user", u]]),
    "user id twice": ("user_ids.npy", _twice, "user_ids.npy holds user id {u} twice (rows 0 and 1)",
                      lambda run, u: [["recommend", "--run", run, "--user", u],
                                      ["recommend", "--run", run, "--user", _id_of(run, "user", 5)],  # another id
                                      ["recommend", "--run", run, "--users", "-"],
                                      ["export", "--run", run, "--topk-all", run.parent / "top.csv"],
                                      ["evaluate", "--run", run]]),  # which looks no id up (session 53)
    "movie id twice": ("movie_ids.npy", _twice, "movie_ids.npy holds movie id {m} twice (rows 0 and 1)",
                       lambda run, u: [["recommend", "--run", run, "--movie", _id_of(run, "movie", 5)],
                                       ["recommend", "--run", run, "--user", u, "--exclude",
                                        _id_of(run, "movie", 4)]]),
    "popularity cut": ("popularity.npy", lambda a: a[:3].copy(), "popularity.npy holds int64 of shape (3,), not one "
                       "count for each of the {movies:,} movies",
                       lambda run, u: [["recommend", "--run", run, "--user", "999999", "--fallback", "popular"]]),
    "int32 users": ("user_factors.npy", lambda a: a.astype(np.int32), "its embedding tables are not floats "
                    "(user_factors.npy int32, movie_factors.npy float32)",
                    lambda run, u: [["recommend", "--run", run, "--user", u], ["evaluate", "--run", run],
                                    ["export", "--run", run, "--topk-all", run.parent / "top.csv"]]),
    # (an updated run's: _served) two users' update pairs given each other's movies, which neither has seen;
    # history reads it too (tests/test_history.py: this run's dataset is in memory)
    "update pairs unseen": ("update_pairs.npy", lambda a: _swapped_users(a), "update_pairs.npy holds a pair that is "
                            "not among its user's seen movies (seen_indices.npy)", lambda run, u: []),
}


def _swapped_users(a):
    a = a.copy()
    a["user_idx"] = a["user_idx"][::-1].copy()
    return a


def _served(runs, tmp_path: Path, name: str) -> Path:
    """A copy of the 'taste' run; where ``name`` is update_pairs.npy, updated first: users 2 and 40 each given a
    movie neither has seen (update-users writes the file)."""
    run = copy_run(runs["taste"], tmp_path / "run")
    if name == "update_pairs.npy":
        with er.open(run) as m:
            both = [i for i in fresh_movies(m, 2, 50) if i in set(fresh_movies(m, 40, 50))][:2]
        er.update_users(run, write_ratings(tmp_path / "first.csv", [(2, both[0], 1), (40, both[1], 1)]))
    return run


@pytest.mark.parametrize("case", sorted(RESEALED))
def test_verify_and_update_users_check_a_resealed_runs_arrays_as_its_readers_do(runs, tmp_path, case):
    """A red team re-sealed a run after an edit (its checksums recomputed): a seen movie row out of range passed
    verify, which recommend then refused, and update-users carried it into the model it published (which verify
    passed too); a user id held twice, a popularity of 3 entries and int32 user factors were also served without
    a word (every user 'no trained vector', evaluate's figures, --fallback popular's 3 movies). Now the readers
    refuse each as they read it, and verify and update-users (artifacts.carry_over) run the same checks over
    every row (verify.check_run_arrays), saying the readers' line; nothing is published. An id held twice is
    refused by a lookup of any id, not only of that one (session 51 left a scan of a few ids that met it only where
    it was asked: `recommend --user` of another user, `--movie` of another movie, were served)."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    name, edit, what, readers = RESEALED[case]
    run = _served(runs, tmp_path, name)
    folder = Path(os.path.realpath(run / "current"))
    np.save(folder / name, edit(np.load(folder / name)))
    _record_checksums(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    u, m = str(np.load(folder / "user_ids.npy")[0]), str(np.load(folder / "movie_ids.npy")[0])
    said = f"error: run '{{}}': {what.format(last=manifest['n_movies'] - 1, u=u, m=m, movies=manifest['n_movies'])}; " \
           f"{cli_terms(run_fix(folder))}"
    r = invoke("verify", run)
    assert r.exit_code == 1 and one_line(r) == said.format(folder), r.stderr
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1)])
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == said.format(folder), r.stderr
    assert os.path.realpath(run / "current") == str(folder)  # nothing published
    for args in readers(run, u):
        r = invoke(*args, input=f"{_id_of(run, 'user', 5)}\n")
        assert r.exit_code == 1 and r.stderr.splitlines()[-1] == said.format(folder), (args, r.stderr)


def _set(row: int, value, dtype=None):
    """An edit that writes ``value`` into ``row`` of a copy of the array (cast to ``dtype`` first, where given)."""
    def edit(a):
        a = a.astype(dtype or a.dtype)
        a[row] = value
        return a
    return edit


RESEALED_READERS = {  # session 52's red team: a re-sealed edit verify passed or update-users and index rebuild sealed
    # again: the file, the edit, the one line every reader says ({folder}, {fix}, the run's counts), who reads it
    "movie ids cut short": ("movie_ids.npy", lambda a: a[:-1].copy(),
                            "run artifact '{folder}/movie_ids.npy' does not hold the run's {movies:,} ids (it holds "
                            "{movies_1:,}); {fix}", lambda run, u: [["recommend", "--run", run, "--user", u]]),
    "user ids as a row": ("user_ids.npy", lambda a: a.reshape(1, -1).copy(),
                          "run artifact '{folder}/user_ids.npy' does not hold the run's {users:,} ids (it holds an "
                          "array of shape (1, {users})); {fix}", lambda run, u: [["recommend", "--run", run,
                                                                                  "--user", u]]),
    "movie ids as a row": ("movie_ids.npy", lambda a: a.reshape(1, -1).copy(),
                           "run artifact '{folder}/movie_ids.npy' does not hold the run's {movies:,} ids (it holds an "
                           "array of shape (1, {movies})); {fix}", lambda run, u: [["evaluate", "--run", run]]),
    "a NaN user row": ("user_factors.npy", _set(10, np.nan),
                       "run file '{folder}/user_factors.npy' holds 1 row that is not finite (NaN or inf), though its "
                       "checksum matches; {fix}, or restore the run from a copy", lambda run, u: []),
    "an inf popularity": ("popularity.npy", _set(0, np.inf, np.float64),
                          "run '{folder}': popularity.npy holds inf for movie row 0, where each movie's count is a "
                          "finite number >= 0; {fix}",
                          lambda run, u: [["recommend", "--run", run, "--user", "999999", "--fallback", "popular"]]),
    "a negative popularity": ("popularity.npy", _set(2, -1),
                              "run '{folder}': popularity.npy holds -1 for movie row 2, where each movie's count is "
                              "a finite number >= 0; {fix}",
                              lambda run, u: [["recommend", "--run", run, "--user", "999999", "--fallback",
                                               "popular"]]),
    "a negative solve weight": ("solve_weights.npy", _set(3, -0.5),
                                "run '{folder}': solve_weights.npy does not hold one finite weight >= 0 for each of "
                                "the {seen:,} seen pairs; {fix}",
                                lambda run, u: [["recommend", "--run", run, "--user", u, "--explain"]]),
    # an updated run's (_served): history reads it too (tests/test_history.py: this run's dataset is in memory)
    "update pairs as floats": ("update_pairs.npy", lambda a: np.zeros(a.shape[0]),
                               "run '{folder}': update_pairs.npy holds float64 of shape (2,), not one record of "
                               "(user_idx, movie_idx, rating, timestamp) for each pair an update added; {fix}",
                               lambda run, u: []),
    "an update pair's user row": ("update_pairs.npy", _set(0, (10**6, 0, 1.0, 0.0)),
                                  "run '{folder}': update_pairs.npy holds user or movie rows outside the run's "
                                  "{users:,} users and {movies:,} movies; {fix}", lambda run, u: []),
}


@pytest.mark.parametrize("case", sorted(RESEALED_READERS))
def test_verify_update_users_and_index_rebuild_refuse_what_a_reader_refuses(runs, tmp_path, case):
    """Session 52's red team (runs re-sealed after an edit): a movie_ids.npy one id short, or an id table of two
    dimensions, passed verify and was sealed again by index rebuild, though recommend refused it (check_run_arrays
    checked the ids unique, not their count); a NaN user row, an inf or negative popularity (recommend listed a
    movie of score inf with exit 0; a negated table listed none, 'that is every movie the user has not rated') and
    a negative solve weight were published again by update-users or index rebuild, or passed verify. Each is now
    refused by verify, update-users and index rebuild (artifacts.carry_over) in the one line its reader says, and
    nothing is published."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    name, edit, what, readers = RESEALED_READERS[case]
    run = _served(runs, tmp_path, name)
    folder = Path(os.path.realpath(run / "current"))
    np.save(folder / name, edit(np.load(folder / name)))
    _record_checksums(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    u = str(np.load(folder / "user_ids.npy").reshape(-1)[0])
    said = "error: " + what.format(folder=folder, fix=cli_terms(run_fix(folder)), users=manifest["n_users"],
                                   movies=manifest["n_movies"], movies_1=manifest["n_movies"] - 1,
                                   seen=np.load(folder / "seen_indices.npy").shape[0])
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1), (999_999, 1, 1)])
    for args in (["verify", run], ["update-users", "--ratings", f, "--run", run, "--set", "data.header=true"],
                 ["index", "rebuild", "--run", run], *readers(run, u)):
        r = invoke(*args)
        assert (r.exit_code, r.stdout, r.stderr.splitlines()[-1:]) == (1, "", [said]), (args, r.stderr)
    assert os.path.realpath(run / "current") == str(folder)  # nothing published


def test_damage_advice_after_an_update_keeps_the_updates(runs, tmp_path):
    """A damaged file of an updated model: besides training again, the advice says that drops the updates and how
    to keep them, serving the trained model again (named, with verify) and running the files again in order (a
    red team: 'rerun embedrec train' alone lost them); on the trained model itself, the advice is as it was."""
    from embedrec.errors import ArtifactError

    run = copy_run(runs["taste"], tmp_path / "run")
    trained = os.readlink(run / "current")
    with er.open(run) as m:
        picks = fresh_movies(m, 2, 2)
    files = [write_ratings(tmp_path / f"u{i}.csv", [(2, picks[i], 1)]) for i in range(2)]
    for f in files:
        er.update_users(run, f)
    movies = run / "current" / "movie_factors.npy"
    movies.write_bytes(movies.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(ArtifactError) as got:
        er.open(run).recommend(2)
    assert str(got.value).endswith(
        f"train again and save (er.train(ds, cfg).save(run_dir)); that drops the updates update-users made: to keep "
        f"them, serve the trained model again ({trained}, kept beside it; 'embedrec verify {run / trained}' first: "
        f"docs/reliability.md, 'Rolling back a model') and call update_users again with {files[0].resolve()}, "
        f"{files[1].resolve()}, in that order")
    r = invoke("verify", run)
    assert r.exit_code == 1 and "and run update-users again with" in one_line(r)
    assert invoke("verify", run / trained).exit_code == 0
    os.symlink(trained, run / "current.new")
    os.replace(run / "current.new", run / "current")
    (run / trained / "movie_factors.npy").write_bytes(b"")
    r = invoke("verify", run)
    assert r.exit_code == 1 and one_line(r).endswith("with the -c/--set it was trained with")


# ------------------------------------------------------------------------------------ what it refuses and reads
def test_unknown_users_movies_and_bad_ratings(runs, tmp_path, caplog):
    """With new_users=False a user the run does not know refuses the file (naming its line; nothing is written); an
    id that can be no id of the run's (a word where its ids are integers, '01', one beyond int64) is refused whatever
    new_users says, saying what is wrong with it and how to write it;
    a movie it does not know is left out with one warning, or refused with strict; a rating outside the scale is
    refused by its line; a pair given twice counts once (the latest)."""
    run = copy_run(runs["taste"], tmp_path / "run")
    folder = os.readlink(run / "current")
    m = er.open(run)
    new = fresh_movies(m, 2, 3)
    m.close()
    f = write_ratings(tmp_path / "new.csv", [(2, new[0], 1), (99999, new[1], 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}:3: user '99999' is not in the training data \(300 users\); "
                                            r"new_users=False refuses a user the run does not know: leave it out to "
                                            r"add such users \(their vectors solved from the file's ratings, as "
                                            r"recommend_new\(liked=...\) folds one in\), or remove their rows"):
        er.update_users(run, f, new_users=False)
    # an id that can be no id of the run's: what is wrong with it and how to write it (a review: an id beyond int64
    # was 'not in the training data; fix the id', though a user not in the training data is added)
    added = " (a user the run does not know is added under the id the file gives it)"
    for bad, said, how in (
            ("u7", "'u7' is not a user id of this model (its ids are integers)", "give an integer id"),
            ("007", "'007' is not a user id of this model: its ids are integers written without a '+' or leading "
                    "zeros ('7')", "write the id without a '+' or leading zeros"),
            ("9223372036854775808", "'9223372036854775808' can be no user id of this model: its ids are 64-bit "
                                    "integers, from -9223372036854775808 to 9223372036854775807",
             "give an id in that range")):
        f = write_ratings(tmp_path / "word.csv", [(2, new[0], 1), (bad, new[1], 1)])
        for new_users, tail in ((True, added), (False, "")):
            with pytest.raises(NotFoundError) as e:
                er.update_users(run, f, new_users=new_users)
            assert str(e.value) == f"{f}:3: {said}; {how}{tail}, or remove its rows"
    with pytest.raises(UsageError, match="new_users"):
        er.update_users(run, f, new_users="no")
    f = write_ratings(tmp_path / "scale.csv", [(2, new[0], 1), (2, new[1], 5)])
    with pytest.raises(DataError, match=rf"^{f}:3: rating 5 is outside this model's rating scale 1-1"):
        er.update_users(run, f)
    f = write_ratings(tmp_path / "movie.csv", [(2, new[0], 1), (2, 99999, 1), (2, new[1], 1), (2, new[1], 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}:3: movie '99999' is not in the training data"):
        er.update_users(run, f, strict=True)
    assert os.readlink(run / "current") == folder and not list(run.glob(".artifacts-*"))
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, f)
    assert (record["users"], record["pairs"], record["ratings"]["rows"]) == (1, 2, 4)
    # one, not '1 exact duplicates'; rows the same in the columns read, not identical lines (a first-hour review)
    assert f"{f}: 1 row (same user, movie and rating as read) given again" in caplog.text
    assert f"re-solved 1 of the 1 user named in '{f}' with 2 new ratings (" in caplog.text
    # (its marks resolved: the library's terms, or the CLI's where a CLI test before installed its filter)
    assert any(f"left 1 of the 4 ratings in {f} out: '99999' is not in the training data (the first at {f}:3); "
               f"{add} adds such movies, {how} refuses them instead" in caplog.text
               for add, how in (("new_movies=True", "strict=True"), ("--new-movies", "--strict"))), caplog.text
    assert "«" not in caplog.text, caplog.text
    # a movie id the run has, written another way: said with the pair and how to write it (a review: only ingest
    # and evaluate --lists said it)
    f = write_ratings(tmp_path / "zeros.csv", [(2, new[0], 1), (2, f"00{new[1]}", 1), (2, 99999, 1)])
    with pytest.raises(NotFoundError) as e:
        er.update_users(run, f, strict=True)
    assert str(e.value).endswith(f"; 1 of the 2 unknown ids is the run's movie id written another way ('00{new[1]}' "
                                 f"in the file is {new[1]} in the run's dataset): write the file's ids as the dataset "
                                 f"writes them ({new[1]} for '00{new[1]}') and update again (ids are matched as "
                                 "written)"), str(e.value)
    f = write_ratings(tmp_path / "zeros1.csv", [(2, f"00{new[1]}", 1)])
    with pytest.raises(NotFoundError, match=rf"so nothing is updated; the unknown id is the run's movie id written "
                                            rf"another way \('00{new[1]}' in the file is {new[1]} "):
        er.update_users(run, f)
    with pytest.raises(DataError, match="^the DataFrame: no column 'movie_id' for the movie"):  # (a frame is read
        er.update_users(run, __import__("pandas").DataFrame({"user_id": [2]}))  # as its file: since session 67)
    with pytest.raises(DataError, match="file not found"):
        er.update_users(run, tmp_path / "gone.csv")
    # the command says it in one line (last: the CLI's run stops the logger propagating to caplog's)
    f = write_ratings(tmp_path / "big.csv", [(2, new[0], 1), (2**63, new[1], 1)])
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == (
        f"error: {f}:3: '9223372036854775808' can be no user id of this model: its ids are 64-bit integers, from "
        f"-9223372036854775808 to 9223372036854775807; give an id in that range{added}, or remove its rows"), r.stderr


def test_a_row_dropped_for_a_missing_value_keeps_its_pair_as_seen(runs, tmp_path, caplog):
    """Under data.missing=drop a row naming a user and a movie says the user met it: its pair is kept among the
    user's seen movies (weight 0: never listed, not solved on), as ingest keeps a dataset's (a review: the movie came
    back in the user's list after the update), for a known user, one the file's kept rows add, and a known user
    named in dropped rows alone; a pair the file also rates is solved on; a new user named in dropped rows alone is
    not added (nothing to solve on). Said in a warning and the summary line."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        a, b, c = fresh_movies(m, 2, 3)
        d = fresh_movies(m, 40, 1)[0]
        rows_before = m.engine.P.shape[0]
    f = write_ratings(tmp_path / "since.csv", [(2, a, 1), (2, b, ""), (2, c, ""), (2, c, 1), (9001, a, 1),
                                              (9001, b, ""), (9002, a, ""), (40, d, "")])
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, f, load_config(None, ["data.missing=drop"]))
    assert (record["users"], record["users_added"], record["pairs"], record["pairs_solved"]) == (1, 1, 6, 3)
    assert record["n_users"] == rows_before + 1
    assert record["ratings"]["rows"] == 8  # every row read, the 5 dropped too (a review: 3)
    assert f"{f}: dropped 5 rows with a missing value (an empty user, movie, rating or timestamp: data.missing=drop)" \
           "; the (user, movie) pairs of those naming a user the run knows or adds and a movie it knows kept among " \
           "that user's seen movies (never recommended back), not solved on" in caplog.text
    assert "3 seen from rows dropped for a missing value, not solved on" in caplog.text
    with er.open(run) as m:
        e = m.engine
        weights = e.solve_arrays()[0]
        for user, want in ((2, {a: True, b: False, c: True}), (9001, {a: True, b: False}), (40, {d: False})):
            row = int(e.users.rows([user])[0][0])
            got = {int(e.movie_ids[r]): float(w) > 0 for r, w in
                   zip(e.seen(row), weights[e.seen_ptr[row]:e.seen_ptr[row + 1]]) if int(e.movie_ids[r]) in want}
            assert got == want, user
            assert not set(want) & set(m.recommend(user, k=len(e.movie_ids)).movie_ids[0].tolist()), user
        assert e.users.own_rows([9002])[0][0] == -1


def test_a_row_without_a_time_alone_is_solved_on(runs, tmp_path, caplog):
    """Under data.missing=drop a row whose time alone was empty was dropped (its pair seen, not solved on), though an
    update orders its ratings by no time (a known gap): it is solved on now, said with its count and first line, and
    recorded without a time (update_pairs.npy: NaN), so the user's vector and list are those of the same ratings in
    a file without a time column."""
    run, plain = copy_run(runs["taste"], tmp_path / "run"), copy_run(runs["taste"], tmp_path / "plain")
    with er.open(run) as m:
        a, b = fresh_movies(m, 2, 2)
    f = write_ratings(tmp_path / "since.csv", [(2, a, 1, 1_700_000_000), (2, b, 1, "")],
                      header="user_id,movie_id,rating,timestamp")
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, f, load_config(None, ["data.missing=drop"]))
    assert (record["users"], record["pairs"], record["pairs_solved"]) == (1, 2, 2)
    assert (f"{f}: 1 row with a user, a movie and a rating but no time (the first at {f}:3) kept and solved on, as "
            "an update orders its ratings by no time (recorded without one)") in caplog.text
    assert "dropped" not in caplog.text
    er.update_users(plain, write_ratings(tmp_path / "plain.csv", [(2, a, 1), (2, b, 1)]))
    with er.open(run) as m, er.open(plain) as p:
        row = int(m.engine.users.rows([2])[0][0])
        np.testing.assert_allclose(m.engine.P[row], p.engine.P[row], rtol=1e-6)
        assert list(m.recommend(2, k=10).movie_ids[0]) == list(p.recommend(2, k=10).movie_ids[0])
        rows = m.engine.movie_rows([a, b])[0]
    pairs = np.load(run / "current" / "update_pairs.npy")
    when = dict(zip(pairs["movie_idx"].tolist(), pairs["timestamp"].tolist()))
    assert when[int(rows[0])] == 1_700_000_000 and np.isnan(when[int(rows[1])])


def test_a_dropped_rows_id_leaves_the_kept_rows_ids_as_they_read(runs, tmp_path, monkeypatch):
    """The file's ids are typed by its kept rows alone, as ingest types them (a review: one dropped row's 'N/A-user'
    made every user id of the file text); a dropped row's id that is no integer names no one: no pair kept."""
    from embedrec import user_update

    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        a, b = fresh_movies(m, 2, 2)
    f = write_ratings(tmp_path / "since.csv", [(2, a, 1), ("N/A-user", b, ""), (2, b, "")])
    read, real = [], user_update.read_ratings
    monkeypatch.setattr(user_update, "read_ratings", lambda *args: read.append(real(*args)) or read[-1])
    record = er.update_users(run, f, load_config(None, ["data.missing=drop"]))
    raw = read[0]
    assert raw.ratings["user_id"].dtype == np.int64 and raw.missing_dropped == 2
    assert raw.seen["missing_values"].values.tolist() == [[2, b]]
    assert (record["users"], record["pairs"], record["pairs_solved"]) == (1, 2, 1)


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory, synth_dir, trained_run):
    """On synth_dir: a bpr run, an als run on the ratings from 3 up ('min3'), and an als run on its pairs as a click
    log, each row one to three times, counted (data.repeats=sum) and weighed 1 + log(count) ('counts'); the
    session's explicit run is trained_run's."""
    import pandas as pd

    tmp = tmp_path_factory.mktemp("update-users-other")
    clicks = pd.read_csv(synth_dir[0] / "ratings.csv")[["userId", "movieId", "timestamp"]]
    clicks = clicks.loc[clicks.index.repeat(np.random.default_rng(0).integers(1, 4, len(clicks)))]
    clicks.to_csv(tmp / "clicks.csv", index=False)
    return {"explicit": Path(trained_run.cfg.run.dir), **train_small_runs(tmp, (
        ("bpr", synth_dir[0], ["model.loss=bpr", "train.epochs=2"]), ("min3", synth_dir[0], ["data.min_rating=3"]),
        ("counts", tmp / "clicks.csv", ["data.repeats=sum", "train.als_count_weight=1"])))}


def train_small_runs(tmp: Path, specs) -> dict:
    """{name: run folder} of a small, quick run (8 dimensions, 3 epochs, one thread, no dimension search) for each
    (name, source, extra settings) of ``specs``, ingested and saved under ``tmp/name``, the cache in ``tmp``."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        for name, source, sets in specs:
            cfg = load_config(None, [f"data.prepared={tmp / name / 'ds'}", f"run.dir={tmp / name / 'run'}",
                                     "model.dim=8", "train.epochs=3", "train.threads=1", "train.als_dims=[]", *sets])
            er.train(er.ingest(str(source), cfg), cfg).save()
            out[name] = Path(cfg.run.dir)
    return out


def test_models_other_than_als_are_refused(other_runs, tmp_path):
    """Each refusal says what update-users does with the users it adds as with those it knows, and how to answer a
    new user instead (a review: their words were of re-solving known users alone)."""
    from embedrec.serve.update import check_resolvable

    f = write_ratings(tmp_path / "r.csv", [(1, 1, 4)])
    for name, words, new in (
            ("bpr", "update-users re-solves an als run's users as its training solved them (the user half of its "
                    "alternating least squares), and solves the users it adds alike; this model (bpr)",
             "(recommend --user U --liked/--rated ..., a new user without --user), or train again with them"),
            ("explicit", "this model predicts ratings (model.objective: explicit)",
             "(update-users updates and adds the users of an als run alone); answer a new user per request "
             "(recommend --rated ...), or train again with the new ratings")):
        r = invoke("update-users", "--ratings", f, "--run", other_runs[name])
        assert (r.exit_code, r.stdout) == (2, "") and one_line(r).startswith(f"error: {words}"), (name, r.stderr)
        assert one_line(r).endswith(new), r.stderr
    with er.open(other_runs["min3"]) as m:  # an als run without its recorded solve (solve_weights.npy)
        m.engine.solve_arrays = lambda: None
        with pytest.raises(er.ArtifactError) as e:
            check_resolvable(m.engine, lasting=True)
    assert e.value.cli_message().endswith("so update-users can neither re-solve its users nor add new ones; train "
                                          "the run again, or answer a new user per request (recommend "
                                          "--rated ...)")


def test_ratings_below_min_rating_and_counts(other_runs, tmp_path, caplog):
    """A rating below the dataset's data.min_rating is seen (never listed) but not in the solve (weight 0), as
    training left such ratings out; on a counts model a file without ratings is a click log, a pair's rows summed
    into its count and weighed 1 + log(count) (train.als_count_weight 1) at the latest place, as the per-request
    re-solve weighs the same count."""
    run = copy_run(other_runs["min3"], tmp_path / "min3")
    with er.open(run) as m:
        low, high = fresh_movies(m, 5, 2)
        per_request = m.recommend_new(rated={low: 1, high: 5}, user=5, k=50)
    record = er.update_users(run, write_ratings(tmp_path / "r.csv", [(5, low, 1), (5, high, 5)]))
    assert (record["pairs"], record["pairs_solved"]) == (2, 1)
    with er.open(run) as m:
        e = m.engine
        row = int(e.users.rows([5])[0][0])
        seen, w = e.seen(row), e.solve_arrays()[0][e.seen_ptr[row]:e.seen_ptr[row + 1]]
        got = {int(e.movie_ids[r]): float(x) for r, x in zip(seen, w)}
        assert got[low] == 0 and got[high] == 1 + e.training_ratings["solve"]["recency"]
        res = m.recommend(5, k=50)
        assert low not in res.movie_ids[0] and list(res.movie_ids[0]) == list(per_request.movie_ids[0])
    run = copy_run(other_runs["counts"], tmp_path / "counts")
    with er.open(run) as m:
        a, b = fresh_movies(m, 7, 2)
        per_request = m.recommend_new(rated={a: 3, b: 1}, user=7, k=20)
    f = write_ratings(tmp_path / "clicks.csv", [(7, a), (7, b), (7, a), (7, a)], header="user_id,movie_id")
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, f)
    assert f"{f}: " in caplog.text and " of 1 pair summed into their counts" in caplog.text
    assert (record["pairs"], record["pairs_solved"], record["ratings"]["rows"]) == (2, 2, 4)
    with er.open(run) as m:
        e = m.engine
        row = int(e.users.rows([7])[0][0])
        seen, w = e.seen(row), e.solve_arrays()[0][e.seen_ptr[row]:e.seen_ptr[row + 1]]
        got = {int(e.movie_ids[r]): float(x) for r, x in zip(seen, w)}
        latest = 1 + e.training_ratings["solve"]["recency"]
        assert got[a] == pytest.approx((1 + np.log(3)) * latest, rel=1e-6) and got[b] == pytest.approx(latest)
        given = np.load(run / "current" / "update_pairs.npy")  # a count is what a click log gives: kept
        assert {int(e.movie_ids[r]): v for r, v in zip(given["movie_idx"], given["rating"].tolist())} == {a: 3, b: 1}
        res = m.recommend(7, k=20)
        assert list(res.movie_ids[0]) == list(per_request.movie_ids[0])
        np.testing.assert_allclose(res.scores[0], per_request.scores[0], rtol=1e-5)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'zero.csv'}:2: rating 0 is not a count above 0"):
        er.update_users(run, write_ratings(tmp_path / "zero.csv", [(7, a, 0)]))


def test_a_missing_rating_column_is_advised_as_update_users_counts_a_row_without_one(other_runs, tmp_path):
    """A first-hour review: a file headed user,film was told ingest's advice, 'data.columns.rating=null if the file
    has no ratings: every row then counts as rating 1'; update-users counts such a row as a like at the scale's top
    (a counts model: an event, its data.repeats the run's, so ingest's data.repeats=sum advice is no fix either)."""
    # (a 'film' column is guessed as the movie since session 57: 'what' is not)
    f = write_ratings(tmp_path / "bad2.csv", [(1, 1)], header="user,what")
    r = invoke("update-users", "--ratings", f, "--run", other_runs["min3"])
    assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == (
        f"error: {f}: no columns for the movie ('movie_id') and the rating ('rating'); name them with --set "
        "data.columns.movie=NAME --set data.columns.rating=NAME, each NAME one of: user, what "
        "(data.columns.rating=null if the file has no ratings: every row then counts as a like, rating 5, the "
        "scale's top)"), r.stderr
    f = write_ratings(tmp_path / "ratng.csv", [(1, 1, 1)], header="user_id,movie_id,ratng")
    for name, counts in (("min3", "a like, rating 5, the scale's top"),
                         ("counts", "one event, a pair's rows summed into its count")):
        r = invoke("update-users", "--ratings", f, "--run", other_runs[name])
        assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == (
            f"error: {f}: no column 'rating' for the rating (data.columns.rating); did you mean --set "
            "data.columns.rating=ratng, or --set data.columns.rating=null if the file has no ratings (every row then "
            f"counts as {counts})?"), (name, r.stderr)
    # ingest keeps its own (rating 1, or a log's data.repeats=sum)
    r = invoke("ingest", f, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "(every row then counts as rating 1; for a play or click log, --set " \
        "data.repeats=sum alone counts each pair's rows)?" in one_line(r), r.stderr


def test_a_pair_in_both_files_keeps_its_first_rating(other_runs, tmp_path):
    """Two updates compose as one with both files only where no pair is in both (docs/commands.md): a pair rated 1
    (below data.min_rating 3: seen, weight 0) in the first file and 5 in the second keeps the first rating, since
    the second update finds it rated before; the two rows in one file take the later, solved at the latest
    place."""
    runs = [copy_run(other_runs["min3"], tmp_path / n) for n in ("apart", "together")]
    with er.open(runs[0]) as m:
        movie = fresh_movies(m, 5, 1)[0]
    first, second = ((5, movie, 1),), ((5, movie, 5),)
    er.update_users(runs[0], write_ratings(tmp_path / "a.csv", first))
    again = er.update_users(runs[0], write_ratings(tmp_path / "b.csv", second))
    assert (again["pairs"], again["model_folder"]) == (0, None)
    er.update_users(runs[1], write_ratings(tmp_path / "ab.csv", first + second))
    got = []
    for run in runs:
        with er.open(run) as m:
            e = m.engine
            row = int(e.users.rows([5])[0][0])
            at = int(np.flatnonzero(e.seen(row) == e.movie_rows([movie])[0][0])[0])
            got.append(float(e.solve_arrays()[0][e.seen_ptr[row] + at]))
            latest = 1 + e.training_ratings["solve"]["recency"]
    assert got == [0.0, pytest.approx(latest)]


# ------------------------------------------------------------------------------------ the publish contract
def test_an_interrupted_update_leaves_the_old_model_served(runs, tmp_path, monkeypatch):
    """Stopped while it writes the new folder (Ctrl-C, or a SIGTERM taken as one): the run still serves the old
    folder, no temporary is left, the lock is free and verify passes; the same update then goes through, and
    removes what a writer killed outright left (its temporary folder, its new 'current' link: docs/commands.md)."""
    import embedrec.user_update_write as user_update_write

    run = copy_run(runs["taste"], tmp_path / "run")
    folder = os.readlink(run / "current")
    f = write_ratings(tmp_path / "since.csv", [(2, i, 1) for i in fresh_movies(er.open(run), 2, 3)])

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(user_update_write, "merged_seen", stop)
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert (r.exit_code, r.stdout) == (130, "") and one_line(r) == "interrupted: nothing half-written was left behind"
    assert os.readlink(run / "current") == folder and not [p for p in run.iterdir() if p.name.startswith(".artifacts")]
    assert invoke("verify", run).exit_code == 0
    monkeypatch.undo()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a writer's pid, its process gone (kill -9)
    shutil.copytree(run / folder, run / ".artifacts-20260101T000000-000000001.tmp")
    os.symlink(folder, run / f".current.embedrec-tmp-{gone.pid}-0123abcd")
    assert er.open(run).recommend(2, k=3).movie_ids[0].size == 3  # no command reads them
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert r.exit_code == 0 and os.readlink(run / "current") != folder, r.stderr
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    r = invoke("verify", run)
    assert r.exit_code == 0 and r.stdout.startswith("ok: run"), r.stderr


def test_a_held_lock_is_busy_and_a_copied_out_model_is_read_only(runs, tmp_path):
    run = copy_run(runs["taste"], tmp_path / "run")
    f = write_ratings(tmp_path / "since.csv", [(2, fresh_movies(er.open(run), 2, 1)[0], 1)])
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"4242 embedrec train\n", 0)
    try:
        with pytest.raises(Busy, match=f"another embedrec train is writing '{run}' \\(pid 4242\\)"):
            er.update_users(run, f)
        r = invoke("update-users", "--ratings", f, "--run", run)
        assert r.exit_code == 75 and one_line(r).startswith(f"error: another embedrec train is writing '{run}'")
    finally:
        os.close(fd)
    model = tmp_path / "model1"
    shutil.copytree(run / "current", model)  # cp -rL runs/x/current model1
    r = invoke("update-users", "--ratings", f, "--run", model)
    assert r.exit_code == 2 and "is a model folder copied out of a run" in one_line(r)
    recorded = json.loads((model / "manifest.json").read_text())["model_folder"]["run"]  # (the run it came from)
    assert f"update the run it was copied from (embedrec update-users --run {recorded} ...) and copy the model out " \
           f"again (cp -rL {recorded}/current {model})" in r.stderr
    assert sorted(p.name for p in model.iterdir()) == sorted(p.name for p in (run / "current").iterdir())


# ------------------------------------------------------------------------------------ the command
def test_a_ratings_file_replaced_while_update_users_reads_it_is_refused(runs, tmp_path, monkeypatch):
    """The update's record held the SHA-256 of the ratings file read again once its rows were read: a file replaced
    meanwhile was recorded by the new file's checksum beside the old file's ratings. It is stamped before it is read
    and compared once hashed (integrity.sha256_as_read, as ingest's sources): one line, nothing published."""
    import embedrec.user_update as user_update

    run = copy_run(runs["taste"], tmp_path / "run")
    served = os.readlink(run / "current")
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1), (2, 3, 1)])
    real = user_update.read_ratings

    def reading(*args):
        raw = real(*args)
        write_ratings(tmp_path / "new.csv", [(2, 5, 1)]).replace(f)
        return raw

    monkeypatch.setattr(user_update, "read_ratings", reading)
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == (
        f"error: '{f}' changed while it was read (replaced by another file), so its rows and its checksum may be of "
        "different files; nothing was written: run update-users again once the file is written whole"), r.stderr
    assert os.readlink(run / "current") == served
    monkeypatch.undo()  # read once, unchanged: its checksum is the file's
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    import hashlib

    assert r.exit_code == 0 and json.loads(r.stdout)["ratings"]["sha256"] == \
        hashlib.sha256(f.read_bytes()).hexdigest(), r.stderr


def test_a_line_it_cannot_read_is_skipped_where_asked_and_said(runs, tmp_path):
    """data.bad_lines=skip is how update-users reads its file too: a line whose rating is no number is skipped and
    said (the reading's warning; it had been skipped in silence, and the key said to have no effect), the others
    updated; without it the line is refused, the setting named."""
    run = copy_run(runs["taste"], tmp_path / "run")
    new = fresh_movies(er.open(run), 2, 8, 5)
    rows = [(2, i, 1) for i in new]
    rows[3] = (2, new[3], "abc")
    f = write_ratings(tmp_path / "since.csv", rows)
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true")
    assert r.exit_code == 1 and r.stderr.strip().endswith(
        "is not a number; fix or remove that line, or skip such lines with --set data.bad_lines=skip"), r.stderr
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "data.header=true", "--set",
               "data.bad_lines=skip")
    assert r.exit_code == 0, r.stderr
    assert f"{f}: skipped 1 line whose values cannot be read (data.bad_lines=skip): line 5; column 'rating' is no " \
        "number on 1 line ('abc')" in r.stderr and "no effect" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["pairs"] == 7


def test_the_command(runs, tmp_path):
    """stdout holds the update's record (JSON) alone, stderr what was done; the new folder serves recommend --user,
    export --topk-all and --explain; standard input is read with '-'; errors are one line."""
    run = copy_run(runs["taste"], tmp_path / "run")
    new = fresh_movies(er.open(run), 2, 8, 5)
    f = write_ratings(tmp_path / "since.csv", [(2, i, 1) for i in new])
    before = invoke("recommend", "--run", run, "--user", 2, "-k", 5, "--format", "tsv").stdout
    r = invoke("update-users", "--ratings", f, "--run", run, "--set", "train.als_reg=5", "--set", "data.header=true")
    assert r.exit_code == 0, r.stderr
    # a --set the update cannot apply is said, as the other run readers say theirs (a red team: taken in silence)
    assert "--set train.als_reg=5.0: no effect on 'embedrec update-users', which re-solves users as the run's " \
        "training solved them (its recorded solve), adds new ones as 'recommend --rated' folds one in" in r.stderr
    assert "data.header" not in r.stderr.split("no effect")[0]
    record = json.loads(r.stdout)
    assert record["model_folder"] == os.readlink(run / "current") and record["users"] == 1 and record["pairs"] == 8
    assert record["ratings"]["sha256"] and record["ratings"]["source"] == str(f.resolve())
    assert "re-solved 1 of the 1 user named in" in r.stderr and "with 8 new ratings" in r.stderr
    # a movie an update gave the user, given again per request: kept as the run weighs it (not 'as training')
    r = invoke("recommend", "--run", run, "--user", 2, "--rated", f"{new[0]}=1", "-k", 2, "--format", "tsv")
    assert f"note: user 2 rated a given movie before ({new[0]}): kept as the run weighs it" in r.stderr
    after = invoke("recommend", "--run", run, "--user", 2, "-k", 5, "--format", "tsv").stdout
    assert after != before and not {int(line.split("\t")[2]) for line in after.splitlines()[1:]} & set(new)
    top = tmp_path / "top.csv"
    assert invoke("export", "--run", run, "--topk-all", top, "-k", 5, "-q").exit_code == 0
    listed = [line.split(",")[2] for line in top.read_text().splitlines()[1:] if line.split(",")[0] == "2"]
    assert listed == [line.split("\t")[2] for line in after.splitlines()[1:]]
    r = invoke("recommend", "--run", run, "--user", 2, "-k", 2, "--explain", 3, "--format", "tsv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].endswith("because")
    more = fresh_movies(er.open(run), 3, 2)
    r = invoke("update-users", "--ratings", "-", "--run", run, input="user_id,movie_id\n" +
               "".join(f"3,{i}\n" for i in more))
    assert r.exit_code == 0 and json.loads(r.stdout)["ratings"] == {"source": "-", "sha256": None, "rows": 2}
    for args, code, start in (
            (("--ratings", tmp_path / "gone.csv"), 1, f"error: {tmp_path / 'gone.csv'}: file not found (--ratings)"),
            (("--ratings", tmp_path), 2, f"error: invalid value for '--ratings': File '{tmp_path}' is a directory"),
            ((), 2, "error: missing option '--ratings'"),
            (("--ratings", write_ratings(tmp_path / "x.csv", [(99999, 1, 1)]), "--no-new-users"), 1,
             f"error: {tmp_path / 'x.csv'}:2: user '99999' is not in the training data (300 users); --no-new-users "
             "refuses a user the run does not know: leave it out to add such users"),
            # a first-hour review: a since-file whose only row rated 'x' was offered data.event_weights={x: 1} first;
            # one cell of a word is a typo, alone or among numbers: fix or remove that line
            (("--ratings", write_ratings(tmp_path / "w.csv", [(2, 1, "x")])), 1,
             f"error: {tmp_path / 'w.csv'}:2: column 'rating' 'x' is not a number; fix or remove that line"),
            (("--ratings", write_ratings(tmp_path / "w2.csv", [(2, 1, 4), (2, 3, "x")])), 1,
             f"error: {tmp_path / 'w2.csv'}:3: column 'rating' 'x' is not a number; fix or remove that line"),
            # several words, event types: their weights lead (the run's dataset was ingested with numbers)
            (("--ratings", write_ratings(tmp_path / "e.csv", [(2, 1, "click"), (2, 3, "buy"), (2, 4, "click")])), 1,
             f"error: {tmp_path / 'e.csv'}:2: column 'rating' 'click' is not a number (3 lines like it: 2, 3, 4); it "
             "holds 2 words (click, buy), event types: to weigh them (your weights; a pair's events summed), --set "
             "'data.event_weights={click: 1, buy: 2}'; or fix or remove those lines"),
            # every rating of a movie it does not know: an error, not 'nothing to update' (a red team)
            (("--ratings", write_ratings(tmp_path / "m.csv", [(2, 99999, 1), (3, 99998, 1)])), 1,
             f"error: {tmp_path / 'm.csv'}: every one of its 2 ratings is of a movie the model does not know "
             f"('99999', '99998' are not in the training data; the first at {tmp_path / 'm.csv'}:2), so nothing is "
             "updated; to add them to the run, give --new-movies (they are solved from the ratings of the users it "
             "knows); else give ratings of the movies the run was trained on, by the ids of its dataset"),
            # an empty file or a header alone: --ratings named, not ingest's data.source
            (("--ratings", write_ratings(tmp_path / "h.csv", [])), 1,
             f"error: {tmp_path / 'h.csv'}: the file has no data rows; give --ratings a ratings table with a row per "
             "rating"),
            (("--ratings", "-"), 1, "error: <stdin>: the file is empty; give --ratings a ratings table")):
        r = invoke("update-users", *args, "--run", run)
        assert (r.exit_code, r.stdout) == (code, ""), (args, r.stderr)
        assert one_line(r).startswith(start), (args, r.stderr)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, synth_dir):
    """synth_dir ingested and an als run trained on it by the command (its dataset on disk: evaluate, resume)."""
    tmp = tmp_path_factory.mktemp("update-users-ingested")
    sets = ["--set", f"data.prepared={tmp / 'ds'}", "--set", "model.dim=8", "--set", "train.epochs=2",
            "--set", "train.threads=1", "--set", "train.als_dims=[]"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        assert invoke("ingest", synth_dir[0], "-o", tmp / "ds", "-q").exit_code == 0
        r = invoke("train", "-q", *sets, "--run", tmp / "run")
        assert r.exit_code == 0, r.stderr
    return tmp / "run", sets


def test_evaluate_and_resume_of_an_updated_run(ingested, tmp_path):
    """evaluate counts the split's rows the update gave the model and warns of them (a known answer: the test
    rows of three users given as their new ratings); train --resume of the finished run stays finished, prints the
    metrics it recorded and says they are from before the update, and serves the updated folder still; a train
    again publishes a model without the updates, and says so."""
    src, sets = ingested
    run = copy_run(src, tmp_path / "run")
    ds = json.loads((run / "current" / "manifest.json").read_text())["dataset"]["path"]
    test = er.load_dataset(ds).split_frame("test")
    users = list(test["user_id"].drop_duplicates()[:3])
    rows = test[test["user_id"].isin(users)]
    f = write_ratings(tmp_path / "test.csv", zip(rows["user_id"], rows["movie_id"], rows["rating"]))
    record = er.update_users(run, f)
    assert record["pairs"] == len(rows)
    r = invoke("evaluate", "--run", run, "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)["updates"]
    assert got == {"updates": 1, "users": 3, "users_added": 0, "ratings": record["pairs_solved"],
                   "rows_seen": len(rows)}
    assert f"{len(rows)} of the test split's {len(test):,} rows are ratings this run's users were re-solved with" \
        in r.stderr and "its lists leave them out as recommend does (the users told them), so they count as " \
        "misses" in r.stderr, r.stderr
    assert json.loads(r.stdout)["excluded"] == "train+valid+updates"
    assert "all movies minus those the user rated in train, valid and the ratings update-users gave" in \
        invoke("evaluate", "--run", run).stderr
    folder = os.readlink(run / "current")
    recorded = json.loads((run / "current" / "metrics.json").read_text())
    r = invoke("train", "--resume", *sets, "--run", run, "--format", "json")
    assert r.exit_code == 0 and os.readlink(run / "current") == folder, r.stderr
    assert json.loads(r.stdout) == recorded
    line = one_line(r)
    assert line.startswith(f"nothing to resume: {run} is finished") and \
        "since then update-users re-solved 3 of its users with" in line and \
        "the metrics given are the trained model's, from before" in line
    # a red team: the checkpoints' times changed (`touch`, `cp -r`) made the resume train again and replace the
    # update; the run's `current` link removed, the resume (which the readers' message offered) served the trained
    # model without a word, and the next publish pruned the updated folder
    for checkpoint in run.rglob("checkpoint.pt"):
        os.utime(checkpoint, ns=(checkpoint.stat().st_atime_ns, checkpoint.stat().st_mtime_ns + 10**9))
    r = invoke("train", "--resume", *sets, "--run", run, "--format", "json")
    assert r.exit_code == 0 and os.readlink(run / "current") == folder, r.stderr
    assert one_line(r).startswith(f"nothing to resume: {run} is finished") and json.loads(r.stdout) == recorded
    (run / "current").unlink()
    r = invoke("recommend", "--run", run, "--user", users[0])
    assert r.exit_code == 1 and f"link the newest again (ln -s {folder} " in r.stderr and "--resume" not in r.stderr
    r = invoke("train", "--resume", *sets, "--run", run, "--format", "json")
    assert r.exit_code == 1 and r.stdout == "" and one_line(r) == (
        f"error: cannot resume: '{run / 'current'}', the link to the model folder the run serves, is missing "
        f"(removed by hand?), and its newest model folder {folder} holds the updates update-users made after the "
        f"training finished; link it again (ln -s {folder} {run / 'current'}), then check it with embedrec verify "
        f"{run} (a resume would serve the model trained without them)"), r.stderr
    assert not os.path.lexists(run / "current") and len(list(run.glob("artifacts-*"))) == 2
    os.symlink(folder, run / "current")
    r = invoke("train", *sets, "--run", run, "--format", "json")
    assert r.exit_code == 0 and os.readlink(run / "current") != folder
    assert f"{run} now serves a model trained without the updates of the one it replaced ({folder}: update-users " \
           "re-solved 3 of its users" in r.stderr
    assert "updates" not in json.loads((run / "current" / "manifest.json").read_text())


def test_evaluate_of_an_updated_run_scores_the_lists_recommend_serves(ingested, tmp_path):
    """A notebook review: evaluate left out only train and valid, so an updated user's new movies (no test row)
    entered its lists, and er.score_lists of recommend's lists (which leave them out) differed from its figures.
    They are left out now: per user, evaluate's figures are score_lists' of the served lists."""
    src, _ = ingested
    run = copy_run(src, tmp_path / "run")
    ds = er.load_dataset(json.loads((run / "current" / "manifest.json").read_text())["dataset"]["path"])
    test = ds.split_frame("test")
    with er.open(run) as m:
        users = [int(u) for u in test["user_id"].drop_duplicates()[:40]]
        before = m.recommend(users, k=1)
    # each user's top movie, which no test row holds, told as rated: it was the lists' first, now seen
    told = [(u, int(ids[0]), 5) for u, ids, _ in before]
    er.update_users(run, write_ratings(tmp_path / "new.csv", told))
    with er.open(run) as m:
        frame = m.evaluate("test", ks=(10,), per_user=True)["per_user"].set_index("user_id")
        ev = frame["ndcg@10"]
        served = er.score_lists(m.recommend(test["user_id"].unique(), k=10), test, ks=(10,), per_user=True)
    got = served.set_index("user_id")["ndcg@10"].reindex(ev.index)
    np.testing.assert_allclose(ev.to_numpy(), got.to_numpy(), atol=1e-12)
    # most_popular's lists leave them out too (a review: its paired difference with the model was biased): the
    # popular order of the fit's rows, each user's seen movies and told ones skipped, scored by score_lists
    import pandas as pd

    refit = json.loads((run / "current" / "manifest.json").read_text()).get("refit")
    fit = pd.concat([ds.split_frame("train"), *([ds.split_frame("valid")] if refit else [])])
    order = fit["movie_id"].value_counts(sort=False)
    order = sorted(order.index, key=lambda mv: (-order[mv], int(ds.movies.set_index("movie_id").index.get_loc(mv))))
    seen = pd.concat([ds.split_frame("train"), ds.split_frame("valid")]).groupby("user_id")["movie_id"].agg(set)
    extra = {u: {mv} for u, mv, _ in told}
    rows = [{"user_id": u, "movie_id": mv, "rank": r + 1} for u in test["user_id"].unique()
            for r, mv in enumerate([x for x in order if x not in seen.get(u, set()) | extra.get(u, set())][:10])]
    want = er.score_lists(pd.DataFrame(rows), test, ks=(10,), per_user=True).set_index("user_id")["ndcg@10"]
    np.testing.assert_allclose(frame["most_popular:ndcg@10"].to_numpy(), want.reindex(frame.index).to_numpy(),
                               atol=1e-12)


def test_the_ratings_file_is_read_as_the_run_s_dataset_was_ingested_unless_the_config_says(tmp_path):
    """A review: a dataset ingested with data.columns.user=customer (a shop's click log, data.columns.rating=null),
    then `update-users --ratings since.csv` refused its file of the same columns: "no column 'user_id'". Its
    columns (and separator, header, encoding, decimal mark, data.missing) default to the dataset's, said in one
    line; a key --set gives is read as given; a dataset gone, the run's config.yaml says them."""
    rng = np.random.default_rng(0)
    rows = [(f"c{u}", f"i{m}") for u in range(40) for m in rng.choice(15, 6, replace=False) + 15 * (u % 2)]
    write_ratings(tmp_path / "log.csv", rows, "customer;item")  # (';': a separator the file must be read with)
    (tmp_path / "log.csv").write_text((tmp_path / "log.csv").read_text().replace(",", ";"))
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", "-q", tmp_path / "log.csv", *sets, "--set", "data.columns.user=customer", "--set",
               "data.columns.movie=item", "--set", "data.columns.rating=null", "--set", "data.separator=;",
               "--set", "data.id_type=str")
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2")
    assert r.exit_code == 0, r.stderr
    since = tmp_path / "since.csv"
    since.write_text("customer;item\nc1;i20\nc1;i21\nnew;i3\n")
    run = ("--set", f"run.dir={tmp_path / 'run'}")
    r = invoke("update-users", "--ratings", since, *run)
    assert r.exit_code == 0, r.stderr
    assert f"reading '{since}' as dataset 'log' was ingested: data.columns.user=customer, data.columns.movie=item, " \
        "data.columns.rating=null, data.separator=; (a key given with --set reads it otherwise)" in r.stderr, r.stderr
    record = json.loads(r.stdout)
    assert (record["users"], record["users_added"], record["pairs"]) == (1, 1, 3)
    # a key --set gives is read as given (the others still the dataset's)
    r = invoke("update-users", "-q", "--ratings", since, *run, "--set", "data.columns.user=user_id")
    assert r.exit_code == 1 and "no column 'user_id' for the user (data.columns.user)" in one_line(r), r.stderr
    # from Python: a config that gives none reads the file as the dataset was ingested
    cfg = load_config(None, [run[1]])
    since.write_text("customer;item\nc2;i22\n")
    assert er.update_users(None, since, cfg)["pairs"] == 1
    # another dataset at its path (re-ingested since, here with the columns swapped; or its manifest edited): not
    # followed (a red team: an edited manifest's swapped columns re-solved movies as users), the run's config.yaml
    # read instead
    r = invoke("ingest", "-q", tmp_path / "log.csv", *sets, "--overwrite", "--set", "data.columns.user=item",
               "--set", "data.columns.movie=customer", "--set", "data.columns.rating=null", "--set",
               "data.separator=;", "--set", "data.id_type=str")
    assert r.exit_code == 0, r.stderr
    since.write_text("customer;item\nc2;i24\n")
    r = invoke("update-users", "--ratings", since, *run)
    assert r.exit_code == 0 and f"reading '{since}' as the run's dataset (its config.yaml) was ingested: " \
        "data.columns.user=customer, data.columns.movie=item" in r.stderr, r.stderr
    # the dataset gone: the run's config.yaml, which records the dataset's settings
    shutil.rmtree(tmp_path / "ds")
    since.write_text("customer;item\nc3;i23\n")
    r = invoke("update-users", "--ratings", since, *run)
    assert r.exit_code == 0, r.stderr
    assert f"reading '{since}' as the run's dataset (its config.yaml) was ingested: data.columns.user=customer, " \
        "data.columns.movie=item, data.columns.rating=null, data.separator=;" in r.stderr, r.stderr
    # neither readable (a run whose config.yaml has lost its data section is refused as damaged, so a dataset made
    # in memory is the case): the config's settings, as before
    from embedrec.config import DataConfig
    from embedrec.run import load_run
    from embedrec.user_update_settings import as_ingested

    class Bare:
        manifest, path = {}, tmp_path / "nowhere"

        def read_verified(self, p):
            return None
    assert as_ingested(Bare(), DataConfig(), None) == DataConfig()

    class Damaged(Bare):  # a damaged config.yaml is said, not skipped (a red team: the error named the columns)
        def read_verified(self, p):
            from embedrec.errors import ArtifactError
            raise ArtifactError(f"run artifact '{p}' does not match its checksum")
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: said.append(rec.getMessage())  # (the CLI's runs above stop caplog's propagation)
    logging.getLogger("embedrec").addHandler(handler)
    try:
        assert as_ingested(Damaged(), DataConfig(), None) == DataConfig()
    finally:
        logging.getLogger("embedrec").removeHandler(handler)
    assert said == [f"cannot read how the run's dataset was ingested from {tmp_path / 'nowhere' / 'config.yaml'} "
                    f"(run artifact '{tmp_path / 'nowhere' / 'config.yaml'}' does not match its checksum): reading "
                    "the file with the command's settings"], said
    taken = as_ingested(load_run(tmp_path / "run"), DataConfig(), ["data.columns.user"])
    assert (taken.columns.user, taken.columns.movie, taken.separator) == ("user_id", "item", ";")


def test_a_file_of_the_documented_names_updates_a_run_ingested_under_others(tmp_path):
    """A first-hour review: a run ingested from customer_id,product_id refused `update-users --ratings -` of
    user_id,movie_id,rating, the names its -h documents, and advised data.columns.movie=NAME without movie_id; a
    file without a header line was offered its data as column names without the data.header=false hint. A column
    is read under the dataset's name or its default name; a key given is read as given; a header line naming a user
    or a movie the run knows is data, and the error says how to read such a file."""
    rng = np.random.default_rng(1)
    rows = [(f"c{u}", f"p{m}", int(rng.integers(1, 6))) for u in range(40)
            for m in rng.choice(15, 6, replace=False) + 15 * (u % 2)]
    write_ratings(tmp_path / "shop.csv", rows, "customer_id,product_id,rating")
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", "-q", tmp_path / "shop.csv", *sets, "--set", "data.columns.user=customer_id", "--set",
               "data.columns.movie=product_id", "--set", "data.id_type=str")
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2")
    assert r.exit_code == 0, r.stderr
    run = tmp_path / "run"
    rated = {(u, m) for u, m, _ in rows}
    fresh = [f"p{m}" for m in range(15) if ("c1", f"p{m}") not in rated]  # c1 rated the odd half's movies

    def update(text: str, *more):
        return invoke("update-users", "--ratings", "-", "--run", run, *more, input=text)

    # the documented names: read as named, nothing said of the dataset's (none of them was read)
    r = update(f"user_id,movie_id,rating\nc1,{fresh[0]},5\nnew,{fresh[1]},4\n")
    assert r.exit_code == 0, r.stderr
    assert "was ingested" not in r.stderr, r.stderr
    record = json.loads(r.stdout)
    assert (record["users"], record["users_added"], record["pairs"]) == (1, 1, 2)
    # the dataset's names still, and one of each (its spelling matched as ingest matches one): only the dataset's
    # column said
    r = update(f"customer_id,product_id,rating\nc1,{fresh[2]},5\n")
    assert r.exit_code == 0 and json.loads(r.stdout)["pairs"] == 1, r.stderr
    assert "as dataset 'shop' was ingested: data.columns.user=customer_id, data.columns.movie=product_id " \
        in r.stderr, r.stderr
    r = update(f"customer_id,Movie_ID\nc1,{fresh[3]}\n")
    assert r.exit_code == 0 and json.loads(r.stdout)["pairs"] == 1, r.stderr
    assert "was ingested: data.columns.user=customer_id (a key" in r.stderr, r.stderr
    # a key given is read as given: no default name in its place
    r = update(f"user_id,movie_id\nc1,{fresh[4]}\n", "--set", "data.columns.user=customer_id")
    assert (r.exit_code, r.stdout) == (1, ""), r.stderr
    assert r.stderr.splitlines()[-1].startswith("error: <stdin>: no columns for the user ('customer_id') and the "
                                                "rating"), r.stderr
    # no header line: its first line names a user and a movie the run knows, so the error says how to read it
    r = update(f"c1,{fresh[4]}\nc2,{fresh[5]}\n")
    assert (r.exit_code, r.stdout) == (1, ""), r.stderr
    err = r.stderr.splitlines()
    assert len(err) == 2 and err[0].startswith("reading standard input as dataset 'shop' was ingested"), r.stderr
    assert err[1].startswith("error: <stdin>: no columns for the user ('customer_id'), the movie ('product_id')") \
        and err[1].endswith("; if the file has no header line, read it with --set data.header=false (columns in the "
                            "order user, movie, rating, timestamp)"), r.stderr
    r = update(f"c1,{fresh[4]}\n", "--set", "data.header=false", "--set", "data.columns.rating=null", "--set",
               "data.columns.timestamp=null")
    assert r.exit_code == 0 and json.loads(r.stdout)["pairs"] == 1, r.stderr
    # from Python, a Parquet file of the documented names alike
    import pandas as pd

    pd.DataFrame({"user_id": ["c1"], "movie_id": [fresh[5]], "rating": [4.0]}).to_parquet(tmp_path / "since.parquet")
    assert er.update_users(run, tmp_path / "since.parquet")["pairs"] == 1


def test_a_releases_unapplied_settings_are_not_how_an_update_is_read(ml100k_dir, tmp_path):
    """A red team: `ingest ml-100k --set data.columns.rating=null` warns the setting has no effect (a release is
    read as released), but the dataset records it, and update-users then read an update's ratings as likes. A
    release's recorded reading settings are none of the update file's: read with the command's settings."""
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", ml100k_dir, *sets, "--set", "data.columns.rating=null")
    assert r.exit_code == 0 and "data.columns.rating has no effect" in r.stderr, r.stderr
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.als_dims=[]")
    assert r.exit_code == 0, r.stderr
    since = tmp_path / "since.csv"
    since.write_text("user_id,movie_id,rating\n1,3,5\n")
    r = invoke("update-users", "--ratings", since, "--run", tmp_path / "run")
    assert r.exit_code == 0 and "was ingested:" not in r.stderr, r.stderr
    # the dataset gone: the run records a release's, so its config.yaml's setting is not read either
    shutil.rmtree(tmp_path / "ds")
    assert "rating: null" in (tmp_path / "run" / "current" / "config.yaml").read_text()
    since.write_text("user_id,movie_id,rating\n1,4,5\n")
    r = invoke("update-users", "--ratings", since, "--run", tmp_path / "run")
    assert r.exit_code == 0 and "was ingested:" not in r.stderr, r.stderr
    from embedrec.run import load_run

    assert load_run(tmp_path / "run").manifest["dataset"]["layout"] == "ml-100k"


def test_chosen_keys_are_those_set_or_a_file_gives_other_than_its_defaults(tmp_path):
    """config_ingest.chosen_keys: a --set key is chosen, whatever its value; a file's key too, but at its default
    value in a file that writes every data and split key (as `embedrec config` saves one), where none is a choice."""
    from embedrec.config import Config
    from embedrec.config_ingest import chosen_keys

    keys = ("data.columns.user", "data.separator", "data.header")
    assert chosen_keys(Config(), keys) == []
    cfg = load_config(None, ["data.columns.user=user_id"])  # the default value, given
    assert chosen_keys(cfg, keys) == ["data.columns.user"]
    few = tmp_path / "few.yaml"
    few.write_text("data:\n  separator: ';'\n  header: true\n")
    assert chosen_keys(load_config(few), keys) == ["data.separator", "data.header"]
    whole = tmp_path / "whole.yaml"  # every key, as `embedrec config` writes them: the defaults are no choice
    import yaml

    d = Config().to_dict()
    d["data"]["separator"] = ";"
    whole.write_text(yaml.safe_dump(d))
    assert chosen_keys(load_config(whole), keys) == ["data.separator"]
    assert chosen_keys(load_config(whole, ["data.header=true"]), keys) == ["data.separator", "data.header"]
    # one an earlier embedrec saved, without the keys added since (a review: its defaults were read as choices)
    older = tmp_path / "older.yaml"
    del d["data"]["timestamp_unit"], d["data"]["event_weights"]
    older.write_text(yaml.safe_dump(d))
    assert chosen_keys(load_config(older), keys) == ["data.separator"]


def test_a_parquet_rating_beyond_float32_is_one_line_naming_its_row(runs, tmp_path):
    """A red team: update-users' since-file in Parquet with a float64 rating of 1e300 printed numpy's overflow
    warning before the error, which named 'new.parquet:3', a line."""
    import warnings

    import pandas as pd

    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    new = fresh_movies(m, 2, 2)
    m.close()
    f = tmp_path / "new.parquet"
    pd.DataFrame({"user_id": [2, 2], "movie_id": new[:2], "rating": [1.0, 1e300]}).to_parquet(f)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=RuntimeWarning)
        r = invoke("update-users", "--ratings", f, "--run", run)
    assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == (
        f"error: {f}: row 2: rating inf is not a finite number; fix or remove that row"), r.stderr


@pytest.fixture(scope="module")
def guessed_run(tmp_path_factory):
    """A shop's file (customer_id,product_id,rating,timestamp in Unix seconds) ingested without column settings
    (its user and movie columns guessed), an als run trained on it: (dataset, run, rows), never written to."""
    tmp = tmp_path_factory.mktemp("guessed")
    rng = np.random.default_rng(3)
    rows = [(100 + u, m + 1, int(rng.integers(1, 6)), 880_000_000 + int(rng.integers(0, 10**6)))
            for u in range(40) for m in rng.choice(30, 8, replace=False)]
    write_ratings(tmp / "shop.csv", rows, "customer_id,product_id,rating,timestamp")
    sets = ["--set", f"data.prepared={tmp / 'ds'}", "--set", f"run.dir={tmp / 'run'}"]
    r = invoke("ingest", tmp / "shop.csv", *sets)
    assert r.exit_code == 0 and "'customer_id' as the user" in r.stderr, r.stderr
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2")
    assert r.exit_code == 0, r.stderr
    return tmp / "ds", tmp / "run", rows


def test_a_file_is_read_by_the_columns_the_dataset_was_read_by(guessed_run, tmp_path):
    """A red team: a dataset whose user column ingest guessed ('customer_id'; data.columns.user stays user_id)
    records columns_read.user: customer_id, but update-users read a file's 'user_id' over its 'customer_id' and added
    user 999 with customer 103's ratings. The columns the dataset was read by are read, the one read said where the
    file names both; a key given reads the other; the dataset gone, the run's config.yaml names them alike."""
    ds, trained, rows = guessed_run
    run = copy_run(trained, tmp_path / "run")
    rated = {m for u, m, _, _ in rows if u == 103}
    fresh = [m for m in range(1, 31) if m not in rated]
    since = write_ratings(tmp_path / "u.csv", [(999, 103, fresh[0], 5), (999, 103, fresh[1], 4)],
                          "user_id,customer_id,product_id,rating")
    r = invoke("update-users", "--ratings", since, "--run", run)
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert (record["users"], record["users_added"], record["pairs"]) == (1, 0, 2), record
    assert f"'{since}' has both a 'customer_id' and a 'user_id' column: read 'customer_id' for the user, as dataset " \
           "'shop' was ingested (--set data.columns.user=user_id reads 'user_id')" in r.stderr, r.stderr
    # a key given reads the other column
    since = write_ratings(tmp_path / "u.csv", [(999, 103, fresh[2], 5)], "user_id,customer_id,product_id,rating")
    r = invoke("update-users", "--ratings", since, "--run", run, "--set", "data.columns.user=user_id")
    assert r.exit_code == 0 and json.loads(r.stdout)["users_added"] == 1, r.stderr
    assert "has both" not in r.stderr, r.stderr
    # the dataset gone: the run's config.yaml records the columns it was read by
    assert "user: customer_id" in (run / "current" / "config.yaml").read_text()
    shutil.rmtree(tmp_path / "run")
    run = copy_run(trained, tmp_path / "run")
    moved = tmp_path / "ds-moved"
    shutil.copytree(ds, moved, symlinks=True)
    shutil.rmtree(ds)
    try:
        since = write_ratings(tmp_path / "u.csv", [(999, 103, fresh[3], 5)], "user_id,customer_id,product_id,rating")
        r = invoke("update-users", "--ratings", since, "--run", run)
    finally:
        shutil.copytree(moved, ds, symlinks=True)
    assert r.exit_code == 0, r.stderr
    assert (json.loads(r.stdout)["users"], json.loads(r.stdout)["users_added"]) == (1, 0), r.stderr
    assert "as the run's dataset (its config.yaml) was ingested: data.columns.user=customer_id" in r.stderr, r.stderr


def test_a_file_s_unix_times_are_read_in_the_dataset_s_unit(guessed_run, tmp_path):
    """A red team: update-users guessed each file's time unit again, by its median: 900000000 beside a row of
    99999999999999999 was read as microseconds (1970-01-01T00:15:00Z), and a file of that one row as nanoseconds,
    without a note. The dataset's unit (timestamp_unit_read: its auto as resolved) reads the file; a time of
    another unit's size is refused by its line; --set data.timestamp_unit reads it otherwise."""
    ds, trained, _ = guessed_run
    assert json.loads((ds / "current" / "manifest.json").read_text())["timestamp_unit_read"] == "s"
    run = copy_run(trained, tmp_path / "run")
    since = write_ratings(tmp_path / "uu.csv", [(8008, 5, 4, 99999999999999999), (8008, 18, 4, 900000000)],
                          "customer_id,product_id,rating,timestamp")
    r = invoke("update-users", "--ratings", since, "--run", run)
    assert (r.exit_code, r.stdout) == (1, ""), r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"error: {since}:2: timestamp 99999999999999999 is past the year 5000 as Unix seconds (nanoseconds?), the "
        "unit dataset 'shop' was read in; fix or remove that line (every row in seconds), or read the file in another "
        "unit with --set data.timestamp_unit=ns"), r.stderr
    for rows in ([(8008, 5, 4, 99999999999999999)], [(8008, 5, 4, 900000000000)]):  # one row alone: refused too
        write_ratings(since, rows, "customer_id,product_id,rating,timestamp")
        r = invoke("update-users", "--ratings", since, "--run", run)
        assert r.exit_code == 1 and "the unit dataset 'shop' was read in" in r.stderr, r.stderr
    write_ratings(since, [(8008, 5, 4, 900000001), (8008, 18, 4, 900000000)], "customer_id,product_id,rating,timestamp")
    r = invoke("update-users", "--ratings", since, "--run", run)
    assert r.exit_code == 0, r.stderr
    assert "data.timestamp_unit=s (a key given" in r.stderr, r.stderr
    r = invoke("history", "--user", 8008, "--run", run, "--format", "tsv")
    assert r.exit_code == 0 and "1998-07-09T16:00:00Z\tupdate" in r.stdout, r.stdout
    # the unit given reads the file so
    write_ratings(since, [(8009, 5, 4, 900000000000)], "customer_id,product_id,rating,timestamp")
    r = invoke("update-users", "--ratings", since, "--run", run, "--set", "data.timestamp_unit=ms")
    assert r.exit_code == 0, r.stderr
    r = invoke("history", "--user", 8009, "--run", run, "--format", "tsv")
    assert "1998-07-09T16:00:00Z\tupdate" in r.stdout, r.stdout



def test_a_killed_writers_probe_and_lock_are_removed_by_the_next(guessed_run, tmp_path):
    """A red team: kill -9 at export --topk-all's write probe left '.embedrec-probe-XXXX' in the user's folder, and
    after the final rename '.embedrec.top.parquet.lock', which a rerun (refused: the file is there) kept. The probe is
    an unnamed file (O_TMPFILE) or one named by its pid, removed by a later probe once that pid is gone; a lock no
    writer holds is removed by the next writer of that path, refused or not; a held one stays."""
    import fcntl

    from embedrec.fsutil.outputs import output_parent

    _, run, _ = guessed_run
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid no process has now
    (out / f".embedrec-probe-{gone}-abc").write_text("")
    (out / ".embedrec-probe-keep").write_text("")  # no pid: not provably stale, kept
    output_parent(out / "top.parquet", "fix")
    assert sorted(p.name for p in out.iterdir()) == [".embedrec-probe-keep"]
    r = invoke("export", "-q", "--run", run, "--topk-all", out / "top.parquet")
    assert r.exit_code == 0, r.stderr
    lock = out / ".embedrec.top.parquet.lock"
    lock.write_text(f"{gone} embedrec export\n")  # what a writer killed after its rename leaves
    r = invoke("export", "-q", "--run", run, "--topk-all", out / "top.parquet")
    assert r.exit_code == 2 and "already exists" in r.stderr, r.stderr
    assert not lock.exists()
    lock.write_text(f"{os.getpid()} embedrec export\n")
    with open(lock, "rb") as fh:  # held: another writer's, kept, and that writer said
        fcntl.flock(fh, fcntl.LOCK_EX)
        r = invoke("export", "-q", "--run", run, "--topk-all", out / "top.parquet")
        assert r.exit_code == 2 and lock.exists(), r.stderr


def test_writers_take_dot_in_a_model_folder_as_its_run_and_a_report_after_no_write_says_so(guessed_run, tmp_path,
                                                                                            monkeypatch):
    """A red team: `cd RUN/current && embedrec index rebuild --run .` (and update-users) was refused as writing
    inside RUN, where readers take '.' there as the run; and `update-users ... > /dev/full` with nothing to update
    said 'RUN' "was written in full", though nothing was."""
    _, trained, rows = guessed_run
    run = copy_run(trained, tmp_path / "run")
    monkeypatch.chdir(run / "current")
    r = invoke("index", "rebuild", "-q", "--run", ".")
    assert r.exit_code == 0, r.stderr
    monkeypatch.chdir(run / "current")  # the model folder it serves now
    since = write_ratings(tmp_path / "u.csv", [(7777, rows[0][1], 5)], "customer_id,product_id,rating")
    r = invoke("update-users", "-q", "--ratings", since, "--run", ".")
    assert r.exit_code == 0 and json.loads(r.stdout)["users_added"] == 1, r.stderr
    monkeypatch.chdir(tmp_path)  # the same file again: nothing to update
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "embedrec", "update-users", "-q", "--ratings", str(since), "--run",
                            str(run)], stdout=full, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert p.returncode == 1 and p.stderr.splitlines()[-1] == (
        f"error: nothing was written to '{run}', which the command left as it was; only the report on standard "
        "output failed (No space left on device)"), p.stderr


def test_a_file_without_times_updates_a_run_whose_times_were_read_from_another_name(tmp_path):
    """A first-hour review: a dataset ingested from customer_id,product_id,stars,event_time (columns guessed, times
    in ms) refused `update-users` of a user_id,movie_id,rating file ("no column 'event_time' for the timestamp"), and
    of a customer_id,product_id,stars file the same, where -h says the timestamp column is optional (a file without
    times works where the dataset's column had the default name). Read without times, the line saying which columns
    it reads naming those the file has; a timestamp column given with --set is still required."""
    rng = np.random.default_rng(5)
    rows = [(100 + u, m + 1, int(rng.integers(1, 6)), 1_600_000_000_000 + int(rng.integers(0, 10**9)))
            for u in range(30) for m in rng.choice(20, 6, replace=False)]
    write_ratings(tmp_path / "shop.csv", rows, "customer_id,product_id,stars,event_time")
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", "-q", tmp_path / "shop.csv", *sets)
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2", "--set", "train.refit=false")
    assert r.exit_code == 0, r.stderr
    rated = {m for u, m, _, _ in rows if u == 103}
    fresh = [m for m in range(1, 21) if m not in rated]
    for k, header in enumerate(("user_id,movie_id,rating", "customer_id,product_id,stars")):
        since = write_ratings(tmp_path / f"f{k}.csv", [(103, fresh[k], 5)], header)
        r = invoke("update-users", "--ratings", since, "--run", tmp_path / "run")
        assert r.exit_code == 0, r.stderr
        assert (json.loads(r.stdout)["users"], json.loads(r.stdout)["pairs"]) == (1, 1), r.stdout
        assert "event_time" not in r.stderr and "timestamp_unit" not in r.stderr, r.stderr
    assert "was ingested: data.columns.user=customer_id, data.columns.movie=product_id, data.columns.rating=stars " \
           "(a key given" in r.stderr, r.stderr
    since = write_ratings(tmp_path / "f2.csv", [(103, fresh[2], 5)], "user_id,movie_id,rating")
    r = invoke("update-users", "--ratings", since, "--run", tmp_path / "run", "--set", "data.columns.timestamp=event_time")
    assert r.exit_code == 1 and "no column 'event_time' for the timestamp" in r.stderr, r.stderr


def test_the_checksums_bar_counts_the_bytes_it_reads(tmp_path, monkeypatch):
    """A scale check: the seal's 'checksums' bar counted the files hashed as they were written too (434M at 7.62
    GB/s where some 70 MB were read). It counts the files this step reads alone."""
    import contextlib

    import embedrec.bars as bars
    from embedrec.fsutil.files import write_json
    from embedrec.fsutil.integrity import file_entry, stat_key
    from embedrec.run_publish import _record_checksums

    folder = tmp_path / "f"
    folder.mkdir()
    write_json(folder / "manifest.json", {"format": 1})
    np.save(folder / "a.npy", np.arange(1000, dtype=np.float32))
    (folder / "b.json").write_text('{"x": 1}')
    seen = {"total": None, "ticked": 0}

    @contextlib.contextmanager
    def step(desc, total, unit, **kw):
        seen["total"] = total
        yield lambda n=1, **k: seen.__setitem__("ticked", seen["ticked"] + n)

    monkeypatch.setattr(bars, "step", step)
    hashed = {"a.npy": (file_entry(folder / "a.npy"), stat_key(folder / "a.npy"))}
    _record_checksums(folder, progress=True, hashed=hashed)
    assert seen == {"total": (folder / "b.json").stat().st_size, "ticked": (folder / "b.json").stat().st_size}


@pytest.mark.parametrize("command", ["update-users", "index rebuild"])
def test_a_signal_after_the_publish_says_the_new_model_is_served_and_exits_0(ingested, tmp_path, monkeypatch, command):
    """A red team: SIGTERM just after update-users or index rebuild swapped `current` said 'terminated (SIGTERM):
    nothing half-written was left behind', exit 143, while the new model was served (a retry then found nothing to
    update). It says the new model is served, as train and ingest do, and exits 0; one before the swap is still
    the interruption it was."""
    import signal

    from embedrec.errors import Terminated

    src, _ = ingested
    user = int(er.load_dataset(json.loads((src / "current" / "manifest.json").read_text())["dataset"]["path"])
               .split_frame("train")["user_id"].iloc[0])
    real = os.replace

    def after(when):
        def replace(a, b, *args, **kw):
            if when == "after":
                real(a, b, *args, **kw)
            if str(b).endswith(f"{os.sep}current"):
                raise Terminated(signal.SIGTERM)
            if when != "after":
                real(a, b, *args, **kw)
        return replace

    args = {"update-users": ["update-users", "--ratings", write_ratings(tmp_path / "new.csv", [(user, 3, 5),
                                                                                                 (99_999, 3, 5)])],
            "index rebuild": ["index", "rebuild", "--set", "index.kind=hnsw"]}[command]
    for when in ("before", "after"):
        run = copy_run(src, tmp_path / f"run-{when}")
        was = os.path.realpath(run / "current")
        monkeypatch.setattr(os, "replace", after(when))
        r = invoke(*args, "--run", run)
        monkeypatch.setattr(os, "replace", real)
        if when == "before":
            assert r.exit_code == 143 and "nothing half-written" in r.stderr, r.stderr
            assert os.path.realpath(run / "current") == was
            continue
        assert r.exit_code == 0 and r.stdout == "", r.stderr
        assert f"SIGTERM came after the {'updated model' if command == 'update-users' else 'rebuilt index'} was " \
               f"published: {run} serves it" in r.stderr
        assert os.path.realpath(run / "current") != was and invoke("verify", run).exit_code == 0


def test_a_long_lived_stream_s_unknown_user_line_says_the_run_serves_a_newer_model(runs, tmp_path, caplog):
    """An incremental-use review: a `recommend --users -` stream opened before update-users added user 9001
    skipped it as 'unknown user' with no word that the run had published it since. The stream keeps the model it
    opened (as documented), and its line now says that a newer one is served and a new stream reads it."""
    from embedrec.serve.stream import recommend_many

    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        a = int(m.movie_ids[0])
        old = m.engine
        with caplog.at_level(logging.WARNING, "embedrec"):
            list(recommend_many(old, ["9001\n"], 3, name="<stdin>"))
        assert "unknown user '9001' skipped" in caplog.text and "newer model" not in caplog.text
        caplog.clear()
        er.update_users(run, write_ratings(tmp_path / "new.csv", [(9001, a, 1)]), load_config(None, []))
        with caplog.at_level(logging.WARNING, "embedrec"):
            list(recommend_many(old, ["9001\n"], 3, name="<stdin>"))
        assert "<stdin>:1: unknown user '9001' skipped; the run serves a newer model since this stream opened its " \
               "own, which knows this user (update-users, train): a new stream reads it" in caplog.text, caplog.text
        # an ops review: not said of an id the newer model does not know either, and said with --fallback popular
        caplog.clear()
        with caplog.at_level(logging.WARNING, "embedrec"):
            list(recommend_many(old, ["9002\n", "9001\n"], 3, name="<stdin>", fallback="popular"))
        lines = caplog.text.splitlines()
        assert any("<stdin>:1:" in x and "9002" in x and "most popular movies instead" in x and "newer" not in x
                   for x in lines), caplog.text
        assert any("<stdin>:2:" in x and "most popular movies instead; the run serves a newer model since this "
                   "stream opened its own, which knows this user" in x for x in lines), caplog.text
    with er.open(run) as m:
        assert list(m.recommend(9001, k=1).movie_ids[0])  # the new one knows it


def test_a_held_model_s_unknown_user_error_says_the_run_serves_a_newer_model(runs, tmp_path):
    """A notebook holds er.open(run); update-users adds user 9001; the held Model's NotFoundError said only 'not
    in the training data' (the stream's line said more since session 64). It now says the run published a newer
    model since this one was opened, and how to read it; a model opened after knows the user."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        a = int(m.movie_ids[0])
        with pytest.raises(er.NotFoundError) as before:
            m.recommend(9001, k=3)
        assert "newer one" not in str(before.value)
        er.update_users(run, write_ratings(tmp_path / "new.csv", [(9001, a, 1)]), load_config(None, []))
        with pytest.raises(er.NotFoundError) as after:
            m.recommend(9001, k=3)
        assert "this model was opened before the run published a newer one (update-users, train): er.open() " \
               "again reads it" in str(after.value), str(after.value)
    with er.open(run) as m:
        assert list(m.recommend(9001, k=1).movie_ids[0])
    standalone = tmp_path / "standalone"  # a model folder copied out of its run: no run serves another
    shutil.copytree(run / "current", standalone, symlinks=False)
    with er.open(standalone) as m, pytest.raises(er.NotFoundError) as e:
        m.recommend(424242, k=1)
    assert "newer one" not in str(e.value), str(e.value)


def test_a_finished_resume_without_test_figures_says_it_has_none_to_print(tmp_path, caplog):
    """An ops review: `train --resume` of an updated run trained with split.test=0 said 'the metrics given are the
    trained model's' and printed none (there are none: no test split). It says so."""
    from embedrec.train_workflow import _said_finished

    with caplog.at_level(logging.INFO, "embedrec"):
        _said_finished(tmp_path, ("artifacts-x", {"splits": {}}, "update-users re-solved 1 of its users"))
    assert "since then update-users re-solved 1 of its users: its metrics are the trained model's, from before " \
           "(none to print: no test split)" in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, "embedrec"):
        _said_finished(tmp_path, ("artifacts-x", {"splits": {"test": {}}}, "update-users re-solved 1 of its users"))
    assert "the metrics given are the trained model's, from before" in caplog.text


def test_a_writer_pointed_at_a_folder_that_is_no_run_leaves_no_lock_there(runs, tmp_path):
    """A red team: update-users (or index rebuild) with a mistyped --run naming a folder of the user's own files was
    refused, but left its writer lock (RUN/.lock) there, which train then took for a run: it wrote over the user's
    refit/checkpoint.pt. Refused before the lock is made; train still refuses the folder."""
    user = tmp_path / "proj"
    (user / "refit").mkdir(parents=True)
    (user / "notes.txt").write_text("mine\n")
    (user / "refit" / "checkpoint.pt").write_text("my checkpoint\n")
    f = write_ratings(tmp_path / "since.csv", [(2, 1, 1)])
    for args in (("update-users", "--ratings", f, "--run", user, "--set", "data.header=true"),
                 ("index", "rebuild", "--run", user), ("update-users", "--ratings", f, "--run", tmp_path / "nothere")):
        r = invoke(*args)
        assert r.exit_code == 1 and "no trained model in" in one_line(r), r.stderr
        assert "its training was interrupted" not in r.stderr  # (their refit/checkpoint.pt: no training of ours)
        assert sorted(p.name for p in user.iterdir()) == ["notes.txt", "refit"]
    assert not (tmp_path / "nothere").exists()
    r = invoke("train", "--run", user, "--set", f"data.prepared={tmp_path / 'none'}")
    assert r.exit_code != 0 and (user / "refit" / "checkpoint.pt").read_text() == "my checkpoint\n"
    assert "is not empty and holds no embedrec run" in r.stderr, r.stderr
    # a failed train --resume there leaves no lock either (a review: the next train took it for a run's mark)
    rows = write_ratings(tmp_path / "tiny.csv", [(u, m, 1 + (u + m) % 5) for u in range(1, 30) for m in range(1, 12)])
    er.ingest(str(rows), er.load_config(None, [f"data.prepared={tmp_path / 'tiny'}"]))
    r = invoke("train", "--resume", "--run", user, "--set", f"data.prepared={tmp_path / 'tiny'}")
    assert "nothing to resume" in r.stderr, r.stderr  # (refused with its lock held)
    assert r.exit_code != 0 and sorted(p.name for p in user.iterdir()) == ["notes.txt", "refit"], r.stderr
    r = invoke("recommend", "--user", 1, "--run", user)
    assert "holds a training checkpoint but no other mark of an embedrec run" in one_line(r), r.stderr


def test_a_failed_update_removes_no_folder_holding_users_an_update_added(runs, tmp_path, monkeypatch, caplog):
    """A red team: after a roll-back to the trained model and a second update, a third update that failed (a
    file-size limit, SIGTERM) had pruned, before publishing nothing, the first update's folder, the last holding
    the users it added, without a word. That folder is left to the prune after a publish, which says it."""
    import embedrec.user_update as writing  # (its _write, imported from user_update_write)

    run = copy_run(runs["taste"], tmp_path / "run")
    trained = os.readlink(run / "current")
    er.update_users(run, write_ratings(tmp_path / "a.csv", [(2, 1, 1), (70001, 1, 1), (70001, 2, 1)]))
    first = os.readlink(run / "current")
    os.symlink(trained, run / "current.new")
    os.replace(run / "current.new", run / "current")  # the roll-back docs/reliability.md gives
    er.update_users(run, write_ratings(tmp_path / "b.csv", [(3, 1, 1), (70002, 1, 1)]))
    assert (run / first).is_dir()
    real = writing._write

    def full(*a, **k):
        raise OSError(27, "File too large")

    monkeypatch.setattr(writing, "_write", full)
    with pytest.raises(er.ArtifactError, match="file too large"):
        er.update_users(run, write_ratings(tmp_path / "c.csv", [(4, 1, 1)]))
    assert (run / first).is_dir()  # (pruned before the publish, it was gone)
    monkeypatch.setattr(writing, "_write", real)
    caplog.set_level(logging.WARNING, "embedrec")
    er.update_users(run, tmp_path / "c.csv")
    assert not (run / first).exists()
    assert f"pruned {first}, the last model folder holding the 1 user update-users added ('70001')" in caplog.text


def test_true_false_ratings_of_an_update_are_told_the_models_scale_not_ingests_settings(ingested, tmp_path):
    """A diff review: update-users' file of true/false ratings was advised ingest's event weights and
    data.repeats=latest, which, pasted, were refused (repeats no update's setting, -1 outside the model's scale)."""
    src, _ = ingested
    run = copy_run(src, tmp_path / "run")
    ds = er.load_dataset(json.loads((run / "current" / "manifest.json").read_text())["dataset"]["path"])
    rows = ds.split_frame("train").head(2)
    f = tmp_path / "tf.csv"
    f.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{w}\n" for (u, m), w in
                                                       zip(zip(rows.user_id, rows.movie_id), ("True", "False"))))
    r = invoke("update-users", "--run", run, "--ratings", f)
    lo, hi = ds.rating_scale
    assert r.exit_code == 1 and one_line(r) == (
        f"error: {f}:2: column 'rating' holds 'True', a true/false value, not a number; write the values as numbers "
        f"of this model's scale, {lo:g}-{hi:g}"), r.stderr
