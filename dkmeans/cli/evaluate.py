"""``dkmeans evaluate --stability`` and ``--sweep``: how trustworthy a
model's k is, and the scores of other ks, as JSON fields."""

from __future__ import annotations

import argparse
from typing import Any


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("choosing k")
    group.add_argument("--stability", action="store_true",
                       help="refit the model's k on row subsamples and other seeds: mean "
                            "pairwise adjusted Rand index and each cluster's Jaccard")
    group.add_argument("--runs", type=int, default=10, metavar="N",
                       help="subsample fits for --stability (default 10)")
    group.add_argument("--subsample", type=float, default=0.8,
                       help="share of rows in each subsample (default 0.8)")
    group.add_argument("--sweep", default=None, metavar="KMIN:KMAX",
                       help="also fit and score every k in this range (inertia, "
                            "Calinski-Harabasz, Davies-Bouldin, silhouette; the gap "
                            "statistic with --gap-refs, stability with --stability)")
    group.add_argument("--gap-refs", type=int, default=0, metavar="B",
                       help="reference data sets of the gap statistic for --sweep "
                            "(default 0: no gap)")
    group.add_argument("--missing", choices=["error", "impute"], default=None,
                       help="NaN in --stability and --sweep fits: an error, or the "
                            "feature's mean (default: as the model was fitted)")
    group.add_argument("--scale", action=argparse.BooleanOptionalAction, default=None,
                       help="standardize features in --stability and --sweep fits "
                            "(default: as the model was fitted)")


def _k_range(text: str) -> range:
    from dkmeans.errors import InvalidParameterError

    try:
        low, high = (int(v) for v in text.split(":"))
    except ValueError:
        raise InvalidParameterError(f"--sweep {text}: expected KMIN:KMAX, e.g. 2:20.") from None
    if not 1 <= low <= high:
        raise InvalidParameterError(f"--sweep {text}: expected 1 <= KMIN <= KMAX.")
    return range(low, high + 1)


def preprocessing(args: argparse.Namespace, model: Any) -> dict:
    """The ``missing``, ``scale`` (and ``metric``) the refits of
    ``--stability`` and ``--sweep`` use: the options given, else the model's."""
    out = {"missing": args.missing or getattr(model, "missing", "error"),
           "scale": bool(getattr(model, "scale", False) if args.scale is None else args.scale)}
    if getattr(model, "metric", "euclidean") == "cosine":
        out["metric"] = "cosine"
    return out


def extras(args: argparse.Namespace, model: Any, X: Any) -> dict:
    """The fields ``--stability`` and ``--sweep`` add to the summary."""
    out: dict[str, Any] = {}
    seed = model.random_state if isinstance(model.random_state, int) else 0
    k = getattr(model, "n_clusters", None) or model.n_components
    prep = preprocessing(args, model)
    if args.stability:
        from dkmeans import stability

        r = stability(X, k, n_runs=args.runs, subsample=args.subsample,
                      random_state=seed, **prep)
        out["stability"] = {"k": r.k, "ari_mean": r.ari_mean, "ari_std": r.ari_std,
                            "ari": r.ari.tolist(), "jaccard": r.jaccard.tolist()}
    if args.sweep:
        from dkmeans import sweep

        result = sweep(X, _k_range(args.sweep), random_state=seed,
                       gap=args.gap_refs > 0, n_refs=max(args.gap_refs, 1),
                       stability=args.stability, stability_runs=args.runs,
                       subsample=args.subsample, **prep)
        out["sweep"] = {"table": result.records(), "suggestions": result.suggestions}
    return out


def lines(more: dict) -> list[str]:
    """What :func:`extras` found, as lines for the terminal."""
    import numpy as np

    out = []
    if "stability" in more:
        st = more["stability"]
        out.append(f"stability of k={st['k']}: ARI {st['ari_mean']:.4f} +- "
                   f"{st['ari_std']:.4f}; Jaccard per cluster "
                   f"{np.round(st['jaccard'], 3).tolist()}")
    for row in more.get("sweep", {}).get("table", []):
        out.append("  " + ", ".join(f"{k} {v:.6g}" for k, v in row.items()))
    if "sweep" in more:
        out.append(f"  suggested: {more['sweep']['suggestions']}")
    return out
