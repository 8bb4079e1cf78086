"""Writes to the central file store: a file appears under its final name only once the
store holds it whole and verified.

Every write goes to a temporary name under ``.incoming/<owner>/`` (outside
``DeviceUpdateStore/``), is checked for size and SHA-256, and only then moved to its
final name: on a local folder by ``os.replace`` (atomic within the store), on an
S3-compatible store by a server-side copy of the verified object. A writer killed at
any point leaves at most files under ``.incoming/``, which its owner's recovery
removes (``central_store_discard``) and the orphan sweep would remove in any case.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

logger = logging.getLogger(__name__)

INCOMING_PREFIX = ".incoming"
_CHUNK = 1024 * 1024


class StoreVerifyError(Exception):
    """What the store holds under the temporary name is not what was meant to be written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def incoming_prefix(owner: str) -> str:
    """The folder of temporary names of one writer (``job-12``), outside the final names."""
    return f"{INCOMING_PREFIX}/{owner}"


def central_store_put(*, source: Path, name: str, size: int, sha256: str, owner: str) -> None:
    """Store ``source`` under ``name``: written to a temporary name of ``owner``, checked
    for ``size`` and ``sha256``, then moved into place. Raises ``StoreVerifyError`` (and
    leaves nothing under ``name``) when the check fails."""
    storage = storages["default"]
    temporary = f"{incoming_prefix(owner)}/{uuid.uuid4().hex}"
    if isinstance(storage, FileSystemStorage):
        _put_local(storage, source, name, temporary, size, sha256)
    else:
        _put_remote(storage, source, name, temporary, size, sha256)


def central_store_discard(*, owner: str) -> list[str]:
    """Delete every temporary file ``owner`` left (a writer that died or was refused)."""
    storage = storages["default"]
    removed = list(central_store_walk(storage, incoming_prefix(owner)))
    for name in removed:
        storage.delete(name)
    if isinstance(storage, FileSystemStorage):
        _remove_empty_folders(Path(storage.path(incoming_prefix(owner))))
    return removed


def central_store_walk(storage: Storage, prefix: str) -> Iterator[str]:
    """Every file name under ``prefix`` in ``storage``."""
    # Not ``exists``: an object store has no folders, so it would say False for one.
    try:
        directories, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{prefix}/{file_name}"
    for directory in directories:
        yield from central_store_walk(storage, f"{prefix}/{directory}")


def _mismatch(name: str, size: int, sha256: str, expected: tuple[int, str]) -> StoreVerifyError:
    return StoreVerifyError(
        f"{name}: the stored copy does not match the package: {size:,} bytes, SHA-256 "
        f"{sha256} (expected {expected[0]:,} bytes, {expected[1]})"
    )


def _put_local(
    storage: FileSystemStorage, source: Path, name: str, temporary: str, size: int, sha256: str
) -> None:
    temporary_path = Path(storage.path(temporary))
    final_path = Path(storage.path(name))
    temporary_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        written, digest = _copy(source, temporary_path)
        landed = temporary_path.stat().st_size
        if (written, digest) != (size, sha256) or landed != size:
            raise _mismatch(name, landed, digest, (size, sha256))
        final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary_path, final_path)
    finally:
        temporary_path.unlink(missing_ok=True)
    _fsync_directory(final_path.parent)


def _copy(source: Path, target: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    written = 0
    with open(source, "rb") as reader, open(target, "xb") as out:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            written += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return written, digest.hexdigest()


def _fsync_directory(path: Path) -> None:
    """The rename is durable once the folder is synced (a power cut keeps the file)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _put_remote(
    storage: Storage, source: Path, name: str, temporary: str, size: int, sha256: str
) -> None:
    """An object store (S3): an object appears whole or not at all, but only a copy that
    was read back and checked may take the final name."""
    with open(source, "rb") as reader:
        saved = storage.save(temporary, File(reader, name=source.name))
    try:
        landed, digest = _read_back(storage, saved)
        if (landed, digest) != (size, sha256):
            raise _mismatch(name, landed, digest, (size, sha256))
        _copy_object(storage, saved, name)
    finally:
        storage.delete(saved)


def _read_back(storage: Storage, name: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    handle: IO[Any]
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy_object(storage: Any, source: str, target: str) -> None:
    """A server-side copy (boto3's managed copy: multipart past 5 GB), replacing any
    object already under ``target``."""
    bucket = storage.bucket
    bucket.copy(
        {"Bucket": bucket.name, "Key": storage._normalize_name(source)},
        storage._normalize_name(target),
    )


def _remove_empty_folders(path: Path) -> None:
    if not path.is_dir():
        return
    for folder in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            logger.warning("central store: %s is not empty after a discard", folder)
    try:
        path.rmdir()
    except OSError:
        logger.warning("central store: %s is not empty after a discard", path)
