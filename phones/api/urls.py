"""The phone side's routes of the REST API, served beside the portal's by
``deviceupdate/api_urls.py``."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from phones.api.views import DeviceOutcomeViewSet, RolloutProgressViewSet

router = SimpleRouter()
router.register("rollouts", RolloutProgressViewSet, basename="rolloutprogress")
router.register("devices", DeviceOutcomeViewSet, basename="deviceoutcome")
