"""Role checks for the API: reads need any role (auditor and up), writes need the view's `write_role`."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .choices import Role


class RolePermission(BasePermission):
    message = "your role does not allow this"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        action = getattr(view, "action", None)
        per_action = getattr(view, "action_roles", {})
        if action in per_action:
            needed = per_action[action]
        elif request.method in SAFE_METHODS:
            needed = getattr(view, "read_role", Role.AUDITOR)
        else:
            needed = getattr(view, "write_role", Role.ADMIN)
        return user.has_role(needed)
