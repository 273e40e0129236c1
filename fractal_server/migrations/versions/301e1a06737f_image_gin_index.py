"""image gin index

On PostgreSQL, one three-column GIN index over (dataset id as JSON,
attributes, types), `jsonb_path_ops`, without a pending list (`fastupdate`
off), replaces the two per-column GIN indexes: image filters then find the
matching rows of one dataset without touching other datasets' rows, and
queries never scan a pending list of recent inserts. On other databases the
per-column indexes are plain and unused by filters: they are dropped too.

Revision ID: 301e1a06737f
Revises: a9ee44acc193
Create Date: 2026-11-21 22:20:33.153266

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '301e1a06737f'
down_revision = 'a9ee44acc193'
branch_labels = None
depends_on = None

GIN_INDEX = (
    "CREATE INDEX ix_imagev2_gin ON imagev2 USING gin ("
    "(dataset_id::text::jsonb) jsonb_path_ops, attributes jsonb_path_ops, types jsonb_path_ops"
    ") WITH (fastupdate = off)"
)


def upgrade():
    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.drop_index('ix_imagev2_attributes_gin', postgresql_using='gin', postgresql_ops={'attributes': 'jsonb_path_ops'})
        batch_op.drop_index('ix_imagev2_types_gin', postgresql_using='gin', postgresql_ops={'types': 'jsonb_path_ops'})
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GIN_INDEX)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_imagev2_gin")
    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.create_index('ix_imagev2_types_gin', ['types'], unique=False, postgresql_using='gin', postgresql_ops={'types': 'jsonb_path_ops'})
        batch_op.create_index('ix_imagev2_attributes_gin', ['attributes'], unique=False, postgresql_using='gin', postgresql_ops={'attributes': 'jsonb_path_ops'})
