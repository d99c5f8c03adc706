"""``embedrec export --plot``: a 2-D map of the movie embeddings (PCA, t-SNE or UMAP) coloured by genre."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedrec.errors import OutputExists, OutputRefused, UsageError
from embedrec.export_tables import opened_run
from embedrec.fsutil.outputs import atomic_file, check_file_replaceable, output_parent, refuse_inside_store
from embedrec.serve.recommender import Recommender


def _place_labels(fig, ax, xy: np.ndarray, titles: list[str], order, max_chars: int = 40) -> int:
    """Label the points in ``order`` (most important first) where the label overlaps no earlier one: each
    label tries four positions around its point and is left out when all four collide. Returns how many."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = ((4, 4, "left", "bottom"), (-4, 4, "right", "bottom"), (4, -4, "left", "top"), (-4, -4, "right", "top"))
    for i in order:
        t = titles[i]
        t = t if len(t) <= max_chars else t[:max_chars - 1] + "\u2026"
        for dx, dy, ha, va in offsets:
            a = ax.annotate(t, xy[i], fontsize=7, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            arrowprops=None)
            box = a.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            a.remove()
    return len(placed)


CREATOR = "embedrec export --plot"  # in the image's metadata, where its format has any: what --overwrite replaces
_META_KEY = {"png": "Software", "pdf": "Creator", "svg": "Creator", "eps": "Creator", "ps": "Creator"}
# the formats whose metadata matplotlib does not write: a file of that image format is taken as a map to replace
_MAGIC = {"jpg": (b"\xff\xd8\xff",), "jpeg": (b"\xff\xd8\xff",), "tif": (b"II*\x00", b"MM\x00*"),
          "tiff": (b"II*\x00", b"MM\x00*"), "webp": (b"RIFF",), "svgz": (b"\x1f\x8b",), "gif": (b"GIF8",)}


def is_plot_file(path: Path, fmt: str) -> bool:
    """Whether ``--overwrite`` may replace ``path``: a map this command wrote (its metadata names it: png, pdf,
    svg, eps, ps; or matplotlib's own mark, which every map embedrec wrote before it named itself carries: a
    review found a scheduled re-export refused after the upgrade); for a format without such metadata (jpg, tif,
    webp, gif, svgz, avif), an image of that format. Never a file of another kind (a red team: `--plot art.svg
    --overwrite` replaced the user's drawing; a CSV named .jpg is refused)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
            fh.seek(max(0, path.stat().st_size - 65536))
            tail = fh.read()
    except OSError:
        return False
    if fmt in _META_KEY:
        marks = (CREATOR.encode(), CREATOR.encode("utf-16-be"), b"Matplotlib v", b"Matplotlib version")
        return any(m in head or m in tail for m in marks)
    if fmt == "avif":
        return head[4:12] == b"ftypavif"
    return any(head.startswith(m) for m in _MAGIC.get(fmt, ()))


def plot_target(path: str | Path, overwrite: bool = False) -> tuple[Path, str]:
    """The map's file and its image format, which its extension picks (png, svg, pdf, jpg, ...: matplotlib's
    formats but pgf, which needs LaTeX, and the headerless raw/rgba), checked before any work: a folder, an
    existing file without ``overwrite``, another extension or none, a place no file can be written in raise."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    if path.is_dir():
        raise OutputRefused(f"'{path}' is a folder, not an image file; choose another file")
    formats = ["png", *sorted(set(FigureCanvasBase.get_supported_filetypes()) - {"png", "pgf", "raw", "rgba"})]
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in formats:
        raise UsageError(f"«--plot|path» {path}: use a file name ending in .{', .'.join(formats)} (the extension "
                         "picks the image format)")
    if not path.is_symlink():  # refused before any work (a link: atomic_file's rule), after what atomic_file
        refuse_inside_store(path)  # says first: a path inside a run or a dataset
        check_file_replaceable(path, overwrite, lambda p: is_plot_file(p, fmt), "choose another file")
    elif path.exists() and not overwrite:
        raise OutputExists(f"'{path}' already exists; pass «--overwrite|overwrite=True» to replace it")
    output_parent(path, "choose another file")  # before the map's seconds of work (a review: '/proc/m.png')
    return path, fmt


def plot_map(rec: Recommender, path: str | Path, method: str = "pca", labels: int = 25, seed: int = 0,
             overwrite: bool = False) -> dict:
    """A 2-D map of the movie embeddings coloured by each movie's most specific genre (its rarest), labelled with
    the most-rated titles; written in the format the file name's extension picks (:func:`plot_target`). Where no
    movie has a genre, one colour, said so in the title, and no legend."""
    rec = opened_run(rec, "plot_map")
    if rec.factors.cos_movie.shape[1] < 2:  # a red team: an IndexError (pca) or ValueError (tsne), as internal
        # errors; the als columns the map shows (a review: model.dim 1 beside a low-pass block passed, then failed)
        raise UsageError(f"a map needs movie embeddings of 2 or more dimensions; this model has "
                         f"{rec.factors.cos_movie.shape[1]} (model.dim): export the vectors instead "
                         "(«--to npy|export('npy', ...)»)")
    path, fmt = plot_target(path, overwrite)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Q = np.asarray(rec.factors.cos_movie, dtype=np.float64)  # the als columns alone where there is a low-pass block
    pop = rec.popularity  # checked as the popular fallback reads it (verify.check_popularity)
    if method != "pca" and len(Q) < 4:  # a red team: t-SNE's perplexity and UMAP's neighbours need more points
        raise UsageError(f"«--plot-method {method}|method={method!r}» needs at least 4 movies; this run has "
                         f"{len(Q)}: use «--plot-method pca|method='pca'»")
    if method == "pca":
        X = Q - Q.mean(axis=0)
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        xy = X @ vt[:2].T
        if xy.shape[1] < 2:  # one movie, or one dimension: a second axis of zeros (a red team: an IndexError)
            xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    elif method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise UsageError("«--plot-method tsne|method='tsne'» needs scikit-learn (pip install scikit-learn); "
                             "or use «--plot-method pca|method='pca'»") from None
        # perplexity below the number of movies (sklearn's 30 refused 30 movies or fewer: a red team)
        xy = TSNE(n_components=2, random_state=seed, init="pca",
                  perplexity=min(30.0, (len(Q) - 1) / 3)).fit_transform(Q)
    else:
        try:
            import umap
        except ImportError:
            raise UsageError("«--plot-method umap|method='umap'» needs umap-learn (pip install umap-learn); "
                             "or use «--plot-method pca|method='pca'»") from None
        xy = umap.UMAP(random_state=seed, n_neighbors=min(15, len(Q) - 1)).fit_transform(Q)
    # colour: each movie's most specific genre (its rarest one), the 9 commonest of those, the rest grey;
    # "first genre" would be the alphabetically first flag (Star Wars: Action)
    counts: dict[str, int] = {}
    for gs in rec.catalogue.genres:
        for g in gs or []:
            counts[g] = counts.get(g, 0) + 1
    main = [min(gs, key=lambda g: (counts[g], g)) if gs else "(none)" for gs in rec.catalogue.genres]
    ranked = sorted(set(main), key=lambda g: -main.count(g))
    shown = [g for g in ranked if g != "(none)"][:9]
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(11, 8), dpi=110)
    size = 4 + 40 * np.sqrt(pop / max(pop.max(), 1))
    other = np.array([g not in shown for g in main])
    if other.any():  # grey beside the genres' colours; the first colour where there are none
        ax.scatter(xy[other, 0], xy[other, 1], s=size[other], color="0.75" if shown else cmap(0),
                   alpha=0.5 if shown else 0.7, label="other", linewidths=0)
    for i, g in enumerate(shown):
        sel = np.array([f == g for f in main])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=size[sel], color=cmap((0, 1, 2, 3, 4, 5, 6, 8, 9)[i]), alpha=0.7,
                   label=g, linewidths=0)  # tab10 without its grey, which marks "other"
    from embedrec.output import _TABLE_BREAKS

    cat = rec.catalogue
    # a title's tab or escape sequence as a space, as a table writes it (a review: matplotlib warned of a missing
    # glyph, with its source path, under -q)
    _place_labels(fig, ax, xy, [(cat.titles[i] or str(cat.movie_ids[i])).translate(_TABLE_BREAKS)
                                for i in range(len(cat.titles))],
                  np.argsort(-pop)[:labels])
    # a dataset without genres (no movies file, or one without them): one colour, said in the title, and no legend
    # of 'other' alone (a first-hour review)
    colour = "coloured by most specific genre" if shown else "no genres to colour by"
    ax.set_title(f"Movie embeddings ({method.upper()}, {Q.shape[1]} dims -> 2), {colour}; point size = ratings",
                 fontsize=10)
    if shown:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2, frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    try:  # one writer at a time (the lock beside the file), through a temporary file of its own
        with atomic_file(path, overwrite, "embedrec export", "choose another file", suffix=f".{fmt}",
                         ours=lambda p: is_plot_file(p, fmt)) as tmp:
            fig.savefig(tmp, format=fmt, **({"metadata": {_META_KEY[fmt]: CREATOR}} if fmt in _META_KEY else {}))
    finally:
        plt.close(fig)
    return {"plot": str(path), "method": method}
