"""``/api/schema/`` (OpenAPI 3) and ``/api/v1/``: the control panel's routes and the
phone side's, composed here so that the portal never imports the phone side.

Included by the project under ``api/``.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from phones.api.urls import router as phones_router
from portal.api.urls import router as portal_router

app_name = "api"

router = SimpleRouter()
# The portal's first: the phone side adds paths under the same prefixes
# (``rollouts/{id}/progress/``), never a path the portal already has.
for prefix, viewset, basename in [*portal_router.registry, *phones_router.registry]:
    router.register(prefix, viewset, basename=basename)

# The schema documents the management API only: the phone endpoints speak the phones'
# XML protocol (phone-protocol spec), not this API's JSON.
schema_urlconf = SimpleNamespace(urlpatterns=[path("api/v1/", include(router.urls))])

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(urlconf=schema_urlconf), name="schema"),
    path("v1/", include(router.urls)),
]
