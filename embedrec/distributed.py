"""Beyond one process: the process group of the ranks that train and score with torch.distributed.

Launched by torchrun with the same command line and config as one process::

    torchrun --nproc-per-node 2 -m embedrec train -c CONFIG
    torchrun --nproc-per-node 2 -m embedrec export --topk-all out/top10.parquet

Each process finds its rank and the world size in the environment torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins one process group: gloo on the CPU, nccl when train.device
resolves to cuda (each rank then takes the GPU of its LOCAL_RANK).

Sharding (every table and every rating has exactly one owner): rank r owns the contiguous user rows
``shard_range(n_users, r, world)`` and movie rows ``shard_range(n_movies, r, world)``. It reads every world-th
row group of the prepared dataset's Parquet files (no rank reads a whole file), sends each rating to the owner of
its user, and from there once to the owner of its movie, so each rank holds the ratings of its users and of its
movies. Its
factor rows are the only copy of those rows (row-wise sharding); the ALS epoch fetches just the rows of the
other table its ratings touch (``RowFetch``, an all_to_all), and sums the d x d Gramian over ranks
(all_reduce). See ``embedrec.shard_als`` for the trainer and docs/scaling.md for the memory per rank.

Here: the group (``Group``, its start and its end), the run lock of a job of ranks, the shard boundaries, and the
row exchanges (``RowFetch``, ``send_to_owners``). Beside it: ``embedrec.device`` (rank and world from the
environment, train.device), ``embedrec.dist_data`` (each rank's share of a prepared dataset) and
``embedrec.dist_sync`` (the gradient sums and table merges of replicated models). Nothing here prints; errors are
``embedrec.errors`` types.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import sys
from dataclasses import dataclass

import numpy as np

from embedrec.device import active, env_rank_world, resolve_device
from embedrec.errors import ArtifactError, ConfigError, Interrupted, shorten, stop_signal

log = logging.getLogger("embedrec")
def env_number(name: str, default: float, unit: str) -> float:
    """A positive number from the environment variable ``name`` (``default`` where unset), or one line saying
    what it takes (a review: 'abc' was an internal error at import, in commands that never use torchrun)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise ConfigError(f"environment variable {name}={text!r}: a number of {unit} above 0 (default {default:g}); "
                          f"set it so, or unset it")
    return value


TIMEOUT_MIN = 30  # a collective waits this long for a peer, in minutes (EMBEDREC_DIST_TIMEOUT_MIN)


# ------------------------------------------------------------------------------------------------ the group
@dataclass
class Group:
    """This process's place among the ranks, and the collectives the trainers use (identities for one rank).

    Tensors passed to collectives live on ``device`` (the CPU for gloo, the rank's GPU for nccl)."""

    rank: int
    world: int
    device: object  # torch.device

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def sum_(self, t):
        """All-reduce ``t`` in place (sum) and return it."""
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def max_(self, t):
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t

    def total(self, value: float) -> float:
        """The sum over ranks of one number (float64)."""
        import torch

        return float(self.sum_(torch.tensor([float(value)], dtype=torch.float64, device=self.device)).item())

    def sizes(self, n: int) -> list[int]:
        """Each rank's ``n``, in rank order."""
        if self.world == 1:
            return [int(n)]
        import torch
        import torch.distributed as dist

        t = torch.zeros(self.world, dtype=torch.int64, device=self.device)
        t[self.rank] = int(n)
        dist.all_reduce(t)
        return [int(v) for v in t.tolist()]

    def alltoall(self, send, counts: list[int]):
        """Send ``send[rows]`` (dim 0 split by ``counts``, in rank order) to each rank; returns (received rows in
        rank order, how many came from each rank)."""
        if self.world == 1:
            return send, list(counts)
        import torch
        import torch.distributed as dist

        c_out = torch.tensor(counts, dtype=torch.int64, device=self.device)
        c_in = torch.empty_like(c_out)
        dist.all_to_all_single(c_in, c_out)
        recv_counts = [int(v) for v in c_in.tolist()]
        recv = torch.empty((sum(recv_counts), *send.shape[1:]), dtype=send.dtype, device=self.device)
        dist.all_to_all_single(recv, send.contiguous(), output_split_sizes=recv_counts, input_split_sizes=list(counts))
        return recv, recv_counts

    def allgather(self, t):
        """The rows of ``t`` from every rank, concatenated in rank order (ranks may hold different counts)."""
        if self.world == 1:
            return t
        import torch
        import torch.distributed as dist

        buf, sizes = self._padded(t)
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    def gather_all(self, t, sizes: list[int]) -> list:
        """Every rank's 1-D ``t`` (rank r's holds ``sizes[r]`` values, known to all), in rank order: one
        all_gather of the tensors padded to the largest."""
        import torch
        import torch.distributed as dist

        buf = torch.zeros(max(max(sizes), 1), dtype=t.dtype, device=self.device)
        buf[: t.numel()] = t
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf)
        return [p[:n] for p, n in zip(parts, sizes)]

    def _padded(self, t):
        """``t`` padded to the largest rank's row count (collectives move equal shapes), and every rank's count."""
        import torch

        sizes = self.sizes(t.shape[0])
        buf = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=self.device)
        buf[: t.shape[0]] = t
        return buf, sizes

    def gather0(self, t):
        """As allgather, but only rank 0 receives (others get None): what publishing a run needs."""
        if self.world == 1:
            return t
        import torch
        import torch.distributed as dist

        buf, sizes = self._padded(t)
        if self.leader:
            parts = [torch.empty_like(buf) for _ in range(self.world)]
            dist.gather(buf, parts, dst=0)
            return torch.cat([p[:n] for p, n in zip(parts, sizes)])
        dist.gather(buf, None, dst=0)
        return None

    def share(self, obj):
        """Rank 0's ``obj`` (picklable, small) on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.leader else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def same(self, values: dict, fix: str) -> None:
        """Refuse, on every rank, a run whose ranks were given different ``values`` (a flat {name: value} dict,
        e.g. the resolved config): a rank with another train.als_reg hung in a collective, another model.dim
        crashed gloo. The rank that differs names the first keys; the others point at its stderr."""
        theirs = self.share(values)
        diff = [k for k in sorted(set(values) | set(theirs)) if values.get(k) != theirs.get(k)]
        error = None
        if diff:
            # (by rank, not 'here': the line is relayed to every rank, rank 0's among them; a review)
            shown = ", ".join(f"{k} {values.get(k)!r} on rank {self.rank}, {theirs.get(k)!r} on rank 0"
                              for k in diff[:3])
            more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
            error = ConfigError(f"rank {self.rank} was given another config than rank 0: {shown}{more}; {fix}")
        self.agree(error)

    def agree(self, error: Exception | None) -> None:
        """Raise on every rank when any rank hit ``error`` (so no rank waits in a collective for a failed one): the
        failing rank its own error, the others the first failing rank's message ('rank 1 failed: ...', with its
        exit code; a review: they said only 'another rank failed', its cause in one node's log alone)."""
        import torch

        # one collective: the lowest failing rank, as -rank maximised (-world where none failed)
        flag = torch.tensor([-self.world if error is None else -self.rank], dtype=torch.int64, device=self.device)
        first = -int(self.max_(flag).item())
        if first == self.world:
            return
        said = [_relayed(error) if self.rank == first else None]
        if self.world > 1:
            import torch.distributed as dist

            dist.broadcast_object_list(said, src=first)
        if error is not None:
            raise all_ranks(error)
        text, code = said[0]
        relayed = ArtifactError(text if text.startswith(f"rank {first} ") else f"rank {first} failed: {text}")
        relayed.exit_code = code
        raise all_ranks(relayed)


def _relayed(error: Exception) -> tuple[str, int]:
    """``error``'s message and exit code, as :meth:`Group.agree` sends them to the other ranks: an embedrec error's
    raw message (each side words it in its own terms), another's 'TypeName: message' and where its traceback is, at
    most 1,000 characters. Never raises (a code review: a failure here left the other ranks in the broadcast until
    the group's timeout)."""
    try:
        raw = getattr(error, "raw", None)
        code = getattr(error, "exit_code", 1)
        if isinstance(raw, str):
            return shorten(raw, 1000), code if isinstance(code, int) and not isinstance(code, bool) else 1
        rank = os.environ.get("RANK", "?")
        return (shorten(f"{type(error).__name__}: {error}", 800) + f"; its traceback is on rank {rank}'s stderr "
                "(with --traceback): fix that and run the command again"), 1
    except Exception:  # noqa: BLE001 - the relay must reach the others whatever this error holds
        return type(error).__name__, 1


def all_ranks(error: BaseException) -> BaseException:
    """Mark ``error`` as raised on every rank together (by :meth:`Group.agree`, or from rank 0's answer shared), so
    that where a script leaves it uncaught each rank still meets the others at exit and leaves the group
    (:func:`_finish`). Not ``every_rank`` (``device.py``, the command line): an error each rank finds itself,
    said once a node."""
    error.all_ranks = True
    return error


def _raised_on_all_ranks(error: BaseException | None) -> bool:
    """Whether ``error``, or one it was raised from or while handling, is marked by :func:`all_ranks`."""
    seen = set()
    while error is not None and id(error) not in seen:
        if getattr(error, "all_ranks", False):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


_GROUP: Group | None = None


def group_for(cfg) -> Group:
    """This process's Group for ``cfg``, every rank checked to run the same config first."""
    from embedrec.config import flat_config

    g = group(cfg.train.device)
    g.same(flat_config(cfg), "give every rank the same -c and --set (and the same ./embedrec.yaml and "
                             "$EMBEDREC_CONFIG where each rank starts)")
    return g


def group(device: str = "auto") -> Group:
    """This process's Group, joining torchrun's process group on first use (gloo on the CPU, nccl on cuda)."""
    global _GROUP
    if _GROUP is not None:
        return _GROUP
    rank, world, local = env_rank_world()
    dev = resolve_device(device, local)
    if world > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            die_with_launcher()
            backend = "nccl" if dev.type == "cuda" else "gloo"
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            env_number("EMBEDREC_DIST_TIMEOUT_MIN", TIMEOUT_MIN, "minutes")  # said before any wait
            agent = wait_for_ranks(world)
            own = None if agent else _own_join(rank, world)  # ranks started without torchrun (by hand, srun)
            kw = {} if own is None else {"store": own, "rank": rank, "world_size": world}
            try:
                dist.init_process_group(backend, timeout=datetime.timedelta(
                    minutes=env_number("EMBEDREC_DIST_TIMEOUT_MIN", TIMEOUT_MIN, "minutes")), **kw)
            except (RuntimeError, ValueError) as e:
                raise ConfigError(f"cannot join the torch.distributed process group ({str(e).splitlines()[0]}); " + (
                    "a rank of this torchrun job did not join: its error, if any, is on its node's stderr"
                    if agent else "launch with torchrun --nproc-per-node N, which sets MASTER_ADDR/PORT")) from None
            atexit.unregister(_finish)  # once, however often a library user joins again after reset()
            atexit.register(_finish)  # the group embedrec joined, it also leaves
        if rank > 0:  # one voice: rank 0 logs progress, the others only warnings and errors
            log.setLevel(max(log.level, logging.WARNING))
    _GROUP = Group(rank, world, dev)
    if world > 1:
        _start_beating(rank)
    return _GROUP


JOIN_WAIT_S = None  # seconds every rank has to reach the join (EMBEDREC_DIST_JOIN_WAIT_S; default: the collectives' own
# timeout, EMBEDREC_DIST_TIMEOUT_MIN, as the group's join waited before: a rank busy with its own work before it,
# a script's data preparation, is not a failure; a rank that failed says so at once through the store)


def _agent_store(timeout_s: float):
    """A client of torchrun's own key-value store (its agent hosts it, TORCHELASTIC_USE_AGENT_STORE), or None
    outside torchrun or where rank 0 hosts it as it joins (nothing to reach before then)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or not os.environ.get("MASTER_ADDR"):
        return None
    import torch.distributed as dist

    return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                         timeout=datetime.timedelta(seconds=timeout_s))


def _store_key(name: str) -> str:
    return (f"embedrec/{name}/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/"
            f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")


def wait_for_ranks(world: int) -> bool:
    """Before joining the group under torchrun: count this rank in torchrun's store and wait until all ``world``
    have started, stopping at once, with its line, if one failed before it could join (:func:`post_failure`:
    a config that does not parse on one node). A review: such a node's ranks exited, and rank 0 on the other node
    waited in the group's join for its 30-minute timeout, in silence, deaf to SIGTERM, then said to launch with
    torchrun. Waits at most JOIN_WAIT_S (EMBEDREC_DIST_JOIN_WAIT_S), in Python (a signal stops it). Returns whether
    torchrun's store was there to wait on (False: the group's own join waits, as before)."""
    import time

    try:
        store = _agent_store(30)
    except (RuntimeError, ValueError, OSError):  # unreachable: the group's own join says so
        return False
    if store is None:
        return False
    wait = _join_wait()
    started, failed = _store_key("started"), _store_key("failed")
    arrived = store.add(started, 1)
    deadline = time.monotonic() + wait
    while True:
        if store.check([failed]):
            e = ConfigError("another rank of this torchrun job stopped before it joined the others: "
                            + store.get(failed).decode("utf-8", "replace"))
            e.from_peer = True  # not posted again (a review: on 3 nodes the line nested, naming a healthy rank)
            raise e
        if arrived >= world:
            return True
        if time.monotonic() > deadline:
            e = ConfigError(f"only {arrived} of the {world} ranks of this torchrun job reached the join within "
                            f"{wait:g} s: the others are still busy before it, or failed without a word (their "
                            "errors are on their nodes' stderr), or were never launched; fix that and run the "
                            "command again (EMBEDREC_DIST_JOIN_WAIT_S sets this wait)")
            e.from_peer = True
            raise e
        time.sleep(0.05)
        arrived = store.add(started, 0)


def _join_wait() -> float:
    """Seconds every rank has to reach the join: JOIN_WAIT_S, else EMBEDREC_DIST_JOIN_WAIT_S, else the collectives'
    timeout (EMBEDREC_DIST_TIMEOUT_MIN); torchrun's wait (:func:`wait_for_ranks`) and one's own (:func:`_own_join`)."""
    if JOIN_WAIT_S is not None:
        return JOIN_WAIT_S
    return env_number("EMBEDREC_DIST_JOIN_WAIT_S", 60 * env_number("EMBEDREC_DIST_TIMEOUT_MIN", TIMEOUT_MIN,
                                                                   "minutes"), "seconds")


_OWN_JOINS = 0  # the joins this process made through _own_join (a script's reset() and train again)


def _own_join(rank: int, world: int):
    """For ranks started without torchrun (RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set by hand or by a
    scheduler's launcher): the group's store made here (rank 0 hosts it), every rank counted in it and waited for
    in Python, at most EMBEDREC_DIST_JOIN_WAIT_S, so that a missing rank is said and a signal stops the wait (a
    review: such a rank waited in the group's C++ join, deaf to SIGTERM, for the 30-minute timeout). None under
    torchrun, or without MASTER_ADDR/PORT (the group's own join then says what is missing)."""
    import time

    import torch.distributed as dist

    if os.environ.get("TORCHELASTIC_RUN_ID") or not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
        return None
    addr = os.environ["MASTER_ADDR"]
    try:
        port = int(os.environ["MASTER_PORT"])
    except ValueError:
        return None  # (the group's join says so)
    wait = _join_wait()
    deadline = time.monotonic() + wait
    later = datetime.timedelta(minutes=env_number("EMBEDREC_DIST_TIMEOUT_MIN", TIMEOUT_MIN, "minutes"))
    if rank == 0:
        try:
            store = dist.TCPStore(addr, port, world, is_master=True, wait_for_workers=False, timeout=later)
        except (RuntimeError, OSError) as e:
            raise ConfigError(f"rank 0 cannot host the group's store at {addr}:{port} ({str(e).splitlines()[0]}); "
                              "choose a free MASTER_PORT") from None
    else:
        import socket

        while True:  # a plain connect first, in short tries (a signal is taken between them): TCPStore's own
            try:  # failed tries print C++ frames (a review: 80 lines where rank 1 came 8 s before rank 0)
                socket.create_connection((addr, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"rank 0 did not come up at {addr}:{port} within {wait:g} s (MASTER_ADDR, "
                                      "MASTER_PORT): start it, or check those addresses; EMBEDREC_DIST_JOIN_WAIT_S "
                                      "sets this wait") from None
                time.sleep(0.2)
        store = dist.TCPStore(addr, port, world, is_master=False, timeout=later)
    global _OWN_JOINS
    _OWN_JOINS += 1  # a join of its own each time (reset() then train again: a key of the last one's store counted
    key = f"embedrec/own-join/{_OWN_JOINS}/started"  # this rank in, a review), the same on every rank
    arrived = store.add(key, 1)
    while arrived < world:
        if time.monotonic() > deadline:
            raise ConfigError(f"only {arrived} of the {world} ranks (WORLD_SIZE) reached the join within {wait:g} s: "
                              "the others are still busy before it, failed (their errors are on their own stderr) "
                              "or were never started; start every rank, and run the command again "
                              "(EMBEDREC_DIST_JOIN_WAIT_S sets this wait)")
        time.sleep(0.05)
        arrived = store.add(key, 0)
    return store


def post_failure(line: str) -> None:
    """A rank under torchrun that fails leaves its one line in torchrun's store, once per job attempt (the first
    failure only: a later one is most likely its echo). Before the join, the ranks waiting for it
    (:func:`wait_for_ranks`) read it and stop too, saying why; after it, a rank that finds this one's connection
    closed adds it to its own line (:func:`lost_peers`; a review: on several nodes the cause, a dataset file
    damaged mid-job, sat only in the failing node's log). The command line leaves none of an error raised on every
    rank together (:func:`all_ranks`), each rank saying its own. Best effort: nothing where there is no such store or
    it cannot be reached within a few seconds, and a signal meanwhile only ends the wait."""
    if not os.environ.get("TORCHELASTIC_RUN_ID"):
        return
    try:
        store = _job_store(5 if _GROUP is None else POST_WAIT_S)
        if store is not None:
            store.compare_set(_store_key("failed"), "", f"rank {os.environ.get('RANK', '?')}: {line}")
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - this rank is failing already: its own line is said
        pass


POST_WAIT_S = 2  # seconds a rank failing after the join tries to reach the store, so a dead one never holds its exit
PEER_LINE_WAIT_S = 2  # seconds a rank that lost a peer's connection waits for that peer's line in the store


def _job_store(timeout_s: float):
    """A client of the job's key-value store: torchrun's own before the join (:func:`_agent_store`), and after it
    the group's at MASTER_ADDR:MASTER_PORT (torchrun's, or the one rank 0 hosts), as :func:`_finish` reaches it.
    After the join, a store that does not answer (its node gone) is an OSError from a plain connection first:
    torch's client retried for twice ``timeout_s`` and wrote some 30 lines of C++ frames to stderr before it gave
    up."""
    import socket

    if _GROUP is None or _GROUP.world == 1:
        return _agent_store(timeout_s)
    import torch.distributed as dist

    socket.create_connection((os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])), timeout_s).close()
    return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                         timeout=datetime.timedelta(seconds=timeout_s))


BEAT_S = 0.5  # seconds between a joined rank's beats in the job's store, by which the others tell one killed outright
BEAT_TIMEOUT_S = 2 * BEAT_S  # seconds a beat's client may take to connect, and each of its adds
# seconds a rank's beats must have stood still before lost_peers names it: longer than one beat can block (its
# client's reconnect, a plain connection then the client, each up to BEAT_TIMEOUT_S, and the wait between beats;
# a review: 2 s, under the 5 s a beat's connect could take, could name a live rank as killed)
SILENT_S = 2 * BEAT_TIMEOUT_S + 2 * BEAT_S
LEFT = 1 << 40  # added to a rank's beat count as it leaves with a word (its line said, or its work done)
_beating: tuple | None = None  # (the event that stops this rank's beats, its rank) while it beats


def _beat_key(rank: int) -> str:
    return _store_key(f"beat/{rank}")


def _start_beating(rank: int) -> None:
    """Once joined under torchrun, count this rank's beats in the job's store every BEAT_S seconds, on a thread of
    its own, until it leaves (:func:`leaving`). A rank that loses a peer tells by them whether that peer still runs
    (:func:`lost_peers`; a review: a rank killed with kill -9 left the others saying only that 'another rank'
    stopped). One client for all the beats (a review: a new one per beat averaged 167 ms, with stalls of seconds in
    its connect; an add on an open one, 0.1 ms), made again at the next beat after a failure: a store gone (the
    job ending) is then a plain OSError, retried quietly (the failure on the open client writes torch's C++
    frames to stderr, once)."""
    global _beating
    import threading

    if not os.environ.get("TORCHELASTIC_RUN_ID") or _beating is not None:
        return
    stop = threading.Event()
    _beating, key = (stop, rank), _beat_key(rank)

    def beat():
        store = None
        while not stop.is_set():
            try:
                if store is None:
                    store = _job_store(BEAT_TIMEOUT_S)
                store.add(key, 1)
            except Exception:  # noqa: BLE001 - a beat missed under load is made up by the next, on a new client; a
                store = None   # store gone says nothing (a rank that lost this one then names none)
            stop.wait(BEAT_S)

    threading.Thread(target=beat, name="embedrec-beats", daemon=True).start()


def leaving() -> None:
    """This rank leaves its torchrun job with a word (its line said, or its work done, :func:`_finish`): its beats
    stop and its count in the store says it left, so a rank that loses it does not take it for one killed
    outright. Best effort, within a second; nothing where it does not beat."""
    global _beating
    if _beating is None:
        return
    (stop, rank), _beating = _beating, None
    stop.set()
    try:
        _job_store(1).add(_beat_key(rank), LEFT)
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - on the way out: at worst it is named as killed
        pass


def lost_peers(wait_s: float | None = None, settled: bool = False) -> tuple[str | None, list[int]]:
    """What became of the ranks this one lost (a peer's connection closed, or torchrun's SIGTERM): the line the
    job's first rank to fail left (:func:`post_failure`: 'rank 1: ...'), else the ranks that stopped without one
    (killed outright: kill -9, the out-of-memory killer), whose beats stopped while they had not left
    (:func:`leaving`). Waits up to PEER_LINE_WAIT_S (``wait_s``), less where a line comes, or (``settled``) where
    every other rank beats again or has left: a rank killed outright holds it to its end, and to SILENT_S after
    the first count read where that is later (a live rank's beat can block that long). A SIGTERM meanwhile
    (torchrun stopping this rank for the one that died) does not cut the wait short; Ctrl-C does. (None, [])
    outside a joined torchrun group, where the store cannot be reached, and for a rank that never beat."""
    import signal
    import time

    if _GROUP is None or _GROUP.world == 1 or not os.environ.get("TORCHELASTIC_RUN_ID"):
        return None, []
    wait = PEER_LINE_WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + wait
    others = [r for r in range(_GROUP.world) if r != _GROUP.rank]
    keys, failed = [_beat_key(r) for r in others], _store_key("failed")
    store, first, silent = None, None, []
    while True:
        try:
            if store is None:
                # half the wait to reach the store (its plain connection, then the client, each up to that: a
                # review found the whole wait given to each could take twice it), the rest for the line
                store = _job_store(max(wait / 2, 0.05))
            if store.check([failed]):
                return store.get(failed).decode("utf-8", "replace") or None, []
            now = [int(v) for v in store.multi_get(keys)] if first is not None else [store.add(k, 0) for k in keys]
            if first is None:
                first, since = now, time.monotonic()
            # beat before this wait, neither since nor left: stopped without a word
            silent = [r for r, a, b in zip(others, first, now) if 0 < a == b < LEFT]
            end = max(deadline, since + SILENT_S) if silent else deadline
            if time.monotonic() >= end or settled and not silent and now is not first:
                return None, silent
            time.sleep(0.05)
        except KeyboardInterrupt as e:  # torchrun's SIGTERM for the rank that died: the short wait goes on
            if stop_signal(e) != signal.SIGTERM:
                return None, []
        except Exception:  # noqa: BLE001 - best effort: this rank's own line is said either way
            return None, []


def die_with_launcher() -> bool:
    """Under torchrun (TORCHELASTIC_RUN_ID set), ask Linux to send this rank SIGTERM when its launcher dies: a
    launcher killed with kill -9 left its ranks waiting in a collective for its timeout (a red team: orphans
    for 30 minutes). SIGTERM takes the interrupt path (the last checkpoint kept) where the caller handles it (the
    CLI's train and tune-dims do); without a handler it ends the process, which is the point. Returns whether it is
    set. A launcher already gone when asked (the rank adopted meanwhile) is ``Interrupted`` (terminated): this
    rank stops before it joins the group, as that SIGTERM would have it, without signalling itself."""
    if not sys.platform.startswith("linux") or not os.environ.get("TORCHELASTIC_RUN_ID"):
        return False
    import ctypes
    import signal

    parent = os.getppid()  # not "is it 1": torchrun may be pid 1 itself (a container's entrypoint, a review)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the launcher died before the request (the rank was adopted): leave now
        raise Interrupted("the torchrun launcher that started this rank is gone (killed?): the rank stops before it "
                          "joins the process group", terminated=True, saved=False)
    return True


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def reset() -> None:
    """Leave the process group (tests, and a library user running several jobs in one process)."""
    global _GROUP
    leaving()
    _GROUP = None
    _leave()


FINISH_WAIT_S = 30  # seconds a rank that is done waits at exit for the others before it leaves anyway


def _finish() -> None:
    """At the exit of a rank whose program ended normally: wait for every rank to get here, then leave the
    process group. A process that exits still in it tears gloo's threads down in no set order, and a rank whose
    work was done could abort ("terminate called without an active exception", SIGABRT; torch's advice is to
    call destroy_process_group at the end, pytorch/pytorch#190489). The ranks meet through a counter in
    torchrun's key-value store, not a collective: a collective would pair with whatever another rank is still
    doing, and a wait left pending in the group would hold up this process's teardown. A rank that left with
    ``sys.exit(1)`` also comes here; after FINISH_WAIT_S without the others it exits as before, still in the
    group (torchrun then stops the rest). After an uncaught exception (``sys.last_value``, its traceback said) the
    same is done where every rank raised it together (:func:`all_ranks`: a Python script's ``train_run`` refused on
    every rank), else nothing (torchrun stops the others, and waiting would only delay that): a script's ranks,
    each refused, left still in the group, and one aborted in teardown (SIGABRT) or was stopped by torchrun with
    SIGTERM before it said its error (14 of 25 two-rank runs, with no other load). Once the ranks have met,
    SIGTERM is ignored for the rest of the teardown."""
    import time

    leaving()  # with a word: its line said, or its work done
    last = getattr(sys, "last_value", None)
    if last is not None and not _raised_on_all_ranks(last):
        return
    try:
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                              timeout=datetime.timedelta(seconds=FINISH_WAIT_S))
        key = f"embedrec/finished/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/" \
              f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        arrived, world = store.add(key, 1), dist.get_world_size()
        deadline = time.monotonic() + FINISH_WAIT_S
        while arrived < world and time.monotonic() < deadline:
            time.sleep(0.02)
            arrived = store.add(key, 0)
        if arrived >= world:
            import signal

            # every rank is at its exit: torchrun, which stops the others with SIGTERM as soon as one exits non-zero,
            # would only turn this rank's exit status into -15 in the teardown left (the command line too ignores
            # it once done)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            # rank 0 may host the store (ranks started without torchrun): it leaves once every rank has seen the
            # count, so none asks a store gone (a review: a C++ 'recvValue failed' and its frames on rank 1)
            seen = store.add(key + "/seen", 1)
            while dist.get_rank() == 0 and seen < world and time.monotonic() < deadline:
                time.sleep(0.02)
                seen = store.add(key + "/seen", 0)
            dist.destroy_process_group()
    except KeyboardInterrupt:  # Ctrl-C while waiting: the work is saved, but the exit code must say so
        global _interrupted_at_exit
        _interrupted_at_exit = True
        log.warning("interrupted while this rank waited for the others to finish; its work is saved")
    except Exception:  # noqa: BLE001 - leaving at exit is best effort: the work is done and saved
        pass


_interrupted_at_exit = False  # set by _finish when Ctrl-C cut its wait short


def interrupted_at_exit() -> bool:
    """Whether Ctrl-C cut short this rank's wait for the others at exit (:func:`_finish`, an atexit handler, so
    it returns nothing to its caller): the work is saved, but the command line's exit (``cli._leave``, after the
    atexit handlers ran) then exits 130, not 0 (an interrupt inside an atexit handler is otherwise "Exception
    ignored in atexit callback" and exit 0)."""
    return _interrupted_at_exit


def _leave() -> None:
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    except ImportError:
        pass


def lock_run(run_dir, command: str = "embedrec train", device: str = "auto"):
    """The run directory's writer lock; for a job of several ranks (joining their group on ``device``, i.e.
    train.device) rank 0 holds it and every rank fails alike when it is taken."""
    import contextlib

    from embedrec.run_publish import run_lock

    if not active():
        return run_lock(run_dir, command)

    @contextlib.contextmanager
    def held():
        g = group(device)
        err, stack = None, contextlib.ExitStack()
        if g.leader:
            try:
                stack.enter_context(run_lock(run_dir, command))
            except Exception as e:  # noqa: BLE001 (re-raised on this rank by agree)
                err = e
        g.agree(err)
        with stack:
            yield

    return held()


# ------------------------------------------------------------------------------------------------ sharding
def bounds(n: int, world: int, align: int = 1) -> np.ndarray:
    """world + 1 row boundaries splitting ``n`` rows into contiguous shards of whole ``align``-row blocks."""
    blocks = -(-n // max(align, 1))  # the first ranks take the spare blocks (rank 0 the first)
    cut = np.array([-(-blocks * r // world) for r in range(world + 1)], dtype=np.int64) * max(align, 1)
    return np.minimum(cut, n)


def shard_range(n: int, rank: int, world: int, align: int = 1) -> tuple[int, int]:
    b = bounds(n, world, align)
    return int(b[rank]), int(b[rank + 1])


def owners(ids: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The rank owning each row id under boundaries ``cuts``."""
    return np.searchsorted(cuts, ids, side="right") - 1


# ------------------------------------------------------------------------------------------------ row exchange
class RowFetch:
    """Fetches the rows ``need`` (sorted global ids) of a row-sharded table from their owners, every epoch.

    Built once (the ids each rank needs never change during training): each rank tells each owner which of its
    rows it needs; ``fetch(local_rows)`` then sends every requested row once per requester (one all_to_all) and
    returns them in the order of ``need``."""

    def __init__(self, g: Group, need: np.ndarray, cuts: np.ndarray):
        import torch

        self.g, self.lo = g, int(cuts[g.rank])
        counts = np.bincount(owners(need, cuts), minlength=g.world).tolist() if need.size else [0] * g.world
        req, got = g.alltoall(torch.from_numpy(need.astype(np.int64)).to(g.device), counts)
        self.serve = (req.cpu().numpy() - self.lo).astype(np.int64)
        self.serve_t = torch.from_numpy(self.serve).to(g.device)
        self.serve_counts, self.need_counts = got, counts
        self.n = int(need.size)

    def fetch(self, local):
        rows, got = self.g.alltoall(local.index_select(0, self.serve_t), self.serve_counts)
        assert rows.shape[0] == self.n  # noqa: S101 (an invariant of the exchange, not input validation)
        return rows.contiguous()


def send_to_owners(g: Group, cols: list[np.ndarray], dest: np.ndarray) -> list[np.ndarray]:
    """Send the rows of parallel columns ``cols`` to rank ``dest`` of each row; returns the received columns,
    ordered by source rank and, within one source, in the order sent (used once, to route ratings to the
    owners of their movies)."""
    import torch

    order = np.argsort(dest, kind="stable")
    counts = np.bincount(dest, minlength=g.world).tolist()
    out = []
    for c in cols:
        t = torch.from_numpy(np.ascontiguousarray(c[order])).to(g.device)
        recv, _ = g.alltoall(t, counts)
        out.append(recv.cpu().numpy())
    return out
