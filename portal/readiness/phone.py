"""Check 4, a synthetic phone: what a phone does, through the same addresses: an update
check over internal HTTP and HTTPS, an anonymous external check (refused as the phone
protocol says), and a ranged download of an approved image with its SHA-256.

The synthetic phone reports serial number DEPLOYMENT-CHECK and a device class no rule
serves, so it is offered nothing; it appears in the inventory and the request audit
under that serial."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial

from defusedxml import ElementTree
from django.db.models import Q

from portal.choices import ReplicaState, UpdateFileRole
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, UpdateFile, UpdateVersion
from portal.readiness.base import CheckResult, Status
from portal.readiness.network import (
    TIMEOUT_FIX,
    CheckError,
    CheckTimeout,
    Deadline,
    Endpoint,
    base_urls,
    request,
    this_pool,
)

CHECK = "phone"
SERIAL = "DEPLOYMENT-CHECK"
REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<Request><DeviceType>UCPhone</DeviceType><MACAddress></MACAddress>
<SerialNumber>DEPLOYMENT-CHECK</SerialNumber><Vendor>DeploymentCheck</Vendor>
<Model>Synthetic</Model><Revision>Rev-1</Revision><Locale>ENU</Locale>%s
<Modules><Module><UpdateType>CPE</UpdateType><FileName>CPE.nbt</FileName>
<Version>1.0.0.0</Version></Module></Modules></Request>"""
HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


def _error_code(body: bytes) -> str:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    code = root.find("Code")
    return (code.text or "") if root.tag == "Error" and code is not None else ""


def update_check(label: str, url: str, deadline: Deadline) -> CheckResult:
    """An internal update check is answered with a <Response>."""
    subject = f"{label} update check {url}"
    answer = request(
        Endpoint.parse(url), "/RequestHandler/ucdevice.upx", deadline,
        method="POST", body=REQUEST % b"", headers=HEADERS,
    )  # fmt: skip
    if answer.status != 200:
        return CheckResult(
            CHECK, subject, Status.FAIL,
            f"answered {answer.status} {_error_code(answer.body)}".strip(),
            "check nginx's /RequestHandler location and the application's log",
        )  # fmt: skip
    try:
        root = ElementTree.fromstring(answer.body)
    except ElementTree.ParseError:
        root = None
    if root is None or root.tag != "Response" or root.find("NumOfFiles") is None:
        return CheckResult(
            CHECK, subject, Status.FAIL, "answered 200 without a <Response> with NumOfFiles",
            "make sure the address reaches this service, not another web site",
        )  # fmt: skip
    return CheckResult(CHECK, subject, Status.PASS, "answered 200 with a <Response>")


def external_refusal(url: str, deadline: Deadline, domain: str) -> CheckResult:
    """Outside, a phone with a signed-in user and no credentials is asked for them."""
    subject = f"external anonymous update check {url}"
    user = f"<UserID>sip:deployment-check@{domain}</UserID>".encode()
    answer = request(
        Endpoint.parse(url), "/RequestHandlerExt/ucdevice.upx", deadline,
        method="POST", body=REQUEST % user, headers=HEADERS,
    )  # fmt: skip
    code = _error_code(answer.body)
    challenge = answer.headers.get("www-authenticate", "")
    if answer.status == 401 and code == "AnonymousNotSupported" and challenge.startswith("Basic"):
        return CheckResult(
            CHECK,
            subject,
            Status.PASS,
            "refused with 401 AnonymousNotSupported and a Basic challenge",
        )
    return CheckResult(
        CHECK, subject, Status.FAIL,
        f"answered {answer.status} {code}".strip() + " instead of 401 AnonymousNotSupported",
        "publish /RequestHandlerExt/ to this service's external listener (manage.py nginx_config)",
    )  # fmt: skip


def approved_image(pool: Pool) -> UpdateFile | None:
    """An image of a version approved in the pool, verified on one of its servers."""
    condition = Q(pk__in=[])
    for rule in DeviceUpdateRule.objects.filter(pool=pool).exclude(approved_version=""):
        condition |= RuleClass.of(rule).q() & Q(version=rule.approved_version)
    versions = UpdateVersion.objects.filter(condition)
    return (
        UpdateFile.objects.filter(
            version__in=versions,
            role=UpdateFileRole.IMAGE,
            replicas__state=ReplicaState.VERIFIED,
            replicas__server__pool=pool,
        )
        .select_related("version")
        .order_by("size", "storage_name")
        .first()
    )


def ranged_download(url: str, image: UpdateFile, deadline: Deadline) -> CheckResult:
    """``Range: bytes=0-`` of an approved image: 206, every byte, the right SHA-256."""
    path = f"/DeviceUpdateFiles_Int/{image.version.folder}/{image.name}"
    subject = f"ranged download {url}{path}"
    digest = hashlib.sha256()
    size = 0

    def take(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)

    answer = request(Endpoint.parse(url), path, deadline, headers={"Range": "bytes=0-"}, sink=take)
    if answer.status != 206:
        return CheckResult(
            CHECK, subject, Status.FAIL, f"answered {answer.status}, not 206 Partial Content",
            "serve /DeviceUpdateFiles_Int/ from this server's store with nginx (ranges on)",
        )  # fmt: skip
    if digest.hexdigest() != image.sha256 or size != image.size:
        return CheckResult(
            CHECK, subject, Status.FAIL,
            f"{size} bytes with SHA-256 {digest.hexdigest()[:16]}..., expected {image.size} "
            f"bytes with {image.sha256[:16]}...",
            "re-sync this server's store (Servers > Re-sync) and check nginx's store path",
        )  # fmt: skip
    return CheckResult(CHECK, subject, Status.PASS, f"206, {size} bytes, SHA-256 matches")


def phone_checks(*, domains: list[str], timeout: float) -> list[CheckResult]:
    """Internal HTTP and HTTPS checks answered, external anonymous refused, an approved
    image downloaded by range with the right SHA-256."""
    pool = this_pool()
    urls = base_urls(pool)
    deadline = Deadline(timeout)
    results: list[CheckResult] = []

    def attempt(subject: str, run: Callable[[], CheckResult]) -> None:
        try:
            results.append(run())
        except CheckTimeout as error:
            results.append(CheckResult(CHECK, subject, Status.WARN, str(error), TIMEOUT_FIX))
        except CheckError as error:
            results.append(
                CheckResult(CHECK, subject, Status.FAIL, str(error), "check the address and nginx")
            )

    internal = (("internal HTTP", urls.internal_http), ("internal HTTPS", urls.internal_https))
    for label, url in internal:
        if not url:
            results.append(
                CheckResult(
                    CHECK, f"{label} update check", Status.WARN, "no address known",
                    "set the pool's internal web FQDN or DEVICEUPDATE_CHECK_INTERNAL_*_URL",
                )
            )  # fmt: skip
            continue
        attempt(f"{label} update check {url}", partial(update_check, label, url, deadline))
    if urls.external_https:
        domain = domains[0] if domains else "example.invalid"
        attempt(
            f"external anonymous update check {urls.external_https}",
            partial(external_refusal, urls.external_https, deadline, domain),
        )
    else:
        results.append(
            CheckResult(
                CHECK, "external anonymous update check", Status.WARN, "no external address known",
                "set the pool's external web FQDN or DEVICEUPDATE_CHECK_EXTERNAL_HTTPS_URL",
            )
        )  # fmt: skip
    image = approved_image(pool) if pool is not None else None
    if image is None:
        results.append(
            CheckResult(
                CHECK, "ranged download", Status.WARN,
                "no approved image verified on this pool to download",
                "import and approve a package, then run the check again",
            )
        )  # fmt: skip
    elif not urls.internal_http:
        results.append(
            CheckResult(
                CHECK, "ranged download", Status.WARN, "no internal HTTP address known",
                "set the pool's internal web FQDN or DEVICEUPDATE_CHECK_INTERNAL_HTTP_URL",
            )
        )  # fmt: skip
    else:
        path = f"/DeviceUpdateFiles_Int/{image.version.folder}/{image.name}"
        attempt(
            f"ranged download {urls.internal_http}{path}",
            partial(ranged_download, urls.internal_http, image, deadline),
        )
    return results
