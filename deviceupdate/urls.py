"""URLs: the phone endpoints, the health probe, the control panel and the REST API."""

from django.contrib import admin
from django.urls import include, path, re_path

from deviceupdate.health import healthz
from deviceupdate.landing import landing
from deviceupdate.metrics import metrics
from phones.downloads import download
from phones.views import (
    ExternalLogUploadView,
    ExternalUpdateCheckView,
    LogUploadView,
    UpdateCheckView,
)

urlpatterns = [
    # The phones' paths first: the busiest, resolved without trying the others.
    path("RequestHandler/ucdevice.upx", UpdateCheckView.as_view(), name="update-check"),
    path(
        "RequestHandlerExt/ucdevice.upx",
        ExternalUpdateCheckView.as_view(),
        name="update-check-external",
    ),
    path("RequestHandler/Files", LogUploadView.as_view(), name="log-upload"),
    path("RequestHandlerExt/Files", ExternalLogUploadView.as_view(), name="log-upload-external"),
    # Served by nginx from the store in production (deploy/nginx); by Django otherwise.
    re_path(r"^DeviceUpdateFiles_(?:Int|Ext)/(?P<path>.+)$", download, name="download"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("deviceupdate.api_urls")),
    # What a person who types the host name finds; also the admin's "View site".
    path("", landing, name="landing"),
]
