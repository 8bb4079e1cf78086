"""``/api/schema/`` (OpenAPI 3), ``/api/docs/`` (Swagger UI on it, from the project's
own static files) and ``/api/v1/``: the control panel's routes and the phone side's,
composed here so that the portal never imports the phone side; ``/api/v1/`` itself
lists the endpoints (DRF's API root, browsable).

Included by the project under ``api/``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.routers import APIRootView, DefaultRouter
from rest_framework.views import APIView

from phones.api.urls import router as phones_router
from portal.api.urls import router as portal_router
from portal.roles import ROLE_APPS

app_name = "api"


class ApiRootView(APIRootView):
    """``/api/v1/``: every endpoint's list URL, for whoever is signed in."""

    permission_classes = [IsAuthenticated]


class MayUseTheApi(BasePermission):
    """A signed-in user with a permission of the service's apps (either role)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user.is_authenticated and any(user.has_module_perms(app) for app in ROLE_APPS))


class ApiDocsView(SpectacularSwaggerView):
    """``/api/docs/``: a page for people, so a signed-out browser is sent to the control
    panel's sign-in and back; a signed-in user without a role is refused (403)."""

    permission_classes = [MayUseTheApi]

    # DRF finalises any HttpResponseBase; its stubs name only Response.
    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        # No credentials at all: a person's browser. A bad token stays a 403 (a client).
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


class ApiRouter(DefaultRouter):
    """The routes, plus the API root; one URL per endpoint (no ``.json`` suffixes)."""

    include_format_suffixes = False
    APIRootView = ApiRootView

    def get_api_root_view(self, api_urls: Any = None) -> Callable[..., Any]:
        # The phone side adds detail routes under the portal's prefixes (``rollouts``):
        # the root names each prefix's list, which the first registration has.
        api_root_dict: dict[str, str] = {}
        list_name = self.routes[0].name
        for prefix, _viewset, basename in self.registry:
            api_root_dict.setdefault(prefix, list_name.format(basename=basename))
        return self.APIRootView.as_view(api_root_dict=api_root_dict)


router = ApiRouter()
# The portal's first: the phone side adds paths under the same prefixes
# (``rollouts/{id}/progress/``), never a path the portal already has.
for prefix, viewset, basename in [*portal_router.registry, *phones_router.registry]:
    router.register(prefix, viewset, basename=basename)

# The schema documents the management API only: the phone endpoints speak the phones'
# XML protocol (phone-protocol spec), not this API's JSON.
schema_urlconf = SimpleNamespace(urlpatterns=[path("api/v1/", include(router.urls))])

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(urlconf=schema_urlconf), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    path("v1/", include(router.urls)),
]
