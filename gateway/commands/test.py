"""`test [DIR]`: play the YAML conversation stories through the real pipeline and the product's
intent model and flows; exit status 1 when any story fails."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.errors import StartupError
from gateway.commands._common import add_log_level, settings_from
from gateway.lifecycle import run_parts
from gateway.model_and_flows import ModelAndFlows, load_model_and_flows
from gateway.stories import StoryReport, run_stories, story_settings
from integrations.shop import Shop


def register(sub: Any) -> None:
    p = sub.add_parser(
        "test",
        help="run the conversation stories (tests/stories) through the real bot",
        description=(
            "Play each story in DIR (default tests/stories): user turns (text, a button press by "
            "label, or a raw payload) go through the queue, the engine, the intent model and the "
            "flows, and each turn's replies, flow, slots and handoff are checked. Uses the "
            "product's trained intent model (train it first). Exit status 1 on any failure."
        ),
    )
    p.add_argument("dir", nargs="?", type=Path, default=None)
    p.add_argument(
        "--report",
        action="store_true",
        help=(
            "the conversation benchmark (default DIR tests/conversations): play every turn, "
            "judge each on its own, print the share of turns handled well and each miss"
        ),
    )
    p.add_argument(
        "--floor",
        type=float,
        default=None,
        help="with --report: exit status 1 when the share of turns handled well is below this",
    )
    add_log_level(p)
    p.set_defaults(func=run, log_level="warning")


def run(args: argparse.Namespace) -> int:
    if args.dir is None:
        args.dir = Path("tests/conversations" if args.report else "tests/stories")
    if not args.dir.exists():
        # Checked before the model and flows load: that may train the intent model for minutes.
        raise StartupError(f"{args.dir}: no such story file or directory (default tests/stories)")
    settings = story_settings(settings_from(args))
    shop = Shop()
    loaded = load_model_and_flows(settings, shop=shop)
    report = asyncio.run(_play(args.dir, loaded, settings, args.report, shop))
    if not args.report:
        print(report.format())
        return 0 if report.passed else 1
    print(report.format_score())
    if args.floor is not None and report.share < args.floor:
        print(f"below the floor of {100 * args.floor:.1f}%")
        return 1
    return 0


async def _play(
    directory: Path, loaded: ModelAndFlows, settings: Settings, score: bool, shop: Shop
) -> StoryReport:
    async with run_parts(loaded.parts(background=False)):
        return await run_stories(
            directory, loaded.nlu, loaded.dialogue, settings, score=score, shop=shop
        )
