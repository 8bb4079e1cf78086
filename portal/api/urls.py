"""The control panel's routes of the REST API (``/api/v1/``).

The project serves them together with the phone side's routes (rollout progress, a
phone's observed outcomes), under one OpenAPI schema, from ``deviceupdate/api_urls.py``:
the portal never imports the phone side.
"""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from portal.api import views, webhooks

router = SimpleRouter()
router.register("rules", views.RuleViewSet, basename="rule")
router.register("test-devices", views.TestDeviceViewSet, basename="testdevice")
router.register("log-config", views.LogConfigViewSet, basename="logconfig")
router.register("trusted-publishers", views.PublisherViewSet, basename="publisher")
router.register("sites", views.SiteViewSet, basename="site")
router.register("pools", views.PoolViewSet, basename="pool")
router.register("servers", views.ServerViewSet, basename="server")
router.register("audit", views.AuditEntryViewSet, basename="auditentry")
router.register("imports", views.ImportJobViewSet, basename="importjob")
router.register("rollouts", views.RolloutViewSet, basename="rollout")
router.register("device-controls", views.DeviceControlViewSet, basename="devicecontrol")
router.register("device-groups", views.DeviceGroupViewSet, basename="devicegroup")
router.register("maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenancewindow")
router.register("webhooks", webhooks.WebhookViewSet, basename="webhook")
