"""A fleet of simulated phones that follows the phone protocol against a running server.

Each phone has a model (one of the demo models), a MAC derived from its index, and the
versions it has installed. Each model has its own range of MACs (phone n of the k-th
demo model is ``<vendor OUI>-`` k * 2**21 + n), so phone n of a run of one model is
phone n of that model in any mix, and no MAC ever changes model between runs. One
round: every phone posts an update check reporting what it runs; for each offered
module it downloads every file from the module's BaseURL, checks the size and SHA-256
the response gave, and "installs" the version only when every file matched, so the
next round reports it. External phones post to ``/RequestHandlerExt/`` with a
signed-in user and answer the 401 challenge (``AnonymousNotSupported``) with Basic
credentials, which they then keep sending. A failing share of the phones
(``fail_percent``, chosen by index) downloads and verifies what it is offered but never
installs it, so it keeps reporting the old version.

Only loopback servers: the target URL must name a loopback address, and downloads go
to that same server whatever host BaseURL names (as if the pool's web FQDN resolved to
it); external phones fetch the ExternalBaseURL's path over plain HTTP, since the
reverse proxy's TLS is not part of the simulation. Everything is bounded: phones,
rounds, concurrency, each request's time, each round's time and each download's size.

Tooling (tests, ``manage.py simulate_phones``, benchmarks): request-serving code never
imports it.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from deviceupdate_devtools.demo import DEMO_FACTORY_VERSION, DEMO_UPDATES
from phones.choices import PhoneError
from portal.identifiers import normalise_version

MAX_PHONES = 100_000
MAX_ROUNDS = 1_000
MAX_CONCURRENCY = 512
MAX_FILE_SIZE = 4 * 1024**3  # no image is bigger; a larger Size is refused, not fetched
MAX_RESPONSE = 1024 * 1024  # an update check answer is a few KiB
MODEL_RANGE_BITS = 21  # the MAC's last three bytes: 3 bits of model, 21 of phone index
MAX_INDEX = 1 << MODEL_RANGE_BITS
CHECK_PATHS = {False: "/RequestHandler/ucdevice.upx", True: "/RequestHandlerExt/ucdevice.upx"}
DOWNLOAD_PREFIXES = ("/DeviceUpdateFiles_Int/", "/DeviceUpdateFiles_Ext/")
_CHUNK = 256 * 1024
_ERROR_SAMPLES = 5
# Vendors' registered MAC prefixes, so simulated phones look like the real ones.
_OUI = {"polycom": "00-04-F2", "aastra": "00-08-5D"}


class SimulatorError(Exception):
    """A configuration the simulator refuses (non-loopback target, out-of-bounds count)."""


@dataclass(frozen=True)
class PhoneModel:
    """A phone class as the rules name it: DeviceType/Brand/Model/Revision/Locale."""

    brand: str
    model: str
    device_type: str = "UCPhone"
    revision: str = "Rev-1"
    locale: str = "ENU"
    update_type: str = "CPE"
    range: int = 0  # which block of MACs its phones have (see the module's docstring)

    @property
    def oui(self) -> str:
        return _OUI.get(self.brand.lower(), "02-00-5E")  # locally administered otherwise


DEMO_MODELS: tuple[PhoneModel, ...] = tuple(
    PhoneModel(brand=brand, model=model, range=position)
    for position, (brand, model, _) in enumerate(DEMO_UPDATES)
)


def models_named(names: Sequence[str]) -> tuple[PhoneModel, ...]:
    """The demo models named (``CX600`` or ``Polycom/CX600``, any case), in that order."""
    chosen: list[PhoneModel] = []
    for name in names:
        wanted = name.strip().lower()
        found = [
            m
            for m in DEMO_MODELS
            if wanted in (m.model.lower(), f"{m.brand.lower()}/{m.model.lower()}")
        ]
        if not found:
            known = ", ".join(m.model for m in DEMO_MODELS)
            raise SimulatorError(f"unknown model {name!r} (known: {known})")
        chosen.extend(m for m in found if m not in chosen)
    return tuple(chosen)


@dataclass(frozen=True)
class FleetConfig:
    url: str
    phones: int
    models: tuple[PhoneModel, ...] = DEMO_MODELS
    installed_version: str = DEMO_FACTORY_VERSION
    external_users: int = 0
    password: str = ""
    user_template: str = "phone{n:04d}@example.org"
    concurrency: int = 8
    first_index: int = 1
    spread_seconds: float = 0.0  # start the round's checks evenly over this time
    request_timeout: float = 30.0
    round_timeout: float = 600.0
    fail_percent: int = 0  # this share of the phones never installs what it downloads

    def validate(self) -> None:
        if not 1 <= self.phones <= MAX_PHONES:
            raise SimulatorError(f"phones must be between 1 and {MAX_PHONES}")
        if not 0 <= self.external_users <= self.phones:
            raise SimulatorError("external users must be between 0 and the number of phones")
        if self.external_users and not self.password:
            raise SimulatorError("external phones need a password")
        if self.external_users:
            try:
                user = self.user_template.format(n=self.first_index)
            except (KeyError, IndexError, ValueError, AttributeError) as error:
                raise SimulatorError(f"bad user template: {error}") from None
            if not user or ":" in user or not user.isprintable():
                raise SimulatorError(f"{user!r} cannot be a Basic user name")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise SimulatorError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        if self.first_index < 0 or self.first_index + self.phones > MAX_INDEX:
            raise SimulatorError(f"phone indexes must stay below {MAX_INDEX}")
        if not self.models:
            raise SimulatorError("at least one model is needed")
        if not 0 <= self.fail_percent <= 100:
            raise SimulatorError("the failing share must be between 0 and 100 %")
        if not 0 <= self.spread_seconds <= 3600:
            raise SimulatorError("the spread must be between 0 and 3600 seconds")
        if not 0 < self.request_timeout <= 600 or not 0 < self.round_timeout <= 86400:
            raise SimulatorError("timeouts must be positive and at most 600 s / 1 day")
        try:
            normalise_version(self.installed_version)
        except ValueError as error:
            raise SimulatorError(str(error)) from None
        loopback_origin(self.url)


def loopback_origin(url: str) -> tuple[str, int]:
    """(host, port) of an ``http://`` URL naming a loopback address; SimulatorError else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SimulatorError(f"{url!r}: the target must be an http:// URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SimulatorError(f"{url!r}: give the server's origin only (no path)")
    try:
        port = parts.port or 80
    except ValueError:
        raise SimulatorError(f"{url!r}: bad port") from None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except socket.gaierror as error:
        raise SimulatorError(f"{url!r}: cannot resolve {parts.hostname}: {error}") from None
    if not addresses or not all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    ):
        raise SimulatorError(f"{url!r}: only loopback servers may be targeted")
    return parts.hostname, port


@dataclass
class Phone:
    index: int
    model: PhoneModel
    installed: dict[str, str]
    stamps: dict[str, str]
    user: str = ""  # the signed-in user of an external phone
    send_credentials: bool = False  # challenged once: now sends them up front
    fails: bool = False  # downloads what it is offered but never installs it

    @property
    def number(self) -> int:
        """The MAC's last three bytes: the model's range, then the phone's index."""
        return self.model.range << MODEL_RANGE_BITS | self.index

    @property
    def mac(self) -> str:
        low = self.number.to_bytes(3, "big")
        return f"{self.model.oui}-" + "-".join(f"{byte:02X}" for byte in low)

    @property
    def serial(self) -> str:
        return f"SIM{self.number:08d}"

    @property
    def external(self) -> bool:
        return bool(self.user)

    def request_xml(self) -> bytes:
        modules = "".join(
            f"<Module><UpdateType>{escape(kind)}</UpdateType>"
            f"<FileName>{escape(kind)}.nbt</FileName><Version>{escape(version)}</Version>"
            f"<TimeStamp>{escape(self.stamps.get(kind, ''))}</TimeStamp></Module>"
            for kind, version in sorted(self.installed.items())
        )
        user = f"<UserID>sip:{escape(self.user)}</UserID>" if self.user else ""
        m = self.model
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<Request>'
            f"<DeviceType>{escape(m.device_type)}</DeviceType>"
            f"<MACAddress>{self.mac}</MACAddress><SerialNumber>{self.serial}</SerialNumber>"
            f"<Vendor>{escape(m.brand)}</Vendor><Model>{escape(m.model)}</Model>"
            f"<Revision>{escape(m.revision)}</Revision><Locale>{escape(m.locale)}</Locale>"
            f"{user}<Modules>{modules}</Modules></Request>"
        ).encode()


@dataclass(frozen=True)
class OfferFile:
    name: str
    size: int
    sha256: str
    timestamp: str


@dataclass(frozen=True)
class Offer:
    update_type: str
    version: str
    base_url: str
    external_base_url: str
    files: tuple[OfferFile, ...]


def phone_fails(index: int, fail_percent: int) -> bool:
    """Whether phone ``index`` is one of the failing share: spread evenly over the
    indexes (any run of 100 consecutive indexes holds exactly ``fail_percent``) and the
    same in every round and every run."""
    return (index * fail_percent) // 100 > ((index - 1) * fail_percent) // 100


class ProtocolViolation(Exception):
    """The server's answer does not follow the phone protocol."""


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _child_text(element: Element, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def parse_offer(body: bytes) -> list[Offer]:
    """The modules of an update check response; ProtocolViolation when it is malformed."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as error:
        raise ProtocolViolation(f"malformed response XML: {error}") from None
    if _local(root.tag) != "response":
        raise ProtocolViolation(f"the answer is a <{root.tag}>, not a <Response>")
    try:
        count = int(_child_text(root, "numoffiles"))
    except ValueError:
        raise ProtocolViolation("NumOfFiles is missing or not a number") from None
    offers: list[Offer] = []
    container = _child(root, "modules")
    for module in container if container is not None else ():
        if _local(module.tag) != "module":
            continue
        files_element = _child(module, "files")
        files: list[OfferFile] = []
        for item in files_element if files_element is not None else ():
            if _local(item.tag) != "file":
                continue
            name = _child_text(item, "filename")
            sha256 = _child_text(item, "sha256").lower()
            try:
                size = int(_child_text(item, "size"))
            except ValueError:
                raise ProtocolViolation(f"{name}: Size is not a number") from None
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise ProtocolViolation(f"{name!r} is not a bare file name")
            if not 0 <= size <= MAX_FILE_SIZE or len(sha256) != 64:
                raise ProtocolViolation(f"{name}: bad Size {size} or SHA256 {sha256!r}")
            files.append(OfferFile(name, size, sha256, _child_text(item, "timestamp")))
        offers.append(
            Offer(
                update_type=_child_text(module, "updatetype"),
                version=_child_text(module, "version"),
                base_url=_child_text(module, "baseurl"),
                external_base_url=_child_text(module, "externalbaseurl"),
                files=tuple(files),
            )
        )
    if count != sum(len(offer.files) for offer in offers):
        raise ProtocolViolation(f"NumOfFiles {count} does not count the File elements")
    if offers and _child_text(root, "baseurl") != offers[0].base_url:
        raise ProtocolViolation("the top-level BaseURL is not the first module's")
    return offers


def error_code(body: bytes) -> str:
    """The ``<Code>`` of a phone protocol error body (empty when there is none)."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException):
        return ""
    return _child_text(root, "code") if _local(root.tag) == "error" else ""


@dataclass
class PhoneRound:
    """What one phone did in one round."""

    checks: int = 0
    challenged: int = 0
    offers: int = 0
    downloads: int = 0
    bytes: int = 0
    verified: int = 0
    installs: int = 0
    not_installed: int = 0  # verified, but a failing phone: kept the old version
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per answered check


@dataclass(frozen=True)
class RoundSummary:
    round: int
    phones: int
    checks: int
    challenged: int
    offers: int
    downloads: int
    bytes: int
    verified: int
    installs: int
    busy: int
    errors: int
    error_samples: tuple[str, ...]
    seconds: float
    versions: dict[str, dict[str, int]]  # "Brand Model" -> version -> phones
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    not_installed: int = 0

    @property
    def checks_per_second(self) -> float:
        return self.checks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "phones": self.phones,
            "checks": self.checks,
            "challenged": self.challenged,
            "offers": self.offers,
            "downloads": self.downloads,
            "bytes": self.bytes,
            "verified": self.verified,
            "installs": self.installs,
            "not_installed": self.not_installed,
            "busy": self.busy,
            "errors": self.errors,
            "error_samples": list(self.error_samples),
            "seconds": round(self.seconds, 3),
            "checks_per_second": round(self.checks_per_second, 1),
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p99_ms": round(self.latency_p99_ms, 2),
            "versions": self.versions,
        }

    def describe(self) -> str:
        versions = "; ".join(
            f"{model} " + ", ".join(f"{v or 'none'} x{n}" for v, n in sorted(counts.items()))
            for model, counts in sorted(self.versions.items())
        )
        kept = f"{self.not_installed} not installed, " if self.not_installed else ""
        return (
            f"round {self.round}: {self.checks} checks ({self.challenged} challenged), "
            f"{self.offers} offers, {self.downloads} downloads ({self.bytes:,} bytes), "
            f"{self.verified} verified, {self.installs} installed, {kept}{self.busy} busy, "
            f"{self.errors} errors in {self.seconds:.2f} s "
            f"({self.checks_per_second:.1f} checks/s, p50 {self.latency_p50_ms:.1f} ms, "
            f"p99 {self.latency_p99_ms:.1f} ms); versions: {versions}"
        )


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class Fleet:
    """N phones and what they have installed, kept from round to round."""

    def __init__(self, config: FleetConfig) -> None:
        config.validate()
        self.config = config
        self.host, self.port = loopback_origin(config.url)
        self.rounds_run = 0
        version = normalise_version(config.installed_version)
        self.phones = [
            Phone(
                index=config.first_index + position,
                model=config.models[position % len(config.models)],
                installed={config.models[position % len(config.models)].update_type: version},
                stamps={},
                user=(
                    config.user_template.format(n=config.first_index + position)
                    if position < config.external_users
                    else ""
                ),
                fails=phone_fails(config.first_index + position, config.fail_percent),
            )
            for position in range(config.phones)
        ]

    def versions(self) -> dict[str, dict[str, int]]:
        """Brand Model -> installed version (of the model's update type) -> phones."""
        counts: dict[str, Counter[str]] = {}
        for phone in self.phones:
            name = f"{phone.model.brand} {phone.model.model}"
            version = phone.installed.get(phone.model.update_type, "")
            counts.setdefault(name, Counter())[version] += 1
        return {name: dict(counter) for name, counter in counts.items()}

    def run(
        self, rounds: int, *, on_round: Callable[[RoundSummary], None] | None = None
    ) -> list[RoundSummary]:
        if not 1 <= rounds <= MAX_ROUNDS:
            raise SimulatorError(f"rounds must be between 1 and {MAX_ROUNDS}")
        summaries = []
        for _ in range(rounds):
            summary = self.run_round()
            summaries.append(summary)
            if on_round is not None:
                on_round(summary)
        return summaries

    def run_round(self) -> RoundSummary:
        """Every phone checks once (and downloads what it is offered), within the bounds."""
        self.rounds_run += 1
        started = time.monotonic()
        deadline = started + self.config.round_timeout
        step = self.config.spread_seconds / len(self.phones)
        with ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="phone"
        ) as pool:
            results = list(
                pool.map(
                    lambda item: self._phone_round(item[1], started + item[0] * step, deadline),
                    enumerate(self.phones),
                )
            )
        errors = [message for result in results for message in result.errors]
        latencies = sorted(latency for result in results for latency in result.latencies)
        return RoundSummary(
            round=self.rounds_run,
            phones=len(self.phones),
            checks=sum(r.checks for r in results),
            challenged=sum(r.challenged for r in results),
            offers=sum(r.offers for r in results),
            downloads=sum(r.downloads for r in results),
            bytes=sum(r.bytes for r in results),
            verified=sum(r.verified for r in results),
            installs=sum(r.installs for r in results),
            not_installed=sum(r.not_installed for r in results),
            busy=sum(r.busy for r in results),
            errors=len(errors),
            error_samples=tuple(errors[:_ERROR_SAMPLES]),
            seconds=time.monotonic() - started,
            versions=self.versions(),
            latency_p50_ms=_percentile(latencies, 0.50) * 1000,
            latency_p99_ms=_percentile(latencies, 0.99) * 1000,
        )

    def _phone_round(self, phone: Phone, start_at: float, deadline: float) -> PhoneRound:
        result = PhoneRound()
        wait = start_at - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, max(deadline - time.monotonic(), 0.0)))
        if time.monotonic() >= deadline:
            result.errors.append(f"{phone.mac}: the round's time ran out before its check")
            return result
        try:
            offers = self._check(phone, result)
            if offers:
                result.offers += 1
            for offer in offers:
                if time.monotonic() >= deadline:
                    result.errors.append(f"{phone.mac}: the round's time ran out")
                    break
                self._install(phone, offer, result)
        except (OSError, http.client.HTTPException) as error:
            result.errors.append(f"{phone.mac}: {type(error).__name__}: {error}")
        except ProtocolViolation as error:
            result.errors.append(f"{phone.mac}: {error}")
        return result

    def _request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPResponse, http.client.HTTPConnection]:
        # A new connection per request, as phones make them; closed by the caller.
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=self.config.request_timeout
        )
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return response.status, response, connection

    def _post_check(self, phone: Phone, *, credentials: bool) -> tuple[int, bytes]:
        headers = {"Content-Type": "text/xml; charset=utf-8", "Connection": "close"}
        if credentials:
            token = base64.b64encode(f"{phone.user}:{self.config.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        status, response, connection = self._request(
            "POST", CHECK_PATHS[phone.external], body=phone.request_xml(), headers=headers
        )
        try:
            body = response.read(MAX_RESPONSE + 1)
        finally:
            connection.close()
        if len(body) > MAX_RESPONSE:
            raise ProtocolViolation(f"the answer is larger than {MAX_RESPONSE} bytes")
        return status, body

    def _check(self, phone: Phone, result: PhoneRound) -> list[Offer]:
        started = time.monotonic()
        status, body = self._post_check(phone, credentials=phone.send_credentials)
        if status == 401 and phone.external and not phone.send_credentials:
            code = error_code(body)
            if code != PhoneError.ANONYMOUS_NOT_SUPPORTED:
                raise ProtocolViolation(f"401 {code or 'without a code'} before any credentials")
            result.challenged += 1
            phone.send_credentials = True
            status, body = self._post_check(phone, credentials=True)
        if status != 200:
            raise ProtocolViolation(f"update check answered {status} {error_code(body)}".strip())
        result.checks += 1
        result.latencies.append(time.monotonic() - started)  # the challenge included
        return parse_offer(body)

    def _install(self, phone: Phone, offer: Offer, result: PhoneRound) -> None:
        base = offer.external_base_url if phone.external else offer.base_url
        base = base or offer.base_url
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.path.startswith(DOWNLOAD_PREFIXES):
            raise ProtocolViolation(f"{offer.update_type}: unusable base URL {base!r}")
        ok = True
        for item in offer.files:
            ok = self._download(phone, f"{parts.path.rstrip('/')}/{quote(item.name)}", item, result)
            if not ok:
                break
        if ok and offer.files and phone.fails:
            result.not_installed += 1  # the install fails: the old version stays
        elif ok and offer.files:
            phone.installed[offer.update_type] = offer.version
            phone.stamps[offer.update_type] = offer.files[0].timestamp
            result.installs += 1

    def _download(self, phone: Phone, path: str, item: OfferFile, result: PhoneRound) -> bool:
        status, response, connection = self._request("GET", path, headers={"Connection": "close"})
        try:
            if status == 503:
                result.busy += 1  # the server's download cap: the phone tries next round
                return False
            if status != 200:
                result.errors.append(f"{phone.mac}: GET {path} answered {status}")
                return False
            length = response.getheader("Content-Length")
            if length is not None and length.strip() != str(item.size):
                result.errors.append(
                    f"{phone.mac}: {item.name} is {length} bytes, the offer said {item.size}"
                )
                return False
            digest = hashlib.sha256()
            size = 0
            while size <= item.size:
                chunk = response.read(min(_CHUNK, item.size + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
                digest.update(chunk)
        finally:
            connection.close()
        result.downloads += 1
        result.bytes += size
        if size != item.size:
            result.errors.append(f"{phone.mac}: {item.name} has {size} bytes, not {item.size}")
            return False
        if digest.hexdigest() != item.sha256:
            result.errors.append(f"{phone.mac}: {item.name} does not match its SHA-256")
            return False
        result.verified += 1
        return True


def simulate(
    config: FleetConfig,
    *,
    rounds: int,
    on_round: Callable[[RoundSummary], None] | None = None,
) -> list[RoundSummary]:
    """Run ``rounds`` rounds of a new fleet; a summary per round."""
    return Fleet(config).run(rounds, on_round=on_round)
