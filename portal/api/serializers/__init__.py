"""What the API reads and writes. Serializers check the shape of input; the services
decide whether a change is allowed (their refusals become field errors in the views).

One module per subdomain, mirroring ``portal.services``; re-exported here.
"""

from __future__ import annotations

from portal.api.serializers.audit import (
    AuditEntrySerializer,
)
from portal.api.serializers.fleet import (
    DeviceControlRequestSerializer,
    DeviceControlSerializer,
    DeviceGroupSerializer,
    GroupMembersField,
    MaintenanceWindowSerializer,
    WeekdayField,
)
from portal.api.serializers.imports import (
    ImportJobSerializer,
    ImportStartSerializer,
)
from portal.api.serializers.log_config import (
    EffectiveLogConfigSerializer,
    LogConfigSerializer,
)
from portal.api.serializers.publishers import (
    PublisherSerializer,
)
from portal.api.serializers.rollouts import (
    RolloutActionSerializer,
    RolloutPlanSerializer,
    RolloutPlanSummarySerializer,
    RolloutSerializer,
    RolloutStateField,
    RolloutWaveSerializer,
    WaveField,
)
from portal.api.serializers.rules import (
    RuleBulkActionSerializer,
    RuleBulkResultSerializer,
    RuleOutcomeSerializer,
    RuleReferenceField,
    RuleSerializer,
)
from portal.api.serializers.testdevices import (
    TestDeviceSerializer,
)
from portal.api.serializers.topology import (
    PoolSerializer,
    ServerSerializer,
    SiteSerializer,
)

__all__ = [
    "AuditEntrySerializer",
    "DeviceControlRequestSerializer",
    "DeviceControlSerializer",
    "DeviceGroupSerializer",
    "EffectiveLogConfigSerializer",
    "GroupMembersField",
    "ImportJobSerializer",
    "ImportStartSerializer",
    "LogConfigSerializer",
    "MaintenanceWindowSerializer",
    "PoolSerializer",
    "PublisherSerializer",
    "RolloutActionSerializer",
    "RolloutPlanSerializer",
    "RolloutPlanSummarySerializer",
    "RolloutSerializer",
    "RolloutStateField",
    "RolloutWaveSerializer",
    "RuleBulkActionSerializer",
    "RuleBulkResultSerializer",
    "RuleOutcomeSerializer",
    "RuleReferenceField",
    "RuleSerializer",
    "ServerSerializer",
    "SiteSerializer",
    "TestDeviceSerializer",
    "WaveField",
    "WeekdayField",
]
