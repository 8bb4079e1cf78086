"""The one domain error every service raises; each entry point maps it to its answer."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request: nothing was changed.

    ``message`` is shown as is (admin message, command's one-line error, API detail);
    ``field`` names the input at fault when there is one (API field errors).
    """

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def as_field_errors(self) -> dict[str, list[str]]:
        return {self.field or "non_field_errors": [self.message]}
