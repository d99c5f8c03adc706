"""FAISS indexes over the movie embeddings.

- ``movies_ip.faiss``: user -> movie search by the model's exact score. Movie vectors are augmented with their
  bias, ``[q_m, b_m]``, and user queries with a 1, ``[p_u, 1]``, so the inner product is ``<p_u, q_m> + b_m``:
  the model's score up to the user's own terms, which do not change a user's ranking.
- ``movies_cos.faiss``: movie -> movie cosine similarity on L2-normalised embeddings (zero vectors stay zero).

Approximate indexes (HNSW, IVF-Flat, IVF-SQ8 = FAISS's "IVF{nlist},SQ8") search inner products through the standard reduction to L2 search (Bachrach
et al. 2014): each movie vector gets one more coordinate, sqrt(M^2 - |x|^2) with M the largest norm, and a query
a 0 there, so the nearest vector in L2 is the one with the largest inner product (on isotropic random
64-d vectors at 500K movies, HNSW's own inner-product mode reached only 0.56 recall@10 at efSearch 128). Scores are converted back, so
callers always get the model's inner product. At build time efSearch (HNSW) or nprobe (IVF) is raised until
recall@10 against exact search reaches ``index.target_recall`` on a sample of users.

``index.kind: auto`` is exact (IndexFlatIP) up to ``index.exact_max`` movies and HNSW above: exact search over
50K movies answers about 6,700 queries/s here, and at 500K only about 730/s, while HNSW keeps recall@10 near 0.99.
"""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING


def _import_faiss():
    """faiss, without its loader's INFO lines (eight of them, 'Could not load library with AVX512 support' among
    them) on a notebook's ``logging.basicConfig(level=INFO)``: that logger is quietened for the import only, and
    only where nobody has set its level (a first-hour pass)."""
    import sys

    if "faiss" in sys.modules:
        return sys.modules["faiss"]
    loader = logging.getLogger("faiss.loader")
    quiet = loader.level == logging.NOTSET
    if quiet:
        loader.setLevel(logging.WARNING)
    try:
        import faiss
    finally:
        if quiet:
            loader.setLevel(logging.NOTSET)
    return faiss


faiss = _import_faiss()

import numpy as np  # noqa: E402

from embedrec.errors import ArtifactError, ConfigError, first_line  # noqa: E402
from embedrec.fsutil.files import io_error, missing_error  # noqa: E402
from embedrec.run_layout import COS_FILE, IP_FILE  # noqa: E402 (the run's names for the files written here)
from embedrec.sparse import unique  # noqa: E402

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import IndexConfig

log = logging.getLogger("embedrec")



def augment_movies(movie_factors: np.ndarray, movie_bias: np.ndarray | None) -> np.ndarray:
    b = movie_bias if movie_bias is not None else np.zeros(movie_factors.shape[0], dtype=np.float32)
    return np.ascontiguousarray(np.hstack([movie_factors, b[:, None]]).astype(np.float32))


def augment_users(user_factors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.hstack([user_factors, np.ones((user_factors.shape[0], 1), np.float32)]),
                                dtype=np.float32)


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def resolve_kind(cfg: IndexConfig, n: int) -> str:
    if cfg.kind != "auto":
        return cfg.kind
    return "flat" if n <= cfg.exact_max else "hnsw"


class VectorIndex:
    """A FAISS index plus the transform its vectors went through; ``search`` returns inner-product scores."""

    def __init__(self, index: faiss.Index, transform: str = "ip", max_norm: float = 0.0):
        self.index, self.transform, self.max_norm = index, transform, max_norm

    def __getstate__(self) -> dict:  # a FAISS index pickles as FAISS's own bytes (a Model's pickle carries it)
        inner = faiss.downcast_index(self.index)
        breadth = inner.hnsw.efSearch if isinstance(inner, faiss.IndexHNSW) else \
            inner.nprobe if isinstance(inner, faiss.IndexIVF) else None
        return {"index": faiss.serialize_index(self.index), "transform": self.transform,
                "max_norm": self.max_norm, "breadth": breadth}

    def __setstate__(self, state: dict) -> None:
        self.__init__(faiss.deserialize_index(state["index"]), state["transform"], state["max_norm"])
        if state.get("breadth"):
            self.set_breadth(int(state["breadth"]))

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        """The query dimension (before the transform's extra coordinate)."""
        return self.index.d - (1 if self.transform == "l2-mips" else 0)

    def flat_vectors(self) -> np.ndarray | None:
        inner = faiss.downcast_index(self.index)
        if not isinstance(inner, faiss.IndexFlat) or self.transform != "ip":
            return None
        return faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        """Top-k (scores, ids) by inner product; ``allowed`` restricts results to those rows."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.transform == "l2-mips":
            q = np.ascontiguousarray(np.hstack([q, np.zeros((q.shape[0], 1), np.float32)]))
        k = min(k, self.ntotal)
        inner = faiss.downcast_index(self.index)
        sel = faiss.IDSelectorBatch(allowed.astype(np.int64)) if allowed is not None else None
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(inner.hnsw.efSearch, k))
        elif isinstance(inner, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(sel=sel, nprobe=inner.nprobe)
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        D, I = self.index.search(q, k, params=params) if params is not None else self.index.search(q, k)
        if self.transform == "l2-mips":
            D = ((q * q).sum(1, keepdims=True) + self.max_norm ** 2 - D) / 2
        elif self.transform == "l2-unit":
            D = 1.0 - D / 2
        return D, I

    @property
    def is_hnsw(self) -> bool:
        return isinstance(faiss.downcast_index(self.index), faiss.IndexHNSW)

    def set_breadth(self, value: int) -> None:
        inner = faiss.downcast_index(self.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = value
        elif isinstance(inner, faiss.IndexIVF):
            inner.nprobe = min(value, inner.nlist)

    def breadth(self) -> int | None:
        inner = faiss.downcast_index(self.index)
        if isinstance(inner, faiss.IndexHNSW):
            return int(inner.hnsw.efSearch)
        if isinstance(inner, faiss.IndexIVF):
            return int(inner.nprobe)
        return None


MIN_PER_LIST = 39  # FAISS's ClusteringParameters.min_points_per_centroid: training points k-means wants per list


def _raw(kind: str, d: int, n: int, cfg: IndexConfig, metric, say: bool = True) -> faiss.Index:
    """The FAISS index of ``kind`` for ``n`` vectors of ``d`` dimensions; ``say``: warn about settings that make a
    poor index (the top-K index of a pair says it; the similar-movie index, of the same movies, does not again)."""
    if kind == "flat":
        return faiss.IndexFlatIP(d) if metric == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(d)
    if kind == "hnsw":
        idx = faiss.IndexHNSWFlat(d, cfg.hnsw_m, metric)
        idx.hnsw.efConstruction = cfg.ef_construction
        idx.hnsw.efSearch = cfg.ef_search
        return idx
    default = max(1, min(int(4 * np.sqrt(n)), n // MIN_PER_LIST or 1))
    nlist = cfg.nlist or default
    if nlist > n:  # FAISS's k-means needs at least one movie per list
        raise ConfigError(f"config key 'index.nlist': {nlist:,} lists for {n:,} movies; give at most {n:,}, or null "
                          f"for the default ({default:,} here)")
    if kind == "ivf_sq8":  # FAISS's own "IVF{nlist},SQ8": 8-bit scalar-quantised lists, a quarter of the memory
        idx = faiss.index_factory(d, f"IVF{nlist},SQ8", metric)
    else:
        quantizer = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
    ivf = faiss.extract_index_ivf(idx)
    ivf.nprobe = min(cfg.nprobe, nlist)
    if n < MIN_PER_LIST * nlist:  # FAISS's k-means then writes a WARNING to stderr itself, past -q (a red team):
        ivf.cp.min_points_per_centroid = max(1, n // nlist)  # said here as a log line, once for both indexes
        if say:
            log.warning("index.nlist %s: %s lists for %s movies, fewer than the %d movies a list that FAISS's k-means "
                        "wants; the lists come out uneven (a search may find fewer of the true top K); the "
                        "default here is %s", f"{nlist:,}", f"{nlist:,}", f"{n:,}", MIN_PER_LIST, f"{default:,}")
    return idx


def _build(vectors: np.ndarray, kind: str, cfg: IndexConfig, unit: bool = False, bar: str | None = None,
           far: np.ndarray | None = None) -> VectorIndex:
    """Exact: inner product as is. Approximate: L2 on the MIPS-augmented (or, for unit vectors, plain) vectors.
    ``bar``: a bar of that name over the movies added (:func:`_add`), an IVF index's k-means said first in a line.
    ``far``: rows no list serves (movies without training ratings, their bias model.factors.UNTRAINED_BIAS): left
    out of the norm the MIPS transform scales by and placed far from every query (a review: their -1000 bias set
    that norm to 1000 where the others' were 1.7, and float32 rounding cut HNSW's and IVF's recall@10 to 0.84)."""
    if kind == "flat":
        idx, out = faiss.IndexFlatIP(vectors.shape[1]), VectorIndex(None, "ip")
    elif unit:
        idx, out = _raw(kind, vectors.shape[1], vectors.shape[0], cfg, faiss.METRIC_L2, say=False), \
            VectorIndex(None, "l2-unit")
    else:
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        near = norms if far is None else norms[~far]
        m = float(near.max()) if near.size else 0.0
        idx, out = _raw(kind, vectors.shape[1] + 1, vectors.shape[0], cfg, faiss.METRIC_L2), \
            VectorIndex(None, "l2-mips", m)
    x = _placed(vectors, out.transform, out.max_norm, far)
    if not idx.is_trained:
        if bar is not None:  # what it does, said before it starts, then its iterations counted
            log.info("%s: k-means of its %s lists over %s movies", bar,
                     f"{faiss.extract_index_ivf(idx).nlist:,}", f"{x.shape[0]:,}")
            _train_counted(idx, x, bar)
        else:
            idx.train(x)
    from embedrec.bars import step

    with step(bar, x.shape[0], "movie") as tick:
        _add(idx, x, tick)
    out.index = idx
    return out


def _placed(vectors: np.ndarray, transform: str, m: float = 0.0, far: np.ndarray | None = None) -> np.ndarray:
    """The rows an index of ``transform`` stores for ``vectors`` (:func:`_build`'s, and what :func:`check_stored`
    expects of a saved one): "ip" as they are; "l2-unit" with each zero or ``far`` row put 9 or more from every unit
    query (a zero vector, a movie without training ratings, at distance 1 read as cosine 0.5: a review, similar
    recall@10 0.88 on ML-100K); "l2-mips" with the coordinate sqrt(m^2 - |x|^2) added, ``m`` the largest norm of
    the rows lists serve, and ``far`` rows at (0, ..., 0, 10 m + 1), farther from any query than every served row."""
    if transform == "ip":
        return vectors
    if transform == "l2-unit":
        empty = ~np.any(vectors, axis=1)
        if far is not None:
            empty |= far
        if not empty.any():
            return vectors
        x = np.array(vectors, dtype=np.float32, copy=True)
        x[empty] = 0.0
        x[empty, 0] = 10.0
        return x
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    extra = np.sqrt(np.maximum(m * m - norms * norms, 0.0)).astype(np.float32)[:, None]
    x = np.ascontiguousarray(np.hstack([vectors, extra]), dtype=np.float32)
    if far is not None and far.any():
        x[far] = 0.0
        x[far, -1] = 10.0 * m + 1.0
    return x


def stored_rows(index: VectorIndex, rows: np.ndarray) -> np.ndarray:
    """The vectors ``index`` holds at ``rows``, as FAISS gives them back (an IVF index's direct map made first;
    an SQ8 index's rows decoded, so near, not equal, to what was added)."""
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF) and inner.direct_map.type == faiss.DirectMap.NoMap:
        inner.make_direct_map()
    rows = np.asarray(rows, np.int64)
    if len(rows) > 1 and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):  # a block: one call
        return index.index.reconstruct_n(int(rows[0]), len(rows))
    return np.stack([index.index.reconstruct(int(r)) for r in rows]) if len(rows) else \
        np.zeros((0, index.index.d), np.float32)


# the rows check_stored compares, as an index is opened (a sample) and verified (None: every row, a red team: a
# re-sealed HNSW index with one row edited, outside the 256 sampled, passed verify and dropped a movie from lists)
SAMPLE_ROWS = {"open": 16, "verify": None}
VERIFY_BLOCK = 65_536  # rows compared at once as verify checks every row (memory: a block's vectors, twice)


def check_stored(index: VectorIndex, expected, n: int, path: Path, fix: str, sample: int | None) -> None:
    """An index holds the run's vectors (a red team: another model's index, its checksums and the manifest's seal
    made again by hand, was served and passed verify): ``sample`` rows spread over its ``n`` compared with what
    :func:`build_indexes` stores for them, ``expected(rows)`` giving (their vectors as built: augment_movies rows
    for the top-K index, normalised similar-movie rows for the other; which of them no list serves, or None). Near
    is enough for an SQ8 index (its 8-bit codes: a row within 10% of its size, or of the rows' median size for a
    short one); the others hold the rows exactly (to 1e-3). ``sample`` None: every row, a block at a time."""
    if n == 0:
        return
    if sample is None:
        for lo in range(0, n, VERIFY_BLOCK):
            _check_rows(index, expected, np.arange(lo, min(n, lo + VERIFY_BLOCK)), path, fix)
        return
    _check_rows(index, expected, unique(np.linspace(0, n - 1, min(sample, n)).round().astype(np.int64)), path, fix)


def _check_rows(index: VectorIndex, expected, rows: np.ndarray, path: Path, fix: str) -> None:
    """:func:`check_stored` of the index's ``rows``."""
    vectors, far = expected(rows)
    vectors = np.asarray(vectors, dtype=np.float32)
    want = _placed(vectors, index.transform, index.max_norm, far)
    got = stored_rows(index, rows)
    # the rows no list serves (far, or a zero vector: movies without training ratings) are left out: an earlier
    # embedrec placed them otherwise (zeros; the plain MIPS transform), and its runs are this run's format (a diff
    # review: a run verified and served before was refused as another model's)
    unserved = ~np.any(vectors, axis=1) if far is None else (~np.any(vectors, axis=1) | np.asarray(far, bool))
    rows, want, got = rows[~unserved], want[~unserved], got[~unserved]
    if rows.size == 0:
        return
    if got.shape != want.shape:
        raise ArtifactError(f"index '{path}' holds vectors of {got.shape[1]} dimensions where the run's need "
                            f"{want.shape[1]}: it is not this run's; {fix}")
    sizes = np.linalg.norm(want.astype(np.float64), axis=1)
    off = np.linalg.norm(got.astype(np.float64) - want, axis=1) / np.maximum(sizes, max(np.median(sizes), 1e-12))
    sq8 = isinstance(faiss.downcast_index(index.index), faiss.IndexIVFScalarQuantizer)
    bad = np.flatnonzero(~(off <= (0.1 if sq8 else 1e-3)))
    if bad.size:
        raise ArtifactError(f"index '{path}' does not hold the run's embeddings: movie row {rows[bad[0]]:,} is "
                            f"{off[bad[0]]:.3g} of its size away from what the run's tables give ({bad.size} of "
                            f"{rows.size} rows checked differ; another model's index, or edited); {fix}")


KMEANS_BAR_DELAY_S = 2.0  # seconds before an IVF index's k-means bar is drawn: a short k-means draws none


def _train_counted(idx: faiss.Index, x: np.ndarray, bar: str) -> None:
    """``idx.train(x)`` of an IVF index with its k-means iterations counted on a bar (FAISS's k-means reports
    nothing while it runs but through its verbose printf, on stdout, which carries data): FAISS's own clustering of
    the index's parameters (``cp``: its iterations, seed and sample), one iteration a call, each from the centroids
    the one before left, so the centroids are those of one call (FAISS re-seeds its split of an empty cluster every
    iteration; measured bitwise equal at 20K and 200K x 64, IVF-Flat and IVF-SQ8), then ``idx.train``, which finds
    its quantizer trained and trains the rest (SQ8's ranges over the residuals)."""
    from embedrec.bars import step

    ivf = faiss.extract_index_ivf(idx)
    clus = faiss.Clustering(ivf.d, ivf.nlist, ivf.cp)
    with step(f"{bar}: k-means", ivf.cp.niter, "iteration", delay=KMEANS_BAR_DELAY_S) as tick:
        for _ in range(ivf.cp.niter):
            clus.niter = 1
            clus.train(x, ivf.quantizer)
            tick(1)
    ivf.quantizer.is_trained = True
    idx.train(x)


ADD_BLOCK = 1 << 16  # vectors per add call with a bar (IVF, flat): FAISS's own IVF block, so the same index
POLL_S = 0.5  # seconds between two counts of the vectors an HNSW graph has linked while FAISS builds it


def _add(idx: faiss.Index, x: np.ndarray, tick) -> None:
    """``idx.add(x)``; with ``tick`` (a bar's update) the vectors added are counted as they go, the index the same
    as without: IVF and flat ones in blocks of :data:`ADD_BLOCK` (IndexIVF adds in such blocks itself), an HNSW
    graph in one call, counted by :func:`_add_counted` (an HNSW graph added in blocks is another graph: measured at
    30K movies, its recall@10 at efSearch 128 0.75 or 0.83 against one call's 0.82)."""
    if tick is None:
        idx.add(x)
        return
    if isinstance(faiss.downcast_index(idx), faiss.IndexHNSW):
        _add_counted(idx, x, tick)
        return
    for s0 in range(0, x.shape[0], ADD_BLOCK):
        idx.add(x[s0:s0 + ADD_BLOCK])
        tick(min(ADD_BLOCK, x.shape[0] - s0))


def _add_counted(idx: faiss.Index, x: np.ndarray, tick) -> None:
    """An HNSW index's ``idx.add(x)`` in one call on the calling thread, while a poller thread counts every
    :data:`POLL_S` the new vectors it has linked into the graph so far (:func:`_linked`) and ticks the bar by those;
    the rest once it is done. The add stays on the caller's thread (a code review: added on a thread of its own, a
    Ctrl-C left FAISS adding while Python shut down, and 4 of 17 interrupted builds aborted, 'terminate called';
    FAISS's own interrupt check and the caller's thread limit hold on the calling thread only)."""
    import threading

    hnsw, n0, n = faiss.downcast_index(idx).hnsw, idx.ntotal, x.shape[0]
    done = threading.Event()
    shown = [0]

    def poll() -> None:
        while not done.wait(POLL_S):
            got = _linked(hnsw, n0, n)
            if got > shown[0]:
                tick(got - shown[0])
                shown[0] = got

    poller = threading.Thread(target=poll, name="embedrec-hnsw-count", daemon=True)
    poller.start()
    try:
        idx.add(x)
    finally:
        done.set()
        poller.join()
    if n > shown[0]:
        tick(n - shown[0])


def _linked(hnsw, n0: int, n: int) -> int:
    """How many of the ``n`` vectors an HNSW add appends after ``n0`` it has linked into the graph: those whose
    first level-0 neighbour is set (a vector is linked at every level it has as it is inserted, and its lists never
    empty again). Read without copying, and only once FAISS has laid the new vectors' lists out (its offsets and
    neighbours at their final sizes: they are not reallocated during the add after that); 0 before, or where this
    FAISS keeps them otherwise."""
    try:
        offsets, neighbors = hnsw.offsets, hnsw.neighbors
        if offsets.size() != n0 + n + 1:
            return 0
        end = int(offsets.at(n0 + n))
        if neighbors.size() != end or not end:
            return 0
        starts = faiss.rev_swig_ptr(offsets.data(), n0 + n + 1)[n0:n0 + n].astype(np.int64)
        return int(np.count_nonzero(faiss.rev_swig_ptr(neighbors.data(), end)[starts] >= 0))
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return 0


def _exact_ids(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, flat.ntotal))[1]


def recall_at_k(index: VectorIndex, truth: np.ndarray, queries: np.ndarray, k: int = 10,
                vectors: np.ndarray | None = None) -> float:
    """recall@k of ``index`` against exact search (``truth``: its ids per query). With ``vectors`` (what exact
    search scored), a returned movie that scores as high as the k-th exact answer counts as a hit: movies tied
    at the cut are interchangeable (a review: an exhaustive IVF search reported 0.976 over ties of equal score)."""
    _, got = index.search(queries, min(k, index.ntotal))
    if vectors is None:
        hits = sum(np.intersect1d(t[t >= 0], g[g >= 0]).size for t, g in zip(truth, got))
        return float(hits / max(1, (truth >= 0).sum()))
    hits = 0
    for q, t, g in zip(np.asarray(queries, np.float32), truth, got):
        t, g = t[t >= 0], g[g >= 0]
        if not t.size:
            continue
        cut = float((vectors[t] @ q).min())
        tol = 1e-5 * max(1.0, abs(cut))
        hits += min(t.size, int(np.count_nonzero(vectors[g] @ q >= cut - tol)))
    return float(hits / max(1, (truth >= 0).sum()))


def _asked_bucket(per_row: np.ndarray, k: int, limit: int) -> np.ndarray:
    """log2 of the candidates each query's first search asks for: k plus its excluded movies (at most ``limit``),
    rounded up to a power of 2 (queries of one bucket are searched together)."""
    return np.ceil(np.log2(np.maximum(np.minimum(k + per_row, limit), 1))).astype(np.int64)


def search_excluding(index, queries: np.ndarray, excl: tuple[np.ndarray, np.ndarray], k: int, allowed,
                  n: int) -> tuple[list, list, np.ndarray]:
    """Top-k per query through an approximate index, asking for more candidates until k survive ``excl``; with
    the rows (an array) whose answer stays short of k although that many movies are left to them: an IVF index
    probes only some of its lists, and HNSW's graph walk under a narrow filter reaches only some of its movies."""
    limit = n if allowed is None else allowed.size
    if excl[0].size > 1 and np.any(np.diff(excl[0]) < 0):  # each query's exclusions are sliced by their counts
        raise ValueError("search_excluding: the exclusions must be grouped by query, in query order")
    per_row = np.bincount(excl[0], minlength=queries.shape[0])
    bounds = np.concatenate([[0], np.cumsum(per_row)])
    out_i: list = [None] * queries.shape[0]
    out_d: list = [None] * queries.shape[0]
    # rows that need about as many candidates are searched together: a heavy user does not make the
    # whole batch ask for thousands of candidates
    bucket = _asked_bucket(per_row, k, limit)
    pending = [(np.flatnonzero(bucket == b), int(min(2 ** b, limit))) for b in unique(bucket)]
    unreached: list = []
    while pending:
        rows, kk = pending.pop()
        D, I = index.search(queries[rows], max(kk, 1), allowed)
        short = []
        for j, r in enumerate(rows):
            ids, sc = I[j], D[j]
            ok = ids >= 0
            if per_row[r]:
                ok &= ~np.isin(ids, excl[1][bounds[r]:bounds[r + 1]])
            ids, sc = ids[ok][:k], sc[ok][:k]
            if ids.size < k and kk < limit and not (I[j] < 0).any():  # -1s: the index ran out of movies here
                short.append(r)
            elif ids.size < k and ids.size < left(excl[1][bounds[r]:bounds[r + 1]], n, allowed):
                unreached.append(r)
            out_i[r], out_d[r] = ids, sc
        if short:
            pending.append((np.array(short), min(kk * 2, limit)))
    return out_i, out_d, np.array(sorted(unreached), np.int64)


def left(excluded: np.ndarray, n: int, allowed) -> int:
    """How many movies a query may still get: ``allowed`` (or all ``n``) minus its exclusions."""
    if allowed is None:
        return n - unique(excluded).size
    return int(allowed.size - np.isin(allowed, excluded).sum())


MIN_GAIN = 0.005  # recall@10 a doubling of the search breadth must add to be kept


def _tune_breadth(index: VectorIndex, measure, target: float, limit: int = 1024, k: int = 10,
                  free: int | None = None) -> float:
    """Raise efSearch / nprobe (doubling) until ``measure(index)``, the recall@10 of the answers, reaches target;
    returns the recall reached.

    A doubling that adds less than :data:`MIN_GAIN` recall is undone and the search stops there: the graph (or
    the lists) cannot give more at any breadth worth paying for, and each doubling costs about twice the query
    time (at 100M, efSearch 1024 took 8x the time of 128 for 0.009 more recall). HNSW searches with at least k
    candidates whatever its efSearch, so doublings up to k cost nothing and are not judged by their gain (a
    review: efSearch 1 stopped at once, its doubling to 2 gaining nothing); up to ``free`` where the searches
    ask for more than k (served lists: k plus the user's rated movies; a review: efSearch 20 -> 40 changed
    nothing for users asking for 128, so the search stopped at recall 0.762 where 640 reached 0.962)."""
    free = k if free is None else max(k, free)
    r = measure(index)
    b = start = index.breadth()
    hnsw = index.is_hnsw
    # served recall need not rise at every doubling of nprobe (a narrow IVF search leaves more users short of k,
    # whose lists are then scored exactly): there one flat doubling is passed over, and the best breadth kept
    tolerate = 0 if hnsw else 1
    tried, prev, flat = b, r, 0  # the widest breadth measured, its recall; doublings in a row without MIN_GAIN
    while b is not None and r < target and tried < limit:
        index.set_breadth(tried * 2)
        wider = index.breadth()
        if wider == tried:  # IVF: nprobe is capped by nlist and already there
            break
        tried, r2 = wider, measure(index)
        gain, prev = r2 - prev, r2
        if r2 - r >= MIN_GAIN or (hnsw and wider <= free):
            b, r = wider, r2
        flat = 0 if gain >= MIN_GAIN or (hnsw and wider <= free) else flat + 1
        if flat > tolerate:
            log.info("approximate index: search breadth %s gained %.4f recall@10 over %s; kept %s", wider, gain,
                     wider // 2, b)
            break
    if b is not None:
        index.set_breadth(b)
    if b is not None and b != start:  # a value the config gave, changed: said (index.target_recall=0 keeps it)
        log.info("approximate index: search breadth (efSearch/nprobe) raised from %d to %d for recall@10 %.3f "
                 "against exact search (index.target_recall %.2f; recall measured at 10 only)", start, b, r, target)
    if r < target:
        log.warning("approximate index: recall@10 %.3f stays below index.target_recall %.2f at search breadth %s; "
                    "%s (or use index.kind=flat)", r, target, index.breadth(),
                    "raise index.hnsw_m / index.ef_construction" if hnsw else "give fewer index.nlist lists")
    return r


def exact_truth(movies: np.ndarray, queries: np.ndarray, excl, k: int = 10) -> list:
    from embedrec.model.factors import exact_topk

    return exact_topk(queries, movies, excl, k)[0]


def served_recall(index: VectorIndex, movies: np.ndarray, queries: np.ndarray, excl, k: int = 10,
                  truth: list | None = None):
    """recall@k of the lists ``recommend`` serves from ``index`` (each user's rated movies left out, the index
    asked for more until k survive, a query it leaves short scored exactly) against exact search with the same
    exclusions (a review: the index's raw top-10 with rated movies in it was reported at 0.977 where the served
    lists matched exact search at 0.946)."""
    if truth is None:  # exact search with the same exclusions (computed once per build: see build_indexes)
        truth = exact_truth(movies, queries, excl, k)
    got, _, short = search_excluding(index, queries, excl, k, None, movies.shape[0])
    exact = set(short.tolist())
    hits = sum(np.intersect1d(t, t if j in exact else g).size for j, (t, g) in enumerate(zip(truth, got)))
    return float(hits / max(1, sum(len(t) for t in truth)))


def build_indexes(out: Path, f: dict, cfg: IndexConfig, embeddings_sha256: str, seed: int = 0,
                  seen: tuple[np.ndarray, np.ndarray] | None = None, progress: bool = False) -> dict:
    """Build and save both indexes in ``out``; return their metadata (kind, params, recall, timings). ``seen``:
    the run's (seen_indptr, seen_indices), so the top-K recall is that of the lists served (rated movies left
    out); without it, of the index's raw top 10. ``progress``: an approximate index's build shows a bar over the
    movies each index adds and one over its recall check's searches, its k-means a line as it starts (a scale
    review: a train's publish of a 30K-movie HNSW index was 43 s without a word)."""
    from embedrec.model.factors import UNTRAINED_BIAS

    t0 = time.perf_counter()
    movies = augment_movies(f["movie_factors"], f["movie_bias"])
    n = movies.shape[0]
    kind = resolve_kind(cfg, n)
    shown = progress and kind != "flat"  # (a flat index is a copy of the vectors: nothing to wait for)
    bias = f.get("movie_bias")  # the rows no list serves: placed far (_build)
    far = None if bias is None else np.asarray(bias) <= UNTRAINED_BIAS
    ip = _build(movies, kind, cfg, bar=f"{kind} index, top-K" if shown else None, far=far)
    d = (f.get("lowpass") or {}).get("d")  # the als columns alone where the model adds the low-pass block
    cos_vecs = normalise(f["movie_factors"] if d is None else np.asarray(f["movie_factors"])[:, :int(d)])
    cos = _build(cos_vecs, kind, cfg, unit=True, bar=f"{kind} index, similar movies" if shown else None, far=far)
    build_seconds = time.perf_counter() - t0
    meta = {"kind": kind, "n": n, "dim": int(movies.shape[1]), "embeddings_sha256": embeddings_sha256,
            "ip_transform": ip.transform, "ip_max_norm": ip.max_norm, "cos_transform": cos.transform,
            "build_seconds": round(build_seconds, 3)}
    if kind != "flat":
        from embedrec.bars import step

        with step(f"{kind} index, recall@10 check" if shown else None, None, "searches") as tick:
            _recall_check(meta, f, cfg, movies, cos_vecs, ip, cos, seed, seen, tick)
    else:
        meta["recall@10"] = meta["similar_recall@10"] = 1.0
    meta["params"] = _params(kind, ip, cos, cfg)
    meta["seconds_with_recall_check"] = round(time.perf_counter() - t0, 3)
    for index, name in ((ip.index, IP_FILE), (cos.index, COS_FILE)):
        write_index(index, out / name)
    return meta


def _recall_check(meta: dict, f: dict, cfg: IndexConfig, movies: np.ndarray, cos_vecs: np.ndarray, ip: VectorIndex,
                  cos: VectorIndex, seed: int, seen, tick) -> None:
    """:func:`build_indexes`' recall check of an approximate index: the served lists' recall@10 on sampled users
    and the similar movies' on sampled movies, each search breadth raised until it reaches index.target_recall
    (:func:`_tune_breadth`), into ``meta``; ``tick`` (a bar's update, or None) ticked after each search of a
    sample (its exact one, then one per breadth measured)."""
    from embedrec.bars import counting

    def ticked(measure):
        return counting(measure, tick)

    n = movies.shape[0]
    rng = np.random.default_rng(seed)
    users = f["user_factors"]
    rows = rng.choice(users.shape[0], size=min(cfg.recall_sample, users.shape[0]), replace=False)
    q = augment_users(users[rows])
    if seen is not None:
        from embedrec.sparse import gather_csr

        r, c, _ = gather_csr(seen[0], seen[1], rows)
        excl = (np.asarray(r, np.int64), np.asarray(c, np.int64))
        truth = exact_truth(movies, q, excl)
        if tick is not None:
            tick(1)
        # what most searches ask for (search_excluding's first request)
        asked = 2 ** _asked_bucket(np.bincount(excl[0], minlength=len(rows)), 10, movies.shape[0])
        meta["recall@10"] = _tune_breadth(ip, ticked(lambda ix: served_recall(ix, movies, q, excl, truth=truth)),
                                          cfg.target_recall, free=int(np.median(asked)))
    else:
        truth = _exact_ids(movies, q, 10)
        if tick is not None:
            tick(1)
        meta["recall@10"] = _tune_breadth(ip, ticked(lambda ix: recall_at_k(ix, truth, q)), cfg.target_recall)
    mrows = rng.choice(n, size=min(cfg.recall_sample, n), replace=False)
    cos_truth = _exact_ids(cos_vecs, cos_vecs[mrows], 10)
    if tick is not None:
        tick(1)
    meta["similar_recall@10"] = _tune_breadth(cos, ticked(lambda ix: recall_at_k(ix, cos_truth, cos_vecs[mrows],
                                                                                 vectors=cos_vecs)),
                                              cfg.target_recall)


def _c_path(path) -> bool:
    """Whether FAISS can open ``path`` itself: it takes UTF-8 text (a red team: a folder whose name is not UTF-8
    was an internal error)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_index(index, path: Path) -> None:
    """faiss.write_index, a full disk said naming the file (a red team: FAISS's RuntimeError carries no errno
    or path, and the command said 'cannot write the output')."""
    try:
        if _c_path(path):
            faiss.write_index(index, str(path))
        else:  # FAISS takes a path only as UTF-8 text: the bytes, written by Python
            with open(path, "wb") as fh:
                fh.write(faiss.serialize_index(index).tobytes())
    except RuntimeError as e:  # FAISS's text carries strerror's words: the errno they stand for
        code = next((c for c, words in ((errno.EDQUOT, "Disk quota exceeded"), (errno.EROFS, "Read-only file system"),
                                        (errno.EACCES, "Permission denied"), (errno.EFBIG, "File too large"))
                     if words in str(e)), None)  # (EFBIG: ulimit -f, a red team's 'internal error')
        err = io_error(OSError(code, str(e)) if code else OSError(str(e)), path, "choose another run.dir")
        if err is None:
            raise
        raise err from None


def _params(kind: str, ip: VectorIndex, cos: VectorIndex, cfg: IndexConfig) -> dict:
    if kind == "hnsw":
        return {"M": cfg.hnsw_m, "efConstruction": cfg.ef_construction, "efSearch": ip.breadth(),
                "efSearch_similar": cos.breadth()}
    if kind in ("ivf", "ivf_sq8"):
        inner = faiss.extract_index_ivf(ip.index)
        return {"nlist": int(inner.nlist), "nprobe": ip.breadth(), "nprobe_similar": cos.breadth()}
    return {}


REBUILD = "rebuild it with «'embedrec index rebuild'|er.rebuild_index(run_dir)»"  # without the run (run_fixes.index_fix)


def load_index(path: Path, meta: dict, which: str, expect_n: int, expect_dim: int, fix: str = REBUILD,
               expected=None, sample: int = SAMPLE_ROWS["open"]) -> VectorIndex:
    """Load ``which`` ('ip' or 'cos') and check it holds expect_n vectors of the query dimension expect_dim, and
    (given ``expected``, :func:`check_stored`'s) ``sample`` of its rows the run's. ``fix``: how to make it again
    (the Recommender gives run_fixes.index_fix: the rebuild of that run, with its settings)."""
    if not path.exists():
        raise missing_error(path, "index", fix)
    verify_index_file(path, (meta.get("files") or {}).get(path.name), fix=fix)
    try:
        idx = faiss.read_index(str(path)) if _c_path(path) else \
            faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
    except RuntimeError as e:
        raise ArtifactError(f"index '{path}' cannot be read ({first_line(e, 120)}); {fix}") from None
    vi = VectorIndex(idx, meta.get(f"{which}_transform", "ip"), float(meta.get("ip_max_norm", 0.0)))
    if vi.ntotal != expect_n or vi.dim != expect_dim:
        raise ArtifactError(f"index '{path}' holds {vi.ntotal} x {vi.dim} vectors but the embeddings are "
                            f"{expect_n} x {expect_dim}: they do not belong together; {fix}")
    params = meta.get("params", {})
    breadth = params.get("efSearch" if which == "ip" else "efSearch_similar") or \
        params.get("nprobe" if which == "ip" else "nprobe_similar")
    if breadth:
        vi.set_breadth(int(breadth))
    if expected is not None:
        check_stored(vi, expected, expect_n, path, fix, sample)
    return vi


def expected_rows(factors, which: str):
    """:func:`check_stored`'s ``expected`` for a run's ``which`` index from its tables (a model.factors.Factors):
    the rows :func:`build_indexes` gave it."""
    from embedrec.model.factors import UNTRAINED_BIAS

    def rows_of(rows: np.ndarray):
        bias = factors.movie_bias
        far = None if bias is None else np.asarray(np.take(bias, rows)) <= UNTRAINED_BIAS
        if which == "ip":
            return factors.augmented_movies(rows), far
        return normalise(np.asarray(np.take(factors.cos_movie, rows, axis=0), dtype=np.float32)), far

    return rows_of


def verify_index_file(path: Path, entry: dict | None, max_bytes: int | None = None, fix: str = REBUILD) -> None:
    """Check an index file against the SHA-256 and size its run manifest records (a flipped bit in a FAISS file
    changes results silently); files above ``max_bytes`` (integrity.VERIFY_ON_OPEN_MAX) where they lie
    (``integrity.check_file``: streamed, unless untouched since they were hashed)."""
    if not entry:
        return
    from embedrec.fsutil import integrity as fsutil

    if max_bytes is None:
        max_bytes = fsutil.VERIFY_ON_OPEN_MAX
    fsutil.read_checked(path, entry, "index", fix, max_bytes)
