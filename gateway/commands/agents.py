"""`agents`: the support team's console accounts (add, list, password, token) and the
conversation store's migrations (`agents migrate`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from core.errors import StartupError
from gateway.commands._common import add_log_level, settings_from
from gateway.console.roles import ROLES
from gateway.desk import Desk, build_desk

MIN_PASSWORD = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="console accounts of the support team")
    add_log_level(p)
    what = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = what.add_parser("add", help="add an agent (password prompted, or read from stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=sorted(ROLES), default="agent")
    pw = what.add_parser("password", help="set an agent's password (signs them out everywhere)")
    pw.add_argument("name")
    tok = what.add_parser("token", help="print a new API token for an agent (kept only hashed)")
    tok.add_argument("name")
    what.add_parser("list", help="list the agents")
    what.add_parser("migrate", help="bring the conversation store to the newest schema")
    p.set_defaults(func=run)


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise StartupError("the two passwords differ")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if len(first) < MIN_PASSWORD:
        raise StartupError(f"a password needs at least {MIN_PASSWORD} characters")
    return first


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    password = _password() if args.action in ("add", "password") else ""
    return asyncio.run(_run(args, build_desk(settings), password))


async def _run(args: argparse.Namespace, desk: Desk, password: str) -> int:
    try:
        return await _act(args, desk, password)
    finally:
        await desk.events.close()


async def _act(args: argparse.Namespace, desk: Desk, password: str) -> int:
    from core.errors import AgentExists

    async with desk.db:
        if args.action == "migrate":
            print(f"conversation store at revision {await desk.db.revision()}")
        elif args.action == "add":
            try:
                agent = await desk.agents.add(args.name, args.role, password)
            except AgentExists:
                raise StartupError(f"an agent named {args.name!r} exists already") from None
            print(f"added {agent.name} ({agent.role})")
        elif args.action == "password":
            if not await desk.agents.set_password(args.name, password):
                raise StartupError(f"no agent named {args.name!r}")
            print(f"password of {args.name} changed")
        elif args.action == "token":
            agent = await desk.agents.get(args.name)
            if agent is None:
                raise StartupError(f"no agent named {args.name!r}")
            secret, _ = await desk.agents.start_session(agent.id, "token", None)
            print(secret)
        else:
            for a in await desk.agents.all():
                print(f"{a.name}\t{a.role}")
    return 0
