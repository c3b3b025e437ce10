"""The contact push ledger (`contacts push`; README, "Phonebooks"): one row per number per (provider account, book), its state
(pending, pushing, added, failed, unknown) and the provider's reason; `campaigns/store/contacts.py`.

Revision ID: 0008_contacts
Revises: 0007_budget
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0008_contacts"
down_revision = "0007_budget"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_pushes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("book", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fields", sa.Text, nullable=False, server_default="{}"),
        sa.Column("row", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("account", "book", "phone", name="uq_contact_pushes_number"),
    )
    op.create_index("ix_contact_pushes_state", "contact_pushes", ["account", "book", "state"])


def downgrade() -> None:
    op.drop_index("ix_contact_pushes_state", table_name="contact_pushes")
    op.drop_table("contact_pushes")
