"""The fine-tuning studies of issue 4, in one command, on the benchmark kit's data.

    python benchmarks/finetune_study.py --work data/benchmark [--sizes 100,200,400]
        [--eval-limit 60] [--judge-limit 30] [--seq-examples 200] [--steps t1,ablation,judge,seq]

``--work`` is the folder ``benchmarks/qa_benchmark.sh`` filled (``qa/qa.jsonl`` and
``store.sqlite3``); models go to ``--work/models``, evaluation runs to ``--work/runs``.
Every step runs the ``ehrqa`` command a user would run and is skipped when its output
exists, so an interrupted study resumes. Results land in ``--out`` (default ``reports/finetune``):

- **t1** — ``ehrqa train t1`` for each reranker variant (full fine-tune; LoRA), each
  compared with the rule-based selector on the whole test split: ``reranker.md``.
- **ablation** — ``ehrqa train t2 --max-examples N`` for each size, each evaluated with
  ``--answer-mode model`` (the model's own answers, no fallback) on a seeded sample of the
  test split next to the zero-shot model, and again in the default ``hybrid`` mode (does
  the adapter beat the default?): ``ablation.md``, ``ablation.json``, ``ablation.png``.
- **judge** — the fine-tuned (largest size) and zero-shot answers compared by each of the
  two models as judge, blind and named: ``judge-by-<model>/report.md``.
- **seq** — ``t1-llm``, ``t2`` and ``seq`` (T1→T2 and T2→T1) adapters trained on the same
  number of examples per task, each evaluated on Task 1 (the ``llm-pairwise`` selector)
  and Task 2: ``sequential.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TASK2 = ("answer_accuracy", "meteor", "rouge_l", "verified_share", "citation_precision")


def ehrqa(work: Path, *args: str | Path, env: dict[str, str] | None = None) -> None:
    """Run one ``ehrqa`` command with the benchmark store as home; stop on failure."""
    beside = Path(sys.executable).with_name("ehrqa")  # the ehrqa of this interpreter's venv
    binary = os.environ.get("EHRQA_BIN") or (str(beside) if beside.is_file() else "ehrqa")
    command = [binary, "--home", str(work), *map(str, args)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, **(env or {})})


def train(work: Path, models: Path, name: str, command: str, *flags: str) -> Path:
    out = models / name
    if not (out / "ehrqa_config.json").is_file():
        ehrqa(
            work,
            "train",
            command,
            "--dataset",
            work / "qa" / "qa.jsonl",
            "--store",
            work / "store.sqlite3",
            "--out",
            out,
            *flags,
        )
    return out


def evaluate(
    work: Path, runs: Path, name: str, *flags: str | Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    out = runs / name
    if not (out / "metrics.json").is_file():
        ehrqa(
            work,
            "eval",
            "--dataset",
            work / "qa" / "qa.jsonl",
            "--store",
            work / "store.sqlite3",
            "--split",
            "test",
            "--out",
            out,
            *flags,
            env=env,
        )
    data: dict[str, Any] = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return data


def _task2(metrics: dict[str, Any]) -> dict[str, float]:
    scores = next(iter(metrics["scores"].values()))
    return {k: scores["task2"].get(k) for k in TASK2} | {
        "answer_ms_p50": scores["cost"].get("answer_ms_p50")
    }


def _task1(metrics: dict[str, Any]) -> dict[str, float]:
    scores = next(iter(metrics["scores"].values()))
    return {k: scores["task1"].get(k) for k in ("micro_precision", "micro_recall", "micro_f1")}


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |"


def ablation(args: argparse.Namespace, models: Path, runs: Path) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    model_flags = ("--answer-mode", "model", "--limit", str(args.eval_limit))
    hybrid_flags = ("--answer-mode", "hybrid", "--limit", str(args.eval_limit), "--adapter")
    zero_shot = _task2(evaluate(args.work, runs, "t2-zero-shot", *model_flags, "--adapter", "none"))
    table = {0: zero_shot}
    hybrid = {0: _hybrid(args.work, runs, "t2-zero-shot-hybrid", *hybrid_flags, "none")}
    for n in sizes:
        adapter = train(
            args.work, models, f"t2-{n}", "t2", "--max-examples", str(n), *args.train_flags
        )
        metrics = evaluate(args.work, runs, f"t2-{n}", *model_flags, "--adapter", adapter)
        table[n] = _task2(metrics)
        hybrid[n] = _hybrid(args.work, runs, f"t2-{n}-hybrid", *hybrid_flags, adapter)
        meta = json.loads((adapter / "ehrqa_config.json").read_text(encoding="utf-8"))
        table[n]["train_seconds"] = meta["training"]["seconds"]
        table[n]["val_loss"] = meta["training"].get("val_loss")
    lines = [
        "# Task 2 training-data-size ablation (SmolLM2-135M + LoRA)",
        "",
        f"Test split, seeded sample of {args.eval_limit} questions, `--answer-mode model` "
        "(the model's own answers; no fallback). 0 = zero-shot. Latencies are from runs that "
        "may have shared the CPU with training.",
        "",
        "| train examples | " + " | ".join(TASK2) + " | answer p50 ms | train s | val loss |",
        "|---" * (len(TASK2) + 4) + "|",
    ]
    for n, row in sorted(table.items()):
        cells = [n, *(row[k] for k in TASK2), round(row["answer_ms_p50"])]
        seconds = round(row["train_seconds"]) if "train_seconds" in row else "—"
        lines.append(_row([*cells, seconds, row.get("val_loss", "—")]))
    lines += [
        "",
        "## In the default answer mode (hybrid)",
        "",
        "The same questions with `--answer-mode hybrid`: the model's answer is shown only when "
        "it cites a selected resource, every number and date is in a cited resource, it "
        "states the key facts, cites a record of each and does not deny them; otherwise the "
        "cited extractive answer is shown.",
        "",
        "| train examples | answer acc. | METEOR | ROUGE-L | model answers shown | answer p50 ms |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in sorted(hybrid.items()):
        shown = f"{row['model_shown']} of {row['questions']}"
        scores = [row["answer_accuracy"], row["meteor"], row["rouge_l"]]
        lines.append(_row([n, *scores, shown, round(row["answer_ms_p50"])]))
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"model": table, "hybrid": hybrid}
    (args.out / "ablation.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    _plot(table, hybrid, args.out / "ablation.png")
    print(f"ablation: {args.out / 'ablation.md'}", flush=True)


def _hybrid(work: Path, runs: Path, name: str, *flags: str | Path) -> dict[str, Any]:
    """Task 2 scores of a hybrid-mode run, with how many answers were the model's own."""
    scores = _task2(evaluate(work, runs, name, *flags))
    results = json.loads((runs / name / "results.json").read_text(encoding="utf-8"))
    rows = next(iter(results["results"].values()))
    shown = sum(row["source"] == "model" for row in rows)
    return scores | {"model_shown": shown, "questions": len(rows)}


def _plot(
    table: dict[int, dict[str, float]], hybrid: dict[int, dict[str, Any]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(table)
    fig, ax = plt.subplots(figsize=(7, 5))
    for key in ("answer_accuracy", "meteor", "verified_share"):
        ax.plot(sizes, [table[n][key] for n in sizes], marker="o", label=f"{key} (model mode)")
    accuracy = [hybrid[n]["answer_accuracy"] for n in sizes]
    ax.plot(sizes, accuracy, marker="s", linestyle="--", label="answer_accuracy (hybrid)")
    ax.set_xlabel("training examples (0 = zero-shot)")
    ax.set_ylabel("score on the test sample")
    ax.set_ylim(0, 1.05)
    ax.set_title("SmolLM2-135M, Task 2, LoRA: score vs training size")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def judge(args: argparse.Namespace, models: Path, runs: Path) -> None:
    size = args.judge_size or max(int(s) for s in args.sizes.split(","))
    tuned = train(
        args.work, models, f"t2-{size}", "t2", "--max-examples", str(size), *args.train_flags
    )
    model_flags = ("--answer-mode", "model", "--limit", str(args.eval_limit))
    evaluate(args.work, runs, "t2-zero-shot", *model_flags, "--adapter", "none")
    evaluate(args.work, runs, f"t2-{size}", *model_flags, "--adapter", tuned)
    a, b = runs / f"t2-{size}", runs / "t2-zero-shot"
    for who, adapter, self_is in (("fine-tuned", str(tuned), "a"), ("zero-shot", "", "b")):
        out = args.out / f"judge-by-{who}"
        if (out / "judge.json").is_file():
            continue
        ehrqa(
            args.work,
            "eval",
            "judge",
            "--a",
            a,
            "--b",
            b,
            "--store",
            args.work / "store.sqlite3",
            "--judge",
            "smollm2",
            "--judge-adapter",
            adapter,
            "--self",
            self_is,
            "--name-a",
            f"smollm2+LoRA({size})",
            "--name-b",
            "smollm2",
            "--limit",
            str(args.judge_limit),
            "--out",
            out,
        )


def sequential(args: argparse.Namespace, models: Path, runs: Path) -> None:
    n = str(args.seq_examples)
    adapters = {
        "zero-shot": None,
        "t1": train(
            args.work, models, f"t1-llm-{n}", "t1-llm", "--max-examples", n, *args.train_flags
        ),
        "t2": train(args.work, models, f"t2-{n}", "t2", "--max-examples", n, *args.train_flags),
    }
    for order in args.seq_orders.split(";"):
        first, second = order.split(",")
        adapters[f"{first}→{second}"] = train(
            args.work,
            models,
            f"seq-{first}{second}-{n}",
            "seq",
            "--order",
            order,
            "--max-examples",
            n,
            *args.train_flags,
        )
    lines = [
        f"# Sequential fine-tuning (SmolLM2-135M + LoRA, {n} examples per task)",
        "",
        "Task 1: the `llm-pairwise` selector judging each capped candidate with the model "
        f"({args.pairwise_limit} test questions). Task 2: `--answer-mode model` "
        f"({args.eval_limit} test questions).",
        "",
        "| adapter | T1 precision | T1 recall | T1 micro-F1 "
        "| T2 accuracy | T2 METEOR | T2 verified |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, adapter in adapters.items():
        flags = ("--adapter", adapter or "none")
        slug = name.replace("→", "-")
        t1 = _task1(
            evaluate(
                args.work,
                runs,
                f"seq-study-t1-{slug}",
                "--selector",
                "llm-pairwise",
                "--answer-mode",
                "none",
                "--limit",
                str(args.pairwise_limit),
                *flags,
            )
        )
        # The zero-shot and t2 runs are the ablation's own (same flags), reused when present.
        t2_run = {"zero-shot": "t2-zero-shot", "t2": f"t2-{n}"}.get(name, f"seq-study-t2-{slug}")
        t2 = _task2(
            evaluate(
                args.work,
                runs,
                t2_run,
                "--answer-mode",
                "model",
                "--limit",
                str(args.eval_limit),
                *flags,
            )
        )
        lines.append(
            _row(
                [
                    name,
                    t1["micro_precision"],
                    t1["micro_recall"],
                    t1["micro_f1"],
                    t2["answer_accuracy"],
                    t2["meteor"],
                    t2["verified_share"],
                ]
            )
        )
    (args.out / "sequential.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


RERANKERS = {  # name → `ehrqa train t1` flags
    "full-2ep": ("--epochs", "2", "--lr", "5e-5"),
    "lora32-3ep": ("--lora-rank", "32", "--epochs", "3", "--lr", "5e-4"),
}


def rerankers(args: argparse.Namespace, models: Path, runs: Path) -> None:
    """Train each reranker variant, then compare it with the rule-based selector on test."""
    lines = [
        "# Task 1: fine-tuned MiniLM reranker vs the rule-based selector (test split)",
        "",
        "`ehrqa eval --split test --selector default,rerank --answer-mode extractive` on all "
        "240 test questions; the cut-off (mode, threshold) was tuned on the val split.",
        "",
        "| selector | P | R | micro-F1 | macro-F1 | answer acc. | select p50 / p95 ms "
        "| train s | val AUC | cut-off |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, flags in RERANKERS.items():
        model = train(args.work, models, f"reranker-{name}", "t1", *flags)
        meta = json.loads((model / "ehrqa_config.json").read_text(encoding="utf-8"))
        metrics = evaluate(
            args.work,
            runs,
            f"t1-rerank-{name}",
            "--selector",
            "default,rerank",
            "--answer-mode",
            "extractive",
            env={"EHRQA_RERANKER": str(model)},
        )
        for selector, scores in metrics["scores"].items():
            if selector == "default" and name != next(iter(RERANKERS)):
                continue  # the rule-based row once
            t1, cost = scores["task1"], scores["cost"]
            label = "default (rules)" if selector == "default" else f"rerank {name}"
            trained = selector != "default"
            cutoff = meta["selector"]
            lines.append(
                _row(
                    [
                        label,
                        t1["micro_precision"],
                        t1["micro_recall"],
                        t1["micro_f1"],
                        t1["macro_f1"],
                        scores["task2"]["answer_accuracy"],
                        f"{cost['select_ms_p50']:.1f} / {cost['select_ms_p95']:.0f}",
                        round(meta["training"]["seconds"]) if trained else "—",
                        meta["metrics"]["val"]["auc"] if trained else "—",
                        f"{cutoff['mode']} {cutoff['threshold']}" if trained else "—",
                    ]
                )
            )
    (args.out / "reranker.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"rerankers: {args.out / 'reranker.md'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("data/benchmark"))
    parser.add_argument("--out", type=Path, default=Path("reports/finetune"))
    parser.add_argument("--sizes", default="100,200,400")
    parser.add_argument("--eval-limit", type=int, default=60)
    parser.add_argument("--judge-limit", type=int, default=30)
    parser.add_argument(
        "--judge-size", type=int, help="the fine-tuned answerer judged (default: largest --sizes)"
    )
    parser.add_argument("--pairwise-limit", type=int, default=12)
    parser.add_argument("--seq-examples", type=int, default=200)
    parser.add_argument("--seq-orders", default="t1,t2;t2,t1", help="';'-separated orders")
    parser.add_argument("--steps", default="t1,ablation,judge,seq")
    parser.add_argument(
        "--train-flags",
        default="--batch-size 8 --max-length 1024",
        help="extra flags for every `ehrqa train` command",
    )
    args = parser.parse_args(argv)
    args.train_flags = args.train_flags.split()
    if not (args.work / "qa" / "qa.jsonl").is_file():
        print(f"no {args.work}/qa/qa.jsonl: run benchmarks/qa_benchmark.sh first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    models, runs = args.work / "models", args.work / "runs"
    steps = set(args.steps.split(","))
    if "t1" in steps:
        rerankers(args, models, runs)
    if "ablation" in steps:
        ablation(args, models, runs)
    if "judge" in steps:
        judge(args, models, runs)
    if "seq" in steps:
        sequential(args, models, runs)
    print(f"reports in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
