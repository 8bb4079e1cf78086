#!/usr/bin/env python
"""Django's command-line utility for the Device Update Web Service."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
    from deviceupdate.env import exit_on_config_error

    exit_on_config_error(os.environ["DJANGO_SETTINGS_MODULE"])
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
