"""Maintenance windows: weekly times, in each site's local time, in which its phones
may be offered new versions (a site without windows is always open)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from portal.choices import Weekday
from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import MaintenanceWindow, Site
from portal.services.fleet import maintenance_window_create, maintenance_window_delete

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def weekday(text: str) -> int:
    """0 (Monday) to 6 (Sunday), or the day's English name; the range is the service's."""
    value = text.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    for day in Weekday:
        if day.label.lower() == value.lower():
            return day.value
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a weekday (0 Monday to 6 Sunday, or its English name)"
    )


def time_of_day(text: str) -> dt.time:
    match = _TIME.match(text.strip())
    try:
        if match is None:
            raise ValueError
        return dt.time(int(match[1]), int(match[2]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM (00:00 to 23:59), got {text!r}") from None


def window_json(window: MaintenanceWindow) -> dict[str, Any]:
    """A window as the API shows it."""
    return {
        "id": window.pk,
        "site": window.site.name,
        "time_zone": window.site.time_zone,
        "weekday": window.weekday,
        "weekday_name": Weekday(window.weekday).label,
        "start": window.start,
        "end": window.end,
    }


class Command(PortalCommand):
    help = (
        "Maintenance windows: a site with windows has its phones offered new versions only "
        "inside them, in the site's time zone (start inclusive, end exclusive)."
    )

    def add_actions(self, subparsers: Actions) -> None:
        listing = self.action_parser(subparsers, "list", "list maintenance windows")
        listing.add_argument("--site", metavar="NAME", help="only this site's")

        add = self.action_parser(subparsers, "add", "add a weekly window to a site")
        add.add_argument("--site", required=True, metavar="NAME", help="the site's name")
        add.add_argument(
            "--weekday", required=True, type=weekday, metavar="DAY", help="0-6 or Monday..Sunday"
        )
        add.add_argument("--start", required=True, type=time_of_day, metavar="HH:MM")
        add.add_argument(
            "--end", required=True, type=time_of_day, metavar="HH:MM", help="after the start"
        )

        remove = self.action_parser(subparsers, "remove", "remove a window by its id")
        remove.add_argument("id", type=int, metavar="ID")

    def handlers(self) -> dict[str, Handler]:
        return {"list": self.list_windows, "add": self.add_window, "remove": self.remove_window}

    def list_windows(self, options: dict[str, Any]) -> None:
        windows = MaintenanceWindow.objects.select_related("site")
        if options["site"]:
            windows = windows.filter(site__name__iexact=options["site"].strip())
        found = list(windows)
        if self.as_json:
            self.emit_json([window_json(window) for window in found])
            return
        if not found:
            self.emit("no maintenance windows (every site is always open)")
            return
        self.emit_table(
            ("ID", "SITE", "TIME ZONE", "WEEKDAY", "START", "END"),
            (
                (str(w.pk), w.site.name, w.site.time_zone, Weekday(w.weekday).label,
                 f"{w.start:%H:%M}", f"{w.end:%H:%M}")
                for w in found
            ),
        )  # fmt: skip

    def _done(self, message: str, window: dict[str, Any]) -> None:
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "maintenance_window": window})
        else:
            self.emit(message)

    def add_window(self, options: dict[str, Any]) -> None:
        name = options["site"].strip()
        site = Site.objects.filter(name__iexact=name).first()
        if site is None:
            raise DomainError(f"no site named {name!r}", field="site")
        window = maintenance_window_create(
            site=site, weekday=options["weekday"], start=options["start"], end=options["end"],
            actor=self.actor,
        )  # fmt: skip
        self._done(f"added window #{window.pk} {window} ({site.time_zone})", window_json(window))

    def remove_window(self, options: dict[str, Any]) -> None:
        window = MaintenanceWindow.objects.select_related("site").filter(pk=options["id"]).first()
        if window is None:
            raise DomainError(f"no maintenance window #{options['id']}", code="not_found")
        described = window_json(window)
        text = f"removed window #{window.pk} {window}"
        maintenance_window_delete(window=window, actor=self.actor)
        self._done(text, described)
