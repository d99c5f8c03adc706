"""`make projector-check`: open an exported run in the real TensorBoard projector, in headless Chromium.

Exports a trained run with ``embedrec export --to projector``, starts ``tensorboard --logdir`` on localhost,
checks through TensorBoard's HTTP API that the projector plugin lists the run, its tensors (with the exported
shape) and their metadata, then takes a screenshot of ``/#projector`` with headless Chromium (WebGL through
SwiftShader) and checks that the projector drew the points: pixels of the projector's point colour inside the
3-D view, not a blank page or an error dialog.

    python benchmarks/projector_check.py                   # trains ML-100K with the defaults under out/ first
    python benchmarks/projector_check.py --run runs/ml-100k --out out/projector-check

Exit status 0 when every check passed, 1 when one failed, 2 when Chromium or TensorBoard is missing. The
screenshot is left at OUT/projector.png (``out/`` is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDREC = str(Path(sys.executable).with_name("embedrec"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The projector draws points in this colour when "Color by" is "No color map" (its default).
POINT_RGB = (117, 117, 217)


class Missing(Exception):
    """A tool the check needs is not installed (exit 2: skipped, not failed)."""


class CheckFailed(Exception):
    pass


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def train_ml100k(out: Path) -> Path:
    """A run of ML-100K with the default config under ``out`` (ingest and train as a user would)."""
    data, run = out / "data", out / "run"
    if not (run / "current").exists():
        subprocess.run([EMBEDREC, "ingest", "ml-100k", "-o", str(data), "--overwrite", "-q"], check=True)
        subprocess.run([EMBEDREC, "train", "--run", str(run), "--set", f"data.prepared={data}", "-q"], check=True,
                       stdout=subprocess.DEVNULL)
    return run


def export(run: Path, logdir: Path, name: str, users: int) -> Path:
    folder = logdir / name
    subprocess.run([EMBEDREC, "export", "--run", str(run), "--to", "projector", "-o", str(folder), "--overwrite",
                    "-q", "--sample-users", str(users)], check=True, stdout=subprocess.DEVNULL)
    return folder


class TensorBoard:
    """``tensorboard --logdir LOGDIR`` on 127.0.0.1 for the length of a ``with`` block."""

    def __init__(self, logdir: Path, port: int | None = None, log_path: Path | None = None):
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise Missing("tensorboard is not installed (pip install -e '.[test]')") from None
        self.logdir, self.port = logdir, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or logdir.parent / "tensorboard.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> TensorBoard:
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(self.logdir),
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"tensorboard exited with {self.proc.returncode}; see {self.log_path}")
            try:
                get(self.url + "/data/plugins_listing", timeout=2)
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise CheckFailed(f"tensorboard did not answer on {self.url} within 90 s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def projector(self, path: str, **params) -> bytes:
        return get(f"{self.url}/data/plugin/projector/{path}?{urllib.parse.urlencode(params)}")


def check_api(tb: TensorBoard, run: str, folder: Path) -> dict:
    """The projector plugin lists ``run`` and each exported tensor, and serves it with the exported shape."""
    deadline, runs = time.monotonic() + 60, []
    while time.monotonic() < deadline:  # the plugin finds runs on its first scan of the logdir
        runs = json.loads(tb.projector("runs"))
        if run in runs:
            break
        time.sleep(1)
    if run not in runs:
        raise CheckFailed(f"the projector plugin lists runs {runs}, not '{run}'")
    info = json.loads(tb.projector("info", run=run))
    names = [e["tensorName"] for e in info.get("embeddings", [])]
    exported = {"movies": ("tensors.tsv", "metadata.tsv"), "users": ("users_tensors.tsv", "users_metadata.tsv")}
    want = [n for n, (t, _) in exported.items() if (folder / t).exists()]
    if sorted(names) != sorted(want):
        raise CheckFailed(f"the projector plugin lists tensors {names} for '{run}', the export wrote {want}")
    shapes = {}
    for name in want:
        tensor_file, meta_file = exported[name]
        lines = (folder / tensor_file).read_text().splitlines()
        rows, dim = len(lines), len(lines[0].split("\t"))
        body = tb.projector("tensor", run=run, name=name, num_rows=rows)
        if len(body) != rows * dim * 4:  # float32, row-major
            raise CheckFailed(f"tensor '{name}': {len(body):,} bytes served, {rows} x {dim} float32 exported")
        meta = tb.projector("metadata", run=run, name=name, num_rows=rows).decode("utf-8").splitlines()
        header = 1 if "\t" in meta[0] else 0  # several columns come with a header line, a single one without
        if len(meta) != rows + header:
            raise CheckFailed(f"metadata of '{name}': {len(meta)} lines served for {rows} points")
        shapes[name] = {"points": rows, "dim": dim, "metadata": meta[0].split("\t") if header else ["(one column)"]}
    return {"runs": runs, "tensors": shapes}


def screenshot(browser: str, url: str, png: Path, size: tuple[int, int] = (1400, 900),
               budget_ms: int = 20000) -> None:
    """A headless Chromium screenshot of ``url`` after ``budget_ms`` of virtual time (pages' timers run fast)."""
    png.unlink(missing_ok=True)
    for attempt in range(2):  # headless chromium now and then hangs at start (a CI run: 240 s, then killed)
        args = [browser, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-first-run", "--mute-audio",
                f"--user-data-dir={png.parent / f'chromium-profile-{attempt}'}", f"--window-size={size[0]},{size[1]}",
                f"--virtual-time-budget={budget_ms}", f"--screenshot={png}", url]
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            if attempt:
                raise CheckFailed("chromium hung twice (120 s each) without writing a screenshot") from None
            continue
        if png.exists():
            return
    raise CheckFailed(f"chromium wrote no screenshot (exit {p.returncode}): {p.stderr.strip()[-500:]}")


def analyse(png: Path) -> dict:
    """What the screenshot holds: the share of non-white pixels, and the pixels of the projector's point colour
    inside its 3-D view (between the left data panel and the right inspector panel, below the toolbar)."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(png))
    rgb = (np.asarray(img)[..., :3] * (255 if img.dtype.kind == "f" else 1)).round().astype(np.int32)
    h, w = rgb.shape[:2]
    view = rgb[int(0.14 * h):, int(0.23 * w):int(0.77 * w)]
    r, g, b = view[..., 0], view[..., 1], view[..., 2]
    # the point colour itself (not the anti-aliased edges, which a blue link's text shares)
    points = (np.abs(r - POINT_RGB[0]) <= 12) & (np.abs(g - POINT_RGB[1]) <= 12) & (np.abs(b - POINT_RGB[2]) <= 12)
    non_white = np.any(rgb < 245, axis=-1)
    # the toolbar: TensorBoard's orange header band across the top
    top = rgb[: int(0.06 * h)]
    orange = (top[..., 0] > 200) & (top[..., 1] > 90) & (top[..., 1] < 170) & (top[..., 2] < 60)
    return {"size": [w, h], "non_white_share": round(float(non_white.mean()), 4),
            "point_pixels": int(points.sum()), "view_share_points": round(float(points.mean()), 4),
            "header_orange_share": round(float(orange.mean()), 4)}


def check(run: Path, out: Path, users: int = 200, min_point_pixels: int = 2000, name: str = "embedrec") -> dict:
    """Export ``run``, serve it with TensorBoard and look at it in headless Chromium; raise CheckFailed or
    Missing, else return what was seen."""
    browser = find_browser()
    if browser is None:
        raise Missing("no Chromium found (" + ", ".join(BROWSERS) + "); on Debian: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    logdir = out / "logdir"
    folder = export(run, logdir, name, users)
    png = out / "projector.png"
    with TensorBoard(logdir, log_path=out / "tensorboard.log") as tb:
        api = check_api(tb, name, folder)
        screenshot(browser, f"{tb.url}/#projector", png)
    seen = analyse(png)
    report = {"run": str(run), "tensorboard_api": api, "screenshot": str(png), "seen": seen}
    if seen["header_orange_share"] < 0.5:
        raise CheckFailed(f"the screenshot does not show TensorBoard's header: {json.dumps(report)}")
    if seen["point_pixels"] < min_point_pixels:
        raise CheckFailed(f"the projector drew no points ({seen['point_pixels']} point-coloured pixels in the 3-D "
                          f"view, want >= {min_point_pixels}); see {png}: {json.dumps(report)}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="A trained run (default: train ML-100K with the defaults in --out).")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "projector-check",
                    help="Folder for the export, the logs and projector.png (default: out/projector-check).")
    ap.add_argument("--users", type=int, default=200, help="Users exported beside the movies (default: 200).")
    args = ap.parse_args(argv)
    try:
        run = args.run or train_ml100k(args.out)
        report = check(run, args.out, args.users)
    except Missing as e:
        print(f"projector-check skipped: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"projector-check FAILED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    print(f"projector-check passed: screenshot at {report['screenshot']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
