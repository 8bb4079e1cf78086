"""Models of the control panel, one module per subdomain."""

from portal.models.audit import AuditEntry
from portal.models.fleet import DeviceControl, DeviceGroup, DeviceGroupMember, MaintenanceWindow
from portal.models.log_config import DeviceLogConfiguration
from portal.models.packages import ImportJob, UpdateFile, UpdateVersion
from portal.models.publishers import TrustedPublisher
from portal.models.replication import ServerFile
from portal.models.rollouts import Rollout, RolloutWave
from portal.models.rules import DeviceUpdateRule
from portal.models.testdevices import TestDevice
from portal.models.topology import Pool, Server, Site
from portal.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "AuditEntry",
    "DeviceControl",
    "DeviceGroup",
    "DeviceGroupMember",
    "DeviceLogConfiguration",
    "DeviceUpdateRule",
    "ImportJob",
    "MaintenanceWindow",
    "Pool",
    "Rollout",
    "RolloutWave",
    "Server",
    "ServerFile",
    "Site",
    "TestDevice",
    "TrustedPublisher",
    "UpdateFile",
    "UpdateVersion",
    "Webhook",
    "WebhookDelivery",
]
