"""r1 — the store as labpilot's last release before migrations wrote it (commit 70023ed).

Frozen DDL: written out here, never derived from ``schema.py`` (which moves on). Databases written
before Alembic carry no revision; the store recognises them by their tables and stamps them r1.

Revision ID: r1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _campaigns()
    _decisions()
    _documents()
    _instruments()
    _leases()
    _target_evaluations()
    _attempts()
    _interpretations()
    _measurements()
    _transitions()
    _arrays()


def downgrade() -> None:
    op.drop_table('arrays')
    op.drop_table('transitions')
    op.drop_table('measurements')
    op.drop_table('interpretations')
    op.drop_table('attempts')
    op.drop_table('target_evaluations')
    op.drop_table('leases')
    op.drop_table('instruments')
    op.drop_table('documents')
    op.drop_table('decisions')
    op.drop_table('campaigns')


def _campaigns() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('stop_reason', sa.Text(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('data_dir', sa.Text(), nullable=False),
    sa.Column('package_versions', sa.JSON(), nullable=False),
    sa.Column('wall_seconds', sa.Float(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('schema_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def _decisions() -> None:
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('policy', sa.String(length=100), nullable=False),
    sa.Column('fallback', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('n_history', sa.Integer(), nullable=False),
    sa.Column('n_pending', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('package_versions', sa.JSON(), nullable=False),
    sa.Column('decision_seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'seq')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_campaign_id'), ['campaign_id'], unique=False)


def _documents() -> None:
    op.create_table('documents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('stream', sa.String(length=100), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uid')
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_published'), ['published'], unique=False)


def _instruments() -> None:
    op.create_table('instruments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('model_kind', sa.String(length=20), nullable=True),
    sa.Column('model', sa.JSON(), nullable=True),
    sa.Column('data_keys', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'name')
    )
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instruments_campaign_id'), ['campaign_id'], unique=False)


def _leases() -> None:
    op.create_table('leases',
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('campaign_id')
    )


def _target_evaluations() -> None:
    op.create_table('target_evaluations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('n_measurements', sa.Integer(), nullable=False),
    sa.Column('instrument_seconds', sa.Float(), nullable=False),
    sa.Column('wall_seconds', sa.Float(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('all_met', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('target_evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_target_evaluations_campaign_id'), ['campaign_id'], unique=False)


def _attempts() -> None:
    op.create_table('attempts',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('instrument', sa.String(length=100), nullable=True),
    sa.Column('sample_id', sa.String(length=100), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reconciled', sa.String(length=20), nullable=True),
    sa.Column('reruns', sa.Integer(), nullable=False),
    sa.Column('instrument_seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'seq')
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempts_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempts_state'), ['state'], unique=False)


def _interpretations() -> None:
    op.create_table('interpretations',
    sa.Column('attempt_id', sa.String(length=100), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('sample_id', sa.String(length=100), nullable=False),
    sa.Column('analysis', sa.String(length=100), nullable=False),
    sa.Column('estimates', sa.JSON(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('valid', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('attempt_id')
    )
    with op.batch_alter_table('interpretations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interpretations_campaign_id'), ['campaign_id'], unique=False)


def _measurements() -> None:
    op.create_table('measurements',
    sa.Column('attempt_id', sa.String(length=100), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('instrument', sa.String(length=100), nullable=False),
    sa.Column('sample_id', sa.String(length=100), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('timing', sa.JSON(), nullable=False),
    sa.Column('instrument_seconds', sa.Float(), nullable=False),
    sa.Column('finite', sa.Boolean(), nullable=False),
    sa.Column('recovered', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.PrimaryKeyConstraint('attempt_id')
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_measurements_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurements_sample_id'), ['sample_id'], unique=False)


def _transitions() -> None:
    op.create_table('transitions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('attempt_id', sa.String(length=100), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transitions_attempt_id'), ['attempt_id'], unique=False)


def _arrays() -> None:
    op.create_table('arrays',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('attempt_id', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('dtype', sa.String(length=20), nullable=False),
    sa.Column('shape', sa.JSON(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['measurements.attempt_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('attempt_id', 'role', 'key')
    )
    with op.batch_alter_table('arrays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arrays_attempt_id'), ['attempt_id'], unique=False)
