"""The notes said beside a run's figures, worded once for the library and the CLI: ``evaluate_notes`` (an
approximate index the figures do not go through, users with no trained vector, no genres for ild, which paired
differences are ties), ``epoch_notes`` and ``split_notes`` (train's: a best epoch at the cap, unlike held-out
counts, a sampled evaluation, a test split held out of the model), ``train_notes`` (train's all) and
``baseline_notes`` (a model behind its baseline, after both), each a list of :class:`Note`; ``log_notes`` logs
them on the ``embedrec`` logger. ``er.train``, ``train_run`` and ``Model.evaluate`` log them once the figures are
made (``notes=False``: not); the CLI logs the same notes where its lines go (the figures between), with the
commands a hint names as it would run them (its -c and --set repeated)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from embedrec.errors import library_terms, sh_quote

log = logging.getLogger("embedrec")


class Note(NamedTuple):
    """One line: its logging ``level``, its %-format ``msg`` (its «CLI|library» marks the format's own) and the
    ``args`` shown as they are (a run's name, a path: never read as marks, ``errors.TermsFilter``'s
    ``marks_only``). ``str(note)``: the line in library terms."""

    level: int
    msg: str
    args: tuple = ()

    def __str__(self) -> str:
        msg = library_terms(self.msg)
        return msg % self.args if self.args else msg


def log_notes(notes: Iterable[Note]) -> None:
    """Each of ``notes`` on the ``embedrec`` logger at its level, in the logger's terms (the CLI's or the
    library's)."""
    for note in notes:
        log.log(note.level, note.msg, *note.args, extra={"marks_only": True})


def baseline_notes(metrics: dict) -> list[Note]:
    """A warning per split where the model does no better than its baseline (``evaluate_paired.behind_baselines``), said
    after the figures of ``train`` and ``evaluate``, under -q too."""
    from embedrec.evaluate_paired import behind_baselines

    return [Note(logging.WARNING, "%s", (text,)) for text in behind_baselines(metrics)]


# ----------------------------------------------------------------------------------------------- evaluate's
_READ_LISTS = "model.evaluate(lists={'served': embedrec.list_metrics.read_lists(path)})"


def evaluate_notes(metrics: dict, split: str, named: Iterable[str] = (), shown: dict | None = None) -> list[Note]:
    """What evaluate says of its figures on ``split`` (``metrics``: ``Model.evaluate``'s result), before them:
    where the model and each run ``against`` serve through an approximate index (their rows rank every movie
    exactly); the users scored that the model, and each run ``against``, has no vector for (a review: a cold-start
    split's users were averaged in without a word); ild among the metrics ``named`` (as given: a group naming it
    is no ask) where the movies have no genres; what the paired differences are and which are ties, of ``shown``
    (the figures as the caller shows them, ``evaluate.select_metrics``'s; default ``metrics``)."""
    out = []
    rows = (metrics.get("splits") or {}).get(split) or {}
    served = metrics.get("served_index")
    if served:  # a first-hour review: with an hnsw index, the served lists scored 0.451052 against the row's 0.451175
        out.append(Note(logging.INFO, "note: the model row ranks every movie exactly; recommend serves through this "
                        "run's %s index%s, so its lists can differ a little: score them with «export --topk-all FILE "
                        f"then evaluate --lists FILE|model.topk_all(path) then {_READ_LISTS}»",
                        (served["kind"], _recall_said(served))))
    untrained = (rows.get("model") or {}).get("users_untrained", 0)
    if untrained:
        out.append(_untrained_note(untrained, split, "the model"))
    for name, run in (metrics.get("against") or {}).items():  # each run against's, as the model's (session 53)
        served = run.get("served_index")
        if served:

            out.append(Note(logging.INFO, "note: the row of run '%s' «(--against)|(against=)» ranks every movie exactly; "
                            "recommend serves it through its %s index%s, so its lists can differ a little: score "
                            "them with «export --run %s --topk-all FILE then evaluate --lists FILE|topk_all(path) of "
                            f"the run at %s, then {_READ_LISTS}»",
                            (name, served["kind"], _recall_said(served), sh_quote(run["run"]))))
        untrained = (rows.get(name) or {}).get("users_untrained", 0)
        if untrained:
            out.append(_untrained_note(untrained, split, "run '%s' «(--against)|(against=)»", name))
    if any(str(n).strip().lower() == "ild" for n in named) and not (metrics.get("beyond_accuracy") or {}).get("genres"):
        out.append(Note(logging.WARNING, "ild: the movies of this dataset have no genres, so their lists have no "
                        "genre diversity to measure"))
    paired = (((metrics if shown is None else shown).get("paired") or {}).get(split)) or {}
    if paired:  # (before the figures: the warnings of a model behind its baseline come after them)
        out.append(_paired_note(paired, split))
    return out


def _recall_said(served: dict) -> str:
    recall = served.get("recall@10")
    return f" (recall@10 {recall:.4f} of the exact lists when built)" if recall is not None else ""


def _untrained_note(n: int, split: str, who: str, *args) -> Note:
    """The warning of the ``n`` users scored on ``split`` that ``who`` (the model, or a run against, its name in
    ``args``) has no trained vector for."""
    return Note(logging.WARNING, "%s of the users scored on %s have no training rating (split.cold_start's, or, on a "
                f"run trained without a refit, users first seen in valid), so {who} has no vector for them: their "
                "lists, in its figures, come from the movie biases alone (the catalogue's own order where it has "
                "none); «recommend answers them with --fallback popular|Model.recommend answers them with "
                "missing='popular'» (the most popular movies; those of its latest window where the model adds recent "
                "popularity, train.als_trend, as in these figures)", (f"{n:,}", split, *args))


def _paired_note(paired: dict, split: str) -> Note:
    """What the rows model-OTHER and model-OTHER se are (the result's ``paired``), and which of them are ties, from
    one split's ``paired`` ({other: {metric: {difference, se, users, tie}}})."""
    users = sorted({v["users"] for row in paired.values() for v in row.values()})
    ties = []
    for other, row in paired.items():
        tied = [m for m, v in row.items() if v["tie"]]
        if tied:
            ties.append(f"{other} on {'every metric' if len(tied) == len(row) and len(row) > 1 else ', '.join(tied)}")
    rated = [m for m in ("rmse", "mae") if any(m in row for row in paired.values())]
    per = {"rmse": ("user_mse", "squared"), "mae": ("user_mae", "absolute")}
    said = (f"; for {' and '.join(rated)} the difference of the figures over all the ratings (no SE), and "
            f"{' and '.join(per[m][0] for m in rated)} the paired one: each user's mean "
            f"{' (or '.join(per[m][1] for m in rated)}{')' if len(rated) > 1 else ''} error minus OTHER's, averaged "
            "over users") if rated else ""
    return Note(logging.INFO, f"«model-OTHER|paired['{split}'][OTHER]»: the model's metric minus OTHER's, paired user "
                f"by user over the users both score ({users[-1]:,}{' at most' if len(users) > 1 else ''}), then its "
                "standard error «(model-OTHER se; after +- in a table)|(se)»" + said +
                "; a difference within two SE of 0 is a tie: %s", ("; ".join(ties) if ties else "none here is",))


# ----------------------------------------------------------------------------------------------- train's
def train_notes(metrics: dict, epochs: int, go_on: Callable[[int], str] | None = None,
                reingest: Callable[[], str] | None = None) -> list[Note]:
    """What train says of its figures (``metrics``: the run's): :func:`epoch_notes`, :func:`baseline_notes`, then
    :func:`split_notes`, in the order the command says them (its figures after the first)."""
    return [*epoch_notes(metrics, epochs, go_on), *baseline_notes(metrics), *split_notes(metrics, reingest)]


def epoch_notes(metrics: dict, epochs: int, go_on: Callable[[int], str] | None = None) -> list[Note]:
    """A note where the best epoch was the last that ``epochs`` (train.epochs, above 1) allowed and a validation
    split chose it: the fit may not have converged (a first-hour review: train.lr=0.001 ended at 'best epoch 100 of
    100' without a word). ``go_on(n)``: how to train on to n epochs (the CLI's command; default a changed config)."""
    sel = metrics.get("selection") or {}
    valid = sel.get("valid")
    if not (isinstance(valid, (int, float)) and math.isfinite(valid) and epochs > 1
            and sel.get("best_epoch") == sel.get("epochs_run") == epochs):
        return []
    hint = go_on(epochs * 2) if go_on is not None else f"cfg.updated({{'train.epochs': {epochs * 2}}})"
    return [Note(logging.INFO, "note: the best epoch was the last of train.epochs (%d): the fit may not have "
                 "converged; more epochs may score better: go on with %s", (epochs, hint))]


def split_notes(metrics: dict, reingest: Callable[[], str] | None = None) -> list[Note]:
    """What train says after its figures: :func:`held_out_notes`; each split whose ranking metrics are of a sample
    of its users (train.eval_users; a review: a sample, said nowhere, was read as the whole); a test split held out
    of the model (a first-hour review: 38% of the quick start's top-10 slots were movies those users rated in the
    test split, which recommend does not exclude, only what trained). ``reingest()``: the ingest without a test
    split (the CLI's command; default a call of ``er.ingest``)."""
    out = held_out_notes(metrics)
    for split, models in (metrics.get("splits") or {}).items():
        m = models.get("model", {})
        if m.get("users_evaluated", 0) < m.get("users_with_rows", 0):
            out.append(Note(logging.INFO, "the %s ranking metrics are over a seeded sample of %s of its %s users "
                            "(train.eval_users); «'embedrec evaluate'|model.evaluate()» ranks them all",
                            (split, f"{m['users_evaluated']:,}", f"{m['users_with_rows']:,}")))
    if "test" in (metrics.get("splits") or {}):
        how = reingest() if reingest is not None else "er.ingest(source, cfg.updated({'split.test': 0}), overwrite=True)"
        out.append(Note(logging.INFO, "the test split is held out of this model to measure it, so recommend can list "
                        "a movie a user rated there; to serve on every rating, ingest it again with no test split (%s) "
                        "and train again", (how,)))
    return out


def held_out_notes(metrics: dict) -> list[Note]:
    """One note where the valid figure and the test figure of a ranking metric are both said and their splits hold
    out unlike numbers of movies per user (a quarter more, or fewer): such a metric grows with a user's held-out
    movies (recall falls), so the two are not to be compared (a first-hour review read valid ndcg@10 0.2180 beside
    test 0.4510 as a contradiction: about 11 movies a user against 21)."""
    sel, held = metrics.get("selection") or {}, metrics.get("held_out") or {}
    metric, valid = sel.get("metric"), sel.get("valid")
    test = ((metrics.get("splits") or {}).get("test") or {}).get("model", {}).get(metric)
    if not isinstance(metric, str) or "@" not in metric or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in (valid, test)):
        return []
    try:
        per = [held[s]["ratings"] / held[s]["users"] for s in ("valid", "test")]
    except (KeyError, TypeError, ZeroDivisionError):
        return []
    if max(per) < 1.25 * min(per):
        return []

    def shown(x: float) -> str:
        return f"{x:.1f}" if x < 10 else f"{x:.0f}"

    return [Note(logging.INFO, "note: valid and test hold out about %s and %s movies a user, and %s %s with them: "
                 "compare valid's %.4f with valid figures and test's %.4f with test figures (docs/quality.md)",
                 (shown(per[0]), shown(per[1]), metric, "falls" if metric.startswith("recall") else "grows", valid,
                  test))]
