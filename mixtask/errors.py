"""The one error type users see.

Library code raises `MixtaskError` with a message a user can act on; the CLI prints it as
one line on stderr and exits 1. A `UsageError` (a bad option, an unknown task, options that contradict each
other) exits 2, as the command line's own usage errors do. Asserts guard internal invariants only.
"""


class MixtaskError(Exception):
    """A problem the user can fix: bad input, bad option, bad file."""


class UsageError(MixtaskError):
    """The command was asked wrongly (an option or task spec): exit 2, nothing was attempted."""
