"""``crewgate keys``: create, list and revoke API keys, directly on CREWGATE_DATABASE_URL.

Creating the first key turns auth on for every gateway on that database (within a few
seconds); from then on every /v1 route needs a key or a JWT, even after all keys are revoked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.scopes import SCOPES

if TYPE_CHECKING:
    from gateway.store import ApiKeyRecord, SqlStore

__all__ = ["keys_app"]

keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed in CREWGATE_DATABASE_URL).")
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
R = TypeVar("R")


def _on_store(work: Callable[[SqlStore], Awaitable[R]]) -> R:
    from gateway.settings import get_settings
    from gateway.store import open_store

    async def run() -> R:
        store = open_store(get_settings().database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="who or what uses it")],
    scopes: Annotated[str, typer.Option("--scopes", help=f"comma-separated: {', '.join(SCOPES)}")],
    expires: Annotated[str | None, typer.Option("--expires", help="30d, 12h, 45m, or an ISO 8601 time")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from gateway.auth import new_key, parse_expiry, parse_scopes

    err = Console(stderr=True, highlight=False)
    try:
        granted = parse_scopes(scopes)
        expires_at = parse_expiry(expires, datetime.now(UTC)) if expires else None
    except ValueError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if not name.strip() or len(name) > 200 or not name.isprintable():
        err.print("[red]error:[/] --name must be 1-200 printable characters")
        raise typer.Exit(EXIT_BAD_INPUT)
    key, record = new_key(name.strip(), granted, expires_at)
    _on_store(lambda store: store.create_key(record))
    print(key)
    err.print(
        f"created key {record.id} ({escape(record.name)}; scopes {', '.join(granted)}; expires "
        f"{_when(expires_at)}). Store it now: it cannot be shown again.",
        soft_wrap=True,
    )


@keys_app.command("list")
def list_keys() -> None:
    """Every key, revoked ones too; never a secret."""
    records: list[ApiKeyRecord] = _on_store(lambda store: store.list_keys())
    table = Table("id", "name", "prefix", "scopes", "created", "expires", "revoked", "last used", box=None)
    for r in records:
        table.add_row(
            r.id,
            escape(r.name),
            r.prefix,
            ",".join(r.scopes),
            _when(r.created_at),
            _when(r.expires_at),
            _when(r.revoked_at),
            _when(r.last_used_at),
        )
    Console(highlight=False, width=200).print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (cgk_<id>_…), as `keys list` shows")]) -> None:
    """Revoke a key: it and its JWTs are refused within seconds on every gateway."""
    key_id = key_id.removeprefix("cgk_").split("_")[0]
    record = _on_store(lambda store: store.revoke_key(key_id))
    if record is None:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] no key with id {escape(key_id)!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    Console(highlight=False).print(f"revoked key {record.id} ({escape(record.name)}) at {_when(record.revoked_at)}")
