"""The bars of a publish's long steps (embedrec/bars.py): train's publish, index rebuild and update-users showed no
bar at all (a scale review, 200K users x 30K movies: 43 s of an HNSW build and 3 s of writing and hashing without a
word, 17 s of als_trend's valid rankings before its first line). Where bars are on (cli.app.progress_enabled: a
terminal with a width, no -q) each step has one on stderr, cleared when it ends; stdout is the same with or without
them, and -q draws none."""

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedrec.cli import app
from embedrec.serve import index as I

from .conftest import bar_ends, bars_drawn

sys.path.insert(0, str(Path(__file__).parent))
from test_reliability import invoke  # noqa: E402  (the CLI through CliRunner)

PUBLISH = ("writing the model", "hnsw index, top-K", "hnsw index, similar movies",
           "hnsw index, recall@10 check (searches): ", "checksums")
TRAIN = ("re-solving the selected model's 300 users with its movies fixed", "als_trend (valid rankings): ",
         "als_newuser_prior: lists scored", "re-solving users", "train als-reg-0.01: drawing its starting tables",
         "train als-reg-0.01: solving users", "train als-reg-0.01: solving movies")


def bars_on(monkeypatch, *commands) -> None:
    """Bars on for ``commands`` (cli modules) as on a terminal: -q still turns them off (cli.app.progress_enabled's
    first test)."""
    for command in commands:
        monkeypatch.setattr(command, "progress_enabled", lambda: not app._State.quiet)


@pytest.fixture(scope="module")
def als_runs(tmp_path_factory, synth_dir):
    """The synthetic set ingested, and an als run trained on it with an HNSW index, as the CLI trains one with bars
    (stderr kept; each epoch's halves counted however short: ROWS_BAR_DELAY 0) and without (stdout kept):
    {"sets", "run", "shown", "plain"}."""
    from embedrec.cli import train as command
    from embedrec.training import als

    tmp = tmp_path_factory.mktemp("bars")
    common = ["--set", f"data.prepared={tmp / 'ds'}", "--set", "model.dim=8", "--set", "train.als_dims=[]",
              "--set", "index.kind=hnsw", "--set", "train.threads=1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        assert invoke("ingest", synth_dir[0], *common).exit_code == 0
        plain = invoke("train", *common, "--set", f"run.dir={tmp / 'plain'}")
        bars_on(mp, command)
        mp.setattr(als, "ROWS_BAR_DELAY", 0.0)
        shown = invoke("train", *common, "--set", f"run.dir={tmp / 'run'}")
        quiet = invoke("train", *common, "--set", f"run.dir={tmp / 'quiet'}", "-q")
    assert plain.exit_code == shown.exit_code == quiet.exit_code == 0, shown.stderr
    return {"sets": common, "run": tmp / "run", "shown": shown, "plain": plain, "quiet": quiet}


def test_train_shows_a_bar_over_each_long_step(als_runs):
    shown, plain, quiet = als_runs["shown"], als_runs["plain"], als_runs["quiet"]
    assert shown.stdout == plain.stdout == quiet.stdout
    for desc in PUBLISH + TRAIN:
        assert desc in shown.stderr, (desc, shown.stderr)
        assert desc not in plain.stderr and desc not in quiet.stderr, desc  # off: not a terminal, or -q
    assert "movie/s" in shown.stderr and "B/s" in shown.stderr  # counts of movies indexed and bytes written
    starting = bars_drawn(shown.stderr)["train als-reg-0.01: drawing its starting tables"]  # a unit that reads
    assert starting and all(re.search(r"(\d[kMG]?|\?) random numbers/s\]$", f) for f in starting), starting  # ('38.3Mnumber/s')
    assert "hnsw index, top-K:   0%| " in shown.stderr and "| 0/200 [" in shown.stderr  # (the catalogue's movies)
    drawn = bars_drawn(shown.stderr)
    for desc, frames in drawn.items():  # every bar drawn to its total (each drawing: each epoch's halves' too)
        assert all(n == total for n, total in bar_ends(frames)), (desc, bar_ends(frames))
    # the 300 users at 1 (behind an HNSW index), once: als_trend's choice starts from that solve (it solved them
    # twice more on a copy, scored and applied)
    assert bar_ends(drawn["re-solving users"]) == [("300", "300")]
    assert bar_ends(drawn["train als-reg-0.01: solving users"])[0] == ("300", "300")
    assert bar_ends(drawn["train als-reg-0.01: solving movies"])[0] == ("200", "200")


def test_index_rebuild_shows_bars_and_a_line_for_the_k_means(als_runs, monkeypatch, tmp_path):
    import shutil

    from embedrec.cli import index as command

    run = tmp_path / "run"
    shutil.copytree(als_runs["run"], run, symlinks=True)
    args = ("index", "rebuild", *als_runs["sets"], "--run", run, "--set", "index.kind=ivf")
    plain = invoke(*args)
    bars_on(monkeypatch, command)
    shown = invoke(*args)
    quiet = invoke(*args, "-q")
    assert plain.exit_code == shown.exit_code == quiet.exit_code == 0, shown.stderr
    for desc in ("carrying the model over", "ivf index, top-K: k-means of its 5 lists over 200 movies",
                 "ivf index, similar movies", "ivf index, recall@10 check (searches): ", "checksums"):
        assert desc in shown.stderr and desc not in plain.stderr and desc not in quiet.stderr, (desc, shown.stderr)

    def settled(out: str) -> dict:  # (the build's own timings apart)
        return {k: v for k, v in json.loads(out).items() if "seconds" not in k}

    assert settled(shown.stdout) == settled(plain.stdout) == settled(quiet.stdout)


def test_update_users_shows_bars_over_the_users_solved_and_the_files_written(als_runs, monkeypatch, tmp_path):
    import shutil

    from embedrec.cli import update as command

    ratings = tmp_path / "since.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},4.5,2000000000\n" for u in (1, 2, 3, 9001, 9002) for m in (5, 17, 33)))
    outs = {}
    for name, on, extra in (("plain", False, ()), ("shown", True, ()), ("quiet", True, ("-q",))):
        run = tmp_path / name
        shutil.copytree(als_runs["run"], run, symlinks=True)
        if on:
            bars_on(monkeypatch, command)
        r = invoke("update-users", "--ratings", ratings, "--run", run, *als_runs["sets"], *extra)
        assert r.exit_code == 0, r.stderr
        outs[name] = r
    for desc in ("solving users", "carrying the model over", "writing the update", "checksums"):
        assert desc in outs["shown"].stderr, (desc, outs["shown"].stderr)
        assert desc not in outs["plain"].stderr and desc not in outs["quiet"].stderr, desc
    assert "solving users:   0%| " in outs["shown"].stderr and "| 0/5 [" in outs["shown"].stderr  # five named

    def settled(out: str) -> dict:  # (when, and the new folder's name, apart)
        return {k: v for k, v in json.loads(out).items() if k not in ("at", "model_folder", "ratings", "before")}

    assert settled(outs["shown"].stdout) == settled(outs["plain"].stdout) == settled(outs["quiet"].stdout)
    # its time RFC 3339 in UTC, as jq's fromdate reads it (a pipeline review: '+0000', which jq refused)
    import datetime

    at = json.loads(outs["plain"].stdout)["at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at), at
    assert abs(datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()
               - time.time()) < 600


def test_an_hnsw_graph_counted_as_it_is_added_is_the_graph_one_call_adds(monkeypatch):
    """The bar's count (serve.index._add_counted) reads the vectors FAISS has linked so far while it adds them on a
    thread of its own: true (never past the total, never back), ending at the total, and the graph is the one
    FAISS builds in one call without a bar (an HNSW graph added in blocks is another graph)."""
    faiss = I.faiss
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # (FAISS's own build is then the same graph each time)
    try:
        x = np.random.default_rng(0).standard_normal((4000, 16)).astype(np.float32)

        def fresh():
            idx = faiss.IndexHNSWFlat(16, 16)
            idx.hnsw.efConstruction = 64
            return idx

        alone = fresh()
        alone.add(x)
        monkeypatch.setattr(I, "POLL_S", 0.002)
        ticks = []
        counted = fresh()
        I._add(counted, x, ticks.append)
        assert sum(ticks) == 4000 and all(t > 0 for t in ticks) and len(ticks) > 2, ticks  # counted as it went
        assert bytes(faiss.serialize_index(counted)) == bytes(faiss.serialize_index(alone))
        assert I._linked(counted.hnsw, 0, 4000) == 4000 and I._linked(counted.hnsw, 0, 10) == 0  # (not its layout)
    finally:
        faiss.omp_set_num_threads(threads)


def test_an_ivf_index_added_in_blocks_is_the_index_one_call_adds(monkeypatch):
    from embedrec.config import load_config

    x = np.random.default_rng(1).standard_normal((3000, 8)).astype(np.float32)
    cfg = load_config(None, ["index.kind=ivf", "index.nlist=16"]).index
    alone = I._raw("ivf", 8, 3000, cfg, I.faiss.METRIC_L2)
    alone.train(x)
    blocks = I.faiss.clone_index(alone)
    alone.add(x)
    monkeypatch.setattr(I, "ADD_BLOCK", 700)
    ticks = []
    I._add(blocks, x, ticks.append)
    assert ticks == [700, 700, 700, 700, 200]
    assert bytes(I.faiss.serialize_index(blocks)) == bytes(I.faiss.serialize_index(alone))


@pytest.mark.parametrize("kind", ["ivf", "ivf_sq8"])
def test_an_ivf_indexs_k_means_counted_is_the_index_one_train_makes(kind, monkeypatch, capfd):
    """An IVF index's k-means shows a bar counting its iterations (serve.index._train_counted; a review: a big
    catalogue's k-means ran for minutes without a count), one FAISS clustering iteration a call from the centroids
    before: the index is bitwise the one a single train makes, and nothing reaches stdout (FAISS's verbose printf
    would: it stays off)."""
    from embedrec.config import load_config

    x = np.random.default_rng(2).standard_normal((5000, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = load_config(None, [f"index.kind={kind}", "index.nlist=32"]).index
    alone = I._raw(kind, 8, 5000, cfg, I.faiss.METRIC_L2, say=False)
    alone.train(x)
    alone.add(x)
    monkeypatch.setattr(I, "KMEANS_BAR_DELAY_S", 0.0)
    counted = I._build(x, kind, cfg, unit=True, bar=f"{kind} index, similar movies")
    assert bytes(I.faiss.serialize_index(counted.index)) == bytes(I.faiss.serialize_index(alone))
    out, err = capfd.readouterr()
    assert out == "" and f"{kind} index, similar movies: k-means:   0%| " in err and "| 0/10 [" in err, err


def test_a_count_bar_without_a_total_says_its_count(capsys):
    from embedrec.bars import counting, step, ticking

    with step("x check", None, "searches") as tick:
        f = counting(lambda a: a + 1, tick)
        assert [f(1), f(2)] == [2, 3]
        assert list(ticking("ab", tick)) == ["a", "b"]
    err = capsys.readouterr().err
    assert "x check (searches): 0 [" in err and "\r" in err
    with step(None, None, "searches") as tick:  # no bar: nothing drawn, the function itself
        assert tick is None and counting(len, tick) is len and list(ticking("ab", tick)) == ["a", "b"]
    assert capsys.readouterr().err == ""


def test_save_shows_the_publish_bars_each_reaching_its_total(trained_run, tmp_path, monkeypatch, capsys):
    """TrainedModel.save(progress=True) draws the bars train's publish draws (a scale review: save took no
    progress=, so a notebook's publish of a large model said nothing for its minutes), each up to its total;
    without it, none. tqdm draws every update here (mininterval 0, miniters 1), so the last frame is the count at the end."""
    import copy

    import tqdm

    import embedrec as er
    from embedrec.errors import UsageError

    drawn_init = tqdm.tqdm.__init__
    every = {"mininterval": 0, "miniters": 1}
    monkeypatch.setattr(tqdm.tqdm, "__init__", lambda self, *a, **k: drawn_init(self, *a, **{**k, **every}))
    model = er.train(trained_run.model.dataset, copy.deepcopy(trained_run.cfg))
    capsys.readouterr()
    model.save(tmp_path / "plain")
    assert capsys.readouterr().err == ""
    model.save(tmp_path / "shown", progress=True)
    drawn = bars_drawn(capsys.readouterr().err)
    assert set(drawn) == {"writing the model", "checksums"}, drawn  # (an exact index here: no index bar)
    for desc, frames in drawn.items():
        (n, total), = bar_ends(frames)  # drawn once, to its total
        assert n == total, (desc, frames)
    with pytest.raises(UsageError, match="save: progress must be True or False, not 'yes'"):
        model.save(tmp_path / "other", progress="yes")


class _Bars:
    """Every tqdm bar drawn while it is installed (tqdm.tqdm replaced: bars.counted imports it as it draws one),
    each kept with its last count and total once closed."""

    def __init__(self, monkeypatch) -> None:
        import tqdm

        self.closed: list[tuple[str, float, float]] = []
        kept = self.closed

        class Kept(tqdm.tqdm):
            def close(self):
                if not self.disable:
                    kept.append((self.desc, self.n, self.total))
                super().close()

        monkeypatch.setattr(tqdm, "tqdm", Kept)


def test_ingest_shows_a_bar_over_the_bytes_of_the_ratings_it_parses(tmp_path, monkeypatch):
    """A first-hour review: `embedrec ingest` of a 1M-row CSV was 9 s without a word while it read and cleaned. Its
    parse shows a bar over the file's bytes that reaches the file's size (counted as pandas takes them in, not as
    handed to it); a table of text ids read first as integers has a second bar of its own, which reaches it too;
    stdin's bytes alike; stdout is the same with the bar, and -q (or no terminal) draws none."""
    from embedrec import bars
    from embedrec.cli import ingest as command

    monkeypatch.setattr(bars, "INGEST_DELAY_S", 0.0)  # (drawn however short: the steps after it have bars of their own)
    rng = np.random.default_rng(0)
    rows = "".join(f"u{u},{m},{rng.integers(1, 6)},{1_600_000_000 + u * 100 + m}\n" for u in range(300)
                   for m in rng.choice(200, 20, replace=False))
    text = tmp_path / "text.csv"  # text user ids: parsed once as pandas infers them, then again as text
    text.write_text("user_id,movie_id,rating,timestamp\n" + rows)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("user_id,movie_id,rating,timestamp\n" + rows.replace("u", ""))
    outs = {}
    for name, on, src, extra in (("plain", False, numbers, ()), ("shown", True, numbers, ()),
                                 ("quiet", True, numbers, ("-q",)), ("text", True, text, ()),
                                 ("stdin", True, "-", ())):
        with pytest.MonkeyPatch.context() as mp:
            kept = _Bars(mp)
            if on:
                bars_on(mp, command)
            r = invoke("ingest", src, "-o", tmp_path / name, "--format", "json", "--set", "data.id_type=auto",
                       *extra, input=numbers.read_bytes() if src == "-" else None)
        assert r.exit_code == 0, r.stderr
        outs[name] = r, [b for b in kept.closed if b[0].startswith("reading")]
    size = numbers.stat().st_size

    def settled(out: str) -> dict:  # (the folder, its name and the time apart)
        return {k: v for k, v in json.loads(out).items() if k not in ("output", "seconds", "name", "source")}

    assert settled(outs["shown"][0].stdout) == settled(outs["plain"][0].stdout) == settled(outs["quiet"][0].stdout)
    assert outs["shown"][1] == [(f"reading {numbers}", size, size)], outs["shown"][1]
    assert f"reading {numbers}:   0%|" in outs["shown"][0].stderr and "reading" not in outs["shown"][0].stdout
    for name in ("plain", "quiet"):
        assert outs[name][1] == [] and "reading " not in outs[name][0].stderr, outs[name][0].stderr
    assert outs["text"][1] == [(f"reading {text}", text.stat().st_size, text.stat().st_size),
                               (f"reading {text} again, its ids as text", text.stat().st_size,
                                text.stat().st_size)], outs["text"][1]
    assert outs["stdin"][1] == [("reading <stdin>", size, size)], outs["stdin"][1]


def test_a_table_read_again_restarts_its_bar(tmp_path):
    """A table read a second time by the same parse (every row ending with a separator the header lacks: read
    again without that field) counts from 0 again: the bar shows the pass it is in, never more than its total."""
    from embedrec.bars import Restartable
    from embedrec.data.parsing import read_numeric_table

    path = tmp_path / "r.csv"
    path.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{u % 7},4,\n" for u in range(1, 200)))
    seen: list[int] = []
    tick = Restartable(seen.append)
    df = read_numeric_table(str(path), sep=",", names=None, usecols=None, numeric={"rating": "float32"},
                            header=True, encoding="utf-8", tick=tick)
    assert len(df) == 199 and list(df.columns) == ["user_id", "movie_id", "rating"]
    size = path.stat().st_size
    assert tick.done == size and sum(seen) == size and min(seen) < 0, seen  # a restart taken back


@pytest.mark.parametrize("scale", [False, True])
def test_a_cleared_bar_draws_its_count_as_it_ended_before_it_clears(capsys, monkeypatch, scale):
    """A step's bar (cleared as its step ends) draws its final count before it clears: tqdm draws at most every
    mininterval and draws no closing frame for a bar it clears, so the last frame showed less than was done (a
    scale review: 'solving users' 2,787/3,000, 'writing the model' 589M/628M). Here tqdm draws only its first frame
    on its own (mininterval of an hour); a bar left (leave=True) draws its end itself."""
    import tqdm

    from embedrec.bars import counted, step

    drawn_init = tqdm.tqdm.__init__
    monkeypatch.setattr(tqdm.tqdm, "__init__", lambda self, *a, **k: drawn_init(self, *a, **{**k, "mininterval": 3600}))
    with step("solving users", 3000, "user", scale=scale) as tick:
        for _ in range(3000):
            tick(1)
    frames = bars_drawn(capsys.readouterr().err)["solving users"]
    assert bar_ends(frames) == [("3.00k", "3.00k") if scale else ("3000", "3000")], frames
    with step("writing", 500, "B") as tick:  # stopped part way (an error): the count it reached, no more
        with pytest.raises(KeyError):
            tick(120)
            raise KeyError
    assert bar_ends(bars_drawn(capsys.readouterr().err)["writing"]) == [("120", "500")]
    with step("nothing new", 7, "movie") as tick:  # its first frame already shows its count: drawn once
        pass
    assert len(bars_drawn(capsys.readouterr().err)["nothing new"]) == 1
    with counted("kept", 40, "user") as tick:
        tick(40)
    assert bar_ends(bars_drawn(capsys.readouterr().err)["kept"]) == [("40", "40")]


def test_recommend_users_shows_a_bar_over_the_users_answered(als_runs, monkeypatch, tmp_path):
    """recommend --users (a scale review: 100K ids answered for 35 s without a word): where bars are on, a bar
    moved as each batch is answered, cleared at the end. From a regular file, over its bytes read (a total: the
    fraction and the time left) with the users answered beside them; from a pipe (here CliRunner's stdin) or with
    --strict, a count of the users answered. The rows are the same with it, without it and under -q."""
    from embedrec.cli import recommend as command

    ids = tmp_path / "ids.txt"
    ids.write_text("user_id\n" + "".join(f"{u}\n" for u in range(1, 301)) + "# the end\n999999\n\n")
    args = ("recommend", "--run", als_runs["run"], *als_runs["sets"], "--set", "recommend.batch_size=40", "-k", "3")
    plain = invoke(*args, "--users", ids)
    bars_on(monkeypatch, command)
    monkeypatch.setattr(command, "USERS_BAR_DELAY_S", 0.0)
    import tqdm

    drawn_init = tqdm.tqdm.__init__  # tqdm draws every update (mininterval 0, miniters 1): a frame per batch
    monkeypatch.setattr(tqdm.tqdm, "__init__", lambda self, *a, **k: drawn_init(self, *a, **{
        **k, "mininterval": 0, "miniters": 1}))
    shown = invoke(*args, "--users", ids)
    piped = invoke(*args, "--users", "-", input=ids.read_bytes())
    strict = invoke(*args, "--users", ids, "--strict")
    quiet = invoke(*args, "--users", ids, "-q")
    assert plain.exit_code == shown.exit_code == piped.exit_code == quiet.exit_code == 0, shown.stderr
    assert strict.exit_code != 0 and "999999" in strict.stderr  # (an unknown id under --strict)
    assert shown.stdout == plain.stdout == piped.stdout == quiet.stdout and len(plain.stdout.splitlines()) == 901
    frames = bars_drawn(shown.stderr)[f"--users {ids}"]
    (n, total), = bar_ends(frames)  # drawn once, up to every byte read before it cleared (1,118 B: '1.12k')
    assert n == total == f"{ids.stat().st_size / 1000:.2f}k", frames
    assert frames[-1].endswith("300 users answered]") and len(frames) >= 1 + 8, frames  # the first, one a batch
    assert "40 users answered]" in frames[1] and "| 0.00/1.12k" in frames[0]
    assert "--users <stdin> (users answered): 300 [" in piped.stderr
    assert "--users" not in plain.stderr and "--users" not in quiet.stderr
    import gzip  # a gzip file's compressed bytes are read ahead (a code review: the bar stood at 100%): counted

    packed = tmp_path / "ids.txt.gz"
    packed.write_bytes(gzip.compress(ids.read_bytes()))
    zipped = invoke(*args, "--users", packed)
    assert zipped.exit_code == 0 and zipped.stdout == plain.stdout, zipped.stderr
    assert f"--users {packed} (users answered): 300 [" in zipped.stderr, zipped.stderr


def test_recommend_users_draws_no_bar_among_its_rows_or_under_typed_ids(monkeypatch):
    """No bar where the rows go to the terminal (they are the progress there, and a bar would cut into them), nor
    where the ids are typed at one (one line, one answer), nor with bars off (-q, or stderr not a terminal)."""
    import io

    from embedrec.cli import recommend as command

    class Out(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    class Lines:
        def __init__(self, typed):
            self.typed = typed

        def from_terminal(self):
            return self.typed

    for on, out_tty, typed, want in ((True, False, False, True), (True, True, False, False),
                                     (True, False, True, False), (False, False, False, False)):
        monkeypatch.setattr(command, "progress_enabled", lambda on=on: on)
        monkeypatch.setattr(sys, "stdout", Out(out_tty))
        assert command.users_bar_shown(Lines(typed)) is want, (on, out_tty, typed)


def test_ingest_shows_a_bar_over_each_step_after_the_parse_and_over_parquet_and_zip_members(tmp_path, monkeypatch):
    """A first-hour review: after the parse bar, `embedrec ingest` of a 1M-row file said nothing for 5 of its 8 s
    (the checks, the cleaning, the split, the tables, the writes), and a Parquet table or a zip's member had no bar
    at all. Each has one now (its delay 0 here): a zip's extraction over its uncompressed bytes, the member's parse
    named as zip!member, a Parquet table's rows, the named stages, the rows written; each reaches its total; stdout
    and the files written are the same with the bars, and -q (or no terminal) draws none."""
    import hashlib
    import zipfile

    import pandas as pd

    from embedrec import bars
    from embedrec.cli import ingest as command

    monkeypatch.setattr(bars, "INGEST_DELAY_S", 0.0)
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"userId": rng.integers(1, 200, n), "movieId": rng.integers(1, 150, n),
                       "rating": rng.integers(1, 11, n) / 2, "timestamp": rng.integers(9e8, 1.6e9, n)})
    df = df.drop_duplicates(["userId", "movieId"]).reset_index(drop=True)
    csv, parquet, zipped = tmp_path / "r.csv", tmp_path / "r.parquet", tmp_path / "r.zip"
    df.to_csv(csv, index=False)
    df.to_parquet(parquet, row_group_size=1000)
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(csv, "ratings.csv")  # (a MovieLens CSV release's layout: read by its own reader)
    size = csv.stat().st_size

    def run(name: str, src, on: bool, *extra):
        with pytest.MonkeyPatch.context() as mp:
            kept = _Bars(mp)
            if on:
                bars_on(mp, command)
            r = invoke("ingest", src, "-o", tmp_path / name, "--format", "json", *extra)
        assert r.exit_code == 0, r.stderr
        files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted((tmp_path / name / "current").glob("*.parquet"))}
        return r, kept.closed, files

    def settled(out: str) -> dict:  # (the folder, its name, the source and the time apart)
        return {k: v for k, v in json.loads(out).items() if k not in ("output", "seconds", "name", "source")}

    for src, parse in ((csv, [(f"reading {csv}", size, size)]),
                       (parquet, [(f"reading {parquet}", len(df), len(df))]),
                       (zipped, [(f"unzipping {zipped}", size, size), (f"reading {zipped}!ratings.csv", size, size)])):
        plain, none, plain_files = run(f"{src.name}-plain", src, False)
        quiet, none_q, _ = run(f"{src.name}-quiet", src, True, "-q")
        shown, closed, shown_files = run(f"{src.name}-shown", src, True)
        assert none == none_q == [] and "preparing" not in plain.stderr + quiet.stderr, plain.stderr
        assert settled(shown.stdout) == settled(plain.stdout) == settled(quiet.stdout)
        assert shown_files == plain_files  # (the rows written a row group at a time: the same bytes)
        out = tmp_path / f"{src.name}-shown"
        written = sum(len(pd.read_parquet(out / "current" / f)) for f in shown_files)
        assert closed == [*parse, (f"preparing {out}", 5, 5), (f"writing {out}", written, written)], closed
        stages = [f.split(", ")[-1].rstrip("]") for f in bars_drawn(shown.stderr)[f"preparing {out}"] if "/5 [" in f]
        assert stages[-1] == f"indexing {len(df):,} ratings" and f"splitting {len(df):,} ratings" in stages, stages
        assert "preparing" not in shown.stdout and "writing" not in shown.stdout


def test_ingest_draws_no_bar_of_a_step_shorter_than_its_delay_nor_one_a_log_line_met(tmp_path, capsys):
    """Ingest's bars wait INGEST_DELAY_S (2 s) before they are first drawn: a small file's ingest draws none. A log
    line said while a bar waits (ingest's notes as its checks begin) no longer draws it: tqdm.write drew every bar
    again, and one so drawn was never cleared (tqdm clears only what it drew), left in front of the summary."""
    import logging

    from embedrec.bars import step

    log = logging.getLogger("embedrec.test_bars")
    handler = __import__("embedrec.cli.logs", fromlist=["x"])._BarAwareHandler(sys.stderr)
    log.addHandler(handler)
    try:
        with step("waiting", 5, "stage", delay=60) as tick:
            log.warning("a note said meanwhile")
            tick(5)
        with step("drawn", 5, "stage") as tick:
            log.warning("a note above a bar drawn")
            tick(5)
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert "a note said meanwhile" in err and "waiting" not in err, err
    assert "a note above a bar drawn" in err and "drawn:" in err, err


def test_a_stage_is_named_as_it_begins_and_the_last_counted_done_as_the_job_ends(capsys):
    """bars.stages: each stage's name is drawn as it begins, though the frame before was drawn less than 0.1 s ago
    (a long stage begun then showed the name of the short one before it); the job's end counts the last one done
    (its final frame N/N, then cleared); an error leaves it uncounted; no bar: None, nothing drawn."""
    from embedrec.bars import stages

    with stages("job", 3) as begin:
        for name in ("first", "second", "third"):
            begin(name)
    frames = bars_drawn(capsys.readouterr().err)["job"]
    assert [f for f in frames if f.endswith(("first]", "second]", "third]"))][:3] == [
        f for f in frames if "first]" in f][:1] + [f for f in frames if "second]" in f][:1] + \
        [f for f in frames if "third]" in f][:1]
    assert any("1/3" in f and "second]" in f for f in frames) and any("2/3" in f and "third]" in f for f in frames)
    assert bar_ends(frames)[-1] == ("3", "3"), frames
    with pytest.raises(KeyError), stages("failed", 3) as begin:
        begin("one")
        raise KeyError
    assert bar_ends(bars_drawn(capsys.readouterr().err)["failed"])[-1] == ("0", "3")
    with stages(None, 3) as begin:
        assert begin is None
    assert capsys.readouterr().err == ""


def test_a_long_stage_is_drawn_at_the_delay_and_again_while_it_runs(capsys, monkeypatch):
    """A first-hour review: a stages bar was first drawn only as a stage began after its delay (an 8M-row Parquet
    ingest showed nothing for 11 s, then the third stage), its elapsed time frozen through a long stage. A thread
    draws it every REDRAW_S while a stage runs: the first frame at the delay, during the stage."""
    import time

    import embedrec.bars as bars

    monkeypatch.setattr(bars, "REDRAW_S", 0.1)
    with bars.stages("job", 2, delay=0.2) as begin:
        begin("long one")
        time.sleep(1.0)
        during = bars_drawn(capsys.readouterr().err).get("job", [])
        begin("short")
    assert any("long one]" in f and "0/2" in f for f in during), during  # drawn while the first stage ran
