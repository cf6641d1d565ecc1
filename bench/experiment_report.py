"""The experiment's results as markdown tables and a plot (pure functions of the results).

Spread is the standard deviation over seeds; an arm's difference from `random` counts
as larger than the spread when it exceeds the sum of the two standard deviations
(their one-sd intervals do not overlap).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.data_schemas.io import atomic_path

BASELINE_ARM = "random"
# (record key, column title, higher is better)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("misalignment", "held-out misalignment (nats/token)", False),
    ("speech_accuracy", "spoken MC accuracy", True),
    ("accuracy_gap", "MC gap (text − speech)", False),
    ("forgetting", "forgetting (nats/token)", False),
)


def _values(records: Sequence[dict[str, Any]], arm: str, budget: int, key: str) -> np.ndarray:
    return np.array([r[key] for r in records if r["arm"] == arm and r["budget"] == budget])


def _arms(records: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["arm"] for r in records))


def _fmt(values: np.ndarray, digits: int = 4) -> str:
    spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {spread:.{digits}f}"


def main_table(records: Sequence[dict[str, Any]], stage1: dict[str, Any], budget: int) -> str:
    """Arm × metric at one budget, mean ± sd over seeds, with the stage-I student first."""
    header = "| arm | seeds | " + " | ".join(title for _, title, _ in METRICS) + " |"
    lines = [header, "|---|---|" + "---|" * len(METRICS)]
    base = stage1["evaluation"]
    first = [f"{base[key]:.4f}" for key, _, _ in METRICS]
    lines.append("| stage I only (budget 0) | - | " + " | ".join(first) + " |")
    for arm in _arms(records):
        cells = [_fmt(_values(records, arm, budget, key)) for key, _, _ in METRICS]
        seeds = _values(records, arm, budget, "seed").size
        lines.append(f"| {arm} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference(a: np.ndarray, b: np.ndarray, higher: bool) -> tuple[float, str]:
    """mean(a) − mean(b), and "better", "worse" or "within spread" (the sum of the sds);
    "one seed" where either side has a single value, whose spread is unknown."""
    diff = float(a.mean() - b.mean())
    if min(a.size, b.size) < 2:
        return diff, "one seed"
    spread = sum(float(v.std(ddof=1)) if v.size > 1 else 0.0 for v in (a, b))
    better = diff > 0 if higher else diff < 0
    return diff, ("better" if better else "worse") if abs(diff) > spread else "within spread"


def comparison_table(records: Sequence[dict[str, Any]], budget: int) -> str:
    """Each arm's difference from random per metric, and whether it exceeds the spread."""
    arms = [a for a in _arms(records) if a != BASELINE_ARM]
    if not arms or BASELINE_ARM not in _arms(records):
        return ""
    lines = [
        "| arm | " + " | ".join(f"Δ {title}" for _, title, _ in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for arm in arms:
        cells = []
        for key, _, higher in METRICS:
            diff, verdict = difference(
                _values(records, arm, budget, key),
                _values(records, BASELINE_ARM, budget, key),
                higher,
            )
            cells.append(f"{diff:+.4f} ({verdict})")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def setting_records(results: dict[str, Any], heard: int) -> list[dict[str, Any]]:
    """The records of the sweep's setting whose student heard `heard` domains."""
    return [r for r in results["records"] if r["heard"] == heard]


def at_largest_budget(
    results: dict[str, Any], setting: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """The largest budget a setting ran, and its records at that budget."""
    records = setting_records(results, setting["heard"])
    budget = max(int(r["budget"]) for r in records)
    return budget, [r for r in records if r["budget"] == budget]


def sweep_table(results: dict[str, Any]) -> str:
    """Per concentration: the stage-I gap, where random spends its budget, and whether
    each arm beats random beyond the spread: held-out misalignment over all domains,
    over the unheard ones only (where the gap is), and the MC gap."""
    lines = [
        "| heard domains | stage I: heard / unheard misalignment | random's picks in heard "
        "domains | arm | held-out misalignment | Δ vs random | on unheard domains "
        "| Δ vs random | MC gap (text − speech) | Δ vs random |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting in results["settings"]:
        budget, at_budget = at_largest_budget(results, setting)
        stage1 = setting["stage1"]
        heard = stage1["heard_domains"]
        parts = heard_and_unheard(stage1["evaluation"]["by_domain"], set(heard))
        random_picks = [r for r in at_budget if r["arm"] == BASELINE_ARM]
        in_heard = np.mean(
            [
                sum(c for d, c in r["picked_domains"].items() if d in heard) / max(1, r["picked"])
                for r in random_picks
            ]
        )
        first = (
            f"{len(heard)} of 12 (budget {budget}) | {parts[0]:.4f} / {parts[1]:.4f} "
            f"| {in_heard:.0%}"
        )
        # (arm, measure) -> one value per seed; "unheard" is derived from the domains.
        column: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in at_budget:
            column[(r["arm"], "misalignment")].append(r["misalignment"])
            column[(r["arm"], "unheard")].append(heard_and_unheard(r["by_domain"], set(heard))[1])
            column[(r["arm"], "accuracy_gap")].append(r["accuracy_gap"])
        for arm in _arms(at_budget):
            cells = []
            for key in ("misalignment", "unheard", "accuracy_gap"):
                values = np.array(column[(arm, key)])
                if arm == BASELINE_ARM:
                    cells += [_fmt(values), "-"]
                    continue
                base = np.array(column[(BASELINE_ARM, key)])
                diff, verdict = difference(values, base, higher=False)
                cells += [_fmt(values), f"{diff:+.4f} ({verdict})"]
            lines.append(f"| {first} | {arm} | " + " | ".join(cells) + " |")
            first = " | |"
    return "\n".join(lines)


def domain_table(stage1: dict[str, Any]) -> str:
    """The stage-I student's held-out misalignment per domain, highest first."""
    heard = set(stage1["heard_domains"])
    by_domain = stage1["evaluation"]["by_domain"]
    lines = ["| domain | heard in stage I | misalignment |", "|---|---|---|"]
    for domain, value in sorted(by_domain.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {domain} | {'yes' if domain in heard else 'no'} | {value:.4f} |")
    return "\n".join(lines)


def cluster_table(clusters: Sequence[dict[str, Any]]) -> str:
    """Clusters by the stage-I student's probe gap, with their main domain."""
    lines = [
        "| rank | cluster | gap M(c) | main domain (share) | heard |",
        "|---|---|---|---|---|",
    ]
    for rank, row in enumerate(clusters, 1):
        lines.append(
            f"| {rank} | {row['cluster']} | {row['gap']:.4f} | {row['domain']} "
            f"({row['domain_share']:.0%}) | {'yes' if row['heard'] else 'no'} |"
        )
    return "\n".join(lines)


def budget_table(records: Sequence[dict[str, Any]], heard: Sequence[str], budget: int) -> str:
    """Where each arm spent its budget: share of picks in heard domains, top unheard domains."""
    lines = ["| arm | picks in heard domains | most picked domains |", "|---|---|---|"]
    for arm in _arms(records):
        totals: dict[str, float] = defaultdict(float)
        rows = [r for r in records if r["arm"] == arm and r["budget"] == budget]
        for r in rows:
            for domain, count in r["picked_domains"].items():
                totals[domain] += count / max(1, r["picked"]) / len(rows)
        heard_share = sum(v for d, v in totals.items() if d in heard)
        top = sorted(totals.items(), key=lambda kv: -kv[1])[:4]
        listed = ", ".join(f"{d} {v:.0%}" for d, v in top)
        lines.append(f"| {arm} | {heard_share:.0%} | {listed} |")
    return "\n".join(lines)


def heard_and_unheard(by_domain: dict[str, float], heard: set[str]) -> tuple[float, float]:
    """Mean misalignment over the heard and over the unheard domains, each domain weighing
    the same (nan for a side without a scored domain, as in tiny evaluation sets)."""
    heard_values = [v for d, v in by_domain.items() if d in heard]
    unheard_values = [v for d, v in by_domain.items() if d not in heard]
    nan = float("nan")
    return (
        float(np.mean(heard_values)) if heard_values else nan,
        float(np.mean(unheard_values)) if unheard_values else nan,
    )


def focus_table(
    records: Sequence[dict[str, Any]],
    stage1: dict[str, Any],
    clusters: Sequence[dict[str, Any]],
    budget: int,
) -> str:
    """Held-out misalignment on heard domains, unheard domains, and the domain of the
    highest-gap cluster (where the selection aims first), per arm, mean ± sd over seeds."""
    heard = set(stage1["heard_domains"])
    target = clusters[0]["domain"]

    def parts(by_domain: dict[str, float]) -> tuple[float, float, float]:
        return (*heard_and_unheard(by_domain, heard), by_domain.get(target, float("nan")))

    lines = [
        f"| arm | heard domains | unheard domains | {target} (top cluster's domain) |",
        "|---|---|---|---|",
    ]
    first = parts(stage1["evaluation"]["by_domain"])
    lines.append("| stage I only (budget 0) | " + " | ".join(f"{v:.4f}" for v in first) + " |")
    for arm in _arms(records):
        rows = [parts(r["by_domain"]) for r in records if r["arm"] == arm and r["budget"] == budget]
        cells = [_fmt(np.array(column)) for column in zip(*rows, strict=True)]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def share_and_gain(
    records: Sequence[dict[str, Any]], stage1_by_domain: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """For every (record, domain): the domain's share of the record's picks, and how much
    the record's fine-tune lowered that domain's misalignment from stage I."""
    shares, gains = [], []
    for r in records:
        for domain, before in stage1_by_domain.items():
            if domain in r["by_domain"]:
                shares.append(r["picked_domains"].get(domain, 0) / max(1, r["picked"]))
                gains.append(before - r["by_domain"][domain])
    return np.array(shares), np.array(gains)


def transfer_table(results: dict[str, Any]) -> str:
    """Does a domain gain more when more of the budget is spent on it? Per setting, over
    every arm and seed at the largest budget: the least-squares gain per 10 points of
    pick share, Pearson's r, and the gain of a domain that got no picks at all."""
    lines = [
        "| heard domains | gain per +10 % of picks (nats/token) | r | mean gain with no picks "
        "| mean gain with picks |",
        "|---|---|---|---|---|",
    ]
    for setting in results["settings"]:
        _, at_budget = at_largest_budget(results, setting)
        shares, gains = share_and_gain(at_budget, setting["stage1"]["evaluation"]["by_domain"])
        if shares.size < 2 or np.ptp(shares) == 0:
            continue
        slope = round(float(np.polyfit(shares, gains, 1)[0]), 9) + 0.0
        # Gains that are all the same do not follow the picks at all: r = 0.
        r = float(np.corrcoef(shares, gains)[0, 1]) if np.ptp(gains) > 0 else 0.0
        none = gains[shares == 0]
        some = gains[shares > 0]
        lines.append(
            f"| {setting['heard']} of 12 | {slope / 10:+.4f} | {r:+.2f} | "
            f"{none.mean() if none.size else float('nan'):.4f} | "
            f"{some.mean() if some.size else float('nan'):.4f} |"
        )
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], stage1: dict[str, Any], path: Path) -> Path:
    """Held-out misalignment and spoken accuracy against budget, one line per arm (± sd)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({int(r["budget"]) for r in records})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in (
        (axes[0], "misalignment", "held-out misalignment (nats/token, lower is better)"),
        (axes[1], "speech_accuracy", "spoken multiple-choice accuracy"),
    ):
        for arm in _arms(records):
            means = [stage1["evaluation"][key]]
            sds = [0.0]
            for b in budgets:
                v = _values(records, arm, b, key)
                means.append(float(v.mean()))
                sds.append(float(v.std(ddof=1)) if v.size > 1 else 0.0)
            ax.errorbar([0, *budgets], means, yerr=sds, marker="o", capsize=3, label=arm)
        ax.set_xlabel("synthetic budget (texts)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


BEGIN_MARK = "<!-- experiment results: generated by bench/experiment.py, do not edit -->"
END_MARK = "<!-- end of experiment results -->"


def _listed(values: Sequence[Any]) -> str:
    """A tuple or its JSON list alike: "100, 200, 300"."""
    return ", ".join(str(v) for v in values)


def _sweep(config: dict[str, Any]) -> str:
    if len(config["concentrations"]) < 2:
        return "no concentration sweep"
    return (
        f"sweep over {_listed(config['concentrations'])} heard domains with "
        f"{_listed(config['sweep_arms'])} at {config['budgets'][-1]} texts"
    )


def _teacher_source(build: dict[str, Any]) -> str:
    teacher = build["teacher"]
    if teacher["train_texts"]:
        return f"trained on {teacher['train_texts']:,} glosses of all 12 domains"
    return f"pretrained {build['recipe']['teacher']['source']}, used as it is"


def results_markdown(results: dict[str, Any], plot_name: str, command: str) -> str:
    """The generated part of docs/experiments.md: setup, expected-first checks, tables."""
    first = results["settings"][0]
    records = setting_records(results, first["heard"])
    stage1 = first["stage1"]
    build = first["build"]
    budget = max(int(r["budget"]) for r in records)
    teacher = build["teacher"]
    s1 = build["stage1"]
    config = results["config"]
    lines = [
        BEGIN_MARK,
        "",
        f"Command: `{command}` ({results['seconds'] / 60:.1f} minutes; "
        f"{config['pool_per_domain'] * 12} pool texts in {config['clusters']} clusters, "
        f"{config['probes_per_cluster']} probes a cluster, budgets {_listed(config['budgets'])}, "
        f"seeds {_listed(config['seeds'])}, {len(stage1['heard_domains'])} heard domains; "
        f"{_sweep(config)}; "
        f"{results['encoded_clips']} distinct clips through the frozen encoder).",
        "",
        f"- Teacher: held-out perplexity **{teacher['perplexity']:.1f}** against "
        f"**{teacher['unigram_perplexity']:.1f}** for a unigram model, on "
        f"{teacher['tokens']:,} tokens of {teacher['texts']:,} held-out glosses "
        f"({_teacher_source(build)}).",
        f"- Stage-I student: distilled on {s1['trained_rows']} spoken prefixes of "
        f"{', '.join(s1['heard_domains'])}; final epoch loss {s1['epoch_losses'][-1]:.4f}.",
        f"- Evaluation: {stage1['eval_rows']} held-out glosses of every domain "
        f"(refused by the scorer: {stage1['eval_refused'] or 'none'}); "
        f"{config['choices']}-way multiple choice on the same prefixes.",
        "",
        "### Expected first: the unheard domains have the larger gap",
        "",
        domain_table(stage1),
        "",
        "Clusters of the pool ranked by the stage-I student's probe gap:",
        "",
        cluster_table(first["clusters"]),
        "",
        f"Where each arm spent the largest budget ({budget} texts), mean over seeds:",
        "",
        budget_table(records, stage1["heard_domains"], budget),
        "",
        f"### Stage II at {budget} synthetic texts (mean ± sd over seeds)",
        "",
        main_table(records, stage1, budget),
        "",
        "Difference from `random` (better/worse only where it exceeds the sum of the two sds):",
        "",
        comparison_table(records, budget),
        "",
        "Held-out misalignment by where it is measured (domains weigh the same):",
        "",
        focus_table(records, stage1, first["clusters"], budget),
        "",
        "### The concentration sweep: does selection win where random wastes budget?",
        "",
        "Each setting's stage-I student heard more of the pool's domains (the same teacher, "
        "pool, probes and evaluation set); each arm fine-tunes it at the largest budget, "
        "mean ± sd over seeds, better/worse only beyond the sum of the two sds:",
        "",
        sweep_table(results),
        "",
        "Does a domain gain more when more of the budget goes to it? Over every arm and seed "
        "at the largest budget, each (fine-tune, domain) pair: its share of the picks "
        "against its drop in misalignment from stage I:",
        "",
        transfer_table(results),
        "",
        f"![held-out misalignment and spoken accuracy against budget]({plot_name})",
        "",
        END_MARK,
    ]
    return "\n".join(lines)


def update_document(path: Path, block: str, title: str) -> Path:
    """Replace the generated block of `path` (or append it; create the file if missing)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else f"# {title}\n\n"
    if BEGIN_MARK in text and END_MARK in text:
        head, _, rest = text.partition(BEGIN_MARK)
        _, _, tail = rest.partition(END_MARK)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
