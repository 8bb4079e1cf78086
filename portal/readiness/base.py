"""What every readiness check returns: one result per thing checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """PASS: ready. WARN: works, or could not be checked (the detail says why). FAIL: phones
    or administrators will meet this."""

    PASS = "PASS"  # noqa: S105 (a status, not a password)
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the readiness report: ``check`` names the group (``dns``,
    ``certificates``, ``time``, ``phone``, ``pool``, ``directory``), ``subject`` what was
    checked (a name, a listener, a server), ``detail`` what was found, ``fix`` what to do
    (empty on PASS)."""

    check: str
    subject: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }
