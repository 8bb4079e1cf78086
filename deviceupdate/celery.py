"""The Celery application, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

from deviceupdate.env import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
exit_on_config_error(os.environ["DJANGO_SETTINGS_MODULE"])

app = Celery("deviceupdate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
