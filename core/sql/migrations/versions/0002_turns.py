"""turns: every turn of the bot, with its outcome and the customer's feedback

Revision ID: 0002
Revises: 0001
Create Date: the turns the insights and the review inbox read
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("ranking", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("flow", sa.String(length=128), nullable=True),
        sa.Column("flow_end", sa.String(length=16), nullable=True),
        sa.Column("latency", sa.Float(), nullable=True),
        sa.Column("asked_feedback", sa.Boolean(), nullable=False),
        sa.Column("feedback", sa.String(length=8), nullable=True),
        sa.Column("feedback_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "key", name="uq_turns_key"),
    )
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.create_index("ix_turns_channel_at", ["channel", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_turns_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_turns_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_turns_intent"), ["intent"], unique=False)
        batch_op.create_index(batch_op.f("ix_turns_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turns_outcome"))
        batch_op.drop_index(batch_op.f("ix_turns_intent"))
        batch_op.drop_index(batch_op.f("ix_turns_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_turns_at"))
        batch_op.drop_index("ix_turns_channel_at")
    op.drop_table("turns")
