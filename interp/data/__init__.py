"""Datasets: modular arithmetic tables (more sources land with later issues)."""

from interp.data.modular import (
    OPERATIONS,
    ModularConfig,
    ModularData,
    all_pairs,
    apply_op,
    is_prime,
    make_modular,
)

__all__ = [
    "OPERATIONS",
    "ModularConfig",
    "ModularData",
    "all_pairs",
    "apply_op",
    "is_prime",
    "make_modular",
]
