"""API views: validate the input, call one service or selector, render the answer.

Every change goes through the services (audited, with the signed-in user as actor);
their refusals (``DomainError``) become 400 with field errors, or 404 when what was
named does not exist, by one shared mapping (``api_exception_of``).

One module per subdomain, mirroring ``portal.services``; the view sets are re-exported here
for the router.
"""

from __future__ import annotations

from portal.api.views.audit import (
    AuditEntryViewSet,
)
from portal.api.views.base import (
    AuditCursorPagination,
    IdCursorPagination,
    ImportCursorPagination,
    NewestFirstCursorPagination,
    PortalViewSet,
    api_exception_of,
)
from portal.api.views.fleet import (
    DeviceControlViewSet,
    DeviceGroupViewSet,
    MaintenanceWindowViewSet,
)
from portal.api.views.imports import (
    DRY_RUN_VALUES,
    ImportJobViewSet,
)
from portal.api.views.log_config import (
    SCOPE_PARAMETER,
    LogConfigViewSet,
)
from portal.api.views.publishers import (
    PublisherViewSet,
)
from portal.api.views.rollouts import (
    ROLLOUT_ACTIONS,
    RolloutViewSet,
)
from portal.api.views.rules import (
    RuleViewSet,
)
from portal.api.views.testdevices import (
    TestDeviceViewSet,
)
from portal.api.views.topology import (
    PoolViewSet,
    ServerViewSet,
    SiteViewSet,
)

__all__ = [
    "AuditCursorPagination",
    "AuditEntryViewSet",
    "DRY_RUN_VALUES",
    "DeviceControlViewSet",
    "DeviceGroupViewSet",
    "IdCursorPagination",
    "ImportCursorPagination",
    "ImportJobViewSet",
    "LogConfigViewSet",
    "MaintenanceWindowViewSet",
    "NewestFirstCursorPagination",
    "PoolViewSet",
    "PortalViewSet",
    "PublisherViewSet",
    "ROLLOUT_ACTIONS",
    "RolloutViewSet",
    "RuleViewSet",
    "SCOPE_PARAMETER",
    "ServerViewSet",
    "SiteViewSet",
    "TestDeviceViewSet",
    "api_exception_of",
]
