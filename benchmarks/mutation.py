"""Mutation testing of the code that decides answers: which small bugs would the tests catch?

A list of small plausible bugs (a ``<`` for a ``<=``, a dropped weight, a
constant changed, a sign flipped, an off-by-one) is planted one at a time in a
*copy* of the tree (this working tree, or a commit's with ``--rev``, via
``git archive``): the tree you work in is never touched. For each mutant a
targeted subset of the test suite runs against the copy (``pytest -x``, with
``PYTHONPATH`` pointing at the copy, no bytecode written, so no stale ``.pyc``
can hide a mutation); a mutant is *killed* when some test fails, *survived*
when all pass. Before the mutants, each test subset runs once on the unmutated
copy: a subset that fails there would "kill" everything, so its mutants are
reported as ``baseline-fails`` and left out of the rate.

Every mutant is a ``(file, exact old text, new text)`` triple. The old text
must occur exactly once in the file: when the code has moved on and it no
longer does, the mutant is reported as ``pattern-not-found`` (or
``ambiguous``), never silently skipped, and left out of the rate.

    python benchmarks/mutation.py                       # this working tree
    python benchmarks/mutation.py --rev e513295         # the code and tests of a commit
    python benchmarks/mutation.py --only limits_ge dom_ --list

A benchmark, not a CI test: the full list takes ~10-20 minutes on a busy
2-core machine. It prints one line per mutant and, at the end, the kill rate
over the mutants that ran, the survivors (with the reason a survivor is judged
equivalent, where the list says so) and the 1-minute load average.

Measured 2026-12-07 on the shared 2-core machine (issue 26), the same 38 mutants:

* ``--rev e513295`` (the tests before issue 26): 13 of 38 killed (34%), 35 min at load 6-11;
* this branch's tests: 33 of 38 killed (87%), 11 min at load 3-6; the five
  survivors are all judged equivalent (``dom_world_lt``, ``gumbel_top_without_lse``,
  ``systematic_right_false``, ``resample_le``, ``fallback_sum_not_mean``; the
  reasons are in the list below), so 33 of the 33 that can change an answer;
* main after the merges of that day: 32 of 38 (6 min, load 0.8-1.0): the merged
  ``read_limited`` reads the file's size, so ``limits_read_ge`` survived;
  ``test_a_file_that_grows_to_exactly_the_bound_while_read_is_said_to_have_grown``
  kills it again (``--only limits_read_ge``): 33 of 38.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PLUGINS = ("plugins/cvaeq-ordinal", "plugins/cvaeq-pong", "plugins/cvaeq-seedmlp")


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once) by ``new`` in ``path``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    #: why the mutant cannot change any answer a user sees, when it is judged equivalent.
    equivalent: str = ""


IMAGE = "cvaeq/mechanisms/image.py"
T_IMAGE = ("tests/mechanisms/test_image.py",)
T_LIMITS = ("tests/test_limits.py",)
T_DOMAIN = ("tests/query/test_resolve.py", "tests/test_domain.py")
T_WORLD = ("tests/data/test_dsprites.py", "tests/test_domain.py")
T_ANSWER = ("tests/query/test_answer.py",)
T_WORLDS = ("tests/query/test_worlds.py", "tests/engine/test_scenarios.py")
T_ENGINE = ("tests/engine/test_engine.py", "tests/engine/test_batched.py")
T_EVAL = ("tests/evaluation/test_run.py", "tests/evaluation/test_metrics.py")
T_STORY = ("tests/data/test_story.py", "tests/data/test_resample.py")

MUTANTS: list[Mutant] = [
    # --- the five bugs of issue 26, section 1 ---------------------------------------------------
    Mutant("image_assign_le", IMAGE, "return (noise < self.probs(parents))", "return (noise <= self.probs(parents))",
           T_IMAGE),
    Mutant("dom_resolve_full_step", "cvaeq/query/resolution.py",
           "if not grid[0] - step / 2 <= value.value <= grid[-1] + step / 2:",
           "if not grid[0] - step <= value.value <= grid[-1] + step:", T_DOMAIN),
    Mutant("eff_unweighted", "cvaeq/evaluation/run.py", 'scores.add(f"eff.{f}", (g.weights.numpy() * ok).sum(1))',
           'scores.add(f"eff.{f}", ok.mean(1))', T_EVAL),
    Mutant("z_sd_unweighted", "cvaeq/query/answer.py",  # one summary since the one pipeline: one Z sd
           "    sd = ((s - mean).pow(2) * w).sum(0).clamp(min=0).sqrt()\n    return",
           "    sd = (s - mean).pow(2).mean(0).clamp(min=0).sqrt()\n    return", T_ANSWER + T_WORLDS),
    Mutant("limits_ge", "cvaeq/limits.py", "if st.st_size > max_bytes:", "if st.st_size >= max_bytes:", T_LIMITS),
    Mutant("image_bound_3", IMAGE, "NOISE_LOGIT_BOUND = 30.0", "NOISE_LOGIT_BOUND = 3.0", T_IMAGE),
    # --- value domains at their edges -----------------------------------------------------------
    Mutant("dom_world_full_step", "cvaeq/world.py", "half = (grid[1] - grid[0]) / 2 if len(grid) > 1 else 0.5",
           "half = (grid[1] - grid[0]) if len(grid) > 1 else 0.5", T_WORLD),
    Mutant("dom_world_lt", "cvaeq/world.py", "value < grid[0] - half or", "value <= grid[0] - half or", T_WORLD,
           equivalent="only a value exactly half a step below the first grid value, which is a tie"
                      " between snapping to class 0 and refusing; no float a user types lands there"),
    Mutant("dom_dsprites_full_step", "cvaeq/worlds/dsprites/factors.py",
           "value < grid[0] - step / 2 or value > grid[-1] + step / 2",
           "value < grid[0] - step or value > grid[-1] + step", T_WORLD),
    # --- limits ---------------------------------------------------------------------------------
    Mutant("limits_read_ge", "cvaeq/limits.py", "if len(blob) > max_bytes:", "if len(blob) >= max_bytes:", T_LIMITS),
    Mutant("limits_count_low", "cvaeq/limits.py", "and low <= value <= bound", "and low < value <= bound",
           T_LIMITS + ("tests/test_doctests.py",)),
    Mutant("limits_count_high", "cvaeq/limits.py", "and low <= value <= bound", "and low <= value < bound",
           T_LIMITS + ("tests/test_doctests.py",)),
    # --- image mechanism ------------------------------------------------------------------------
    Mutant("image_on_noise_not_below_p", IMAGE, "torch.minimum(pf * vf, torch.nextafter(pf, zero)))",
           "pf * vf)", T_IMAGE),
    Mutant("image_off_noise_reaches_1", IMAGE, ".clamp_(max=torch.nextafter(one, zero))", ".clamp_(max=one)",
           T_IMAGE),  # replays still hold (1 < p is false), but the noise leaves its support [0, 1)
    Mutant("image_bound32_3", IMAGE, "NOISE_PROB_FLOOR_FLOAT32 = 2.0**-23", "NOISE_PROB_FLOOR_FLOAT32 = 0.047",
           T_IMAGE + ("tests/evaluation/test_batched.py",)),
    Mutant("image_loglik_sign", IMAGE, "lp = F.logsigmoid(raw.to(lp_dtype) * sign)",
           "lp = F.logsigmoid(raw.to(lp_dtype) * -sign)", T_IMAGE),
    Mutant("image_proposal_logq", IMAGE, "log_q += q.log_prob(out[self.latent]).double()",
           "log_q -= q.log_prob(out[self.latent]).double()", T_IMAGE + T_ANSWER),
    # --- Gumbel-max abduction -------------------------------------------------------------------
    Mutant("gumbel_truncation_sign", "cvaeq/mechanisms/gumbel.py",
           "noise = (top - torch.nn.functional.softplus(top - (l + g[:, 1:])))",
           "noise = (top + torch.nn.functional.softplus(top - (l + g[:, 1:])))",
           ("tests/mechanisms/test_gumbel.py",)),
    Mutant("gumbel_top_without_lse", "cvaeq/mechanisms/gumbel.py",
           "top = rows(self._lse, self.parents, parents, value.shape[0]) + g[:, :1]", "top = g[:, :1]",
           ("tests/mechanisms/test_gumbel.py",),
           equivalent="the story's tables are normalised, so logsumexp of every row is 0 up to"
                      " float rounding: the same maximum"),
    # --- particles, abduction, results ----------------------------------------------------------
    Mutant("ess_no_square", "cvaeq/engine/particles.py", "return float(1.0 / (w * w).sum())",
           "return float(1.0 / w.sum())", T_ENGINE),
    Mutant("systematic_right_false", "cvaeq/engine/particles.py", "torch.searchsorted(cdf, points, right=True)",
           "torch.searchsorted(cdf, points, right=False)", T_ENGINE,
           equivalent="the two differ only when a point equals a CDF value exactly, an event of"
                      " probability 0 for a uniform float64 offset"),
    Mutant("systematic_spacing", "cvaeq/engine/particles.py",
           "torch.arange(k, dtype=torch.float64)) / k", "torch.arange(k, dtype=torch.float64)) / (k + 1)", T_ENGINE),
    Mutant("resample_le", "cvaeq/engine/abduction.py", "if particles.ess < resample_below * S:",
           "if particles.ess <= resample_below * S:", T_ENGINE,
           equivalent="differs only when the ESS is exactly half the particles; resampling then is"
                      " as right as not (both are the same posterior)"),
    Mutant("proposal_weight_sign", "cvaeq/engine/abduction.py", "log_w = log_w - log_q.double()",
           "log_w = log_w + log_q.double()", T_ENGINE + T_ANSWER),
    Mutant("fallback_sum_not_mean", "cvaeq/engine/abduction.py", "frac = match.double().mean(1)",
           "frac = match.double().sum(1)", T_ENGINE,
           equivalent="log(sum) = log(mean) + log(samples): the same constant on every particle's"
                      " log-weight, gone after self-normalisation"),
    Mutant("expectation_unweighted", "cvaeq/engine/counterfactual.py", "return float((values * self.weights).sum())",
           "return float(values.mean())", T_ENGINE + T_ANSWER),
    Mutant("sample_images_lightest", "cvaeq/engine/counterfactual.py",
           "order = torch.argsort(self.weights, descending=True, stable=True)",
           "order = torch.argsort(self.weights, descending=False, stable=True)", T_ENGINE + T_IMAGE),
    Mutant("worlds_probability_unweighted", "cvaeq/engine/counterfactual.py", "return float(self.weights[hold].sum())",
           "return float(hold.double().mean())", T_WORLDS),
    Mutant("evidence_domain_off_by_one", "cvaeq/engine/abduction.py", "if bool(((t < 0) | (t >= size)).any()):",
           "if bool(((t < 0) | (t > size)).any()):", T_ENGINE),
    # --- story tables ---------------------------------------------------------------------------
    Mutant("story_coef_sign", "cvaeq/story.py", "mean += float(coef[p]) * float(VALUES[p][c])",
           "mean -= float(coef[p]) * float(VALUES[p][c])", T_STORY),
    Mutant("story_normal_width", "cvaeq/story.py", "log_w = -0.5 * (distance / sd) ** 2",
           "log_w = -(distance / sd) ** 2", T_STORY),
    Mutant("story_floor_half", "cvaeq/story.py", "table[combo] = (1 - floor) * w / w.sum() + floor / len(grid)",
           "table[combo] = (1 - floor / 2) * w / w.sum() + floor / 2 / len(grid)", T_STORY),
    # --- evaluation -----------------------------------------------------------------------------
    Mutant("iou_empty_is_0", "cvaeq/evaluation/metrics.py", "return np.where(union == 0, 1.0,",
           "return np.where(union == 0, 0.0,", T_EVAL),
    Mutant("binarise_ge", "cvaeq/evaluation/metrics.py", "return np.asarray(probs) > threshold",
           "return np.asarray(probs) >= threshold", T_EVAL),
    Mutant("tv_no_half", "cvaeq/evaluation/metrics.py", "return 0.5 * float(sum(abs(",
           "return 1.0 * float(sum(abs(", T_EVAL + ("tests/evaluation/test_tv.py",)),
    Mutant("intervention_may_not_change", "cvaeq/evaluation/run.py", "shift = rng.integers(1, size, size=len(factual))",
           "shift = rng.integers(0, size, size=len(factual))", T_EVAL),
    Mutant("nll_given_factors_log_k_sign", "cvaeq/evaluation/run.py", "nll = -(torch.logsumexp(log_w, 0) - np.log(k))",
           "nll = -(torch.logsumexp(log_w, 0) + np.log(k))", T_EVAL),
]


def _copy_tree(dest: Path, rev: str | None) -> None:
    """This working tree's files (tracked and untracked, not ignored), or commit ``rev``'s, into ``dest``."""
    if rev:
        archive = subprocess.run(["git", "-C", str(HERE), "archive", rev], check=True, capture_output=True).stdout
        tar = dest.with_suffix(".tar")
        tar.write_bytes(archive)
        with tarfile.open(tar) as t:
            t.extractall(dest, filter="data")
        tar.unlink()
        return
    listed = subprocess.run(["git", "-C", str(HERE), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = HERE / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *(str(tree / p) for p in PLUGINS)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutation of equal size in the same second must not hit a stale .pyc
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def apply(tree: Path, m: Mutant) -> tuple[str, str | None]:
    """Check ``m`` applies to ``tree``: ``("ok", original text)`` or ``(reason, None)`` (not applied)."""
    path = tree / m.path
    if not path.is_file():
        return "file-not-found", None
    text = path.read_text()
    count = text.count(m.old)
    if count == 0:
        return "pattern-not-found", None
    if count > 1:
        return f"ambiguous ({count} matches)", None
    return "ok", text


class Planted:
    """``with Planted(tree, m):`` the mutant is in the file inside the block and gone after it, whatever happens."""

    def __init__(self, tree: Path, m: Mutant, original: str) -> None:
        self.path, self.m, self.original = tree / m.path, m, original

    def __enter__(self) -> "Planted":
        self.path.write_text(self.original.replace(self.m.old, self.m.new, 1))
        return self

    def __exit__(self, *exc) -> None:
        self.path.write_text(self.original)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float, str]:
    """``(returncode, seconds, last line)`` of ``pytest -x -q tests`` in ``tree``; a timeout is returncode -9."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -9, time.perf_counter() - t0, "timeout"
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.strip()]
    return r.returncode, time.perf_counter() - t0, lines[-1] if lines else r.stderr.strip()[-200:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", help="mutate the code and run the tests of this commit (default: this working tree)")
    ap.add_argument("--only", nargs="*", default=(), help="mutants whose name starts with one of these")
    ap.add_argument("--list", action="store_true", help="list the mutants and whether each applies; run nothing")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per test run (a timeout counts as killed)")
    args = ap.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(m.name.startswith(o) for o in args.only)]
    with tempfile.TemporaryDirectory(prefix="cvaeq-mutation-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        _copy_tree(tree, args.rev)
        where = subprocess.run([sys.executable, "-c", "import cvaeq; print(cvaeq.__file__)"], cwd=tree,
                               env=_env(tree), capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(tree)):
            print(f"cvaeq imports from {where!r}, not from the copy {tree}; stop", file=sys.stderr)
            return 2
        print(f"tree: {args.rev or 'working tree'} ({HERE}); {len(mutants)} mutants; load {os.getloadavg()[0]:.2f}")
        applicable = {}
        for m in mutants:
            status, original = apply(tree, m)
            applicable[m.name] = original
            if args.list:
                print(f"  {m.name:32s} {status:22s} {m.path}")
        if args.list:
            return 0
        baseline: dict[tuple[str, ...], bool] = {}
        subsets = list(dict.fromkeys(m.tests for m in mutants if applicable[m.name] is not None))
        every = tuple(t for t in dict.fromkeys(t for ts in subsets for t in ts) if (tree / t).exists())
        rc, secs, last = run_tests(tree, every, args.timeout * 3)  # every file once; per subset only if that fails
        print(f"baseline {'pass' if rc == 0 else 'FAIL'} {secs:6.1f}s {len(every)} test files: {last}", flush=True)
        if rc == 0:
            baseline = dict.fromkeys(subsets, True)
        for tests in subsets if rc != 0 else ():
            present = tuple(t for t in tests if (tree / t).exists())
            rc, secs, last = run_tests(tree, present, args.timeout)
            baseline[tests] = rc == 0
            print(f"baseline {'pass' if rc == 0 else 'FAIL'} {secs:6.1f}s {' '.join(present)}: {last}", flush=True)
        results: dict[str, str] = {}
        for m in mutants:
            original = applicable[m.name]
            if original is None:
                results[m.name] = apply(tree, m)[0]
            elif not baseline[m.tests]:
                results[m.name] = "baseline-fails"
            else:
                present = tuple(t for t in m.tests if (tree / t).exists())
                with Planted(tree, m, original):
                    rc, secs, last = run_tests(tree, present, args.timeout)
                results[m.name] = "killed" if rc != 0 else "survived"
                if rc not in (0, 1):
                    results[m.name] += f" (rc {rc})"
                results[m.name] += f" {secs:.0f}s"
            print(f"{m.name:32s} {results[m.name]:28s} load {os.getloadavg()[0]:.2f}", flush=True)
        ran = [m for m in mutants if results[m.name].split()[0] in ("killed", "survived")]
        killed = [m for m in ran if results[m.name].startswith("killed")]
        survived = [m for m in ran if results[m.name].startswith("survived")]
        skipped = [m for m in mutants if m not in ran]
        print(f"\nkilled {len(killed)} of {len(ran)} ({100 * len(killed) / max(len(ran), 1):.0f}%)"
              f"; not run: {len(skipped)}; load {os.getloadavg()[0]:.2f}")
        for m in survived:
            print(f"  survived {m.name}: {m.path}" + (f" -- judged equivalent: {m.equivalent}" if m.equivalent else ""))
        for m in skipped:
            print(f"  not run  {m.name}: {results[m.name]}")
        not_equivalent = [m for m in survived if not m.equivalent]
        counted = len(ran) - len(survived) + len(not_equivalent)
        print(f"kill rate excluding judged-equivalent survivors: {len(killed)} of {counted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
