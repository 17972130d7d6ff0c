"""``ehrqa tokens …``: create, list and revoke the bearer tokens of ``ehrqa serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from ehrqa.api.tokens import TokenStore
from ehrqa.cli_support import err, out, print_json, state

tokens_app = typer.Typer(
    help="Bearer tokens for the HTTP service: admin, or scoped to some patients.",
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(ctx: typer.Context) -> TokenStore:
    return TokenStore.in_home(state(ctx).config().home)


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
    """Create a token and print it once: only its hash is kept."""
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
