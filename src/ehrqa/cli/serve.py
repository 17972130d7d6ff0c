"""``ehrqa tokens …``: create, list and revoke the bearer tokens of ``ehrqa serve``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ehrqa.api.tokens import TokenStore, unknown_patients
from ehrqa.cli.support import err, open_store, out, print_json, state
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import ConfigError
from ehrqa.store.sqlite import HOME_STORE_FILE

tokens_app = typer.Typer(
    help="Bearer tokens for the HTTP service: admin, or scoped to some patients.",
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(ctx: typer.Context) -> TokenStore:
    return TokenStore.in_home(state(ctx).config().home)


def _check_patients(cfg: EhrqaConfig, patients: Sequence[str]) -> None:
    """ConfigError naming the patient ids the configured record store does not hold.

    Without a store yet (no ``--store`` and no store in the data directory) the ids cannot
    be checked: a note says so, and the token is created.
    """
    if not patients:
        return
    if not cfg.store and not (Path(cfg.home) / HOME_STORE_FILE).is_file():
        err.print("note: there is no record store yet, so the patient ids were not checked")
        return
    store = open_store(cfg)
    try:
        missing = unknown_patients(store, patients)
    finally:
        store.close()
    if missing:
        raise ConfigError(
            f"no patient {', '.join(repr(m) for m in missing)} in the record store: "
            "`ehrqa patients` lists the ids (ingest the records first)"
        )


@tokens_app.command()
def create(
    ctx: typer.Context,
    label: Annotated[str, typer.Option(help="A unique name, shown in lists and audit lines.")],
    patient: Annotated[
        list[str] | None, typer.Option("--patient", "-p", help="A patient id (repeatable).")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="All patients, and ingest.")] = False,
    role: Annotated[
        str | None,
        typer.Option(
            help="clinician (every tool) or patient (no decision support); "
            "default: clinician for --admin, patient for --patient."
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Create a token and print it once: only its hash is kept.

    Each --patient must be in the record store, when there is one.
    """
    _check_patients(state(ctx).config(), patient or ())
    store = _store(ctx)
    try:
        token = store.create(label, admin=admin, patients=patient or (), role=role)
    finally:
        store.close()
    if json_out:
        print_json({"label": label.strip(), "token": token})
        return
    out.print(token, markup=False)
    err.print(
        f"token {label.strip()!r} created: copy it now, it cannot be shown again "
        "(send it as 'Authorization: Bearer TOKEN')",
        markup=False,
    )


@tokens_app.command("list")
def list_tokens(ctx: typer.Context, json_out: Json = False) -> None:
    """List tokens: label, scope, created, last used, revoked (never the token)."""
    store = _store(ctx)
    try:
        found = store.list()
    finally:
        store.close()
    if json_out:
        print_json([info.to_dict() for info in found])
        return
    if not found:
        err.print("no tokens: create one with `ehrqa tokens create --label NAME --admin`")
    for info in found:
        status = f"revoked {info.revoked}" if info.revoked else "active"
        used = info.last_used or "never used"
        typer.echo(
            f"{info.label}\t{info.scope}\t{info.role}\tcreated {info.created}\t{used}\t{status}"
        )


@tokens_app.command()
def revoke(
    ctx: typer.Context,
    label: Annotated[str, typer.Argument(help="The label of the token to revoke.")],
) -> None:
    """Revoke a token at once (its label stays taken)."""
    store = _store(ctx)
    try:
        store.revoke(label)
    finally:
        store.close()
    out.print(f"token {label!r} revoked", markup=False)
