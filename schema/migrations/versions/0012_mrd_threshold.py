"""MRD positivity thresholds become reference data: `mrd_threshold` holds one row per method (and per time
point where a protocol sets its own), each with its published source, instead of a VALUES list inside
mrd_result v1 (where LSC flow borrowed the MFC threshold). Rendered from schema/models.py with
`python -m schema.render mrd_threshold`; the rows are documented in docs/mrd.md.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IG_TCR = (
    "van der Velden VHJ et al., Leukemia 2007;21:604-11 (EuroMRD guidelines for IG/TCR RQ-PCR); "
    "MRD1 of GRAALL/FRALLE positive at >= 1e-4 (Beldjord K et al., Blood 2014;123:3739-49)"
)
# (method, time point, threshold as a fraction, positive_at, source)
THRESHOLDS = [
    ("ASO-PCR", "*", 1e-4, ">=", IG_TCR),
    ("ddPCR", "*", 1e-4, ">=", "the IG/TCR threshold of ASO-PCR (cgdw default: same target, same 1e-4 rule)"),
    ("NGS-IGTCR", "*", 1e-4, ">=", "the IG/TCR threshold of ASO-PCR (cgdw default: same target, same 1e-4 rule)"),
    ("MFC", "*", 1e-3, ">=",
     "Schuurhuis GJ et al., Blood 2018;131:1275-91 (ELN MRD consensus: 0.1% of white cells); "
     "Terwijn M et al., J Clin Oncol 2013;31:3889-97 (HOVON/SAKK, after cycle 2)"),
    ("LSC-MFC", "*", 0.0, ">",
     "Zeijlemaker W et al., Leukemia 2019;33:1102-12 (HOVON 102: any detectable CD34+CD38- leukemic stem "
     "cell after cycle 2 is LSC-positive)"),
]  # fmt: skip


def upgrade() -> None:
    table = op.create_table('mrd_threshold',
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('time_point', sa.Text(), server_default='*', nullable=False),
    sa.Column('threshold', sa.Double(), nullable=False),
    sa.Column('positive_at', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.CheckConstraint("method IN ('ASO-PCR', 'ddPCR', 'MFC', 'LSC-MFC', 'NGS-IGTCR')", name=op.f('ck_mrd_threshold_method_code')),
    sa.CheckConstraint("positive_at IN ('>=', '>')", name=op.f('ck_mrd_threshold_positive_at_code')),
    sa.CheckConstraint('threshold >= 0 AND threshold <= 1', name=op.f('ck_mrd_threshold_fraction_range')),
    sa.PrimaryKeyConstraint('method', 'time_point', name=op.f('pk_mrd_threshold'))
    )  # fmt: skip
    op.bulk_insert(
        table,
        [
            {"method": m, "time_point": t, "threshold": v, "positive_at": at, "source": s}
            for m, t, v, at, s in THRESHOLDS
        ],
    )


def downgrade() -> None:
    op.drop_table("mrd_threshold")
