from django.apps import AppConfig


class PhonesConfig(AppConfig):
    name = "phones"
    verbose_name = "Phones"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The dashboards add their pages to the admin site (admin:fleet-dashboard, ...).
        import phones.dashboard_admin  # noqa: F401
