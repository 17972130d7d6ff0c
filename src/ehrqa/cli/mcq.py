"""``ehrqa eval mcq``: the medical multiple-choice benchmark command (registered in cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ehrqa.cli.support import ADAPTER_HELP, err, print_json, progress, state
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import BackendUnavailableError
from ehrqa.lab.eval.mcq import FORMATS, METHODS, Retriever

DEFAULT_OUT = Path("reports/mcq")


def eval_mcq(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", help="Benchmark file, or a folder of MMLU CSVs.")],
    format: Annotated[
        str | None,
        typer.Option("--format", help=f"{' | '.join(FORMATS)} (default: detected)."),
    ] = None,
    rag: Annotated[
        bool, typer.Option("--rag", help="Put passages of the hospital document library first.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(help="Seeded sample of N questions per subset.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Chat model spec.")] = None,
    adapter: Annotated[str | None, typer.Option(help=ADAPTER_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    method: Annotated[
        str, typer.Option(help=f"Scoring: {' | '.join(METHODS)} (auto = best the model has).")
    ] = "auto",
    rag_k: Annotated[int, typer.Option(help="Passages retrieved per question.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Accuracy on medical multiple-choice questions (MIRAGE, MedMCQA, PubMedQA, MMLU)."""
    from ehrqa.lab.eval.mcq import MCQConfig, read_mcq, run_mcq, summarize, write_mcq_report
    from ehrqa.llm import load_chat_model

    cfg = state(ctx).config(model=model, adapter=adapter)
    config = MCQConfig(
        file=str(file),
        format=format,
        model=cfg.model,
        adapter=cfg.adapter,
        method=method,
        rag=rag,
        rag_k=rag_k,
        limit=limit,
        seed=seed,
        n_ctx=cfg.n_ctx,
    )
    dataset = read_mcq(file, format)
    config.format = dataset.format
    chat = load_chat_model(
        cfg.model,
        n_ctx=cfg.n_ctx,
        n_threads=cfg.n_threads or None,
        adapter=cfg.adapter or None,
        seed=cfg.seed,
        task="mcq",
    )
    with ExitStack() as stack, progress("mcq") as bar:
        retrieve = stack.enter_context(library_retriever(cfg, rag_k)) if rag else None
        task = bar.add_task("mcq", total=len(dataset.items) if limit is None else None, name="")
        run = run_mcq(config, chat, dataset, retrieve, lambda item: bar.advance(task))
    summary = summarize(run.predictions)
    paths = write_mcq_report(run, summary, out or DEFAULT_OUT)
    if json_out:
        print_json({"summary": summary, "files": paths})
    else:
        typer.echo(Path(paths["report"]).read_text(encoding="utf-8"))
    err.print(f"written: {', '.join(paths.values())}", markup=False)


@contextmanager
def library_retriever(cfg: EhrqaConfig, k: int) -> Iterator[Retriever]:
    """``retrieve(question)`` over the hospital document library in ``cfg.home``, open while
    the context lasts: the ``k`` best chunks (hybrid search) as (citation, text)."""
    try:
        from ehrqa.docs import open_library  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise BackendUnavailableError(
            "--rag needs the hospital document library (ehrqa.docs.open_library), which this "
            "installation lacks: update ehrqa, or run without --rag"
        ) from exc
    library = open_library(cfg.home, embedder=cfg.embedder)

    def retrieve(question: str) -> list[tuple[str, str]]:
        return [(hit.chunk.citation, hit.chunk.text) for hit in library.search(question, k=k)]

    try:
        yield retrieve
    finally:
        library.close()
