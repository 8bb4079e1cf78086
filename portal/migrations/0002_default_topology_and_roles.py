"""A fresh install has one site, one pool and one server (this machine), and both roles."""

from django.conf import settings
from django.db import migrations

from portal.roles import sync_role_permissions

DEFAULT_SITE = "Default"


def create_default_topology(apps, schema_editor):
    site_model = apps.get_model("portal", "Site")
    pool_model = apps.get_model("portal", "Pool")
    server_model = apps.get_model("portal", "Server")
    if site_model.objects.exists():
        return
    fqdn = settings.SERVER_FQDN
    site = site_model.objects.create(name=DEFAULT_SITE, description="Created at install")
    pool = pool_model.objects.create(site=site, fqdn=fqdn, internal_web_fqdn=fqdn)
    server_model.objects.create(pool=pool, fqdn=fqdn)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_default_topology, migrations.RunPython.noop),
        migrations.RunPython(sync_role_permissions, migrations.RunPython.noop),
    ]
