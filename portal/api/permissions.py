"""Who may call the API: the role's model permissions, reads included.

DRF's ``DjangoModelPermissions`` lets any signed-in user read; here a read also needs
the ``view_`` permission, so a user of neither role sees nothing, the helpdesk (view
permissions only) reads everything and changes nothing, and administrators do it all.
"""

from __future__ import annotations

from django.db import models
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView

VIEW = "%(app_label)s.view_%(model_name)s"


class RolePermissions(DjangoModelPermissions):
    """Model permissions for every method; a view may name the verb an action needs.

    ``action_verbs = {"approve": "change"}`` on a viewset makes its ``approve`` action
    need ``change_<model>`` whatever the HTTP method (a POST would otherwise need
    ``add_<model>``).
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": [VIEW],
        "OPTIONS": [VIEW],
        "HEAD": [VIEW],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        model = self._queryset(view).model
        return user.has_perms(self.required_permissions(request, view, model))

    def required_permissions(
        self, request: Request, view: APIView, model: type[models.Model]
    ) -> list[str]:
        verbs: dict[str, str] = getattr(view, "action_verbs", {})
        verb = verbs.get(getattr(view, "action", None) or "")
        if verb is None:
            return self.get_required_permissions(request.method or "", model)
        return [f"{model._meta.app_label}.{verb}_{model._meta.model_name}"]
