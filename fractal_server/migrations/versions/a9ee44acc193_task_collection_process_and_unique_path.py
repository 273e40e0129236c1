"""task collection process and unique path

Revision ID: a9ee44acc193
Revises: 85ed12dad0fe
Create Date: 2026-11-21 21:50:38.763023

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'a9ee44acc193'
down_revision = '85ed12dad0fe'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('taskgroupactivityv2', schema=None) as batch_op:
        batch_op.add_column(sa.Column('process_id', sa.String(), nullable=True))

    with op.batch_alter_table('taskgroupv2', schema=None) as batch_op:
        if op.get_bind().dialect.name == 'postgresql':
            # JSON keeps the order of the pins (JSONB sorts keys).
            batch_op.alter_column('pinned_package_versions', server_default=None)
            batch_op.alter_column(
                'pinned_package_versions',
                existing_type=postgresql.JSONB(astext_type=sa.Text()),
                type_=sa.JSON(),
                existing_nullable=False,
                postgresql_using='pinned_package_versions::json',
            )
            batch_op.alter_column('pinned_package_versions', server_default='{}')
        batch_op.create_index(
            'ix_taskgroupv2_path_unique', ['path'], unique=True,
            postgresql_where=sa.text('path IS NOT NULL'), sqlite_where=sa.text('path IS NOT NULL'),
        )


def downgrade():
    with op.batch_alter_table('taskgroupv2', schema=None) as batch_op:
        batch_op.drop_index('ix_taskgroupv2_path_unique')
        if op.get_bind().dialect.name == 'postgresql':
            batch_op.alter_column('pinned_package_versions', server_default=None)
            batch_op.alter_column(
                'pinned_package_versions',
                existing_type=sa.JSON(),
                type_=postgresql.JSONB(astext_type=sa.Text()),
                existing_nullable=False,
                postgresql_using='pinned_package_versions::jsonb',
            )
            batch_op.alter_column('pinned_package_versions', server_default='{}')

    with op.batch_alter_table('taskgroupactivityv2', schema=None) as batch_op:
        batch_op.drop_column('process_id')
