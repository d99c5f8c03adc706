"""What a user sees for each bad input to recommend, predict and export: the exact stderr, the exit code, and
nothing on stdout. Every error is one line 'error: ...' (exit 1 for a problem with the data or the run, 2
for a usage error), option errors click finds itself too (exit 2).

The run is conftest's session run (an explicit model on synth_dir: 300 users, 200 movies, ratings 0.5-5);
{tmp} is the test's own folder. A message changes here only on purpose."""

import pytest
from click.testing import CliRunner

from embedrec.cli import main

GENRES = ("Action, Adventure, Animation, Children, Comedy, Crime, Documentary, Drama, Fantasy, Film-Noir, Horror, "
          "Musical, Mystery, Romance, Sci-Fi, Thriller, War, Western")
NEW_USER = "use --fallback popular, or --liked/--rated to recommend for a new user"
NO_MOVIE = ("movie '99999' is not in the training data (200 movies); check the id (movies.parquet in the run lists "
            'them) or search by title with --movie "title words"')
# neither the run nor a dataset to train it on (data.prepared set: the developer's own data/prepared/ml-100k, after
# make demo, would make it another message): ingest, then train (a first-hour review)
NO_DATA = ["--set", "data.prepared={tmp}/no-dataset"]
NO_RUN = ("no trained model in '{tmp}/nope', and no prepared dataset at '{tmp}/no-dataset' to train one on; ingest, "
          "then train: 'embedrec ingest', then 'embedrec train --run {tmp}/nope', each with this command's -c/--set "
          "options")
AMBIGUOUS = ("'Movie' matches 200 movies: 1: Movie 1, The (1934); 2: Movie 2, The (1978); 3: Movie 3, The (1934); "
             "4: Movie 4, The (1960); 5: Movie 5, The (1991); 6: Movie 6, The (2002); 7: Movie 7, The (1978); "
             "8: Movie 8, The (1982); 9: Movie 9, The (1950); 10: Movie 10, The (2009) and 190 more; pass the "
             "movie id or more words")


def usage(command: str, error: str) -> str:
    """The one line for an option click rejects: click's message, then where the options are listed."""
    return f"error: {error[:1].lower()}{error[1:].rstrip('.')} (see 'embedrec {command} -h')\n"


# (case, arguments, stdin, the whole stderr ('error: ' lines end with a newline added below), exit code)
RECOMMEND = [
    ("unknown user", ["--user", "424242"], None,
     f"user '424242' is not in the training data (300 users); the run was trained on '{{ds}}'; {NEW_USER}", 1),
    ("user id not a number", ["--user", "nobody"], None,
     f"'nobody' is not a user id of this model (its ids are integers); the run was trained on '{{ds}}'; "
     f"{NEW_USER}", 1),
    ("unknown user, --strict", ["--users", "-", "--strict"], "1\nnobody\n",
     "<stdin>:2: 'nobody' is not a user id of this model (its ids are integers); without --strict unknown users are skipped (or "
     "answered with --fallback popular)", 1),
    ("unknown movie id", ["--movie", "99999"], None,
     "movie '99999' is not in the training data (200 movies), and no title matches it; check the id "
     "(movies.parquet in the run lists them) or give title words", 1),
    ("no title matches", ["--movie", "zzzz qqq"], None,
     "no movie title matches 'zzzz qqq' (of the 200 movies with training ratings: a movie no kept rating names is "
     "not in the model); try fewer words or the movie id", 1),
    ("ambiguous title", ["--movie", "Movie"], None, AMBIGUOUS, 2),
    ("unknown --liked movie", ["--liked", "99999"], None, NO_MOVIE, 1),
    ("unknown --rated movie", ["--rated", "99999=4"], None, NO_MOVIE, 1),
    ("--rated, not a number", ["--rated", "1=x"], None,  # a first-hour review: 'expected MOVIE=RATING, e.g. --rated
     "--rated '1=x': 'x' is not a number; give MOVIE=RATING, e.g. --rated 1=5", 2),  # 50=5,181=4', ML-100K's ids
    ("--rated without a rating", ["--rated", "1"], None,  # the run's own ids and scale
     "--rated '1': expected MOVIE=RATING, e.g. --rated 1=5,2=4", 2),
    ("--rated with a decimal comma", ["--rated", "1=4,5"], None,
     "--rated '5': expected MOVIE=RATING; commas separate the pairs, so '1=4,5' is two: for a rating of 4.5 write a "
     "point, --rated 1=4.5", 2),
    ("--rated with no rating after '='", ["--rated", "1="], None,
     "--rated '1=': no rating follows '='; give MOVIE=RATING, e.g. --rated 1=5", 2),
    ("--rated off the scale", ["--rated", "1=9"], None,
     "--rated '1=9': 9 is outside this model's rating scale 0.5-5; give ratings from 0.5 to 5", 2),
    ("--rated nan", ["--rated", "1=nan"], None,
     "--rated '1=nan': the rating must be a finite number, e.g. --rated 1=5", 2),
    ("k=0", ["--user", "1", "-k", "0"], None, usage("recommend", "Invalid value for '-k': 0 is not in the range x>=1."),
     2),
    ("unknown genre", ["--user", "1", "--genre", "Nope"], None,
     f"--genre 'Nope': no such genre in this run; valid genres: {GENRES}", 2),
    ("no mode", [], None, "give exactly one of --user, --users, --movie, --movies, --similar-users, --audience, --liked/--rated (with --user: that user's "
     "ratings since training), or --user-features (with --liked/--rated: a new user told both) (see 'embedrec recommend "
     "-h')", 2),
    ("empty --user", ["--user", ""], None, "--user is empty; give a value, e.g. --user 196", 2),
    ("unknown --similar-users", ["--similar-users", "424242"], None,
     "user '424242' is not in the training data (300 users); the run was trained on '{ds}'; give a user id it was "
     "trained on (a user with no trained vector has nothing to compare)", 1),
    ("--similar-users with a movie filter", ["--similar-users", "1", "--year-min", "1990"], None,
     "--year-min/--year-max does not apply to --similar-users, which lists users, not movies (see 'embedrec "
     "recommend -h')", 2),
    ("empty --movie", ["--movie", " "], None, "--movie is empty; give a value, e.g. --movie 'star wars'", 2),
    ("empty item in --liked", ["--liked", "5,,7"], None,
     "--liked '5,,7': item 2 is empty; give comma-separated movie ids, e.g. --liked 50,181,172", 2),
    ("no movie in a --rated item", ["--rated", "50=5,=4"], None,  # a review: "'' matches 1632 movies: ..."
     "--rated '50=5,=4': item 2 ('=4') names no movie before '='; give MOVIE=RATING, e.g. --rated 1=5,2=4", 2),
    ("empty item in --rated", ["--rated", "5=4,"], None,
     "--rated '5=4,': item 2 is empty; give comma-separated MOVIE=RATING pairs, e.g. --rated 1=5,2=4", 2),
    ("no such --users file", ["--users", "{tmp}/missing.txt"], None,
     "{tmp}/missing.txt: file not found (--users); check the path, or give - to read standard input", 1),
    ("two modes", ["--user", "1", "--movie", "2"], None,  # a first-hour review: which two were given was not said
     "give exactly one of --user, --users, --movie, --movies, --similar-users, --audience, --liked/--rated (with --user: that user's ratings since "
     "training), or --user-features (with --liked/--rated: a new user told both); this command gave --user and "
     "--movie (see 'embedrec recommend -h')", 2),
    ("three modes", ["--user", "1", "--movie", "2", "--liked", "50"], None,
     "give exactly one of --user, --users, --movie, --movies, --similar-users, --audience, --liked/--rated (with --user: that user's ratings since "
     "training), or --user-features (with --liked/--rated: a new user told both); this command gave --movie and "
     "--user with --liked (see 'embedrec recommend -h')", 2),
    ("user features, none trained", ["--user-features", "age=25"], None,
     "this model has no user features; train with e.g. --set 'features.user=[age, gender]' on a dataset with "
     "demographics (ML-100K, ML-1M)", 2),
    ("--user-features without =", ["--user-features", "age"], None,
     "--user-features 'age': expected NAME=VALUE, e.g. --user-features age=25,gender=F", 2),
    # a review: these were a list for a user with no features, or the last value kept
    ("empty --user-features", ["--user-features", " "], None,
     "--user-features is empty; give a value, e.g. --user-features age=25,gender=F", 2),
    ("empty item in --user-features", ["--user-features", "age=25,,gender=F"], None,
     "--user-features 'age=25,,gender=F': item 2 is empty; give comma-separated NAME=VALUE pairs, e.g. "
     "--user-features age=25,gender=F", 2),
    ("a --user-features name twice", ["--user-features", "age=25,age=70"], None,
     "--user-features: 'age' is given twice; give each one value", 2),
    ("bad --fallback", ["--user", "1", "--fallback", "bogus"], None,
     usage("recommend", "Invalid value for '--fallback': 'bogus' is not one of 'none', 'popular'."), 2),
    ("missing run", ["--user", "1", "--run", "{tmp}/nope", *NO_DATA], None, NO_RUN, 1),
    # an empty run folder where a dataset is to train it on ({ds}; without one: ingest, then train, as NO_RUN)
    ("empty run folder", ["--user", "1", "--run", "{tmp}/exists", "--set", "data.prepared={ds}"], None,
     "no trained model in '{tmp}/exists'; run 'embedrec train --run {tmp}/exists' first (with this command's "
     "-c/--set options), or point run.dir at the run train wrote", 1),
    ("interrupted run", ["--user", "1", "--run", "{tmp}/stopped"], None,  # a review: the hint named no run; then
     "no trained model in '{tmp}/stopped': its training was interrupted; finish it with "  # two ways on (one now)
     "'embedrec train --resume --run {tmp}/stopped' and the -c/--set it was started with", 1),
    # options that do not apply to the mode (before: accepted and ignored, exit 0)
    ("--include-seen, --movie", ["--movie", "17", "--include-seen"], None,
     usage("recommend", "--include-seen does not apply to --movie; it is for --user, --users, --liked, --rated and --audience"),
     2),
    ("--fallback, --movie", ["--movie", "17", "--fallback", "popular"], None,
     usage("recommend", "--fallback does not apply to --movie; it is for --user and --users"), 2),
    ("--strict, --movie", ["--movie", "1", "--strict"], None,
     usage("recommend", "--strict does not apply to --movie; it is for --users, --movies, --liked, --rated and "
              "--audience"), 2),
    ("--strict, --fallback popular", ["--users", "-", "--strict", "--fallback", "popular"], "1\n",
     usage("recommend", "--strict and --fallback popular conflict: one fails on an unknown user, the other answers "
                        "it; give one of them"), 2),
    ("--no-header, json", ["--user", "1", "--no-header", "--format", "json"], None,
     usage("recommend", "--no-header applies to --format csv and tsv, not to --format json"), 2),
    ("movie liked and rated", ["--liked", "1", "--rated", "1=1"], None,  # before: the rating silently won
     "movie '1' is in both --liked and --rated; give each movie once", 2),
    ("--users line with a comma", ["--users", "-"], "1\n2,5\n",  # before: skipped as unknown user '2,5'
     "<stdin>:2: '2,5' is not a user id: give one id per line (this line has a comma; for a table's first column: "
     "cut -d, -f1)", 1),
]

PREDICT = [
    ("a line of numbers alone is data, not a header", ["--pairs", "-"], "196.0,242.0\n",  # a red team: no rows, exit 0
     "<stdin>:1: '196.0' is not a user id of this model (its ids are integers); fix that line, or put a header line "
     "of column names first", 1),
    ("unknown user, --strict", ["--pairs", "-", "--strict"], "1,2\n99999,2\n",
     "<stdin>:2: user '99999' is not in the training data; without --strict it is scored from the biases (the mean "
     "and the movie's bias) (the fallback column says which)", 1),
    ("unknown movie, --strict", ["--pairs", "-", "--strict"], "1,2\n1,99999\n",
     "<stdin>:2: movie '99999' is not in the training data; without --strict it is scored from the biases (the mean "
     "and the user's bias) (the fallback column says which)", 1),
    ("a line with one field", ["--pairs", "-"], "1,2\n3\n",
     "<stdin>:2: expected 'user,movie' (comma-, tab- or semicolon-separated, as the first line is); fix that line", 1),
    ("a file line with one field", ["--pairs", "{tmp}/one.csv"], None,
     "{tmp}/one.csv:3: expected 'user,movie' (comma-, tab- or semicolon-separated, as the first line is); fix that line", 1),
    ("undecodable byte", ["--pairs", "{tmp}/binary.csv"], None,
     "{tmp}/binary.csv:2: cannot decode byte 0xff as UTF-8; save the file as UTF-8 text (one entry per line)", 1),
    ("no such --pairs file", ["--pairs", "{tmp}/missing.csv"], None,
     "{tmp}/missing.csv: file not found (--pairs); check the path, or give - to read standard input", 1),
    ("no --pairs", [], None, usage("predict", "Missing option '--pairs'."), 2),
    ("missing run", ["--pairs", "-", "--run", "{tmp}/nope", *NO_DATA], "1,2\n", NO_RUN, 1),
]

EXPORT = [
    ("nothing to export", [], None,
     "nothing to export: give --to FORMAT -o DIR, --topk-all FILE, or --plot FILE.png", 2),
    ("--to without -o", ["--to", "parquet"], None, "--to parquet needs -o/--output DIR", 2),
    ("--topk-all to stdout", ["--topk-all", "-"], None,  # it made a folder named '-'
     "--topk-all '-': this writes a file or a folder, not standard output or a device; give a .parquet or .csv file "
     "name (or a folder name for a Parquet dataset), or for the lists on standard output pipe the user ids to "
     "'embedrec recommend --users -'", 2),
    ("bad --to", ["--to", "xml", "-o", "{tmp}/out"], None,
     usage("export", "Invalid value for '--to': 'xml' is not one of 'projector', 'parquet', 'npy', 'csv', "
                     "'faiss', 'torch'."), 2),
    ("existing folder", ["--to", "parquet", "-o", "{tmp}/exists"], None,
     "output directory '{tmp}/exists' already exists; pass --overwrite to replace it, or choose another path", 2),
    ("existing --topk-all file", ["--topk-all", "{tmp}/top.csv"], None,
     "'{tmp}/top.csv' already exists; pass --overwrite to replace it", 2),
    ("--topk-all, unknown extension", ["--topk-all", "{tmp}/top.txt"], None,
     "--topk-all {tmp}/top.txt: use a .parquet or .csv file name, or a folder name (no extension) for a Parquet "
     "dataset", 2),
    ("k=0", ["--topk-all", "{tmp}/new.csv", "-k", "0"], None,
     usage("export", "Invalid value for '-k': 0 is not in the range x>=1."), 2),
    ("--sample 0", ["--to", "projector", "-o", "{tmp}/out", "--sample", "0"], None,
     usage("export", "Invalid value for '--sample': 0 is not in the range x>=1."), 2),
    ("bad --plot-method", ["--plot", "{tmp}/map.png", "--plot-method", "bogus"], None,
     usage("export", "Invalid value for '--plot-method': 'bogus' is not one of 'pca', 'tsne', 'umap'."), 2),
    ("missing run", ["--to", "parquet", "-o", "{tmp}/out", "--run", "{tmp}/nope", *NO_DATA], None, NO_RUN, 1),
    # options for another output (before: accepted and ignored, exit 0)
    ("--sample, --to parquet", ["--to", "parquet", "-o", "{tmp}/out", "--sample", "5"], None,
     usage("export", "--sample applies to --to projector only"), 2),
    ("--sample-users, --plot", ["--plot", "{tmp}/m.png", "--sample-users", "5"], None,
     usage("export", "--sample-users applies to --to projector only"), 2),
    ("-o without --to", ["--topk-all", "{tmp}/new.csv", "-o", "{tmp}/out"], None,
     usage("export", "-o/--output applies to --to only"), 2),
    ("-k without --topk-all", ["--plot", "{tmp}/m.png", "-k", "5"], None,
     usage("export", "-k applies to --topk-all only"), 2),
    ("--plot-method without --plot", ["--topk-all", "{tmp}/new.csv", "--plot-method", "tsne"], None,
     usage("export", "--plot-method applies to --plot only"), 2),
]


# the stream cases whose input has an answerable line before the bad one
ANSWERED_BEFORE = ("--users line with a comma", "a line with one field", "a file line with one field",
                   "undecodable byte")


def _check(command, trained_run, tmp_path, args, stdin, stderr, code, case=""):
    (tmp_path / "exists").mkdir()
    (tmp_path / "stopped" / "als-reg-0.01").mkdir(parents=True)  # a run interrupted in its selection
    (tmp_path / "stopped" / "als-reg-0.01" / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "top.csv").write_text("user_id,rank,movie_id\n")
    (tmp_path / "one.csv").write_text("user,movie\n1,2\n3\n")
    (tmp_path / "binary.csv").write_bytes(b"1,2\n\xff\xfe,3\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    tmp = str(tmp_path)
    from pathlib import Path

    args = [a.format(tmp=tmp, ds=Path(trained_run.cfg.data.prepared).resolve()) for a in args]
    if "--run" not in args:
        args += ["--run", trained_run.cfg.run.dir]
    r = CliRunner().invoke(main, [command, *args], input=stdin, prog_name="embedrec")
    want = stderr.format(tmp=tmp, ds=Path(trained_run.cfg.data.prepared).resolve())
    if not want.startswith("error: "):
        want = f"error: {want}\n"
    assert (r.stderr, r.exit_code) == (want, code)
    if case in ANSWERED_BEFORE:  # a bad line of a stream: the lines before it are answered first (the same rows
        rows = r.stdout.splitlines()  # however the input arrived; a shell review, session 39), nothing after it
        assert rows[0].startswith("user_id") and {x.split("\t")[0] for x in rows[1:]} == {"1"}, r.stdout
        assert len(rows) == 1 + (1 if command == "predict" else trained_run.cfg.recommend.k), r.stdout
    else:
        assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing half-written


def _ids(table):
    return [case[0] for case in table]


@pytest.mark.parametrize("case, args, stdin, stderr, code", RECOMMEND, ids=_ids(RECOMMEND))
def test_recommend_errors(trained_run, tmp_path, case, args, stdin, stderr, code):
    _check("recommend", trained_run, tmp_path, args, stdin, stderr, code, case)


@pytest.mark.parametrize("case, args, stdin, stderr, code", PREDICT, ids=_ids(PREDICT))
def test_predict_errors(trained_run, tmp_path, case, args, stdin, stderr, code):
    _check("predict", trained_run, tmp_path, args, stdin, stderr, code, case)


@pytest.mark.parametrize("case, args, stdin, stderr, code", EXPORT, ids=_ids(EXPORT))
def test_export_errors(trained_run, tmp_path, case, args, stdin, stderr, code):
    _check("export", trained_run, tmp_path, args, stdin, stderr, code)
