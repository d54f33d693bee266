"""The quality benchmark's scores, shared by a row trained now (`quality`) and one judged again (`rejudge`): the
metric columns (mean ± std over seeds), whether the targets are met, a product's metrics in brief for the notes,
and a run's champion and mixture judged at screen settings."""

from __future__ import annotations

import numpy as np

from arena.metrics import Judge
from experiments.bench.common import mean_std
from experiments.evaluate import screen_sweep
from experiments.summaries import screen_words

MODES = {"ring8": 8, "grid25": 25}  # the 2-D mixtures, judged by modes (and KL); images by FID and TVD
HIGH_QUALITY, KL, TVD, FID_RATIO = 0.97, 0.02, 0.05, 0.7  # the bars `target_met` checks
SWEEP_LABELS = {"champion": "champion", "ensemble": "mixture"}


def metric_columns(dataset: str, runs: list[dict]) -> dict:
    def cell(key: str, scale: float = 1.0, spec: str = ".3f", unit: str = "") -> str:
        return mean_std([r[key] for r in runs], spec, scale, unit)

    if dataset in MODES:
        return {"modes": cell("modes", spec=".1f"), "high_quality": cell("high_quality", 100, ".1f", " %"),
                "kl": cell("kl")}
    return {"fid": cell("fid", spec=".2f"), "tvd": cell("tvd")}


def target_met(dataset: str, runs: list[dict], single_fid: float | None) -> str:
    """Per metric `yes`, or `no` and by how much the mean over seeds misses."""
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0] if isinstance(runs[0][k], (int, float))}
    if dataset in MODES:
        modes = MODES[dataset]
        parts = ["modes yes" if mean["modes"] >= modes else f"modes no (−{modes - mean['modes']:.1f})",
                 "HQ yes" if mean["high_quality"] >= HIGH_QUALITY
                 else f"HQ no (−{(HIGH_QUALITY - mean['high_quality']) * 100:.1f} pts)",
                 "KL yes" if mean["kl"] <= KL else f"KL no (+{mean['kl'] - KL:.3f})"]
    else:
        parts = ["TVD yes" if mean["tvd"] <= TVD else f"TVD no (+{mean['tvd'] - TVD:.3f})"]
        if single_fid is None:
            parts.append("FID n/a (no one-GAN row)")
        else:
            ratio = mean["fid"] / single_fid
            parts.append(f"FID yes ({ratio:.2f}× the one GAN's)" if ratio <= FID_RATIO
                         else f"FID no ({ratio:.2f}× the one GAN's, target ≤ {FID_RATIO}×)")
    return ", ".join(parts)


def brief(dataset: str, m: dict) -> str:
    """A product's headline metrics, for the per-seed notes."""
    if dataset in MODES:
        return f"{m['modes']:.3g} modes, {m['high_quality']:.1%} HQ, KL {m['kl']:.3f}"
    return f"FID {m['fid']:.2f}, TVD {m['tvd']:.3f}"


def training_note(trained: list[str]) -> str:
    """The notes' part on what each arena run trained (`common.training`), for a row trained now or judged again."""
    return f" | Training of each arena run — {'; '.join(trained)}" if trained else ""


def shares_by_regions(shares: tuple[float, ...], regions: tuple[int, ...]) -> list[tuple[int, list[float]]]:
    """The shares to judge at for each number of regions: unscreened (1) once, with the first."""
    return [(count, [s for s in shares if s < 1 or count == regions[0]]) for count in regions]


def screened_rows(db, run_id: str, judge: Judge, shares: tuple[float, ...], seed: int,
                  regions: tuple[int, ...], refines: tuple[int, ...] = (0,)) -> list[tuple[str, dict]]:
    """A finished run's champion and mixture judged again at each share, number of regions and number of
    refinement steps: (label, metrics)."""
    return [(f"{SWEEP_LABELS[kind]}, screen sweep: {screen_words(share, count, refine)}", metrics)
            for refine in refines
            for count, chosen in shares_by_regions(shares, regions) if chosen
            for share, products in screen_sweep(db, run_id, judge, chosen, seed, count, refine).items()
            for kind, metrics in products.items()]
