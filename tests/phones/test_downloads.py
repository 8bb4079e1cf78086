"""Image downloads served by Django (development): ranges, caching headers, refusals."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

# Closing a response fires request_finished, which tidies database connections.
pytestmark = pytest.mark.django_db

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
DATA = hashlib.shake_256(b"image").digest(300_000)


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    (store / FOLDER).mkdir(parents=True)
    (store / FOLDER / "CPE.nbt").write_bytes(DATA)
    (store / FOLDER / ".CPE.nbt.1234.part").write_bytes(b"half a copy")
    (tmp_path / "secret.txt").write_text("outside the store")
    os.symlink(tmp_path / "secret.txt", store / FOLDER / "link.nbt")
    settings.SERVER_STORE_DIR = store
    return store


def body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.parametrize("channel", ["Int", "Ext"])
def test_a_whole_file_with_its_headers(client: Client, store: Path, channel: str) -> None:
    response = client.get(f"/DeviceUpdateFiles_{channel}/{FOLDER}/CPE.nbt")
    assert response.status_code == 200
    assert body(response) == DATA
    assert response["Content-Length"] == str(len(DATA))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "application/octet-stream"
    stat = (store / FOLDER / "CPE.nbt").stat()
    assert response["ETag"] == f'"{stat.st_mtime_ns:x}-{len(DATA):x}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=299990-", 299_990, 299_999),
        ("bytes=-10", 299_990, 299_999),
        ("bytes=299000-999999", 299_000, 299_999),
    ],
)
def test_ranges_give_206_with_exactly_those_bytes(
    client: Client, store: Path, header: str, start: int, end: int
) -> None:
    response = client.get(f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt", HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == DATA[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response["Content-Length"] == str(end - start + 1)


def test_an_unsatisfiable_range_is_416_and_a_malformed_one_is_ignored(
    client: Client, store: Path
) -> None:
    url = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    response = client.get(url, HTTP_RANGE="bytes=400000-")
    assert (response.status_code, response["Content-Range"]) == (416, f"bytes */{len(DATA)}")
    response = client.get(url, HTTP_RANGE="bytes=1-2,5-6")
    assert response.status_code == 200
    assert body(response) == DATA


def test_head_and_conditional_requests(client: Client, store: Path) -> None:
    url = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    head = client.head(url)
    assert (head.status_code, head["Content-Length"], head.content) == (200, str(len(DATA)), b"")
    again = client.get(url, HTTP_IF_NONE_MATCH=head["ETag"])
    assert (again.status_code, again.content) == (304, b"")
    assert client.post(url).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        f"{FOLDER}/missing.nbt",
        f"{FOLDER}/../../../../../../secret.txt",
        f"{FOLDER}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        f"{FOLDER}/link.nbt",
        f"{FOLDER}/.CPE.nbt.1234.part",
        f"{FOLDER}",
        f"{FOLDER}//CPE.nbt",
        "..%5C..%5Csecret.txt",
        f"{FOLDER}/CPE.nbt%00",
    ],
)
def test_anything_but_a_file_inside_the_store_is_404(
    client: Client, store: Path, path: str
) -> None:
    response = client.get(f"/DeviceUpdateFiles_Int/{path}")
    assert response.status_code == 404
    assert response.content == (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b"<Error><Code>NotFound</Code><Message>no such file on this server</Message></Error>"
    )


def test_beyond_the_download_cap_phones_are_told_to_come_back(
    client: Client, store: Path, settings: Settings
) -> None:
    settings.DOWNLOAD_MAX_CONCURRENT = 1
    settings.DOWNLOAD_RETRY_AFTER = 45
    url = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    first = client.get(url)  # streaming: holds its slot until closed
    busy = client.get(url)
    assert (busy.status_code, busy["Retry-After"]) == (503, "45")
    assert b"<Code>Busy</Code>" in busy.content
    assert body(first) == DATA
    first.close()
    last = client.get(url)
    assert last.status_code == 200
    last.close()


def test_a_download_abandoned_before_its_first_byte_frees_its_slot(
    client: Client, store: Path, settings: Settings
) -> None:
    settings.DOWNLOAD_MAX_CONCURRENT = 1
    url = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    abandoned = client.get(url)
    abandoned.close()  # the phone hung up: the server closes the response unread
    again = client.get(url)
    assert again.status_code == 200
    assert body(again) == DATA
    again.close()
