"""The one error type users see.

Library code raises `MixtaskError` with a message a user can act on; the CLI prints it as
one line on stderr and exits non-zero. Asserts guard internal invariants only.
"""


class MixtaskError(Exception):
    """A problem the user can fix: bad input, bad option, bad file."""
