"""The one error type a package refusal raises."""

from __future__ import annotations


class PackageError(Exception):
    """A package was refused; ``message`` says why and names the member when there is one."""

    def __init__(self, message: str, *, member: str | None = None) -> None:
        self.message = f"{member}: {message}" if member else message
        self.member = member
        super().__init__(self.message)


def escaped_name(raw: bytes) -> str:
    """A name in a refusal, readable: UTF-8 where it is, ``\\xNN`` escapes for bytes that
    are not UTF-8 and for control characters; never a Python bytes literal."""
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(
        character if character.isprintable() else character.encode("unicode_escape").decode()
        for character in text
    )
