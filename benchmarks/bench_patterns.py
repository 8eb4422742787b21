"""Robustness sweep of the anti-MAG pattern rules, and the cost of the borderline calls.

``python -m benchmarks.bench_patterns sweep [--write]`` simulates seeded cohorts for every
setting of :data:`SETTINGS` (the simulator's ``physiology`` knobs, ``patterns.toml``), computes
the features of the simulator's noiseless truth, classifies them with rule sets v1 and v2 and
prints (``--write``: puts into ``formats/features.md`` between the robustness markers) one
confusion matrix per setting and a v1/v2 summary. ``--measured`` adds the same on features
measured by ``ncsproc.measure`` for a small cohort per setting (slower).

``python -m benchmarks.bench_patterns timing [--exams 10000]`` times plain classification and
the borderline calls on a cohort of that many exams (the truth features of a simulated cohort,
replicated with a small jitter), and prints the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from ncsproc.features import (  # noqa: E402
    apply_limits,
    classify,
    evaluate_criteria,
    load_criteria,
    load_limits,
    load_rules,
    measures_from_truth,
    study_features,
)
from ncsproc.features._files import data_path  # noqa: E402
from ncsproc.features.borderline import borderline, classify_vectorised  # noqa: E402
from ncsproc.simulate import cohort  # noqa: E402

PATTERNS = ("normal", "distal_demyelinating", "cidp_like", "axonal")
KNOBS = (
    "leg_dispersion",
    "distal_dispersion",
    "partial_block",
    "inexcitable",
    "axonal_slowing",
    "mixed",
)
SETTINGS: dict[str, list[str] | None] = {
    "baseline": None,
    **{k: [k] for k in KNOBS},
    "all knobs": list(KNOBS),
}
"""Sweep settings: no knob, each knob alone, all knobs together."""
SEEDS = (101, 202, 303)
PER_PATTERN = 6
RULES = {
    "v1": ("patterns", "antimag-proposal.toml"),
    "v2": ("patterns", "antimag-proposal-v2.toml"),
}
CALLED = (*PATTERNS, "not_classifiable")
START, END = "<!-- robustness:start -->", "<!-- robustness:end -->"


def nerves_table(measures) -> pd.DataFrame:
    return apply_limits(study_features(measures).nerves, load_limits())


def classify_cohort(nerves: pd.DataFrame, rules) -> pd.DataFrame:
    """Pattern (per-exam classifier) and borderline columns of every exam."""
    sets = load_criteria()
    ev = evaluate_criteria(nerves, sets)
    called = classify(nerves, sets, ev.results, rules)
    out = borderline(nerves, sets, rules)
    out["called"] = [called[e].pattern for e in out.index]
    return out


def simulate(setting: str, seed: int, per_pattern: int = PER_PATTERN):
    traces, truth = cohort(
        {p: per_pattern for p in PATTERNS}, seed=seed, physiology=SETTINGS[setting]
    )
    return traces, truth


def run_sweep(seeds=SEEDS, per_pattern=PER_PATTERN, measured=False, log=print) -> dict:
    rules = {k: load_rules(data_path(*v)) for k, v in RULES.items()}
    results = {}
    for setting in SETTINGS:
        frames = []
        for seed in seeds:
            t0 = time.perf_counter()
            traces, truth = simulate(setting, seed, per_pattern)
            truth_pattern = truth.exams.set_index("exam_id")["pattern"]
            paths = {"truth": nerves_table(measures_from_truth(traces, truth.traces))}
            if measured and seed == seeds[0]:
                import ncsproc

                paths["measured"] = nerves_table(ncsproc.measure(traces))
            for path, nerves in paths.items():
                for version, rl in rules.items():
                    r = classify_cohort(nerves, rl)
                    r["truth"] = truth_pattern.reindex(r.index).to_numpy()
                    r["setting"], r["seed"], r["rules"], r["path"] = setting, seed, version, path
                    frames.append(r.reset_index())
            log(f"{setting:18s} seed {seed}: {time.perf_counter() - t0:5.1f} s")
        results[setting] = pd.concat(frames, ignore_index=True)
    return results


def summary(results: dict) -> pd.DataFrame:
    rows = []
    for setting, df in results.items():
        for (path, version), g in df.groupby(["path", "rules"], sort=False):
            per_seed = g.groupby("seed").apply(
                lambda x: float((x["called"] == x["truth"]).mean()), include_groups=False
            )
            miss = g["called"] != g["truth"]
            wrong_distal = g["truth"].isin(["normal", "axonal"]) & (
                g["called"] == "distal_demyelinating"
            )
            rows.append(
                dict(
                    setting=setting,
                    path=path,
                    rules=version,
                    exams=len(g),
                    recovered_pct=100 * float((~miss).mean()),
                    worst_cohort_pct=100 * float(per_seed.min()),
                    misses=int(miss.sum()),
                    misses_flagged=int((miss & g["pattern_borderline"].astype(bool)).sum()),
                    distal_for_normal_or_axonal=int(wrong_distal.sum()),
                    borderline_pct=100 * float(g["pattern_borderline"].astype(bool).mean()),
                )
            )
    return pd.DataFrame(rows)


def confusion(df: pd.DataFrame) -> pd.DataFrame:
    m = pd.crosstab(pd.Categorical(df["truth"], PATTERNS), pd.Categorical(df["called"], CALLED))
    m.index.name, m.columns.name = "simulated", "called"
    return m


def _md_table(df: pd.DataFrame, index_name: str) -> str:
    cols = [index_name, *[str(c) for c in df.columns]]
    lines = [
        "| " + " | ".join(cols) + " |",
        "| " + " | ".join(["---"] + ["---:"] * df.shape[1]) + " |",
    ]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx), *[_fmt(v) for v in row]]) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def markdown(results: dict, seeds, per_pattern) -> str:
    s = summary(results)
    n = per_pattern * len(PATTERNS)
    out = [
        START,
        "",
        "Generated by `python -m benchmarks.bench_patterns sweep --write` "
        f"(seeds {', '.join(map(str, seeds))}; {n} exams per cohort, {per_pattern} per "
        "pattern; features of the simulator's noiseless truth"
        + (", and one measured cohort per setting" if (s["path"] == "measured").any() else "")
        + "). Do not edit by hand.",
        "",
        "Summary (recovered = called pattern equals the simulated one; worst cohort = the lowest "
        "of the seeds; misses flagged = misses with `pattern_borderline`):",
        "",
    ]
    t = s.set_index("setting")[
        [
            "path",
            "rules",
            "exams",
            "recovered_pct",
            "worst_cohort_pct",
            "misses",
            "misses_flagged",
            "distal_for_normal_or_axonal",
            "borderline_pct",
        ]
    ]
    out += [_md_table(t, "setting"), ""]
    out.append(
        "Confusion matrices, rule set v2 (`antimag-ncs-patterns@0.2.0`), truth features, "
        "all seeds pooled:"
    )
    out.append("")
    for setting, df in results.items():
        g = df[(df["rules"] == "v2") & (df["path"] == "truth")]
        knobs = SETTINGS[setting]
        out.append(f"*{setting}* (`physiology={knobs!r}`):")
        out.append("")
        out.append(_md_table(confusion(g), "simulated \\ called"))
        out.append("")
    out.append(
        "Rule set v1 (`antimag-ncs-patterns@0.1.0`) on the same cohorts, where it differs "
        "from the truth:"
    )
    out.append("")
    for setting, df in results.items():
        g = df[(df["rules"] == "v1") & (df["path"] == "truth")]
        if (g["called"] != g["truth"]).any():
            out.append(f"*{setting}*:")
            out.append("")
            out.append(_md_table(confusion(g), "simulated \\ called"))
            out.append("")
    out.append(END)
    return "\n".join(out)


def write_docs(text: str, path: Path = ROOT / "formats" / "features.md") -> None:
    doc = path.read_text()
    if START in doc:
        a, b = doc.index(START), doc.index(END) + len(END)
        doc = doc[:a] + text + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc)


def run_timing(n_exams: int = 10_000, repeat: int = 1, log=print) -> dict:
    """Plain classification vs borderline calls on ``n_exams`` exams."""
    traces, truth = simulate("all knobs", 11, 5)
    base = nerves_table(measures_from_truth(traces, truth.traces))
    exams = sorted(set(base["exam_id"]))
    k = int(np.ceil(n_exams / len(exams)))
    rng = np.random.default_rng(0)
    parts = []
    num = [
        c
        for c in base.columns
        if c.endswith(("_pct_uln", "_pct_lln", "_ms", "_uv", "_m_s", "_pct")) or c == "tli"
    ]
    for i in range(k):
        p = base.copy()
        p["exam_id"] = p["exam_id"] + f"-{i:05d}"
        p[num] = p[num] * rng.uniform(0.97, 1.03, size=(len(p), len(num)))
        parts.append(p)
    nerves = pd.concat(parts, ignore_index=True)
    keep = sorted(set(nerves["exam_id"]))[:n_exams]
    nerves = nerves[nerves["exam_id"].isin(keep)].reset_index(drop=True)
    rules = load_rules(data_path(*RULES["v2"]))
    sets = load_criteria()
    out = {"exams": len(keep), "motor_rows": int((nerves["modality"] == "motor").sum())}
    t = time.perf_counter()
    ev = evaluate_criteria(nerves, sets)
    out["criteria_s"] = time.perf_counter() - t
    t = time.perf_counter()
    called = classify(nerves, sets, ev.results, rules)
    out["classify_s"] = time.perf_counter() - t
    t = time.perf_counter()
    vec = classify_vectorised(nerves, sets, rules)
    out["classify_vectorised_s"] = time.perf_counter() - t
    t = time.perf_counter()
    b = borderline(nerves, sets, rules)
    out["borderline_s"] = time.perf_counter() - t
    out["same_patterns"] = bool(all(called[e].pattern == vec[e] for e in vec.index))
    out["borderline_pct"] = 100 * float(b["pattern_borderline"].mean())
    plain = out["criteria_s"] + out["classify_s"]
    out["ratio_borderline_to_plain"] = out["borderline_s"] / plain
    for k_, v in out.items():
        log(f"{k_:28s} {v:.3f}" if isinstance(v, float) else f"{k_:28s} {v}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_patterns", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sw = sub.add_parser("sweep")
    sw.add_argument("--write", action="store_true", help="update formats/features.md")
    sw.add_argument("--measured", action="store_true", help="also measure one cohort per setting")
    sw.add_argument("--per-pattern", type=int, default=PER_PATTERN)
    tm = sub.add_parser("timing")
    tm.add_argument("--exams", type=int, default=10_000)
    args = ap.parse_args(argv)
    if args.cmd == "timing":
        run_timing(args.exams)
        return 0
    results = run_sweep(per_pattern=args.per_pattern, measured=args.measured)
    print(summary(results).to_string(index=False))
    text = markdown(results, SEEDS, args.per_pattern)
    if args.write:
        write_docs(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
