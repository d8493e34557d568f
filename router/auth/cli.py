"""``signalroute keys create | list | revoke``: the administrator's side of API keys.

The commands open the same store as the service (``SIGNALROUTE_DATABASE_URL``, or the
embedded server under ``SIGNALROUTE_DATA_DIR``, shared with a running service).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from typing import TypeVar

from router.auth.caller import DEFAULT_SCOPES, SCOPES
from router.auth.tokens import display_prefix, hash_token, new_token
from router.settings import Settings
from store import api_keys
from store.database import Database
from store.records import ApiKeyRecord

T = TypeVar("T")


def add_keys_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys`` and its sub-commands on the ``signalroute`` parser."""
    keys = commands.add_parser("keys", help="create, list and revoke API keys (tenants)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key bound to a tenant; prints it once")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument("--name", help="a label, e.g. the application that uses the key")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        dest="scopes",
        help="what the key may do; repeat for several: route (route and run requests), "
        "feedback (send rewards), read (policies, requests, dashboard), admin (all of "
        f"them). Default: {' + '.join(DEFAULT_SCOPES)}",
    )
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a key: its requests get 401 from now on")
    revoke.add_argument("id", help="the key's id, as `keys list` shows it")
    revoke.set_defaults(handler=_revoke)


def _with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    from router.runtime import open_database  # the runtime's imports are heavy: load on use

    async def run() -> T:
        async with AsyncExitStack() as stack:
            database = await open_database(Settings(), stack)
            return await action(database)

    return asyncio.run(run())


def _create(args: argparse.Namespace) -> int:
    token = new_token()

    async def create(database: Database) -> ApiKeyRecord:
        async with database.connection() as conn:
            return await api_keys.insert_key(
                conn,
                tenant=args.tenant,
                name=args.name,
                prefix=display_prefix(token),
                key_hash=hash_token(token),
                scopes=args.scopes or DEFAULT_SCOPES,
            )

    key = _with_database(create)
    print(f"id:     {key.id}")
    print(f"tenant: {key.tenant}")
    print(f"scopes: {scope_list(key)}" + ("" if args.scopes else " (the default)"))
    if key.name:
        print(f"name:   {key.name}")
    print(f"key:    {token}")
    print(
        "This is the only time the key is shown: signalroute keeps only its sha256.",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    async def listing(database: Database) -> list[ApiKeyRecord]:
        async with database.connection() as conn:
            return await api_keys.list_keys(conn, tenant=args.tenant)

    keys = _with_database(listing)
    if not keys:
        print("no API keys" + (f" for tenant {args.tenant!r}" if args.tenant else ""))
        return 0
    print(
        f"{'id':36}  {'tenant':16}  {'key':13}  {'scopes':20}  {'created':20}  {'status':28}  name"
    )
    for key in keys:
        status = "active" if key.revoked_at is None else f"revoked {_when(key.revoked_at)}"
        print(
            f"{key.id!s:36}  {key.tenant:16}  {key.prefix + '...':13}  {scope_list(key):20}  "
            f"{_when(key.created_at):20}  {status:28}  {key.name or ''}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    async def revoke(database: Database) -> ApiKeyRecord:
        async with database.connection() as conn:
            return await api_keys.revoke_key(conn, args.id)

    key = _with_database(revoke)
    print(f"revoked API key {key.id} ({key.prefix}..., tenant {key.tenant!r})")
    return 0


def scope_list(key: ApiKeyRecord) -> str:
    """The key's scopes in their canonical order, comma-separated."""
    return ",".join(scope for scope in SCOPES if scope in key.scopes)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
