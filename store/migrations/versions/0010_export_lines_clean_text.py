"""export lines: control and bidi characters removed, full-width and line-feed formula prefixes defused

The CSV export's text cells now lose NUL, control and bidi characters
(`domain.text.clean`) and defuse every formula prefix of
`domain.text.FORMULA_START` (LF and the full-width = + - @ added).  The
triggers that keep `export_lines` (`store/csvlines.py`) are reinstalled with
that formatting and the lines refilled; until then the export formatted every
row itself (`csvlines.is_current`), so no stale line was ever served.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from store import derived  # the same code that keeps the lines

    derived.rebuild(op.get_bind(), parts=("export_lines",))


def downgrade() -> None:
    # The older formatting's triggers are not kept: the export formats every row until an upgrade.
    pass
