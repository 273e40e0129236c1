"""json documents keep key order

On PostgreSQL, the JSON documents that users and task authors write (task
argument schemas and meta, workflow-task arguments, meta and input filters,
dataset filters and history, job dumps, user settings, group viewer paths)
become `json` instead of `jsonb`, so that they are read back with their keys
in the order given. Image attributes and types stay `jsonb`: image filters
look inside them, through their GIN index. Documents stored before this
migration keep the key order `jsonb` gave them. Nothing changes on SQLite,
which stores both as text.

Revision ID: d0c6af8b1960
Revises: 7b2e4c91d0aa
Create Date: 2026-11-22 10:12:41.518203

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'd0c6af8b1960'
down_revision = '7b2e4c91d0aa'
branch_labels = None
depends_on = None

DOCUMENT_COLUMNS = {
    'user_settings': ['slurm_accounts'],
    'usergroup': ['viewer_paths'],
    'datasetv2': ['history', 'filters'],
    'jobv2': ['project_dump', 'workflow_dump', 'dataset_dump'],
    'taskv2': [
        'meta_non_parallel', 'meta_parallel', 'args_schema_non_parallel', 'args_schema_parallel',
        'input_types', 'output_types', 'tags',
    ],
    'workflowtaskv2': ['meta_parallel', 'meta_non_parallel', 'args_parallel', 'args_non_parallel', 'input_filters'],
}
SERVER_DEFAULTS = {('usergroup', 'viewer_paths'): '[]'}


def _convert(from_type, to_type, cast: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in DOCUMENT_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                default = SERVER_DEFAULTS.get((table, column))
                if default is not None:
                    batch_op.alter_column(column, server_default=None)
                batch_op.alter_column(
                    column, existing_type=from_type, type_=to_type, postgresql_using=f'{column}::{cast}'
                )
                if default is not None:
                    batch_op.alter_column(column, server_default=default)


def upgrade():
    _convert(postgresql.JSONB(astext_type=sa.Text()), sa.JSON(), 'json')


def downgrade():
    _convert(sa.JSON(), postgresql.JSONB(astext_type=sa.Text()), 'jsonb')
