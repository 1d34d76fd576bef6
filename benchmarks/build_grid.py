"""Time and peak memory of building the full dSprites grid file.

Target on the 2-core development machine: <= 60 s and <= 1.5 GB peak memory
for all 737,280 images (``cvaeq data build``).

    python benchmarks/build_grid.py              # full grid into a temp dir, then deleted
    python benchmarks/build_grid.py --out g.npz  # keep the file
    python benchmarks/build_grid.py --n 100000   # a prefix of the grid, for a quick look

Peak memory is the resident-set high-water mark (``ru_maxrss``), interpreter
and imports included, of this process plus that of the largest rendering
worker times the number of workers (an upper bound on what they held at
once); the page cache of the written file is not memory a process holds.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_gb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the grid here (default: temp file, deleted)")
    parser.add_argument("--n", type=int, default=None, help="build only the first N images")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: as cvaeq data build)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    from cvaeq.worlds.dsprites.factors import N_IMAGES
    from cvaeq.data.files import load_grid
    from cvaeq.data.grid import build_grid, default_workers

    n = args.n or N_IMAGES
    before = _peak_gb()
    with tempfile.TemporaryDirectory(dir=args.out.parent if args.out else None) as tmp:
        out = args.out or Path(tmp) / "grid.npz"
        start = time.perf_counter()
        workers = args.workers or default_workers()
        build_grid(out, n=n, workers=workers, progress=not args.no_progress)
        seconds = time.perf_counter() - start
        main_peak, worker_peak = _peak_gb(), _peak_gb(resource.RUSAGE_CHILDREN)
        peak = main_peak + (workers * worker_peak if workers > 1 else 0.0)
        size = out.stat().st_size / 1024**3
        start = time.perf_counter()
        grid = load_grid(out)
        load_seconds = time.perf_counter() - start
        assert len(grid) == n
    print(
        f"built {n:,} images in {seconds:.1f} s ({n / seconds:,.0f} images/s); "
        f"with {workers} worker(s); peak memory {peak:.2f} GB "
        f"(main {main_peak:.2f} GB, after imports {before:.2f} GB; largest worker {worker_peak:.2f} GB); "
        f"file {size:.2f} GB; load_grid {load_seconds:.2f} s"
    )
    if n == N_IMAGES:
        ok = seconds <= 60 and peak <= 1.5
        print(f"target (<= 60 s, <= 1.5 GB): {'met' if ok else 'NOT met'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
