#!/usr/bin/env python3
"""Django's manage.py, for developers; administrators use the `uus` command."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
