"""``/api/schema/`` (OpenAPI 3) and ``/api/v1/``: included by the project under ``api/``."""

from __future__ import annotations

from types import SimpleNamespace

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from portal.api import views

app_name = "api"

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

# The schema documents the management API only: the phone endpoints speak the phones'
# XML protocol (phone-protocol spec), not this API's JSON.
schema_urlconf = SimpleNamespace(urlpatterns=[path("api/v1/", include(router.urls))])

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(urlconf=schema_urlconf), name="schema"),
    path("v1/", include(router.urls)),
]
