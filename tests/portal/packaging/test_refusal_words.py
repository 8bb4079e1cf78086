"""One refusal, word for word: the dry run and the import over every refusal the suite
knows (the hostile cabinets of test_import_refusals, and packages whose description or
catalog is refused), comparing the lines; and nothing is stored by either."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from deviceupdate_devtools import builder
from portal.choices import ImportStatus
from portal.models import DeviceUpdateRule, ImportJob, TrustedPublisher, UpdateFile
from portal.packaging.inspection import A_CATALOG
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start, package_inspect
from tests.portal.packaging.conftest import FIXTURES
from tests.portal.packaging.test_import_refusals import CASES, Raw

pytestmark = pytest.mark.django_db

Make = Callable[[Path, builder.Signer, Raw], bytes]


def _package(tmp_path: Path, *updates: builder.TestUpdate, **options: Any) -> bytes:
    return builder.build_package(list(updates), path=tmp_path / "p.cab", **options).read_bytes()


def _tampered(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    update = builder.build_update(signer=publisher)
    update.files["CPE.nbt"] = b"tampered"
    return _package(tmp_path, update)


def _with_catalog(catalog: Callable[[dict[str, bytes], builder.Signer], bytes]) -> Make:
    def make(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
        update = builder.build_update(signer=publisher)
        files = {name: data for name, data in update.files.items() if name != "CPE.cat"}
        update.files["CPE.cat"] = catalog(files, publisher)
        return _package(tmp_path, update)

    return make


def _untrusted(files: dict[str, bytes], publisher: builder.Signer) -> bytes:
    other = builder.make_publisher(builder.make_test_ca(common_name="Other", key_type="ec"))
    return builder.build_catalog(files, signer=other)


def _md5_signer(files: dict[str, bytes], publisher: builder.Signer) -> bytes:
    # Re-signed with its own key: the algorithm is refused before any key is tried.
    signer = builder.Signer(
        builder.resign_certificate(publisher.certificate, publisher.key, "md5"),
        publisher.key,
        publisher.chain,
    )
    return builder.build_catalog(files, signer=signer)


def _quantum(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    path = tmp_path / "qtm.cab"
    shutil.copy(FIXTURES / "mszip_lzx_qtm.cab", path)
    return path.read_bytes()


def _sample(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    return (FIXTURES / "normal_2files_2folders.cab").read_bytes()


def _wrong_version(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    update = builder.build_update(signer=publisher)
    update.files["CPE.xml"] = update.files["CPE.xml"].replace(b"4.0.7577.4387", b"4.0.7577.9999")
    return _package(tmp_path, update)


def _legacy_member_name(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    update = builder.build_update(signer=publisher)
    return _package(
        tmp_path,
        update,
        extra_members={"notes/read.txt": b"r"},
        legacy_names={"notes/read.txt": "notes\\lisez-moi é.txt".encode("latin-1")},
    )


def _empty_update(tmp_path: Path, publisher: builder.Signer, raw: Raw) -> bytes:
    update = builder.build_update(signer=publisher)
    del update.files["CPE.cat"]
    return _package(tmp_path, update)


PACKAGES: dict[str, Make] = {
    "tampered image": _tampered,
    "unsigned catalog": _with_catalog(
        lambda files, _: builder.unsigned_catalog(builder.build_ctl(files))
    ),
    "untrusted signer": _with_catalog(_untrusted),
    "md5 certificate": _with_catalog(_md5_signer),
    "sha1 refused": _with_catalog(
        lambda files, signer: builder.build_catalog(files, signer=signer, digest="sha1")
    ),
    "file listed as a cabinet": _with_catalog(
        lambda files, signer: builder.build_catalog(
            {**files, "CPE.nbt": builder.cabinet_file({"a": b"a"})},
            signer=signer,
            member_kind={"CPE.nbt": "cabinet"},
        )
    ),
    "unnamed entry, file missing from it": _with_catalog(
        lambda files, signer: builder.build_catalog(
            {**files, "CPE.nbt": b"other"}, signer=signer, unnamed=["CPE.nbt"]
        )
    ),
    "quantum": _quantum,
    "no device update": _sample,
    "description disagrees": _wrong_version,
    "legacy member name": _legacy_member_name,
    "no catalog": _empty_update,
    "neither": lambda tmp_path, publisher, raw: b"GIF89a" + b"\0" * 64,
    "empty-ish": lambda tmp_path, publisher, raw: b"MSCF",
}
HOSTILE = {f"hostile: {name}": make for name, make, _ in CASES}
ALL = [*HOSTILE, *PACKAGES]


def _dry_run(path: Path) -> dict[str, Any]:
    with path.open("rb") as source:
        return package_inspect(source=source, filename=path.name)


def _import(path: Path, capture: Callable[..., Any]) -> ImportJob:
    with capture(execute=False), path.open("rb") as source:
        job = package_import_start(
            source=source, filename=path.name, pools=[], actor=Actor.system("tests")
        )
    done = package_import_run(job_id=job.pk)
    assert done is not None
    return done


@pytest.mark.parametrize("case", ALL, ids=ALL)
def test_the_dry_run_and_the_import_refuse_in_the_same_words(
    case: str,
    tmp_path: Path,
    publisher: builder.Signer,
    cabinet_bytes: Raw,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    settings: Settings,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.IMPORT_REFUSE_SHA1 = case == "sha1 refused"
    if case in PACKAGES:
        data = PACKAGES[case](tmp_path, publisher, cabinet_bytes)
    else:
        data = HOSTILE[case](cabinet_bytes)
    path = tmp_path / "package.cab"
    path.write_bytes(data)

    report = _dry_run(path)
    assert ImportJob.objects.count() == 0
    job = _import(path, django_capture_on_commit_callbacks)

    assert (report["verdict"], job.status) == ("refused", ImportStatus.FAILED)
    assert report["reason"] == job.error
    assert report["reason"]
    assert "\n" not in report["reason"]
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
    assert not any(p.is_file() for p in stores["central"].rglob("*"))


EXPECTED = {
    "unsigned catalog": "the catalog is not signed",
    "quantum": (
        "qtm.txt: member uses Quantum compression, which is not supported; "
        "rebuild the package with MSZIP or LZX"
    ),
    "neither": "the file is neither a Microsoft cabinet nor a security catalog",
    "file listed as a cabinet": (
        "CPE.nbt: the catalog lists the file as a cabinet, but it is not one (no MSCF header)"
    ),
    "unnamed entry, file missing from it": (
        "CPE.nbt: the file is not listed in the security catalog"
    ),
    "md5 certificate": (
        "certificate CN=Device Update Test Publisher,O=Device Update Tests is signed with "
        "MD5 (md5_rsa), which is refused"
    ),
    "legacy member name": ("notes\\lisez-moi \\xe9.txt: the member name is not in UTF-8 or ASCII"),
}


@pytest.mark.parametrize("case", list(EXPECTED), ids=list(EXPECTED))
def test_the_words_of_the_new_refusals(
    case: str,
    tmp_path: Path,
    publisher: builder.Signer,
    cabinet_bytes: Raw,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
) -> None:
    path = tmp_path / "package.cab"
    path.write_bytes(PACKAGES[case](tmp_path, publisher, cabinet_bytes))

    report = _dry_run(path)

    assert report["reason"].endswith(EXPECTED[case])
    assert ImportJob.objects.count() == 0


def test_a_lone_catalog_is_examined_by_the_dry_run_and_refused_by_the_import(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    path = tmp_path / "CPE.cat"
    path.write_bytes(builder.build_update(signer=publisher).files["CPE.cat"])

    report = _dry_run(path)
    job = _import(path, django_capture_on_commit_callbacks)

    assert (report["kind"], report["verdict"]) == ("catalog", "accepted")
    assert (job.status, job.error) == (ImportStatus.FAILED, A_CATALOG)
    assert A_CATALOG == (
        "the file is a security catalog, not a package; import the cabinet (.cab) that holds it"
    )
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
