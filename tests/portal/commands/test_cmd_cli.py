"""The commands as a shell runs them: exit status and one-line errors on stderr."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

PROJECT_DIR = Path(__file__).resolve().parents[3]


def _environ(data_dir: Path) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(DEVICEUPDATE_DATA_DIR=str(data_dir), DEVICEUPDATE_SERVER_FQDN="fe1.example.com")
    return environ


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a migrated SQLite database of its own."""
    path = tmp_path_factory.mktemp("cli") / "var"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        env=_environ(path),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return path


def manage(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=_environ(data_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_refusal_is_one_line_on_stderr_and_exit_status_1(data_dir: Path) -> None:
    done = manage(
        data_dir, "test_devices", "add", "--name", "X", "--identifier", "zz", "--type", "MACAddress"
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "error: 'zz' is not a MAC address (six or more hex pairs)\n",
    )


def test_a_usage_error_is_one_line_and_exit_status_2(data_dir: Path) -> None:
    done = manage(data_dir, "test_devices")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: the following arguments are required: ACTION "
        "(see 'manage.py test_devices --help')\n",
    )
    done = manage(data_dir, "device_update_config", "set", "--log-flush-interval", "often")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: argument --log-flush-interval: invalid int value: 'often' "
        "(see 'manage.py device_update_config set --help')\n",
    )


def test_a_bulk_action_reports_each_refusal_and_exits_1(data_dir: Path) -> None:
    first = f"service:WebServer:fe1.example.com/{uuid.UUID(int=1)}"
    second = f"service:WebServer:fe1.example.com/{uuid.UUID(int=2)}"
    done = manage(data_dir, "device_update_rules", "approve", first, second, "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == [
        {"identity": first, "ok": False, "message": f"no rule {first}"},
        {"identity": second, "ok": False, "message": f"no rule {second}"},
    ]
    assert done.stderr == f"error: no rule {first}\nerror: no rule {second}\n"


def test_a_certificate_from_standard_input(data_dir: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stdin Publisher")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    done = manage(
        data_dir, "trusted_publishers", "add", "-", stdin=cert.public_bytes(Encoding.PEM).decode()
    )
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"trusted CN=Stdin Publisher (SHA-256 {fingerprint}, valid until 2035-01-01)\n"
    )
    done = manage(data_dir, "trusted_publishers", "list", "--json")
    assert [item["subject"] for item in json.loads(done.stdout)] == ["CN=Stdin Publisher"]


def test_the_package_commands_refuse_in_one_line_with_exit_1_or_2(
    data_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "picture.gif"
    picture.write_bytes(b"GIF89a" + b"\0" * 64)
    empty = tmp_path / "empty.cab"
    empty.write_bytes(b"")

    inspected = manage(data_dir, "inspect_device_update", str(picture))
    missing = manage(data_dir, "inspect_device_update", str(tmp_path / "nothing.cab"))
    imported = manage(data_dir, "import_device_update", str(empty))
    no_pool = manage(data_dir, "import_device_update", str(picture), "--pool", "nowhere.example")
    bad_option = manage(data_dir, "import_device_update", str(picture), "--colour")

    assert (inspected.returncode, inspected.stderr) == (
        1,
        "error: the file is neither a Microsoft cabinet nor a security catalog\n",
    )
    assert inspected.stdout.splitlines()[1] == (
        "verdict: the import would be refused: "
        "the file is neither a Microsoft cabinet nor a security catalog"
    )
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        f"error: {tmp_path / 'nothing.cab'}: no such file\n",
    )
    assert (imported.returncode, imported.stdout, imported.stderr) == (
        1,
        "",
        "error: the package is empty\n",
    )
    assert (no_pool.returncode, no_pool.stdout, no_pool.stderr) == (
        2,
        "",
        "error: no pool nowhere.example\n",
    )
    assert (bad_option.returncode, bad_option.stdout) == (2, "")
    assert bad_option.stderr == (
        "error: unrecognized arguments: --colour (see 'manage.py import_device_update --help')\n"
    )
