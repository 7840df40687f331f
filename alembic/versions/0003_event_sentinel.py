"""events._sentinel: SQLAlchemy's insert sentinel, so that many events go in one INSERT

With SQLite, SQLAlchemy inserted the events of an agent batch one statement at a time: it
needs each new row's id, in order, and SQLite cannot tie new rowids to the order of the rows
of one INSERT. A nullable integer column that SQLAlchemy fills during such inserts
(``sqlalchemy.orm.orm_insert_sentinel``) lets it send them as one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('events', sa.Column('_sentinel', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.drop_column('_sentinel')
