"""review: a reviewer's label on a recorded turn (the review inbox)

Revision ID: 0003
Revises: 0002
Create Date: the labels of the review inbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("example", sa.Text(), nullable=True),
        sa.Column("predicted", sa.String(length=128), nullable=True),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reviewer_id"], ["agents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("turn_id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_label"), ["label"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_predicted"), ["predicted"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_predicted"))
        batch_op.drop_index(batch_op.f("ix_reviews_label"))
        batch_op.drop_index(batch_op.f("ix_reviews_at"))
    op.drop_table("reviews")
