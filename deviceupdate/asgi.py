"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from deviceupdate.env import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
exit_on_config_error(os.environ["DJANGO_SETTINGS_MODULE"])
application = get_asgi_application()
