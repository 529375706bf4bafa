"""spam defence: quarantine reason, single-use proof-of-work nonces

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proof_nonces",
        sa.Column("nonce_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce_id", name=op.f("pk_proof_nonces")),
    )
    with op.batch_alter_table("proof_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proof_nonces_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quarantine_reason", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("quarantine_reason")
    with op.batch_alter_table("proof_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proof_nonces_expires_at"))
    op.drop_table("proof_nonces")
