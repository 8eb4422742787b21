"""Exceptions and warnings raised by ncsproc.

Every error says what was found, where, and what was expected, so that a user can fix the
input without reading the code.
"""


class NcsprocError(Exception):
    """Base class of all ncsproc errors."""


class SchemaError(NcsprocError, ValueError):
    """A trace set (or a result set) violates the interchange contract.

    Parameters
    ----------
    problems : list of str
        One sentence per problem found; all of them are reported at once.
    schema : str
        The schema name and version that was checked.
    """

    def __init__(self, problems, schema="ncsproc-traces/1"):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.schema = schema
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"trace set does not conform to {schema} ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}):\n{lines}"
        )


class FormatError(NcsprocError, ValueError):
    """A file is truncated, corrupt or inconsistent with its format."""


class UnsupportedFormatError(FormatError):
    """No registered reader can read a file."""


class QCWarning(UserWarning):
    """A trace or study is usable but something about it deserves a look."""
