"""One's own ratings table, as a review's shop log and rating files had them: a column of event types weighed by
data.event_weights (and the advice that leads to it), and a ratings file's own title and genres columns read as
its movies' where no movies file is given."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.config import Config, load_config
from embedrec.config_ingest import recorded_ingest_sets
from embedrec.data.dataset import load_dataset
from embedrec.errors import ConfigError


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# a shop log: user 1 viewed movie 10 twice and bought it, viewed 20; user 2 carted 10, viewed 30 and 20; user 3
# viewed 30, bought 20; user 4 viewed 10 and 30
SHOP = [("u1", 10, "view", 1), ("u1", 10, "view", 2), ("u1", 20, "view", 3), ("u1", 10, "purchase", 4),
        ("u2", 10, "cart", 5), ("u2", 30, "view", 6), ("u2", 20, "view", 7), ("u3", 30, "view", 8),
        ("u3", 20, "purchase", 9), ("u4", 10, "view", 10), ("u4", 30, "view", 11)]
WEIGHTS = "{view: 1, cart: 3, purchase: 5}"


def _shop(tmp_path, rows=SHOP, qty=False) -> str:
    head = "customer,item,event" + (",qty" if qty else "") + ",timestamp\n"
    text = "".join(f"{u},{m},{e}" + (f",{t % 3 + 1}" if qty else "") + f",{t}\n" for u, m, e, t in rows)
    (tmp_path / "shop.csv").write_text(head + text)
    return str(tmp_path / "shop.csv")


def _pairs(path) -> dict:
    ds = load_dataset(path)
    rows = pd.concat([ds.split_frame(s) for s in ds.splits])
    return {(u, m): float(r) for u, m, r in zip(rows["user_id"], rows["movie_id"], rows["rating"])}


NO_SPLIT = ["--set", "split.valid=0", "--set", "split.test=0", "--set", "data.id_type=auto",
            "--set", "data.columns.user=customer"]


def test_an_event_column_is_not_offered_as_the_ratings_but_told_how_to_weigh_and_that_advice_works(tmp_path):
    """A review: a shop log's error said 'set data.columns.rating to one of: event', and following it failed on
    'view' not a number. Only a column of numbers is offered (never the user, movie or time); a column of a few
    text values is told the settings that weigh them, and those settings, pasted, ingest it: each pair's weights
    summed (by hand: u1's 10 is 1 + 1 + 5), said in a note, the summary's values 'summed weights'."""
    src = _shop(tmp_path)
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == (
        f"error: {src}: no column 'rating' for the rating (data.columns.rating); no other column holds numbers; its "
        "column 'event' holds event types (view, purchase, cart): to weigh them (your weights; a pair's events "
        "summed), --set data.columns.rating=event --set 'data.event_weights={view: 1, purchase: 2, cart: 3}', or "
        "--set data.columns.rating=null if the file has no ratings (every row then counts as rating 1; for a play "
        "or click log, --set data.repeats=sum alone counts each pair's rows)\n")
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT, "--set", "data.columns.rating=event",
               "--set", f"data.event_weights={WEIGHTS}")
    assert r.exit_code == 0, r.stderr
    assert (f"{src}: column 'event' read as events weighed by data.event_weights (view 1: 8 rows, cart 3: 1 row, "
            "purchase 5: 2 rows); a pair's weights summed (data.repeats: auto; --set data.repeats=latest keeps each "
            "pair's latest event's)") in r.stderr, r.stderr
    assert "\nsummed weights: 1:6  3:1  5:1  7:1\n" in r.stderr, r.stderr
    assert _pairs(tmp_path / "a") == {("u1", 10): 7.0, ("u1", 20): 1.0, ("u2", 10): 3.0, ("u2", 30): 1.0,
                                      ("u2", 20): 1.0, ("u3", 30): 1.0, ("u3", 20): 5.0, ("u4", 10): 1.0,
                                      ("u4", 30): 1.0}
    manifest = load_dataset(tmp_path / "a").manifest
    assert manifest["event_weights"] == {"view": 1.0, "cart": 3.0, "purchase": 5.0} and manifest["repeats"] == "sum"
    # data.repeats=latest: each pair's latest event's weight (u1's 10: its purchase at 4)
    r = invoke("ingest", src, "-o", tmp_path / "b", *NO_SPLIT, "--set", "data.columns.rating=event",
               "--set", f"data.event_weights={WEIGHTS}", "--set", "data.repeats=latest")
    assert r.exit_code == 0 and "\nevent weights: 1:6  3:1  5:2\n" in r.stderr, r.stderr
    assert _pairs(tmp_path / "b")[("u1", 10)] == 5.0 and _pairs(tmp_path / "b")[("u2", 10)] == 3.0


def test_event_types_are_matched_whatever_their_case_unless_two_differ_by_case_alone(tmp_path):
    """A first-hour review: an export mixing 'purchase' and 'Purchase' was refused ('Purchase', which
    data.event_weights does not weigh). A value the mapping lacks is weighed as the one key it matches whatever
    the case, said in a note; where two keys differ by case alone, each is matched as written."""
    rows = [(u, m, {"view": "View", "purchase": "PURCHASE"}.get(e, e) if t % 2 else e, t) for u, m, e, t in SHOP]
    src = _shop(tmp_path, rows)
    sets = [*NO_SPLIT, "--set", "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}"]
    r = invoke("ingest", src, "-o", tmp_path / "a", *sets)
    assert r.exit_code == 0, r.stderr
    assert (f"{src}: column 'event': read 'View' as 'view' (4 rows), 'PURCHASE' as 'purchase' (1 row): "
            "data.event_weights' event types are matched whatever their case where no two of them differ by case "
            "alone") in r.stderr, r.stderr
    assert "(view 1: 8 rows, cart 3: 1 row, purchase 5: 2 rows)" in r.stderr, r.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _pairs(tmp_path / "a") == _pairs(_ingested(plain, _shop(plain, SHOP)))
    r = invoke("ingest", src, "-o", tmp_path / "b", *sets[:-1], "data.event_weights={view: 1, View: 2, cart: 3, "
               "purchase: 5}")
    assert r.exit_code == 0 and "read 'PURCHASE' as 'purchase' (1 row):" in r.stderr, r.stderr
    assert "'View' as" not in r.stderr, r.stderr
    assert _pairs(tmp_path / "b")[("u1", 20)] == 2.0  # (its one row a 'View': weighed as written)
    (tmp_path / "c.csv").write_text("customer,item,event\nu1,10,view\nu1,20,VIEW\n")  # keys of one word: refused,
    r = invoke("ingest", tmp_path / "c.csv", "-o", tmp_path / "c", *sets[:-1], "data.event_weights={view: 1, View: 2}")
    assert r.exit_code == 1 and "holds 'VIEW', which data.event_weights does not weigh (1 row holds it, its keys " \
        "'view' and 'View' differing by case alone)" in r.stderr, r.stderr  # said why (a diff review)


def test_only_columns_of_numbers_are_offered_as_the_ratings(tmp_path):
    """A file with a column of numbers (qty) beside the event types: the numbers are offered, the text is told
    how to weigh; a Parquet file alike."""
    src = _shop(tmp_path, qty=True)
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 1 and "(data.columns.rating); set data.columns.rating to one of: qty; its column 'event' " \
        "holds event types (view, purchase, cart): to weigh them" in r.stderr, r.stderr
    pd.read_csv(src).to_parquet(tmp_path / "shop.parquet")
    r = invoke("ingest", tmp_path / "shop.parquet", "-o", tmp_path / "b", *NO_SPLIT)
    assert r.exit_code == 1 and "set data.columns.rating to one of: qty; its column 'event' holds event types" \
        in r.stderr, r.stderr
    r = invoke("ingest", tmp_path / "shop.parquet", "-o", tmp_path / "b", *NO_SPLIT, "--set",
               "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}")
    assert r.exit_code == 0, r.stderr
    assert _pairs(tmp_path / "b") == _pairs(_ingested(tmp_path, src))  # the CSV's pairs, weights summed


def test_a_column_of_dates_is_not_offered_as_event_types(tmp_path):
    """A review of session 50: without data.columns.rating=null, a file whose times sit under a name not read as
    them ('day': a few days' ISO dates, text of at most 20 values) had them offered as event types to weigh
    ('data.event_weights={"2024-03-01": 1, ...}'). A column whose first rows are dates (times_kind) is no event
    types, in a text file and a Parquet file alike; the event column beside it is still offered."""
    rows = [(u, m, f"2024-03-0{m % 4 + 1}", e) for u in range(1, 6) for m, e in ((1, "view"), (2, "cart"), (3, "view"))]
    frame = pd.DataFrame(rows, columns=["customer", "item", "day", "event"])
    frame.to_csv(tmp_path / "days.csv", index=False)
    frame.assign(day=pd.to_datetime(frame.day)).to_parquet(tmp_path / "days.parquet")
    for src in (tmp_path / "days.csv", tmp_path / "days.parquet"):
        r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT)
        assert r.exit_code == 1 and "day" not in r.stderr.split("; ")[1], r.stderr
        assert f"error: {src}: no column 'rating' for the rating (data.columns.rating); no other column holds numbers; " \
            "its column 'event' holds event types (view, cart): to weigh them" in r.stderr, r.stderr
    # the dates alone: read as the times (an own-data review: a click log 'user_id,sku,clicked_at' was refused, its
    # dates unread), and the file is a log of events, each row counting 1
    frame.drop(columns="event").to_csv(tmp_path / "days.csv", index=False)
    r = invoke("ingest", tmp_path / "days.csv", "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 0 and "'day' as 'timestamp' (its first rows are dates)" in r.stderr and \
        "no 'rating' column: a log of events, each row counting 1" in r.stderr, r.stderr
    # two columns of dates: neither taken (which is meant is not guessed), and the refusal reads as one sentence
    frame.drop(columns="event").assign(shipped=frame.day).to_csv(tmp_path / "days.csv", index=False)
    r = invoke("ingest", tmp_path / "days.csv", "-o", tmp_path / "b", *NO_SPLIT)
    assert r.exit_code == 1 and "no other column holds numbers: --set data.columns.rating=null if the file has no " \
        "ratings" in r.stderr, r.stderr


def _ingested(tmp_path, src) -> str:
    out = tmp_path / "from-csv"
    r = invoke("ingest", src, "-o", out, *NO_SPLIT, "--set", "data.columns.rating=event", "--set",
               f"data.event_weights={WEIGHTS}")
    assert r.exit_code == 0, r.stderr
    return out


def test_an_event_the_weights_lack_is_refused_by_its_line(tmp_path):
    """A value of the rating column the mapping does not weigh: one line naming the first row's file:line, how
    many rows hold it and the other values it lacks, and the setting that adds it; the same in a Parquet file by
    row."""
    rows = [*SHOP[:3], ("u1", 30, "wishlist", 12), ("u2", 30, "share", 13), ("u3", 10, "wishlist", 14)]
    src = _shop(tmp_path, rows)
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT, "--set", "data.columns.rating=event",
               "--set", "data.event_weights={view: 1, purchase: 5}")
    assert r.exit_code == 1 and r.stderr == (
        f"error: {src}:5: column 'event' holds 'wishlist', which data.event_weights does not weigh (2 rows hold it; "
        "1 other value it lacks too); add their weights (2 values), --set 'data.event_weights={view: 1, purchase: 5, "
        "wishlist: W, share: W}', or remove those rows\n"), r.stderr  # (every value it lacks: a review)
    pd.read_csv(src).to_parquet(tmp_path / "shop.parquet")
    r = invoke("ingest", tmp_path / "shop.parquet", "-o", tmp_path / "a", *NO_SPLIT, "--set",
               "data.columns.rating=event", "--set", "data.event_weights={view: 1, purchase: 5}")
    assert r.exit_code == 1 and r.stderr.startswith(f"error: {tmp_path / 'shop.parquet'}: row 4: column 'event' "
                                                    "holds 'wishlist', which"), r.stderr


def test_a_missing_event_and_an_apostrophe_in_one_are_said_as_a_user_can_act_on_them(tmp_path):
    """A review: a Parquet event column's null was an internal error (TypeError), where a CSV's gap is 'no value
    in column'; and an event type with an apostrophe ("wish'd") ended the advice's single-quoted --set in a shell.
    Now the null is named by its row with data.missing=drop, and the advice is quoted for a shell as a whole (the
    shell reads it back as the mapping that adds the event: checked through bash)."""
    import shlex
    import subprocess

    frame = pd.DataFrame({"customer": ["u1", "u2", "u3"], "item": [10, 20, 30],
                          "event": ["view", None, "purchase"], "timestamp": [1, 2, 3]})
    frame.to_parquet(tmp_path / "gap.parquet")
    sets = [*NO_SPLIT, "--set", "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}"]
    r = invoke("ingest", tmp_path / "gap.parquet", "-o", tmp_path / "a", *sets)
    assert r.exit_code == 1 and r.stderr == (
        f"error: {tmp_path / 'gap.parquet'}: row 2: no value in column 'event' (a missing event); fill it in or remove "
        "that row, or drop such rows with --set data.missing=drop\n"), r.stderr
    r = invoke("ingest", tmp_path / "gap.parquet", "-o", tmp_path / "a", *sets, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    src = _shop(tmp_path, [*SHOP[:3], ("u1", 30, "wish'd", 12)])
    r = invoke("ingest", src, "-o", tmp_path / "b", *sets)
    assert r.exit_code == 1, r.stderr
    advice = r.stderr.split("add its weight, --set ")[1].split(", or remove those rows")[0]
    echoed = subprocess.run(["bash", "-c", f"printf %s {advice}"], capture_output=True, text=True).stdout
    assert echoed == "data.event_weights={view: 1, cart: 3, purchase: 5, \"wish'd\": W}", (advice, echoed)
    assert load_config(None, [echoed.replace("W}", "2}")]).data.event_weights["wish'd"] == 2.0
    assert shlex.split(advice) == [echoed]


def test_weights_of_0_or_below_are_for_a_latest_log_and_a_like_dislike_column(tmp_path):
    """A summed pair counts its events' weights, so each must be above 0 (refused, naming it, with the way on);
    under data.repeats=latest a text like/dislike column weighed 1/0 is a like/dislike file, whose dislikes
    data.min_rating: auto keeps apart."""
    rows = [("u1", 10, "up", 1), ("u1", 20, "down", 2), ("u2", 10, "up", 3), ("u2", 30, "up", 4),
            ("u3", 20, "up", 5), ("u3", 30, "down", 6)]
    src = _shop(tmp_path, rows)
    sets = [*NO_SPLIT, "--set", "data.columns.rating=event", "--set", "data.event_weights={up: 1, down: 0}"]
    r = invoke("ingest", src, "-o", tmp_path / "a", *sets)
    assert r.exit_code == 2 and r.stderr == (
        "error: config key 'data.event_weights': 'down' weighs 0, and a summed log's pair counts its events' "
        "weights, so each must be above 0; give it a weight above 0 (or remove those rows), or keep each pair's "
        "latest event with --set data.repeats=latest\n"), r.stderr
    r = invoke("ingest", src, "-o", tmp_path / "a", *sets, "--set", "data.repeats=latest")
    assert r.exit_code == 0 and "note: the ratings are likes and dislikes (0 and 1)" in r.stderr, r.stderr
    ds = load_dataset(tmp_path / "a")
    assert ds.manifest["min_rating"] == 1 and len(ds.rated_below[0]) == 2
    # a weight above 0 that float32 makes 0 is 0 (a review: 1e-50 summed to pairs of 0)
    for repeats in ("auto", "latest"):  # (latest too: its 0s were taken for dislikes, a review)
        r = invoke("ingest", src, "-o", tmp_path / "b", *sets[:-1], "data.event_weights={up: 1, down: 1e-50}",
                   "--set", f"data.repeats={repeats}")
        assert r.exit_code == 2 and r.stderr == (
            "error: config key 'data.event_weights': 'down' weighs 1e-50, which the ratings' float32 holds as 0; give "
            "it a weight of at least 1e-38 (or 0, where it is a dislike under --set data.repeats=latest)\n"), r.stderr
    # two weights above 0 the user gave are the user's: no 'thumbs 1/2' warning (a review)
    r = invoke("ingest", src, "-o", tmp_path / "c", *sets[:-1], "data.event_weights={up: 2, down: 1}",
               "--set", "data.repeats=latest")
    assert r.exit_code == 0 and "two values" not in r.stderr, r.stderr


def test_event_weights_are_a_mapping_config_key(tmp_path):
    """data.event_weights: a mapping of text to numbers (a number written as a key is its text; YAML's true, false
    and null keys, from an unquoted yes/no/on/off, refused), one key for what walks the config (its explicit keys,
    an ingest's recorded settings, train's comparison with them), not empty, within the stored ratings, and on a
    rating column."""
    cfg = load_config(None, ["data.event_weights={view: 1, cart: 2.5, 7: 3}", "data.columns.rating=event"])
    assert cfg.data.event_weights == {"view": 1.0, "cart": 2.5, "7": 3.0}
    assert "data.event_weights" in cfg.explicit_keys and "data.event_weights.view" not in cfg.explicit_keys
    assert load_config(None, []).data.event_weights is None
    # (each with what is wrong and how to write it: a review found {yes: 1} and {view: high} said neither)
    for bad, said in (("{yes: 1}", "expected a mapping of strings to numbers or null, got dict {True: 1}: the key True "
                                   "is YAML's reading of an unquoted yes, no, on, off, true, false or null; quote the "
                                   'event type, {"yes": 1}'),
                      ("[view]", "expected a mapping of strings to numbers or null"),
                      ("{view: high}", "expected a mapping of strings to numbers or null, got dict {'view': 'high'}: "
                                       "'view' weighs 'high', not a number"),
                      ("{1.5: 2}", 'the key 1.5 is no text; quote it, {"1.5": 2}'),
                      ("{}", "the mapping is empty"), ("{view: 2e9}", "'view''s weight 2e+09 is beyond"),
                      ("{view: .nan}", "expected a finite number"),
                      # written as a list is ([a,b]): no space after ':', each key holding its weight (a review)
                      ("{view:1,purchase:5}", "the key 'view:1' holds its weight, as YAML reads a ':' with no space "
                                              "after it; write a space after each ':', {view: 1, purchase: 5}"),
                      # (a key of its own ':' kept whole and quoted; one with no weight given W; a diff review)
                      ("{page:view: 1, cart:3}", "write a space after each ':', {\"page:view\": 1, cart: 3}"),
                      ("{view:1,purchase:}", "write a space after each ':', {view: 1, purchase: W}"),
                      ("{view: 1, buy: }", "'buy' has no weight; give each event type a number, {'buy': 1}")):
        with pytest.raises(ConfigError, match="config key 'data.event_weights'") as e:
            load_config(None, [f"data.event_weights={bad}"])
        assert said in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match="data.columns.rating is null; name the column of event types"):
        load_config(None, ["data.event_weights={view: 1}", "data.columns.rating=null"])
    recorded = Config().to_dict()
    recorded["data"]["event_weights"] = {"view": 1.0, "buy": 5.0}
    sets = recorded_ingest_sets(recorded)
    assert sets == ['data.event_weights={"view": 1.0, "buy": 5.0}'], sets
    again = load_config(None, sets)  # what a command that ingests it again repeats reads back
    assert again.data.event_weights == {"view": 1.0, "buy": 5.0}
    # train with the same weights given: no ingest setting said to differ; with others: said
    src = _shop(tmp_path)
    ing = [*NO_SPLIT, "--set", "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}"]
    assert invoke("ingest", src, "-o", tmp_path / "a", *ing).exit_code == 0
    train = ["train", "--set", f"data.prepared={tmp_path / 'a'}", "--run", tmp_path / "r", "--set", "model.dim=2",
             "--set", "train.epochs=1", "--set", "train.als_dims=[]", "--set", "train.threads=1"]
    r = invoke(*train, "--set", f"data.event_weights={WEIGHTS}")
    assert r.exit_code == 0 and "is an ingest setting" not in r.stderr, r.stderr
    r = invoke(*train, "--set", "data.event_weights={view: 1}")
    assert r.exit_code == 0 and "data.event_weights={\"view\": 1.0} is an ingest setting" in r.stderr, r.stderr
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["config"]["data"]["event_weights"] == \
        {"view": 1.0, "cart": 3.0, "purchase": 5.0}


def test_a_ratings_file_gives_its_movies_titles_and_genres_where_no_movies_file_is(tmp_path):
    """A review: a 'title' column in the ratings file was ignored without a word. Without data.movies its title and
    genres columns give the movies': the first non-empty cell of each movie's rows (a year in '(1995)' read as a
    movies file's is), said in a note with the movies given another title later and those without one; with a
    movies file, its titles, and the ratings' column said not read. A 'user,item,title' file has no column left
    to be the ratings: a log of interactions."""
    (tmp_path / "r.csv").write_text(
        "user,item,title,genres,rating\n"
        "1,10,,Drama,4\n"                               # movie 10's first title is on a later row
        "1,20,\"Heat, Part 1 (1995)\",Crime|Drama,5\n"
        "2,10,Alien (1979),,3\n"
        "2,20,Heat (other),Action,4\n"                  # another title for 20, later: the first kept
        "3,30,,,2\n"                                     # 30: no title on any row
        "3,10,Alien (1979),Horror,5\n")
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "a", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0, r.stderr
    assert (f"{tmp_path / 'r.csv'}: the movies' titles read from its 'title' column and genres from 'genres' (the "
            "first given for each of its 3 movies; 1 of them given another title on a later row; 1 without one)") \
        in r.stderr, r.stderr
    movies = load_dataset(tmp_path / "a").movies.set_index("movie_id")
    assert movies.loc[10, "title"] == "Alien" and movies.loc[10, "year"] == 1979
    assert movies.loc[20, "title"] == "Heat, Part 1" and movies.loc[20, "year"] == 1995
    assert movies.loc[30, "title"] == "" and pd.isna(movies.loc[30, "year"])
    assert list(movies.loc[10, "genres"]) == ["Drama"] and list(movies.loc[20, "genres"]) == ["Crime", "Drama"]
    assert list(movies.loc[30, "genres"]) == []
    # with a movies file: its titles; the ratings' title column said not read
    (tmp_path / "m.csv").write_text("item,title,genres\n10,Alien 2,Horror\n20,Heat 2,Crime\n30,Thirty,Drama\n")
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "b", "--set", "data.movies=" + str(tmp_path / "m.csv"))
    assert r.exit_code == 0 and f"{tmp_path / 'r.csv'}: its column 'title' is not read: the movies file " \
        "(data.movies) gives the titles" in r.stderr, r.stderr
    assert load_dataset(tmp_path / "b").movies.set_index("movie_id").loc[10, "title"] == "Alien 2"
    # user, item, title: every column read, so a log of interactions (not 'title' offered as the rating)
    (tmp_path / "l.csv").write_text("user,item,title\n1,10,A\n1,20,B\n2,10,A\n2,30,C\n")
    r = invoke("ingest", tmp_path / "l.csv", "-o", tmp_path / "c", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0 and "no 'rating' column: a log of events" in r.stderr, r.stderr
    assert load_dataset(tmp_path / "c").movies.set_index("movie_id")["title"].to_dict() == {10: "A", 20: "B", 30: "C"}
    # a title column of another name, given by data.columns.title: named as the file names it (a first-hour review
    # read "from its 'title' column" of a file whose titles were in 'product_name')
    (tmp_path / "p.csv").write_text("user,item,product_name\n1,10,A\n1,20,B\n2,10,A\n2,30,C\n")
    r = invoke("ingest", tmp_path / "p.csv", "-o", tmp_path / "d", "--set", "split.valid=0", "--set", "split.test=0",
               "--set", "data.columns.title=product_name")
    assert r.exit_code == 0 and "the movies' titles read from its 'product_name' column" in r.stderr, r.stderr


def test_a_parquet_ratings_file_gives_its_titles_too_a_null_one_none(tmp_path):
    """A Parquet file's title column, a null title among them (no missing value to refuse or drop)."""
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [10, 20, 10, 30], "rating": [4.0, 5, 3, 2],
                          "title": ["Ten", None, "Ten again", "Thirty (2001)"]})
    frame.to_parquet(tmp_path / "r.parquet")
    for missing in ("error", "drop"):
        out = tmp_path / missing
        r = invoke("ingest", tmp_path / "r.parquet", "-o", out, "--set", "split.valid=0", "--set", "split.test=0",
                   "--set", f"data.missing={missing}")
        assert r.exit_code == 0, r.stderr
        movies = load_dataset(out).movies.set_index("movie_id")
        assert movies["title"].to_dict() == {10: "Ten", 20: "", 30: "Thirty"} and movies.loc[30, "year"] == 2001
        assert load_dataset(out).manifest["counts"]["ratings"] == 4  # no row dropped for its null title


def _shop_run(tmp_path, monkeypatch, ing: list) -> None:
    """The shop log ingested at tmp_path/a with the settings ``ing`` and trained small into tmp_path/r."""
    from embedrec.cli import app

    monkeypatch.setattr(app._State, "config_path", None)
    monkeypatch.setattr(app._State, "overrides", ())
    assert invoke("ingest", _shop(tmp_path), "-o", tmp_path / "a", *NO_SPLIT, *ing).exit_code == 0
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'a'}", "--run", tmp_path / "r", "--set", "model.dim=2",
               "--set", "train.epochs=1", "--set", "train.als_dims=[]", "--set", "train.threads=1")
    assert r.exit_code == 0, r.stderr


def test_update_users_reads_its_file_with_the_event_weights_and_timestamp_unit_given(tmp_path, monkeypatch):
    """update-users reads --ratings as ingest reads a table, data.event_weights and data.timestamp_unit too:
    applied (an event the weights lack refused by its line), not said to have no effect."""
    ing = ["--set", "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}"]
    _shop_run(tmp_path, monkeypatch, ing)
    upd = tmp_path / "since.csv"
    upd.write_text("customer,item,event,timestamp\nu1,30,purchase,1700000000000\nu2,10,wishlist,1700000001000\n")
    sets = ["--set", "data.columns.user=customer", *ing, "--set", "data.timestamp_unit=ms"]
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r", *sets)
    assert r.exit_code == 1 and r.stderr.endswith(f"error: {upd}:3: column 'event' holds 'wishlist', which "
                                                  "data.event_weights does not weigh (1 row holds it); add its "
                                                  "weight, --set 'data.event_weights={view: 1, cart: 3, purchase: "
                                                  "5, wishlist: W}', or remove those rows\n"), r.stderr
    upd.write_text("customer,item,event,timestamp\nu1,30,purchase,1700000000000\nu2,10,view,1700000001000\n")
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r", *sets)
    assert r.exit_code == 0 and "no effect" not in r.stderr, r.stderr


def test_update_users_warns_of_times_at_or_before_1970_or_past_next_year(tmp_path, monkeypatch):
    """A red team: update-users recorded times -1, 0 and 99999999999999 (history showed the year 5138) without a
    word, where ingest warns; one warning names how many, the first's line and what it was read as."""
    ing = ["--set", "data.columns.rating=event", "--set", f"data.event_weights={WEIGHTS}"]
    _shop_run(tmp_path, monkeypatch, ing)
    upd = tmp_path / "since.csv"
    sets = ["--set", "data.columns.user=customer", *ing, "--set", "data.timestamp_unit=s"]
    upd.write_text("customer,item,event,timestamp\nu1,30,view,1700000000\nu2,10,view,0\nu1,10,view,99999999999\n")
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r", *sets)
    assert r.exit_code == 0, r.stderr
    assert (f"{upd.name}: 2 rows dated at or before 1970 or more than a year from now (the first at {upd}:3, read as 0 "
            "Unix seconds: at or before 1970-01-01): check the file's times") in r.stderr, r.stderr
    upd.write_text("customer,item,event,timestamp\nu1,30,view,1700000000\nu2,10,view,1700000100\n")
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r", *sets)
    assert r.exit_code == 0 and "dated at or before" not in r.stderr, r.stderr


def test_update_users_reads_the_event_weights_and_timestamp_unit_the_dataset_was_ingested_with(tmp_path,
                                                                                               monkeypatch):
    """A review: update-users took the dataset's columns but not its data.event_weights (nor data.timestamp_unit),
    so a shop log's update file was refused, "column 'event' 'view' is not a number". Now both are read as the
    dataset was ingested, said in the one line, with nothing given; an event the weights lack is refused by its
    line as ingest refuses it."""
    _shop_run(tmp_path, monkeypatch, ["--set", "data.columns.user=customer", "--set", "data.columns.rating=event",
                                      "--set", f"data.event_weights={WEIGHTS}", "--set", "data.timestamp_unit=ms"])
    upd = tmp_path / "since.csv"
    upd.write_text("customer,item,event,timestamp\nu1,30,purchase,1700000000000\nu2,10,view,1700000001000\n")
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    said = next(line for line in r.stderr.splitlines() if line.startswith("reading "))
    assert "data.columns.user=customer" in said and "data.timestamp_unit=ms" in said and \
        "data.event_weights={view: 1, cart: 3, purchase: 5}" in said, said
    upd.write_text("customer,item,event,timestamp\nu1,30,purchase,1700000000000\nu2,10,wishlist,1700000001000\n")
    r = invoke("update-users", "--ratings", upd, "--run", tmp_path / "r")
    assert r.exit_code == 1 and f"error: {upd}:3: column 'event' holds 'wishlist', which data.event_weights does " \
        "not weigh" in r.stderr, r.stderr


def test_an_event_type_is_written_as_a_yaml_key_that_reads_back_as_itself():
    """The advice's mapping names each event type as a key YAML reads back as that text: plain, or in double
    quotes (a space, YAML's yes/no/on/off/null, a quote), never single ones (the --set is single-quoted)."""
    from embedrec.data.columns import _yaml_key

    for text, written in (("view", "view"), ("add-to-cart", "add-to-cart"), ("add to cart", '"add to cart"'),
                          ("yes", '"yes"'), ("Off", '"Off"'), ('say "hi"', '"say \\"hi\\""'), ("1st", '"1st"')):
        assert _yaml_key(text) == written
        cfg = load_config(None, [f"data.event_weights={{{written}: 2}}"])
        assert cfg.data.event_weights == {text: 2.0}, written


def test_a_long_word_is_left_out_of_the_weights_offered_whole_and_a_bidi_control_is_escaped(tmp_path):
    """Session 52's red team: a rating column holding a word of 1,000 characters was offered weights in a --set cut
    with '[...]' in its middle (the whole line cut at 2,000 characters), which could not be pasted; a word holding
    U+202E (which shows what follows it reversed) was echoed raw, where control characters are escaped. The
    mapping offered now writes each word whole while it stays short (columns.WEIGHTS_MAX), says how many words it
    leaves out, writes U+202E as YAML's '\\u202e' (which reads back as it) and every message escapes it (errors.
    shorten); pasted, it reads every word it names, and the one left out is then named as lacking, with no cut
    command either (no weight of the user's can be written whole beside it)."""
    import shlex

    long, bidi = "x" * 1000, "r\u202eevil"
    rows = [("u1", 10, "view", 1), ("u2", 20, bidi, 2), ("u3", 30, "cart", 3), ("u4", 10, long, 4),
            ("u1", 20, "view", 5)]
    src = _shop(tmp_path, rows)
    for sets, cut in (([], "its column 'event' holds event types"), (["--set", "data.columns.rating=event"],
                                                                      "is not a number")):
        r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT, *sets)
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and cut in r.stderr, r.stderr
        assert "\u202e" not in r.stderr and "[...]" not in r.stderr.split("data.event_weights=")[1], r.stderr
        recipe = r.stderr.split("--set 'data.event_weights=")[1].split("}'")[0]
        assert recipe == '{view: 1, "r\\u202eevil": 2, cart: 3', recipe
        assert "}' (1 of its 4 words left out, too long to write here: add each with its weight)" in r.stderr
    pasted = shlex.split(f"--set 'data.event_weights={recipe}}}'")
    assert load_config(None, [pasted[1]]).data.event_weights == {"view": 1.0, bidi: 2.0, "cart": 3.0}
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT, "--set", "data.columns.rating=event", *pasted)
    assert r.exit_code == 1 and r.stderr == (
        f"error: {src}:5: column 'event' holds '{long[:17]}[...]{long[:16]}', which data.event_weights does not weigh "
        "(1 row holds it); add its weight to data.event_weights (too long to write here whole), or remove those "
        "rows\n"), r.stderr
    every = _shop(tmp_path, [("u1", 10, "a" * 400, 1), ("u2", 20, "b" * 400, 2)])  # no word fits: no command
    r = invoke("ingest", every, "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 1 and "to weigh them (your weights; a pair's events summed), --set data.columns.rating=" \
        "event with a weight for each in data.event_weights (the words are too long to write here), or" in r.stderr
    r = invoke("ingest", every, "-o", tmp_path / "a", *NO_SPLIT, "--set", "data.columns.rating=event")
    assert r.exit_code == 1 and "event types too long to write here: to weigh them (your weights; a pair's events " \
        "summed), give each its weight in data.event_weights; or fix" in r.stderr, r.stderr


def test_the_weights_offered_are_whole_words_within_their_room_by_hand(monkeypatch):
    """columns.weights_mapping: the words in order, each whole, while the text stays within WEIGHTS_MAX characters
    (a word that does not fit left out, a later shorter one still written); _yaml_key writes a bidi or control
    character as YAML's escape, which reads back as the text; errors.shorten escapes them."""
    from embedrec.data import columns
    from embedrec.errors import shorten

    monkeypatch.setattr(columns, "WEIGHTS_MAX", 20)
    assert columns.weights_mapping([("ab", 1), ("c" * 30, 2), ("de", 3), ("fg", 4)]) == \
        ("ab: 1, de: 3, fg: 4", {"ab": 1, "de": 3, "fg": 4}, 1)  # 'ab: 1' 5 + 2 + 5 + 2 + 5 = 19
    assert columns.weights_mapping([("ab", 1), ("cd", 2), ("ef", 3), ("gh", 4)])[2] == 1  # the fourth: 26 > 20
    assert columns.weights_mapping([("c" * 30, 1)]) == ("", {}, 1)
    assert columns.left_out(0, 3) == "" and columns.left_out(2, 5) == \
        " (2 of its 5 words left out, too long to write here: add each with its weight)"
    for text, written in (("a\u202eb", '"a\\u202eb"'), ("tab\there", '"tab\\u0009here"'), ("\u2067x", '"\\u2067x"')):
        assert columns._yaml_key(text) == written
        assert load_config(None, [f"data.event_weights={{{written}: 2}}"]).data.event_weights == {text: 2.0}
    assert shorten("a\u202eb\u200f\x85") == "a\\u202eb\\u200f\\x85" and shorten("é ü") == "é ü"


def test_a_column_named_in_a_set_is_written_whole_and_reads_back_by_hand():
    """columns.column_set: the --set a message offers names its column whole (session 52's red team: a name of more
    than 60 characters was cut with '[...]'), in YAML's quotes where --set's YAML would read it as something else
    and in the shell's where a shell would split it, and it reads back as that name; the library's form KEY='NAME'
    where either is needed; None beyond WEIGHTS_MAX characters."""
    import shlex

    from embedrec.data.columns import WEIGHTS_MAX, column_set

    key = "data.columns.rating"
    assert column_set(key, "stars") == (f"{key}=stars", f"{key}=stars")  # plain: as before
    assert column_set(key, "yes") == (f"'{key}=\"yes\"'", f"{key}='yes'")
    for name in ("s" * 61, "n" * (WEIGHTS_MAX - 1), "yes", "5", "a b", "it's", "x#y", "a\u202eb", " lead", "null",
                 "a: b", "-x", "~", "é ü"):
        cli, lib = column_set(key, name)
        assert load_config(None, shlex.split(cli)).data.columns.rating == name, cli
        assert "[...]" not in cli and "\u202e" not in cli
        assert lib == f"{key}={name}" if cli == f"{key}={name}" else lib == f"{key}={name!r}"
    assert column_set(key, "n" * (WEIGHTS_MAX + 1)) is None and column_set(key, "a b" * 100) is None


@pytest.mark.parametrize("length", [61, 150])
def test_the_missing_rating_columns_advice_names_a_long_column_whole_and_pastes(tmp_path, monkeypatch, length):
    """The known gap of session 52's red team: the advice of a file without a rating column wrote its column of
    event types, or the column closest to the one named, cut at 60 characters in the --set it offered. Each is
    written whole now: pasted, the --set reads the file."""
    import re
    import shlex

    from embedrec.cli import app

    monkeypatch.setattr(app._State, "config_path", None)
    monkeypatch.setattr(app._State, "overrides", ())
    long = "event type " + "x" * (length - 12) + "!"  # a space and a '!': quoted for the shell, and by YAML
    src = tmp_path / "shop.csv"
    src.write_text(f"customer,item,{long}\n" + "".join(f"u{u},{m},{'view' if m % 2 else 'buy'}\n"
                                                          for u in range(1, 7) for m in range(1, 6)))
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "[...]" not in r.stderr.split("summed), ")[1], r.stderr
    offered = re.search(r"summed\), (--set .*?}'), or --set", r.stderr).group(1)
    assert shlex.split(offered)[:2] == ["--set", f'data.columns.rating="{long}"'], offered
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT, *shlex.split(offered))
    assert r.exit_code == 0, r.stderr
    # the column closest to a rating column named with a typo: 'did you mean' it, whole
    rated = tmp_path / "rated.csv"
    rated.write_text(f"customer,movie,{long}\n" + "".join(f"{u},{m},{(u + m) % 5 + 1}\n" for u in range(1, 7)
                                                      for m in range(1, 6)))
    typo = long[:-2] + "y!"  # a letter off: no column differs from it only in case, spaces or punctuation
    r = invoke("ingest", rated, "-o", tmp_path / "b", *NO_SPLIT, "--set", f"data.columns.rating={typo}")
    offered = re.search(r"did you mean (--set '[^']*')", r.stderr)
    assert r.exit_code == 1 and offered and "[...]" not in offered.group(1), r.stderr
    r = invoke("ingest", rated, "-o", tmp_path / "b", *NO_SPLIT, *shlex.split(offered.group(1)))
    assert r.exit_code == 0, r.stderr


def test_a_column_name_too_long_to_write_is_named_without_a_command(tmp_path):
    """A column name beyond WEIGHTS_MAX characters: no --set is offered (it would not fit a line), the column is
    named shortened, with its length, and the weights mapping is still offered."""
    long = "e" * 400
    src = tmp_path / "shop.csv"
    src.write_text(f"customer,item,{long}\n" + "".join(f"u{u},{m},{'view' if m % 2 else 'buy'}\n"
                                                          for u in range(1, 7) for m in range(1, 6)))
    r = invoke("ingest", src, "-o", tmp_path / "a", *NO_SPLIT)
    assert r.exit_code == 1 and (
        f"to weigh them (your weights; a pair's events summed), set data.columns.rating to its column "
        f"'{long[:28]}[...]{long[:27]}' (its name, 400 characters, too long to write here), with a weight for each "
        "in data.event_weights (--set 'data.event_weights={view: 1, buy: 2}'), or --set data.columns.rating=null"
    ) in r.stderr, r.stderr


def test_the_unread_times_warning_names_a_long_column_whole_and_pastes(tmp_path, monkeypatch):
    """A column of Unix times the names do not tell is offered as data.columns.timestamp, its name whole and quoted
    as it pastes (errors.set_hint wrote it whole for the shell, but 'yes' or '5' read back through YAML otherwise)."""
    import re
    import shlex

    from embedrec.cli import app

    monkeypatch.setattr(app._State, "config_path", None)
    monkeypatch.setattr(app._State, "overrides", ())
    name = "when it was watched " + "w" * 70
    src = tmp_path / "r.csv"
    src.write_text(f"user_id,movie_id,rating,{name}\n" + "".join(
        f"{u},{m},{(u + m) % 5 + 1},{1_600_000_000 + u * 100 + m}\n" for u in range(1, 7) for m in range(1, 6)))
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0, r.stderr
    offered = re.search(r"holds Unix times: (--set '[^']*') to read them", r.stderr)
    assert offered and shlex.split(offered.group(1))[1] == f'data.columns.timestamp="{name}"', r.stderr
    r = invoke("ingest", src, "-o", tmp_path / "b", "--set", "split.valid=0", "--set", "split.test=0",
               *shlex.split(offered.group(1)))
    assert r.exit_code == 0 and load_dataset(tmp_path / "b").split_frame("train")["timestamp"].min() == \
        1_600_000_101, r.stderr


def _zeros_file(tmp_path, values, weights, name="bx.csv", n=3000) -> str:
    import numpy as np

    rng = np.random.default_rng(1)
    r = rng.choice(values, size=n, p=np.array(weights) / sum(weights))
    pairs = rng.choice(300 * 400, size=n, replace=False)
    rows = "".join(f"u{p // 400},isbn{p % 400:04d}X,{v:g}\n" for p, v in zip(pairs, r))
    (tmp_path / name).write_text("user,item,rating\n" + rows)
    return str(tmp_path / name)


def test_a_scale_heaped_at_zero_is_said_with_the_floor_that_sets_the_zeros_apart(tmp_path):
    """A first-hour review: Book-Crossing's 0-10 scale, whose 0 (60% of the rows) means 'read, not rated', was
    read without a word, an explicit model then learning 0s as ratings. A note says what 0 may mean and names
    data.min_rating=1; following it keeps the 0s apart as rated (no rating of 0 left) and says nothing more. Scales
    whose 0s are not heaped are not noted: ML-100K's 1-5, 0.5-5 by halves, 0-5 and 0-10 with few 0s."""
    weights = [60, 1, 1, 2, 3, 4, 5, 6, 7, 6, 5]
    src = _zeros_file(tmp_path, list(range(11)), weights)
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "data.id_type=auto")
    assert r.exit_code == 0, r.stderr
    note = [line for line in r.stderr.splitlines() if "are 0, the lowest" in line]
    assert len(note) == 1 and note[0].startswith(f"note: {src}: "), r.stderr
    assert "ratings (61%) are 0, the lowest of a 0-10 scale" in note[0], note[0]
    assert "times the next most common value (8)" in note[0] and "0 means seen but not rated" in note[0], note[0]
    assert "ingest with --set data.min_rating=1 " in note[0], note[0]
    r = invoke("ingest", src, "-o", tmp_path / "b", "--set", "data.id_type=auto", "--set", "data.min_rating=1")
    assert r.exit_code == 0 and "are 0, the lowest" not in r.stderr, r.stderr
    ds = load_dataset(tmp_path / "b")
    assert min(float(ds.split_frame(s)["rating"].min()) for s in ds.splits) >= 1
    for i, (values, weights) in enumerate([
        (list(range(1, 6)), [6, 11, 27, 34, 21]),  # ML-100K's 1-5 shares
        ([v / 2 for v in range(1, 11)], [1, 3, 2, 7, 5, 20, 13, 27, 8, 14]),  # 0.5-5 by halves
        (list(range(6)), [5, 10, 15, 30, 25, 15]),  # 0-5 whose 0s are few
        (list(range(11)), [10, 2, 3, 4, 6, 8, 10, 15, 18, 14, 10]),  # 0-10 whose 0s are a tenth
        (list(range(11)), [30, 1, 1, 2, 3, 4, 5, 6, 20, 20, 8]),  # 0-10 whose 0s are not twice the next value's
    ]):
        src = _zeros_file(tmp_path, values, weights, name=f"s{i}.csv")
        r = invoke("ingest", src, "-o", tmp_path / f"s{i}", "--set", "data.id_type=auto")
        assert r.exit_code == 0 and "are 0, the lowest" not in r.stderr, (values, r.stderr)


def test_a_column_holding_a_split_made_elsewhere_is_said_not_weighed_as_events(tmp_path):
    """An own-data review: a click log 'user_id,item_id,split,timestamp' was refused for want of a rating, its
    'split' column offered as event types to weigh ('train: 1, test: 2', which would train on the test rows), and
    the split itself went unread without a word. Such a column (train and test or valid, alone) is no rating: the
    log is read, with a warning that the file's split is not read and how to score on its held-out rows."""
    rows = [(u, m, "test" if m == 4 else "train", f"2024-03-0{m}T10:00:00Z") for u in range(1, 9) for m in range(1, 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "split", "timestamp"])
    frame.to_csv(tmp_path / "log.csv", index=False)
    sets = ("--set", "split.valid=0", "--set", "split.test=0")
    r = invoke("ingest", tmp_path / "log.csv", "-o", tmp_path / "a", "-q", *sets)
    assert r.exit_code == 0 and r.stderr.startswith(
        f"{tmp_path / 'log.csv'}: its column 'split' holds a split made elsewhere (test, train), which ingest does not "
        "read as a column: it draws its own split (split.*); to hold your own rows out, write each part to its own "
        "file and ingest the training rows with --set split.method=given --set data.test_source=TEST_FILE"), r.stderr
    frame.assign(kind=["view", "buy"] * 16).to_csv(tmp_path / "log.csv", index=False)  # and event types beside it
    r = invoke("ingest", tmp_path / "log.csv", "-o", tmp_path / "b", *sets)
    assert r.exit_code == 1 and "its column 'kind' holds event types (view, buy)" in r.stderr and \
        "column 'split' holds a split made elsewhere" in r.stderr and "train: " not in r.stderr, r.stderr
    from embedrec.data.columns import is_split_column

    assert is_split_column(["train", "Test"]) and is_split_column(["training", "validation", "testing"])
    assert not is_split_column(["train"]) and not is_split_column(["test", "valid"])
    assert is_split_column(["train"], "split") and is_split_column(["train"], "Set")  # (a file's train rows first:
    assert not is_split_column(["train"], "vehicle")  # its sample holds no other; a diff review)
    assert not is_split_column(["train", "bus"])


def test_an_id_column_named_by_its_last_word_is_guessed_and_a_time_never_offered_as_an_id(tmp_path):
    """An own-data review: 'customer,product_sku,stars,event_time_ms' was refused with 'set data.columns.movie to one
    of: product_sku, event_time_ms' (a Unix-time column offered as the movie). A column whose last word names the
    role ('product_sku', 'item_asin') is guessed as one named by it whole is; a time's name is never offered as an
    id; 'product_category' is not the movie."""
    frame = pd.DataFrame({"customer": ["a", "b", "a", "c"], "product_sku": ["B1", "B2", "B2", "B3"],
                          "stars": [5, 4, 3, 4], "event_time_ms": [1_700_000_000_000 + i for i in range(4)]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    sets = ("--set", "split.valid=0", "--set", "split.test=0", "--set", "data.id_type=auto")
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "a", *sets)
    assert r.exit_code == 0 and "guessed columns 'customer' as the user and 'product_sku' as the movie" in r.stderr, \
        r.stderr
    frame.rename(columns={"product_sku": "product_category"}).to_csv(tmp_path / "r.csv", index=False)
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "b", *sets)
    assert r.exit_code == 1 and "set data.columns.movie to one of: product_category\n" in r.stderr, r.stderr
    # the whole name first: 'track_id' beside 'track_artist' (whose last word names a movie too) is still taken
    frame.rename(columns={"product_sku": "track_id"}).assign(track_artist="x").to_csv(tmp_path / "r.csv", index=False)
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "c", *sets)
    assert r.exit_code == 0 and "'track_id' as the movie" in r.stderr, r.stderr


def test_a_movies_release_date_is_not_taken_for_the_ratings_times(tmp_path):
    """A diff review: a ratings file's 'release_date' (a movie's, ISO dates) was read as each rating's time. A column
    of dates named as a release, a birth or a publication is named in the warning, not taken."""
    rows = [(u, m, 1 + (u + m) % 5, f"20{10 + m % 10}-0{1 + m % 9}-1{m % 10}") for u in range(8) for m in range(6)]
    pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "release_date"]).to_csv(tmp_path / "r.csv",
                                                                                         index=False)
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "a", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0 and "as 'timestamp'" not in r.stderr and \
        "column 'release_date' holds dates: --set data.columns.timestamp=release_date to read them" in r.stderr, \
        r.stderr


def test_a_column_of_dates_written_day_or_month_first_is_named_not_taken(tmp_path):
    """A first-hour review: a 'Date' column of 05/03/2024 went unnamed ('no timestamp column ... NAME names another
    column'); which of day and month comes first is not guessed, so it is named with the format to set, not read."""
    rows = [(u, m, 1 + (u + m) % 5, f"{1 + m:02d}/0{1 + u % 9}/2024") for u in range(8) for m in range(6)]
    pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "Date"]).to_csv(tmp_path / "r.csv", index=False)
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "a", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0 and "as 'timestamp'" not in r.stderr and \
        "column 'Date' holds dates written day or month first (05/03/2024): --set data.columns.timestamp=Date --set " \
        "data.timestamp_format=%d/%m/%Y (or %m/%d/%Y where the month comes first) to read them" in r.stderr, r.stderr
    r = invoke("ingest", tmp_path / "r.csv", "-o", tmp_path / "b", "--set", "split.valid=0", "--set", "split.test=0",
               "--set", "data.columns.timestamp=Date", "--set", "data.timestamp_format=%d/%m/%Y")
    assert r.exit_code == 0, r.stderr
