"""Moved to `liquidroute.optimizer.constrained` (the optimizer owns every solve).

This module only re-exports its names so that older imports keep working.
"""

from liquidroute.optimizer.constrained import (
    RuledSplit,
    apply_rules,
    balance_caps,
    venue_rules,
)

__all__ = ["RuledSplit", "apply_rules", "balance_caps", "venue_rules"]
