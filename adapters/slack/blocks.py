"""Slack's formatting: mrkdwn escapes, and a reply as Block Kit blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.models import Attachment, Button


def escape(text: str) -> str:
    """The three characters Slack's mrkdwn reserves, so a reply shows literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack's escapes of the three characters, undone (a user's text as they typed it)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def blocks_for(
    text: str, buttons: Sequence[tuple[Button, str]], attachments: Sequence[Attachment]
) -> list[dict[str, Any]]:
    """A section for the text, image blocks for images with a URL, links for other files, and one
    actions block with a button per (button, value sent)."""
    blocks: list[dict[str, Any]] = []
    links = [a for a in attachments if a.url and a.kind != "image"]
    if links:
        listed = "\n".join(f"<{a.url}|{escape(a.name or a.url or '')}>" for a in links)
        text = f"{text}\n{listed}" if text else listed
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    for a in attachments:
        if a.kind == "image" and a.url:
            blocks.append({"type": "image", "image_url": a.url, "alt_text": a.name or "image"})
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"choice_{i}",
                        "text": {"type": "plain_text", "text": b.label, "emoji": True},
                        "value": value,
                    }
                    for i, (b, value) in enumerate(buttons)
                ],
            }
        )
    return blocks
