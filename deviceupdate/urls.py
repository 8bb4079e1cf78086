"""URLs: the control panel, the health probe (the API and phone endpoints join later)."""

from django.contrib import admin
from django.urls import path

from deviceupdate.health import healthz

admin.site.site_header = "Device Update control panel"
admin.site.site_title = "Device Update"
admin.site.index_title = "Phones, firmware and rollouts"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
