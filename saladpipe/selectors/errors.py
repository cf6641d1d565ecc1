"""The error every selector raises for unusable input."""

from saladpipe.data_schemas.errors import SaladpipeError


class SelectionError(SaladpipeError):
    """The inputs of a selection are unusable (NaN or negative gaps, empty pool...)."""
