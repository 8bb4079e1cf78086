"""The Django project of the Device Update Web Service."""

from deviceupdate.celery import app as celery_app

__all__ = ("celery_app",)
