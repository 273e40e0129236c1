"""image summaries

Per-dataset image counts and attribute/type value counts (kept by
`fractal_server.images.store`), and the `(dataset_id, id)` index that orders a
dataset's images. No data to move: no image rows could exist before this
revision.

Revision ID: 50e35268c97e
Revises: 2fcf58a8b312
Create Date: 2026-11-21 20:29:06.334143

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '50e35268c97e'
down_revision = '2fcf58a8b312'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('imagev2_attribute_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.String(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasetv2.id'], name=op.f('fk_imagev2_attribute_count_dataset_id_datasetv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imagev2_attribute_count')),
    sa.UniqueConstraint('dataset_id', 'key', 'value', name=op.f('uq_imagev2_attribute_count_dataset_id'))
    )
    op.create_table('imagev2_type_count',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Boolean(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasetv2.id'], name=op.f('fk_imagev2_type_count_dataset_id_datasetv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'key', 'value', name=op.f('pk_imagev2_type_count'))
    )
    with op.batch_alter_table('datasetv2', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_count', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imagev2_dataset_id'))
        batch_op.create_index('ix_imagev2_dataset_id_id', ['dataset_id', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.drop_index('ix_imagev2_dataset_id_id')
        batch_op.create_index(batch_op.f('ix_imagev2_dataset_id'), ['dataset_id'], unique=False)

    with op.batch_alter_table('datasetv2', schema=None) as batch_op:
        batch_op.drop_column('image_count')

    op.drop_table('imagev2_type_count')
    op.drop_table('imagev2_attribute_count')
