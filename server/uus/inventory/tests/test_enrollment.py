import json
from datetime import timedelta

import pytest
from django.utils import timezone

from uus.inventory import services
from uus.inventory.exceptions import EnrollmentRefused
from uus.inventory.models import EnrollmentToken

pytestmark = pytest.mark.django_db


def test_token_is_stored_hashed_and_counts_uses():
    token, key = services.enrollment_token_create(max_uses=2)
    assert key.startswith("uusenr_") and key != token.key_hash and key not in token.key_hash
    services.enrollment_token_use(key)
    services.enrollment_token_use(key)
    with pytest.raises(EnrollmentRefused, match="used up"):
        services.enrollment_token_use(key)


def test_expired_revoked_and_unknown_tokens_are_refused():
    token, key = services.enrollment_token_create(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(EnrollmentRefused, match="expired"):
        services.enrollment_token_use(key)
    token2, key2 = services.enrollment_token_create()
    services.enrollment_token_revoke(token=token2)
    with pytest.raises(EnrollmentRefused, match="revoked"):
        services.enrollment_token_use(key2)
    with pytest.raises(EnrollmentRefused, match="unknown"):
        services.enrollment_token_use("not-a-token")
    assert EnrollmentToken.objects.get(pk=token.pk).uses == 0


@pytest.mark.parametrize("text", ["7d", "12h", "30m", "2030-01-01T00:00:00Z"])
def test_parse_expiry(text):
    assert services.parse_expiry(text) > timezone.now()


def test_parse_expiry_refuses_nonsense():
    from uus.core.exceptions import UusError

    with pytest.raises(UusError, match="cannot read expiry"):
        services.parse_expiry("next tuesday")


@pytest.mark.system
def test_cli_tokens_create_json(uus_cli):
    r = uus_cli("tokens", "create", "--max-uses", "5", "--expires", "1d", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["token"].startswith("uusenr_") and data["max_uses"] == 5
    assert EnrollmentToken.objects.get(prefix=data["prefix"]).uses == 0
