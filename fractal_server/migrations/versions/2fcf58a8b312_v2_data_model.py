"""v2 data model

Revision ID: 2fcf58a8b312
Revises: 
Create Date: 2026-11-21 20:22:49.670982

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '2fcf58a8b312'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('projectv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projectv2'))
    )
    op.create_table('user_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slurm_accounts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('ssh_host', sa.String(), nullable=True),
    sa.Column('ssh_username', sa.String(), nullable=True),
    sa.Column('ssh_private_key_path', sa.String(), nullable=True),
    sa.Column('ssh_tasks_dir', sa.String(), nullable=True),
    sa.Column('ssh_jobs_dir', sa.String(), nullable=True),
    sa.Column('slurm_user', sa.String(), nullable=True),
    sa.Column('project_dir', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_settings'))
    )
    op.create_table('usergroup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('viewer_paths', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='[]', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usergroup')),
    sa.UniqueConstraint('name', name=op.f('uq_usergroup_name'))
    )
    op.create_table('datasetv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('zarr_dir', sa.String(), nullable=False),
    sa.Column('history', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projectv2.id'], name=op.f('fk_datasetv2_project_id_projectv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasetv2'))
    )
    with op.batch_alter_table('datasetv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasetv2_project_id'), ['project_id'], unique=False)

    op.create_table('user_oauth',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('hashed_password', sa.String(length=1024), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('is_superuser', sa.Boolean(), nullable=False),
    sa.Column('is_verified', sa.Boolean(), nullable=False),
    sa.Column('username', sa.String(), nullable=True),
    sa.Column('user_settings_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['user_settings_id'], ['user_settings.id'], name=op.f('fk_user_oauth_user_settings_id_user_settings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_oauth'))
    )
    with op.batch_alter_table('user_oauth', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_oauth_email'), ['email'], unique=True)

    op.create_table('workflowv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projectv2.id'], name=op.f('fk_workflowv2_project_id_projectv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflowv2'))
    )
    with op.batch_alter_table('workflowv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflowv2_project_id'), ['project_id'], unique=False)

    op.create_table('imagev2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('zarr_url', sa.String(), nullable=False),
    sa.Column('origin', sa.String(), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasetv2.id'], name=op.f('fk_imagev2_dataset_id_datasetv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imagev2')),
    sa.UniqueConstraint('dataset_id', 'zarr_url', name=op.f('uq_imagev2_dataset_id'))
    )
    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.create_index('ix_imagev2_attributes_gin', ['attributes'], unique=False, postgresql_using='gin', postgresql_ops={'attributes': 'jsonb_path_ops'})
        batch_op.create_index(batch_op.f('ix_imagev2_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index('ix_imagev2_types_gin', ['types'], unique=False, postgresql_using='gin', postgresql_ops={'types': 'jsonb_path_ops'})

    op.create_table('jobv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('workflow_id', sa.Integer(), nullable=True),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(), nullable=False),
    sa.Column('slurm_account', sa.String(), nullable=True),
    sa.Column('project_dump', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('workflow_dump', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('dataset_dump', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('worker_init', sa.String(), nullable=True),
    sa.Column('working_dir', sa.String(), nullable=True),
    sa.Column('working_dir_user', sa.String(), nullable=True),
    sa.Column('first_task_index', sa.Integer(), nullable=False),
    sa.Column('last_task_index', sa.Integer(), nullable=False),
    sa.Column('start_timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('log', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasetv2.id'], name=op.f('fk_jobv2_dataset_id_datasetv2'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projectv2.id'], name=op.f('fk_jobv2_project_id_projectv2'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflowv2.id'], name=op.f('fk_jobv2_workflow_id_workflowv2'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobv2'))
    )
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobv2_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobv2_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobv2_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobv2_workflow_id'), ['workflow_id'], unique=False)

    op.create_table('linkusergroup',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['usergroup.id'], name=op.f('fk_linkusergroup_group_id_usergroup'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_oauth.id'], name=op.f('fk_linkusergroup_user_id_user_oauth'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_linkusergroup'))
    )
    op.create_table('linkuserprojectv2',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projectv2.id'], name=op.f('fk_linkuserprojectv2_project_id_projectv2'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_oauth.id'], name=op.f('fk_linkuserprojectv2_user_id_user_oauth'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'user_id', name=op.f('pk_linkuserprojectv2'))
    )
    op.create_table('oauthaccount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('oauth_name', sa.String(length=100), nullable=False),
    sa.Column('access_token', sa.String(length=4096), nullable=False),
    sa.Column('expires_at', sa.Integer(), nullable=True),
    sa.Column('refresh_token', sa.String(length=4096), nullable=True),
    sa.Column('account_id', sa.String(length=320), nullable=False),
    sa.Column('account_email', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_oauth.id'], name=op.f('fk_oauthaccount_user_id_user_oauth'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauthaccount'))
    )
    with op.batch_alter_table('oauthaccount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauthaccount_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauthaccount_oauth_name'), ['oauth_name'], unique=False)

    op.create_table('taskgroupv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('user_group_id', sa.Integer(), nullable=True),
    sa.Column('origin', sa.String(), nullable=False),
    sa.Column('pkg_name', sa.String(), nullable=False),
    sa.Column('version', sa.String(), nullable=True),
    sa.Column('python_version', sa.String(), nullable=True),
    sa.Column('path', sa.String(), nullable=True),
    sa.Column('venv_path', sa.String(), nullable=True),
    sa.Column('wheel_path', sa.String(), nullable=True),
    sa.Column('pip_extras', sa.String(), nullable=True),
    sa.Column('pinned_package_versions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='{}', nullable=False),
    sa.Column('pip_freeze', sa.String(), nullable=True),
    sa.Column('venv_size_in_kB', sa.Integer(), nullable=True),
    sa.Column('venv_file_number', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('timestamp_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('timestamp_last_used', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_group_id'], ['usergroup.id'], name=op.f('fk_taskgroupv2_user_group_id_usergroup'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_oauth.id'], name=op.f('fk_taskgroupv2_user_id_user_oauth')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_taskgroupv2'))
    )
    with op.batch_alter_table('taskgroupv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taskgroupv2_user_group_id'), ['user_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_taskgroupv2_user_id'), ['user_id'], unique=False)

    op.create_table('taskgroupactivityv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('taskgroupv2_id', sa.Integer(), nullable=True),
    sa.Column('timestamp_started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('timestamp_ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pkg_name', sa.String(), nullable=False),
    sa.Column('version', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('action', sa.String(), nullable=False),
    sa.Column('log', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['taskgroupv2_id'], ['taskgroupv2.id'], name=op.f('fk_taskgroupactivityv2_taskgroupv2_id_taskgroupv2'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_oauth.id'], name=op.f('fk_taskgroupactivityv2_user_id_user_oauth')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_taskgroupactivityv2'))
    )
    with op.batch_alter_table('taskgroupactivityv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taskgroupactivityv2_taskgroupv2_id'), ['taskgroupv2_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_taskgroupactivityv2_user_id'), ['user_id'], unique=False)

    op.create_table('taskv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('command_non_parallel', sa.String(), nullable=True),
    sa.Column('command_parallel', sa.String(), nullable=True),
    sa.Column('source', sa.String(), nullable=True),
    sa.Column('meta_non_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('meta_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('version', sa.String(), nullable=True),
    sa.Column('args_schema_non_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('args_schema_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('args_schema_version', sa.String(), nullable=True),
    sa.Column('docs_info', sa.String(), nullable=True),
    sa.Column('docs_link', sa.String(), nullable=True),
    sa.Column('input_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('output_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('taskgroupv2_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(), nullable=True),
    sa.Column('modality', sa.String(), nullable=True),
    sa.Column('authors', sa.String(), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['taskgroupv2_id'], ['taskgroupv2.id'], name=op.f('fk_taskv2_taskgroupv2_id_taskgroupv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_taskv2'))
    )
    with op.batch_alter_table('taskv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taskv2_taskgroupv2_id'), ['taskgroupv2_id'], unique=False)

    op.create_table('workflowtaskv2',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.Column('order', sa.Integer(), nullable=True),
    sa.Column('meta_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('meta_non_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('args_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('args_non_parallel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('input_filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('task_type', sa.String(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['taskv2.id'], name=op.f('fk_workflowtaskv2_task_id_taskv2')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflowv2.id'], name=op.f('fk_workflowtaskv2_workflow_id_workflowv2'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflowtaskv2'))
    )
    with op.batch_alter_table('workflowtaskv2', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflowtaskv2_task_id'), ['task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workflowtaskv2_workflow_id'), ['workflow_id'], unique=False)



def downgrade():
    with op.batch_alter_table('workflowtaskv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflowtaskv2_workflow_id'))
        batch_op.drop_index(batch_op.f('ix_workflowtaskv2_task_id'))

    op.drop_table('workflowtaskv2')
    with op.batch_alter_table('taskv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_taskv2_taskgroupv2_id'))

    op.drop_table('taskv2')
    with op.batch_alter_table('taskgroupactivityv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_taskgroupactivityv2_user_id'))
        batch_op.drop_index(batch_op.f('ix_taskgroupactivityv2_taskgroupv2_id'))

    op.drop_table('taskgroupactivityv2')
    with op.batch_alter_table('taskgroupv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_taskgroupv2_user_id'))
        batch_op.drop_index(batch_op.f('ix_taskgroupv2_user_group_id'))

    op.drop_table('taskgroupv2')
    with op.batch_alter_table('oauthaccount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauthaccount_oauth_name'))
        batch_op.drop_index(batch_op.f('ix_oauthaccount_account_id'))

    op.drop_table('oauthaccount')
    op.drop_table('linkuserprojectv2')
    op.drop_table('linkusergroup')
    with op.batch_alter_table('jobv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobv2_workflow_id'))
        batch_op.drop_index(batch_op.f('ix_jobv2_status'))
        batch_op.drop_index(batch_op.f('ix_jobv2_project_id'))
        batch_op.drop_index(batch_op.f('ix_jobv2_dataset_id'))

    op.drop_table('jobv2')
    with op.batch_alter_table('imagev2', schema=None) as batch_op:
        batch_op.drop_index('ix_imagev2_types_gin', postgresql_using='gin', postgresql_ops={'types': 'jsonb_path_ops'})
        batch_op.drop_index(batch_op.f('ix_imagev2_dataset_id'))
        batch_op.drop_index('ix_imagev2_attributes_gin', postgresql_using='gin', postgresql_ops={'attributes': 'jsonb_path_ops'})

    op.drop_table('imagev2')
    with op.batch_alter_table('workflowv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflowv2_project_id'))

    op.drop_table('workflowv2')
    with op.batch_alter_table('user_oauth', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_oauth_email'))

    op.drop_table('user_oauth')
    with op.batch_alter_table('datasetv2', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasetv2_project_id'))

    op.drop_table('datasetv2')
    op.drop_table('usergroup')
    op.drop_table('user_settings')
    op.drop_table('projectv2')
