"""Field validators shared by models and forms."""

from __future__ import annotations

import functools
import zoneinfo

from django.core.exceptions import ValidationError

from deviceupdate.topology_names import normalise_fqdn


def validate_fqdn(value: str) -> None:
    """A DNS host name, already normalised (lower case, no trailing dot)."""
    try:
        normalised = normalise_fqdn(value, strict=True)
    except ValueError:
        raise ValidationError(
            "%(value)s is not a valid host name.", code="invalid_fqdn", params={"value": value}
        ) from None
    if normalised != value:
        raise ValidationError(
            "Write the host name in lower case without a trailing dot: %(normalised)s.",
            code="fqdn_not_normalised",
            params={"normalised": normalised},
        )


def validate_time_zone(value: str) -> None:
    """An IANA time zone name the system's zone database knows (``Europe/Paris``)."""
    if value not in available_time_zones():
        raise ValidationError(
            "%(value)s is not a known time zone (an IANA name such as Europe/Paris).",
            code="unknown_time_zone",
            params={"value": value},
        )


@functools.cache
def available_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
