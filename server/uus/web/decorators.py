from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def role_required(role: str):
    """Login required, then the role; a POST by a lesser role is a 403, never a silent no-op."""

    def deco(view):
        @login_required
        @wraps(view)
        def inner(request, *args, **kwargs):
            if not request.user.has_role(role):
                raise PermissionDenied(f"this needs the {role} role")
            return view(request, *args, **kwargs)

        return inner

    return deco
