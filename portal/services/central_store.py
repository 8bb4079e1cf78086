"""Writes to the central file store: a file appears under its final name only once the
store holds it whole and verified.

Every write goes to a temporary name under ``.incoming/<owner>/`` (outside
``DeviceUpdateStore/``), is checked for size and SHA-256, and only then moved to its
final name: on a local folder by ``os.replace`` (atomic within the store), on an
S3-compatible store by a server-side copy of the verified object. A writer killed at
any point leaves at most files under ``.incoming/``, which its owner's recovery
removes (``central_store_discard``) and the orphan sweep would remove in any case.

On S3 a file is uploaded from its path with boto3's managed transfer (multipart above
its threshold, parts read from the file as they are sent) and read back as a stream
of chunks, so no file is ever held whole in memory. An S3 server that cannot be
reached, or that refuses the credentials, is one line (``StoreUnavailableError``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages

from portal.errors import DomainError

logger = logging.getLogger(__name__)

INCOMING_PREFIX = ".incoming"
_CHUNK = 1024 * 1024


class StoreVerifyError(Exception):
    """What the store holds under the temporary name is not what was meant to be written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailableError(DomainError):
    """The central store cannot be reached or refuses this service's credentials."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="store_unavailable")


# What an S3 server says when it refuses a request's signature or access key.
_REFUSED_CREDENTIALS = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "403",
    "Forbidden",
}


def _endpoint() -> str:
    options = settings.STORAGES["default"].get("OPTIONS", {})
    return str(options.get("endpoint_url") or "AWS S3")


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn what boto3 raises into one line: the store is out of reach or refuses the
    credentials. A missing object stays ``FileNotFoundError``."""
    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as raised:
        error: BaseException = raised
        # boto3's managed transfer wraps the client's error (S3UploadFailedError).
        while isinstance(error, Boto3Error) and (error.__cause__ or error.__context__):
            error = error.__cause__ or error.__context__
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(str(error)) from None
        raise StoreUnavailableError(_line(error)) from None


def _line(error: BaseException) -> str:
    if isinstance(error, NoCredentialsError):
        return (
            "the central store has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, (BotoConnectionError, ReadTimeoutError)):
        return f"cannot reach the central store at {_endpoint()}"
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return f"the central store's bucket does not exist at {_endpoint()}"
        if code in _REFUSED_CREDENTIALS:
            return (
                f"the central store at {_endpoint()} refuses the credentials ({code}): "
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return f"the central store at {_endpoint()} refused the request: {code or error}"
    return f"the central store at {_endpoint()} failed: {str(error).splitlines()[0]}"


def central_store_probe() -> str | None:
    """None when the central store answers with this service's credentials, else the
    one line why not (S3 out of reach, credentials refused, no bucket). A local folder
    is not probed. Short timeouts and no retries: a health check must not hang."""
    storage: Any = storages["default"]
    if isinstance(storage, FileSystemStorage):
        return None
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=storage.endpoint_url,
        region_name=storage.region_name,
        aws_access_key_id=storage.access_key,
        aws_secret_access_key=storage.secret_key,
        aws_session_token=storage.security_token,
        config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}),
    )
    try:
        with store_errors():
            client.head_bucket(Bucket=storage.bucket_name)
    except FileNotFoundError:
        return f"the central store's bucket does not exist at {_endpoint()}"
    except StoreUnavailableError as error:
        return error.message
    return None


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
    try:
        with store_errors():
            removed = list(central_store_walk(storage, incoming_prefix(owner)))
            for name in removed:
                storage.delete(name)
    except StoreUnavailableError as error:
        # Left for the orphan sweep, which removes them once the store answers again.
        logger.warning("central store: %s's temporary files stay for now: %s", owner, error)
        return []
    if isinstance(storage, FileSystemStorage):
        _remove_empty_folders(Path(storage.path(incoming_prefix(owner))))
    return removed


def central_store_delete(*, name: str) -> bool:
    """Delete ``name``; False (and a warning) when the store cannot be reached now, so
    the orphan sweep removes it later."""
    try:
        with store_errors():
            storages["default"].delete(name)
    except StoreUnavailableError as error:
        logger.warning("central store: %s stays for now: %s", name, error)
        return False
    return True


def central_store_chunks(name: str) -> Iterator[bytes]:
    """The bytes of ``name`` in chunks, streamed (never the whole file in memory).
    Raises ``FileNotFoundError`` or ``StoreUnavailableError``."""
    storage: Any = storages["default"]
    if isinstance(storage, FileSystemStorage):
        with open(storage.path(name), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
        return
    with store_errors():
        body = storage.bucket.Object(storage._normalize_name(name)).get()["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()


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
    storage: Any, source: Path, name: str, temporary: str, size: int, sha256: str
) -> None:
    """An object store (S3): an object appears whole or not at all, but only a copy that
    was read back and checked may take the final name."""
    key = storage._normalize_name(temporary)
    with store_errors():
        # From the path: boto3's managed transfer reads each part from the file as it
        # sends it (multipart above ``transfer_config``'s threshold).
        storage.bucket.Object(key).upload_file(
            str(source),
            ExtraArgs=storage._get_write_parameters(key),
            Config=storage.transfer_config,
        )
    try:
        landed, digest = _read_back(temporary)
        if (landed, digest) != (size, sha256):
            raise _mismatch(name, landed, digest, (size, sha256))
        with store_errors():
            _copy_object(storage, temporary, name)
    finally:
        central_store_delete(name=temporary)


def _read_back(name: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in central_store_chunks(name):
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
