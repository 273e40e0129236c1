"""job runner state: the running phase and its backend handle, for adoption

Revision ID: 7b2e4c91d0aa
Revises: 301e1a06737f
Create Date: 2026-11-30 17:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b2e4c91d0aa'
down_revision = '301e1a06737f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runner_state', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.drop_column('runner_state')
