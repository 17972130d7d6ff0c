"""``ehrqa docs``: thin commands over :mod:`ehrqa.docs` (add, list, search, show, remove,
reindex). Library errors propagate; the main entry point prints them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ehrqa.cli.support import out, print_json, progress, state
from ehrqa.docs.library import DocHit, DocumentLibrary, open_library
from ehrqa.docs.load import find_documents

docs_app = typer.Typer(
    help="Hospital documents (guidelines, protocols…): add them, then search them.",
    no_args_is_help=True,
)
SNIPPET_CHARS = 160

EmbedderOption = Annotated[
    str | None,
    typer.Option(
        "--embedder", help="minilm | PATH (sentence-transformers) | hash | none (BM25 only)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _library(
    ctx: typer.Context, embedder: str | None, *, for_reindex: bool = False
) -> DocumentLibrary:
    cfg = state(ctx).config()
    spec = embedder or cfg.embedder
    return open_library(
        cfg.home, embedder=None if spec == "none" else spec, for_reindex=for_reindex
    )


@docs_app.command("add")
def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md .txt .html .pdf).")],
    doc_type: Annotated[
        str | None, typer.Option("--type", help="Document type when front matter has none.")
    ] = None,
    embedder: EmbedderOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add documents; unchanged ones are skipped, changed ones replaced. Exits 1 on errors."""
    files = find_documents(paths)
    with _library(ctx, embedder) as library, progress("adding", disable=json_out) as bar:
        task = bar.add_task("adding", total=len(files), name="")
        report = library.add(
            files, doc_type=doc_type, on_file=lambda p: bar.update(task, advance=1, name=p.name)
        )
    if json_out:
        print_json(report.to_dict())
    else:
        for outcome in report.files:
            if outcome.status in ("duplicate", "skipped", "error"):
                out.print(f"{outcome.status}: {escape(outcome.path)}: {escape(outcome.reason)}")
        out.print(report.summary())
    if report.errors:
        raise typer.Exit(1)


@docs_app.command("list")
def list_documents(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """List the documents in the library."""
    with _library(ctx, "none") as library:
        docs = library.documents()
    if json_out:
        print_json([d.__dict__ for d in docs])
        return
    table = Table("id", "title", "type", "date", "chunks", "source")
    for d in docs:
        row = (d.id, d.title, d.doc_type, d.date or "", str(d.chunks), d.source)
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)


@docs_app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("--k", help="How many chunks.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid | bm25 | dense")] = "hybrid",
    doc_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only these document types.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Documents dated on/after YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Documents dated on/before YYYY-MM-DD.")] = None,
    rerank: Annotated[str | None, typer.Option(help="CrossEncoder folder to rerank with.")] = None,
    embedder: EmbedderOption = None,
    json_out: JsonOption = False,
) -> None:
    """Search the documents: rank, citation, title > section, score and a snippet."""
    with _library(ctx, embedder) as library:
        hits = library.search(
            query, k=k, mode=mode, doc_types=doc_type or (), since=since, until=until,
            rerank=rerank,
        )  # fmt: skip
    if json_out:
        print_json([_hit_json(h) for h in hits])
        return
    if not hits:
        out.print("no matching chunks")
    for rank, hit in enumerate(hits, start=1):
        where = " > ".join(p for p in (hit.chunk.title, hit.chunk.section) if p)
        out.print(f"{rank}. {escape(hit.chunk.citation)} {escape(where)}  score {hit.score:.4f}")
        out.print(f"   {escape(_snippet(hit.chunk.text))}")


def _hit_json(hit: DocHit) -> dict[str, Any]:
    extra = {"citation": hit.chunk.citation, "similarity": hit.similarity}
    return {**hit.chunk.__dict__, "score": hit.score, "ranks": hit.ranks, **extra}


def _snippet(text: str) -> str:
    body = [line for line in text.split("\n") if line.strip() and not line.startswith("#")]
    flat = " ".join(" ".join(body).split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


@docs_app.command("show")
def show(
    ctx: typer.Context,
    chunk_id: Annotated[str, typer.Argument(help="A chunk id, e.g. diabetes-type-2#3.")],
    json_out: JsonOption = False,
) -> None:
    """Print one chunk with its document details."""
    with _library(ctx, "none") as library:
        chunk = library.chunk(chunk_id)
    if json_out:
        print_json({**chunk.__dict__, "citation": chunk.citation})
        return
    head = f"{chunk.citation} {chunk.title} ({chunk.doc_type}, {chunk.date or 'undated'})"
    out.print(escape(head))
    out.print(f"section: {escape(chunk.section or '-')}   source: {escape(chunk.source)}\n")
    out.print(escape(chunk.text))


@docs_app.command("remove")
def remove(
    ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="A document id.")]
) -> None:
    """Remove a document and its chunks."""
    with _library(ctx, "none") as library:
        library.remove(doc_id)
    out.print(f"removed {doc_id}")


@docs_app.command("reindex")
def reindex(ctx: typer.Context, embedder: EmbedderOption = None) -> None:
    """Re-embed every chunk with the configured (or --embedder) embedder."""
    with _library(ctx, embedder, for_reindex=True) as library:
        count = library.reindex()
        name = library.embedder.name if library.embedder else "none"
    out.print(f"re-embedded {count} chunks with {name}")
