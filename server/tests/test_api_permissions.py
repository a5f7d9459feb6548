"""Every API endpoint, called anonymously and as each role: lesser roles get 403 and change nothing."""

import pytest
from django.urls import get_resolver
from uus.testing.api import ENDPOINTS, Endpoint, make_objects

ROLES = ["auditor", "operator", "admin"]
RANK = {r: i for i, r in enumerate(ROLES)}


def _ids(e: Endpoint) -> str:
    return f"{e.method} {e.path}"


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids)
@pytest.mark.parametrize("role", [None, *ROLES])
def test_endpoint_permissions(endpoint, role, make_user, api_client_for):
    from uus.accounts.models import User

    owner = make_user(role or "auditor", username="caller")
    client = api_client_for(owner if role else None)
    path = endpoint.path.format(**make_objects(owner))
    users_before = User.objects.count()
    response = client.generic(
        endpoint.method, path, data=__import__("json").dumps(endpoint.payload()), content_type="application/json"
    )
    if role is None:
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "not_authenticated"
    elif RANK[role] < RANK[endpoint.role]:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
        assert User.objects.count() == users_before
    else:
        assert response.status_code < 400, (response.status_code, response.content)


def test_every_api_route_is_declared():
    """A new endpoint without a row in uus.testing.api.ENDPOINTS fails here."""
    declared = {e.path.split("{")[0].rstrip("/") for e in ENDPOINTS}
    resolver = get_resolver()
    missing = []
    for pattern in resolver.url_patterns:
        if str(pattern.pattern) != "api/v1/":
            continue
        for sub in pattern.url_patterns:
            route = str(sub.pattern).lstrip("^").rstrip("$")
            if "format" in route or route in ("", "/"):
                continue
            prefix = "/api/v1/" + route.split("(")[0].split("<")[0].rstrip("/")
            if prefix.rstrip("/") not in declared and not any(d.startswith(prefix.rstrip("/")) for d in declared):
                missing.append(route)
    assert not missing, f"API routes without a permission row: {missing}"
