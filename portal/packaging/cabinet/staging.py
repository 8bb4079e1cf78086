"""Where extracted members are written: an empty staging directory, one sink per member
(refusing bytes beyond its declared size, hashing as it writes)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from portal.packaging.cabinet.format import CabinetMember, ExtractedMember
from portal.packaging.errors import PackageError


class _Sink:
    """One member being written: refuses bytes beyond its declared size, hashes as it writes."""

    def __init__(self, staging: _Staging, member: CabinetMember) -> None:
        self.name = member.name
        self.size = member.size
        self.offset = member.offset
        self.written = 0
        self._hash = hashlib.sha256()
        self._fd: int | None = staging.create(member.name)
        self._path = staging.root / member.name

    def write(self, chunk: bytes | memoryview) -> None:
        if self.written + len(chunk) > self.size:
            raise PackageError(
                f"more bytes out than the {self.size} the member declares", member=self.name
            )
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]
        self._hash.update(chunk)
        self.written += len(chunk)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.written != self.size:
            raise PackageError(
                f"the cabinet is truncated or corrupt: {self.written} of {self.size} bytes",
                member=self.name,
            )

    @property
    def result(self) -> ExtractedMember:
        return ExtractedMember(self.name, self._path, self.size, self._hash.hexdigest())


class _Staging:
    """Creates files only beneath ``root``: no symlink followed, no existing file reused."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        self._root_fd = -1
        self._top_level = {name.split("/")[0].casefold() for name in names}

    def __enter__(self) -> _Staging:
        self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._root_fd)

    def create(self, name: str) -> int:
        parts = name.split("/")
        directory = os.dup(self._root_fd)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
                child = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory
                )
                os.close(directory)
                directory = child
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(parts[-1], flags, 0o644, dir_fd=directory)
        finally:
            os.close(directory)

    def private_directory(self) -> Path:
        """A scratch directory in the staging area whose name no member uses."""
        while True:
            scratch = Path(tempfile.mkdtemp(prefix=".cabextract-", dir=self.root))
            if scratch.name.casefold() not in self._top_level:
                return scratch
            shutil.rmtree(scratch)


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
