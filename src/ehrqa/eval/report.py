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

from ehrqa.errors import NotFoundError
from ehrqa.eval.harm import HARM_REASONS
from ehrqa.eval.provenance import run_provenance
from ehrqa.eval.runner import EvalRun

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
    }


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def _table(
    rows: dict[str, dict[str, Any]], columns: tuple[tuple[str, str, bool], ...]
) -> list[str]:
    present = [c for c in columns if any(c[0] in r for r in rows.values())]
    if not present:
        return []
    lines = ["| selector | " + " | ".join(c[1] for c in present) + " |"]
    lines.append("|---|" + "---|" * len(present))
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c[0], "–")) for c in present) + " |")
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
        "another value for the asked measure (rules: `ehrqa.eval.harm`). By reason: "
        f"{by_reason}.",
        "",
    ]


def _harm_cell(row: dict[str, Any]) -> str:
    """ "count (rate)" of harmful answers in a group, "–" when it has no answers."""
    if "harmful" not in row:
        return "–"
    return f"{int(row['harmful'])} ({_fmt(row.get('harmful_rate'))})"


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
        cells = [_fmt(s[group].get(key, {}).get("micro_f1", "–")) for s in scores.values()]
        if has_acc:
            cells += [
                _fmt(s[group].get(key, {}).get("answer_accuracy", "–")) for s in scores.values()
            ]
        if has_harm:
            cells += [_harm_cell(s[group].get(key, {})) for s in scores.values()]
        lines.append(f"| {key} | {int(first['n'])} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(info: dict[str, Any], scores: dict[str, Any], plots: list[str]) -> str:
    """The report as markdown."""
    cfg = info["config"]
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
        "",
        "## Task 1: resource selection",
        "",
        *_table({n: s["task1"] for n, s in scores.items()}, TASK1_COLUMNS),
        "",
    ]
    t2 = {n: s["task2"] for n, s in scores.items() if s["task2"]}
    if t2:
        lines += ["## Task 2: answers", "", *_table(t2, TASK2_COLUMNS), ""]
        lines += _harm_note(t2)
    lines += [
        "## Cost per question",
        "",
        *_table({n: s["cost"] for n, s in scores.items()}, COST_COLUMNS),
        "",
    ]
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
    results = {name: [asdict(r) for r in rs] for name, rs in run.results.items()}
    write_json(out_dir / "results.json", {"manifest": info, "results": results})
    write_json(out_dir / "metrics.json", {"manifest": info, "scores": scores})
    plots = plot(scores, out_dir)
    report = out_dir / "report.md"
    report.write_text(render_markdown(info, scores, plots), encoding="utf-8")
    return {
        "report": str(report),
        "metrics": str(out_dir / "metrics.json"),
        "results": str(out_dir / "results.json"),
    }


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
    """Two runs side by side: every headline metric of every common selector, with the change."""
    ma, mb = load_metrics(a), load_metrics(b)
    lines = [
        f"A: `{a}` (commit {ma['manifest']['git_commit']}, model {ma['manifest']['model']}, "
        f"sha {ma['manifest']['dataset_sha256'][:12]})",
        f"B: `{b}` (commit {mb['manifest']['git_commit']}, model {mb['manifest']['model']}, "
        f"sha {mb['manifest']['dataset_sha256'][:12]})",
    ]
    if ma["manifest"]["dataset_sha256"] != mb["manifest"]["dataset_sha256"]:
        lines.append("warning: the runs used different datasets")
    lines += ["", "| selector | metric | A | B | change |", "|---|---|---|---|---|"]
    columns = TASK1_COLUMNS + TASK2_COLUMNS + COST_COLUMNS
    for name in [n for n in ma["scores"] if n in mb["scores"]]:
        sa, sb = ma["scores"][name], mb["scores"][name]
        for key, title, higher in columns:
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
            delta = vb - va
            better = (delta > 0) == higher if delta else None
            mark = "" if better is None else (" (better)" if better else " (worse)")
            lines.append(f"| {name} | {title} | {_fmt(va)} | {_fmt(vb)} | {delta:+.3f}{mark} |")
    return "\n".join(lines) + "\n"
