"""job executor claim

Revision ID: 85ed12dad0fe
Revises: 50e35268c97e
Create Date: 2026-11-21 20:37:17.354010

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '85ed12dad0fe'
down_revision = '50e35268c97e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.add_column(sa.Column('executor_id', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('executor_heartbeat', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.drop_column('executor_heartbeat')
        batch_op.drop_column('executor_id')

