"""embedrec train (and the exact resume command an interrupted run prints)."""

from __future__ import annotations

import contextlib
import errno
import math
import time
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import (
    CONTEXT,
    command_line,
    common,
    log,
    lost_peer_line,
    main,
    peer_lost,
    progress_enabled,
    reingest_command,
    stopped_without_a_message,
    wrote,
)
from embedrec.cli.options import FMT, RUN, metrics_out
from embedrec.cli.signals import sigterm_as_interrupt

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@RUN
@FMT
@common
def train(cfg: Config, resume, run_dir, fmt):
    """Train embeddings on the prepared dataset (data.prepared) and write the run (run.dir).

    Shows a progress bar with the loss and the validation metric, stops early on the validation metric,
    keeps the best epoch, chooses the default model's settings and dimension on it (train.als_*), builds the
    FAISS index, and prints the final metrics beside the baselines. NDCG@10 and precision grow with the movies
    held out per user (recall falls), so valid's figure and test's differ where their splits hold out unlike
    numbers (ML-100K's default: about 11 and 21 a user; docs/quality.md).

    \b
    Examples:
      embedrec train
      embedrec train --set 'train.als_dims=[]'           # model.dim alone: no larger dimension tried (faster)
      embedrec train -c configs/ml100k-explicit.yaml     # rating prediction (for predict)
      embedrec train --resume
      embedrec train --run runs/mine --set data.prepared=data/prepared/mine
    """
    from embedrec.api import train_run
    from embedrec.device import secondary
    from embedrec.errors import Interrupted, how_stopped, signal_name, stop_signal
    from embedrec.fsutil.outputs import through_missing_key
    from embedrec.run_layout import has_checkpoint, published_since

    if run_dir:
        from embedrec.config import set_explicit

        cfg = set_explicit(cfg, "run.dir", run_dir)
    cfg = through_missing_key(cfg, "run.dir")  # the folder made, named in every line below ('a/../x': 'x')
    run_dir = cfg.run.dir if run_dir else None
    started = time.time()  # a model published from here on is this command's
    since = 0.0 if resume else started - 1  # checkpoints this command wrote (or, resuming, any)
    try:
        # SIGTERM (kill, a scheduler's stop) leaves like Ctrl-C: the checkpoint kept, the resume command, exit 143
        with sigterm_as_interrupt() as sig:  # train_run holds the run's writer lock (on ranks: rank 0 for all)
            metrics = train_run(cfg, resume=resume, progress=progress_enabled(), notes=False)  # said by _report
            wrote(cfg.run.dir)
            sig.defer()  # published: a SIGTERM or SIGINT from here on waits for the report (a finished run, exit 0)
            if not secondary():  # under torchrun, rank 0 alone reports
                try:
                    if resume and not published_since(cfg.run.dir, started):  # a finished run: said in one line
                        metrics_out(metrics, fmt, notes=False)  # (its recorded metrics, as train printed them)
                    else:
                        _report(metrics, cfg, fmt, time.time() - started, resumed=resume)
                except OSError as e:  # the terminal hung up (EIO) once the run was published: the run is done, so
                    if e.errno != errno.EIO:  # exit 0, not an internal error a retrying script would train again on
                        raise             # (a review)
                    sig.came = sig.came or "a hang-up"
    except Interrupted as e:
        how, why = how_stopped(e.signum), _killed_peer(e.signum)
        if not e.saved and has_checkpoint(cfg.run.dir, since):  # this candidate saved nothing; an earlier one did
            raise Interrupted(f"{why}training {how} before the first checkpoint of the fit it was in (a candidate, or "
                              f"the refit); the checkpoints of the fits before it are kept: continue with "
                              f"{resume_command(run_dir)}",
                              terminated=e.signum) from None
        if e.saved and e.where:  # the fit's own words, with the command that resumes this run
            raise Interrupted(f"{why}{e.where}{e.kept}: continue with {resume_command(run_dir)}",
                              terminated=e.signum) from None
        raise Interrupted(why + e.cli_message(), terminated=e.signum) from None
    except KeyboardInterrupt as e:  # outside an epoch (loading, between candidates, refit set-up, publishing):
        term = stop_signal(e)  # each of those leaves nothing half-written
        how = how_stopped(term)
        if published_since(cfg.run.dir, started):  # after the swap (pruning old generations): the run is done
            log.warning("%s after the run was published: %s holds the finished model (its metrics: embedrec "
                        "evaluate)", f"{signal_name(term)} came" if term else "interrupted", cfg.run.dir)
            return
        why = _killed_peer(term)
        if not has_checkpoint(cfg.run.dir, since):
            raise Interrupted(f"{why}training {how} before any epoch finished: nothing was saved; rerun the same "
                              "command to start again", terminated=term) from None
        raise Interrupted(f"{why}training {how} outside an epoch: nothing half-written was left behind; "
                          f"continue with {resume_command(run_dir)}", terminated=term) from None
    except Exception as e:  # under torchrun, a collective whose peer went away (its connection closed)
        if not peer_lost(e):
            raise
        from embedrec.errors import TrainingError

        lost = TrainingError(lost_peer_line(_after_a_killed_peer(cfg.run.dir, since, started, run_dir)))
        lost.from_peer = True  # (another rank's failure: not left in the store as this one's)
        raise lost from e
    if sig.came:
        with contextlib.suppress(OSError):  # (to a terminal that is gone: nothing to say it to)
            log.warning("%s came after the run was published: %s holds the finished model", sig.came, cfg.run.dir)


def _report(metrics: dict, cfg, fmt: str, seconds: float | None = None, resumed: bool = False) -> None:
    """The best-epoch line on stderr and the metrics table on stdout, with the notes on them; ``seconds``: this
    command's, ``resumed``: it continued an interrupted run."""
    from embedrec.figure_notes import epoch_notes, log_notes, split_notes

    sel = metrics["selection"]
    n = metrics["epochs_run"]
    # als replays the selection's path (its candidates' sweeps, training.refit.refit_path): its count is no
    # epoch count beside "best epoch 2 of 3" (a first-hour review read 4 epochs after 3 as a mistake)
    refit = "" if not metrics.get("refit") else \
        f"; refit on train+valid replaying the selection's path ({n} sweep{'' if n == 1 else 's'}), " \
        f"{metrics['train_seconds']:.1f}s" if metrics.get("loss") == "als" else \
        f"; refit on train+valid for {n} epoch{'' if n == 1 else 's'}, {metrics['train_seconds']:.1f}s"
    valid = sel["valid"]
    valid = f"valid {sel['metric']} {valid:.4f}" if isinstance(valid, (int, float)) and math.isfinite(valid) else \
        "no validation split to score it"
    trend = sel.get("als_trend")
    if isinstance(trend, (int, float)) and trend > 0 and valid.startswith("valid "):  # its score (a review: said
        valid += f" with popularity weighing {trend:g}"                                # to be the re-solve's)
        if isinstance(sel.get("als_trend_activity"), (int, float)) and sel["als_trend_activity"] > 0:
            valid += f" (a user's weight by its ratings^-{sel['als_trend_activity']:g})"
    elif isinstance(sel.get("als_user_unobserved"), (int, float)) and sel["als_user_unobserved"] != 1 and \
            valid.startswith("valid "):  # the score of that epoch's movies with the users solved again (a review;
        # at 1 too since session 37, which is not said: it is every als fit's end)
        valid += f" with the users re-solved at als_user_unobserved {sel['als_user_unobserved']:g}"
    if sel.get("als_dims") and valid.startswith("valid "):  # which selection's fit (a review: read as the run's)
        valid += f" at model.dim {metrics.get('dim')}"
    # the command's own seconds too (a first-hour pass: selection and refit were half of a 22.6 s train; the
    # users' re-solves, the trend's choice, the evaluation and the index were in no figure)
    fit = "selection" if "als_reg" in sel else "fit"
    whole = [f"this command {seconds:.1f}s in all: loading, the fits, evaluation, the index"] \
        if seconds is not None else []
    if resumed:  # a fit's seconds go on from its checkpoint's (loop.LoopState.resume_from), this command's do not:
        # a review read 'selection 38.4s ... (this command 36.5s in all)' after a kill as a part above its whole
        whose = f"the {fit}'s and the refit's seconds include the time of their" if refit else \
            f"the {fit}'s seconds include the time of its"
        whole.insert(0, f"resumed: {whose} epochs checkpointed before this command")
    whole = f" ({'; '.join(whole)})" if whole else ""
    log.info("best epoch %s of %s (%s); %s %.1fs%s; run in %s%s", sel["best_epoch"], sel["epochs_run"], valid, fit,
             sel["seconds"], refit, cfg.run.dir, whole)
    # the library's notes on the figures (figure_notes.train_notes), the hints in commands to run: the best epoch at
    # the cap before the rows, then the warnings of a model behind its baseline (metrics_out), then the rest
    log_notes(epoch_notes(metrics, cfg.train.epochs, lambda n: command_line(
        "train", ["--set", f"train.epochs={n}", "--run", str(cfg.run.dir), "--resume"])))
    metrics_out(metrics, fmt)
    log_notes(split_notes(metrics, lambda: reingest_command(cfg.data.prepared, ["--set", "split.test=0"])))


def _killed_peer(signum: int) -> str:
    """Under torchrun, where SIGTERM came from the launcher as a rank was killed outright (kill -9, the OOM killer:
    distributed.lost_peers), what a stop's line says first ('rank 1 of this torchrun job stopped without a message
    (killed? ...), and torchrun stopped this rank: '); else ''."""
    import signal

    from embedrec.device import active

    if signum != signal.SIGTERM or not active():
        return ""
    from embedrec.distributed import lost_peers

    silent = lost_peers(settled=True)[1]  # (a SIGTERM to the whole job: each rank beats or leaves within a beat)
    return f"{stopped_without_a_message(silent)}, and torchrun stopped this rank: " if silent else ""


def _after_a_killed_peer(run: str, since: float, started: float, run_dir: str | None) -> str:
    """What to do after a rank of this torchrun train was killed outright: resume from the checkpoint, which it
    cannot have damaged (each is published whole once every rank has written its rows), or start again."""
    from embedrec.run_layout import has_checkpoint, published_since

    if published_since(run, started):  # killed in the publish's last barrier: the model is there
        return f"the model was published before it stopped: {run} holds it (its metrics: embedrec evaluate)"
    if has_checkpoint(run, since):
        return f"the last checkpoint is intact: continue with {resume_command(run_dir)}"
    return "nothing was saved yet: run the same torchrun command again to start over"


def resume_command(run_dir: str | None) -> str:
    """The train command as given (-c, --set, --run) plus --resume, quoted for a POSIX shell; under torchrun, the
    same torchrun command first (a review: a Ctrl-C of a 2-rank train offered the one-process command alone)."""
    from embedrec.device import active
    from embedrec.errors import EmbedrecError

    one = command_line("train", (["--run", str(run_dir)] if run_dir else []) + ["--resume"])
    try:
        ranks = active()
    except EmbedrecError:  # rank variables that do not parse: this is an error path already
        ranks = False
    return f"the same torchrun command plus --resume (or in one process: {one})" if ranks else one
