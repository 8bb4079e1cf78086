"""The one error type a package refusal raises."""

from __future__ import annotations


class PackageError(Exception):
    """A package was refused; ``message`` says why and names the member when there is one."""

    def __init__(self, message: str, *, member: str | None = None) -> None:
        self.message = f"{member}: {message}" if member else message
        self.member = member
        super().__init__(self.message)
