"""The phone side of the control panel: one module of admin pages per area, all
registered on import (the dashboards' pages are put on the site by
``deviceupdate.admin_site``)."""

from phones.admin import audit, dashboards, inventory, logs

__all__ = ["audit", "dashboards", "inventory", "logs"]
