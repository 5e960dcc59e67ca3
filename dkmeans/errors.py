"""One error hierarchy for dkmeans.

Every error dkmeans raises on purpose derives from :class:`DKMeansError`, and
also from the built-in exception a scikit-learn user would catch for it
(``ValueError`` for a bad value, ``TypeError`` for a bad type), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class DKMeansError(Exception):
    """Base class of every error raised by dkmeans."""


class InvalidParameterError(DKMeansError, ValueError):
    """An estimator or function parameter has a value outside its range."""


class InvalidInputError(DKMeansError, ValueError):
    """The data (X, sample_weight, init) has a bad shape or bad values."""


class InputTypeError(DKMeansError, TypeError):
    """The data has a type or dtype dkmeans cannot cluster."""


class InputNotFoundError(DKMeansError, FileNotFoundError):
    """A path given as input does not exist."""


class ClusterUnavailableError(DKMeansError, ConnectionError):
    """The Dask cluster could not be reached or started, or no worker joined it.

    Not the caller's input: the command line exits with 1, not 2.
    """


class OutputExistsError(DKMeansError, FileExistsError):
    """An output path holds something dkmeans will not replace: files that are
    not its own output, or its output when replacing was not asked for."""


class WriteConflictError(DKMeansError, RuntimeError):
    """Another writer holds (or took over) the output being written."""


def not_finite(row: int, needs: str = "clustering", where: str = "") -> InvalidInputError:
    """The error for a row holding NaN or infinity, naming the way out.

    Parameters
    ----------
    row : int
        The first such row (global index).
    needs : str
        What needs finite values.
    where : str
        Appended to the row ("of this batch").
    """
    return InvalidInputError(
        f"Input X contains NaN or infinity (first at row {row}{where}); {needs} needs finite "
        "values. Missing values (NaN) are replaced by their feature's mean with "
        "missing=\"impute\" (--missing impute on the command line); infinities must be "
        "removed from the data.")
