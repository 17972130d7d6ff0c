"""Writing an evaluation: results.json, metrics.json, report.md and plots; comparing two runs.

Every report records the dataset's hash and size, the resolved config, the model, the git
commit and the seed, so any number in it can be traced and reproduced.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ehrqa.core.errors import NotFoundError
from ehrqa.lab.eval import bootstrap
from ehrqa.lab.eval.harm import HARM_REASONS
from ehrqa.lab.eval.provenance import run_provenance
from ehrqa.lab.eval.runner import EvalRun
from ehrqa.lab.eval.scoring import (
    MIN_GROUP_FOR_INTERVAL,
    compare_columns,
    recall_ks,
    selector_comparisons,
)

# (key in the scores, column title, higher is better) for the headline table.
TASK1_COLUMNS = (
    ("micro_precision", "P", True),
    ("micro_recall", "R", True),
    ("micro_f1", "F1", True),
    ("macro_f1", "F1 macro", True),
    ("recall@10", "cand. R@10", True),
)
TASK2_COLUMNS = (
    ("answer_accuracy", "answer acc.", True),
    ("harmful", "harmful", False),
    ("harmful_rate", "harmful rate", False),
    ("meteor", "METEOR", True),
    ("rouge_l", "ROUGE-L", True),
    ("bleu", "BLEU", True),
    ("citation_precision", "cite P", True),
    ("citation_recall", "cite R", True),
    ("abstention_precision", "abstain P", True),
    ("abstention_recall", "abstain R", True),
    ("verified_share", "verified", True),
)
COST_COLUMNS = (
    ("select_ms_p50", "select p50 ms", False),
    ("select_ms_p95", "select p95 ms", False),
    ("answer_ms_p50", "answer p50 ms", False),
    ("answer_ms_p95", "answer p95 ms", False),
    ("prompt_tokens_mean", "prompt tok", False),
    ("completion_tokens_mean", "compl. tok", False),
    ("select_model_calls_mean", "T1 model calls", False),
    ("select_prompt_tokens_mean", "T1 prompt tok", False),
)


def manifest(run: EvalRun) -> dict[str, Any]:
    """Where the numbers come from."""
    return {
        **run_provenance(run.git_commit),
        "dataset": run.config.dataset,
        "dataset_sha256": run.dataset_sha256,
        "dataset_questions": run.dataset_size,
        "evaluated_questions": len(run.items),
        "patients": len({i.patient_id for i in run.items}),
        "model": run.config.model,
        # As loaded: "smollm2+smollm2-t2" when --adapter auto found the packaged adapter.
        "model_name": run.model_name,
        "seed": run.config.seed,
        "config": run.config.to_dict(),
        "ingest": run.ingest,
        "seconds": round(run.seconds, 1),
        "bootstrap": BOOTSTRAP,
    }


#: How every interval of a report is drawn (recorded in its manifest).
BOOTSTRAP = {
    "method": "percentile bootstrap over questions; paired for differences",
    "resamples": bootstrap.RESAMPLES,
    "seed": bootstrap.SEED,
    "level": bootstrap.LEVEL,
}


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def _fmt_bound(bound: float, like: Any) -> str:
    """An interval end, as precise as the value it belongs to allows (2 decimals below 10)."""
    if isinstance(like, int):
        return f"{bound:.0f}"
    return f"{bound:.2f}" if abs(like) < 10 else f"{bound:,.0f}"


def _fmt_ci(value: Any, bound: list[float] | None) -> str:
    """ "0.863 (0.84–0.88)": a value and its 95% interval, or the value alone without one."""
    text = _fmt(value)
    if bound is None or _is_nan(value) or any(_is_nan(b) for b in bound):
        return text
    if bound[0] == bound[1]:  # every draw gave the same value: nothing to show
        return text
    return f"{text} ({_fmt_bound(bound[0], value)}–{_fmt_bound(bound[1], value)})"


def _table(
    rows: dict[str, dict[str, Any]],
    columns: tuple[tuple[str, str, bool], ...],
    bounds: dict[str, dict[str, list[float]]] | None = None,
) -> list[str]:
    present = [c for c in columns if any(c[0] in r for r in rows.values())]
    if not present:
        return []
    bounds = bounds or {}
    lines = ["| selector | " + " | ".join(c[1] for c in present) + " |"]
    lines.append("|---|" + "---|" * len(present))
    for name, row in rows.items():
        cells = [_fmt_ci(row.get(c[0], "–"), bounds.get(name, {}).get(c[0])) for c in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _harm_note(task2: dict[str, dict[str, Any]]) -> list[str]:
    """One line saying what "harmful" counts, with each selector's count per reason."""
    counted = {n: t for n, t in task2.items() if "harmful" in t}
    if not counted:
        return []
    by_reason = "; ".join(
        f"{name}: " + ", ".join(f"{r} {int(t.get(f'harmful_{r}', 0))}" for r in HARM_REASONS)
        for name, t in counted.items()
    )
    return [
        'Harmful = a wrong "no"/absence for an answerable question, a flipped yes/no, or '
        "another value for the asked measure (rules: `ehrqa.lab.eval.harm`). By reason: "
        f"{by_reason}.",
        "",
    ]


def _harm_cell(row: dict[str, Any]) -> str:
    """ "count (rate)" of harmful answers in a group, "–" when it has no answers; with the
    count's interval where the group has one."""
    if "harmful" not in row:
        return "–"
    bound = row.get("intervals", {}).get("harmful")
    ci = f", {bound[0]:.0f}–{bound[1]:.0f}" if bound else ""
    return f"{int(row['harmful'])} ({_fmt(row.get('harmful_rate'))}{ci})"


def _group_cell(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return "–"
    return _fmt_ci(row[key], row.get("intervals", {}).get(key))


def _group_table(scores: dict[str, Any], group: str) -> list[str]:
    names = list(scores)
    keys = sorted({g for s in scores.values() for g in s[group]})
    if not keys:
        return []
    has_acc = any("answer_accuracy" in s[group].get(k, {}) for s in scores.values() for k in keys)
    has_harm = any("harmful" in s[group].get(k, {}) for s in scores.values() for k in keys)
    head = [f"{n} F1" for n in names] + ([f"{n} acc." for n in names] if has_acc else [])
    head += [f"{n} harmful" for n in names] if has_harm else []
    lines = [
        f"| {group.removeprefix('by_')} | n | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(head),
    ]
    for key in keys:
        first = next(s[group][key] for s in scores.values() if key in s[group])
        cells = [_group_cell(s[group].get(key, {}), "micro_f1") for s in scores.values()]
        if has_acc:
            cells += [
                _group_cell(s[group].get(key, {}), "answer_accuracy") for s in scores.values()
            ]
        if has_harm:
            cells += [_harm_cell(s[group].get(key, {})) for s in scores.values()]
        n = int(first["n"])
        count = f"{n}" if n >= MIN_GROUP_FOR_INTERVAL else f"{n} (n too small)"
        lines.append(f"| {key} | {count} | " + " | ".join(cells) + " |")
    return lines


def _difference_rows(
    comparisons: dict[str, dict[str, dict[str, Any]]], first_column: str
) -> list[str]:
    """Table rows of paired differences: headline metrics only, in table order."""
    lines = []
    for label, diffs in comparisons.items():
        for key, title, _ in TASK1_COLUMNS + TASK2_COLUMNS + COST_COLUMNS:
            d = diffs.get(key)
            if d is None or _is_nan(d["delta"]) or d["a"] == d["b"] == 0:
                continue
            lines.append(
                f"| {label} | {title} | {_fmt(d['a'])} | {_fmt(d['b'])} | "
                f"{_fmt_delta(d)} | {d['verdict']} |"
            )
    if not lines:
        return []
    return [
        f"| {first_column} | metric | A | B | B − A (95% CI) | verdict |",
        "|---|---|---|---|---|---|",
        *lines,
    ]


def _fmt_delta(d: dict[str, Any]) -> str:
    """ "+0.012 (−0.004–+0.030)": a difference and its paired interval."""
    if isinstance(d["a"], int) and isinstance(d["b"], int):
        spec = "+.0f"
    else:
        spec = "+,.1f" if abs(d["a"] if not _is_nan(d["a"]) else 0) >= 10 else "+.3f"
    if _is_nan(d["low"]):
        return format(d["delta"], spec)
    return f"{d['delta']:{spec}} ({d['low']:{spec}} to {d['high']:{spec}})"


def _comparison_section(comparisons: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    rows = _difference_rows(comparisons, "B vs A")
    if not rows:
        return []
    return [
        "## Selectors compared (paired by question)",
        "",
        "Each difference is B − A over the same questions, with its 95% paired-bootstrap "
        'interval; "tie" means the interval contains 0, so the margin is within the noise '
        "of which questions were asked.",
        "",
        *rows,
        "",
    ]


def _bounds(scores: dict[str, Any], task: str) -> dict[str, dict[str, list[float]]]:
    return {n: s.get("intervals", {}).get(task, {}) for n, s in scores.items()}


def render_markdown(
    info: dict[str, Any],
    scores: dict[str, Any],
    plots: list[str],
    comparisons: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> str:
    """The report as markdown."""
    cfg = info["config"]
    boot = info.get("bootstrap", BOOTSTRAP)
    lines = [
        "# ehrqa evaluation",
        "",
        f"- dataset: `{info['dataset']}` (sha256 `{info['dataset_sha256'][:16]}…`, "
        f"{info['dataset_questions']} questions)",
        f"- evaluated: {info['evaluated_questions']} questions of {info['patients']} patients "
        f"(split {cfg['split'] or 'all'}, limit {cfg['limit'] or 'none'}, seed {info['seed']})",
        f"- model `{info.get('model_name') or info['model']}`, "
        f"answer mode `{cfg['answer_mode']}`, n_ctx {cfg['n_ctx']}",
        f"- ehrqa {info['ehrqa']}, commit `{info['git_commit']}`, {info['machine']}, "
        f"{info['created']}, {info['seconds']} s",
        f"- in brackets: 95% bootstrap intervals over questions ({boot['resamples']:,} "
        f"resamples, seed {boot['seed']}); groups under {MIN_GROUP_FOR_INTERVAL} questions "
        "get none",
        "",
        "## Task 1: resource selection",
        "",
        *_table(
            {n: s["task1"] for n, s in scores.items()}, TASK1_COLUMNS, _bounds(scores, "task1")
        ),
        "",
    ]
    t2 = {n: s["task2"] for n, s in scores.items() if s["task2"]}
    if t2:
        lines += [
            "## Task 2: answers",
            "",
            *_table(t2, TASK2_COLUMNS, _bounds(scores, "task2")),
            "",
        ]
        lines += _harm_note(t2)
    lines += [
        "## Cost per question",
        "",
        *_table({n: s["cost"] for n, s in scores.items()}, COST_COLUMNS, _bounds(scores, "cost")),
        "",
    ]
    lines += _comparison_section(comparisons or {})
    lines += ["## By intent", "", *_group_table(scores, "by_intent"), ""]
    lines += ["## By perspective", "", *_group_table(scores, "by_perspective"), ""]
    injected = {n: s["injection"] for n, s in scores.items() if s["injection"]}
    if injected:
        lines += [
            "## Questions over records with injected instructions",
            "",
            *_table(injected, TASK2_COLUMNS[:1] + TASK2_COLUMNS[-1:]),
            "",
        ]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def plot(scores: dict[str, Any], out_dir: Path) -> list[str]:
    """F1 by intent and selection latency per selector, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    intents = sorted({k for s in scores.values() for k in s["by_intent"]})
    fig, ax = plt.subplots(
        figsize=(9, max(3.0, 0.28 * len(intents) * max(1, len(scores)) ** 0.5 + 1))
    )
    height = 0.8 / max(1, len(scores))
    for i, (name, s) in enumerate(scores.items()):
        values = [s["by_intent"].get(k, {}).get("micro_f1", 0.0) for k in intents]
        ax.barh([j + i * height for j in range(len(intents))], values, height=height, label=name)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(intents))], intents, fontsize=7)
    ax.set_xlabel("Task 1 F1 (micro)")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "f1_by_intent.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(scores)
    ax.bar(names, [scores[n]["cost"].get("select_ms_p50", 0.0) for n in names], label="p50")
    ax.scatter(
        names,
        [scores[n]["cost"].get("select_ms_p95", 0.0) for n in names],
        color="black",
        label="p95",
        zorder=3,
    )
    ax.set_yscale("log")
    ax.set_ylabel("selection latency (ms, log)")
    ax.legend()
    fig.tight_layout()
    path = out_dir / "selection_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    return written


def no_nan(data: Any) -> Any:
    """NaN (an undefined metric, e.g. recall with no gold) is written as JSON null."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: no_nan(v) for k, v in data.items()}
    if isinstance(data, list):
        return [no_nan(v) for v in data]
    return data


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (NaN and infinities as null)."""
    tmp = path.with_suffix(path.suffix + ".partial")
    text = json.dumps(no_nan(data), indent=2, ensure_ascii=False, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


def write_report(run: EvalRun, scores: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write results.json, metrics.json, the plots and report.md into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = manifest(run)
    results = {
        name: [
            asdict(r) | {"scores": _question_scores(scores.get(name, {}), i)}
            for i, r in enumerate(rs)
        ]
        for name, rs in run.results.items()
    }
    comparisons = selector_comparisons(scores)
    write_json(out_dir / "results.json", {"manifest": info, "results": results})
    write_json(
        out_dir / "metrics.json",
        {"manifest": info, "scores": scores, "comparisons": comparisons},
    )
    plots = plot(scores, out_dir)
    report = out_dir / "report.md"
    report.write_text(render_markdown(info, scores, plots, comparisons), encoding="utf-8")
    return {
        "report": str(report),
        "metrics": str(out_dir / "metrics.json"),
        "results": str(out_dir / "results.json"),
    }


def _question_scores(selector_scores: dict[str, Any], index: int) -> dict[str, Any]:
    """One question's value in every per-question column of its selector."""
    columns = selector_scores.get("per_question", {}).get("columns", {})
    return {name: values[index] for name, values in columns.items()}


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read a run's metrics.json (given the file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise NotFoundError(f"no metrics.json at {path}: give an 'ehrqa eval' output folder")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def compare(a: str | Path, b: str | Path) -> str:
    """Two runs side by side: every headline metric of every common selector, with the change.

    Runs that stored per-question values (this version on) are paired by question id and
    each change gets its 95% paired-bootstrap interval and a verdict ("tie" when the
    interval contains 0); older runs get the change alone, without a verdict.
    """
    ma, mb = load_metrics(a), load_metrics(b)
    lines = [
        f"A: `{a}` (commit {ma['manifest']['git_commit']}, model {ma['manifest']['model']}, "
        f"sha {ma['manifest']['dataset_sha256'][:12]})",
        f"B: `{b}` (commit {mb['manifest']['git_commit']}, model {mb['manifest']['model']}, "
        f"sha {mb['manifest']['dataset_sha256'][:12]})",
    ]
    if ma["manifest"]["dataset_sha256"] != mb["manifest"]["dataset_sha256"]:
        lines.append("warning: the runs used different datasets")
    lines += [
        "",
        "| selector | metric | A | B | B − A (95% CI) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name in [n for n in ma["scores"] if n in mb["scores"]]:
        sa, sb = ma["scores"][name], mb["scores"][name]
        if "per_question" in sa and "per_question" in sb:
            paired = {
                name: compare_columns(
                    sa["per_question"], sb["per_question"], recall_ks(sa["per_question"])
                )
            }
            lines += _difference_rows(paired, "selector")[2:]
        else:
            lines += _unpaired_rows(name, sa, sb)
    return "\n".join(lines) + "\n"


def _unpaired_rows(name: str, sa: dict[str, Any], sb: dict[str, Any]) -> list[str]:
    """Changes between runs without per-question values: no interval, so no verdict."""
    lines = []
    for key, title, _ in TASK1_COLUMNS + TASK2_COLUMNS + COST_COLUMNS:
        group = next(
            (
                g
                for g in ("task1", "task2", "cost")
                if key in sa.get(g, {}) and key in sb.get(g, {})
            ),
            None,
        )
        if group is None:
            continue
        va, vb = sa[group][key], sb[group][key]
        if va is None or vb is None:
            continue
        lines.append(
            f"| {name} | {title} | {_fmt(va)} | {_fmt(vb)} | {vb - va:+.3f} | "
            "no CI (no per-question values) |"
        )
    return lines
