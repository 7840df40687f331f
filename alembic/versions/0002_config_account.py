"""config_versions.account: the passivbot account (live.user) a config names

A host's credential set was found by parsing every config document on the host at each
instance create, start, move or config change (1,000 instances: ~13 times slower creates at
the end than at the start). The account now sits beside the document.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:55:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account(document: Any) -> str | None:
    # As botfleet.fleet.accounts.account_of, written out: a migration must not change when
    # the application code does.
    if isinstance(document, str):
        document = json.loads(document)
    live = document.get("live") if isinstance(document, dict) else None
    user = live.get("user") if isinstance(live, dict) else None
    return user[:128] if isinstance(user, str) and user else None


def upgrade() -> None:
    op.add_column('config_versions', sa.Column('account', sa.String(length=128), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, document FROM config_versions")).all()
    for row_id, document in rows:
        account = _account(document)
        if account is not None:
            bind.execute(sa.text("UPDATE config_versions SET account = :account WHERE id = :id"),
                         {"account": account, "id": row_id})


def downgrade() -> None:
    with op.batch_alter_table('config_versions') as batch:
        batch.drop_column('account')
