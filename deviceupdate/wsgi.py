"""WSGI entry point (gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

from deviceupdate.env import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
exit_on_config_error(os.environ["DJANGO_SETTINGS_MODULE"])
application = get_wsgi_application()
