from django.urls import NoReverseMatch, reverse

from .menu import MENU


def navigation(request):
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {"menu": []}
    items = []
    for item in MENU:
        if not user.has_role(item.role):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": item.label,
                "url": url,
                "active": (request.path.startswith(url) and url != "/") or request.path == url,
            }
        )
    return {"menu": items}
