"""r3 — the samples table: the samples of a campaign over samples (self-driving lab).

Revision ID: r3
Revises: r2
"""

import sqlalchemy as sa
from alembic import op

revision = "r3"
down_revision = "r2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('samples',
    sa.Column('sample_id', sa.String(length=100), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('synthesis_attempt_id', sa.String(length=100), nullable=False),
    sa.Column('step_campaign_id', sa.String(length=64), nullable=True),
    sa.Column('recipe', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['synthesis_attempt_id'], ['attempts.id'], ),
    sa.PrimaryKeyConstraint('sample_id'),
    sa.UniqueConstraint('synthesis_attempt_id')
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_samples_campaign_id'), ['campaign_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_samples_campaign_id'))
    op.drop_table('samples')
