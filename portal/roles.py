"""The two roles of the management contract, as groups with their permissions.

Administrators hold every permission of the service's apps; the helpdesk holds only
the ``view_`` ones. Every migration that adds models calls ``sync_role_permissions``
so the groups keep up; a test checks that they do.
"""

from __future__ import annotations

from typing import Any

ADMINISTRATORS = "Device update administrators"
HELPDESK = "Helpdesk"
ROLE_APPS = ("portal", "phones")


def sync_role_permissions(apps: Any, schema_editor: Any = None) -> None:
    """Create both groups if missing and give them the permissions of ``ROLE_APPS``."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; create them now so
    # the groups can be given them in this migration.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    permissions = permission_model.objects.filter(content_type__app_label__in=ROLE_APPS)
    administrators, _ = group_model.objects.get_or_create(name=ADMINISTRATORS)
    administrators.permissions.set(permissions)
    helpdesk, _ = group_model.objects.get_or_create(name=HELPDESK)
    helpdesk.permissions.set(permissions.filter(codename__startswith="view_"))
