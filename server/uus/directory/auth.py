"""Django authentication backend for directory accounts.

Listed after ``ModelBackend`` in ``AUTHENTICATION_BACKENDS``: local accounts are tried first and keep
working when every directory is down. Users created here have no usable local password, so the
model backend never lets them in by a password of its own. Throttling of failed logins happens
around ``django.contrib.auth.authenticate`` (``uus.accounts.services.login_authenticate``) and
therefore covers directory logins too.
"""

from __future__ import annotations

import logging

from django.contrib.auth.backends import BaseBackend
from django.views.decorators.debug import sensitive_variables

from uus.accounts.models import User

from . import ldapclient, services
from .models import DirectorySource

log = logging.getLogger(__name__)


class DirectoryBackend(BaseBackend):
    """Simple bind as the person against each enabled directory with role mappings, in name order;
    the first directory that knows the login and accepts the password decides."""

    @sensitive_variables("password")
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password:  # an empty password would be an unauthenticated bind
            return None
        sources = DirectorySource.objects.filter(is_enabled=True, is_login_enabled=True, role_mappings__isnull=False)
        for source in sources.distinct().order_by("name"):
            try:
                user = services.directory_login(source=source, login=username, password=password)
            except ldapclient.DirectoryError as exc:
                log.warning("directory %s unavailable for the login of %r: %s", source.name, username, exc)
                continue
            except Exception as exc:  # a broken source must not break local logins
                log.warning("directory %s: login of %r failed: %s", source.name, username, type(exc).__name__)
                continue
            if user is not None:
                return user
        return None

    def get_user(self, user_id):
        try:
            user = User.objects.get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if user.is_active else None
