from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from uus.accounts import services
from uus.accounts.exceptions import LoginThrottled
from uus.accounts.models import ApiToken, User
from uus.core.exceptions import Conflict, UusError
from uus.testing.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


def test_user_create_hashes_the_password():
    user = services.user_create(username="ann", password="a-long-password-1", role="operator")
    assert user.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))
    assert "a-long-password-1" not in user.password
    assert user.check_password("a-long-password-1")


def test_user_create_refuses_duplicates_weak_passwords_and_unknown_roles():
    services.user_create(username="ann", password="a-long-password-1")
    with pytest.raises(Conflict):
        services.user_create(username="ann", password="a-long-password-2")
    with pytest.raises(UusError, match="password refused"):
        services.user_create(username="bob", password="short")
    with pytest.raises(UusError, match="unknown role"):
        services.user_create(username="cid", password="a-long-password-1", role="root")
    assert User.objects.count() == 1


def test_roles_include_the_ones_below():
    admin = User(role="admin")
    operator = User(role="operator")
    auditor = User(role="auditor")
    assert admin.has_role("operator") and admin.has_role("auditor")
    assert operator.has_role("operator") and not operator.has_role("admin")
    assert auditor.has_role("auditor") and not auditor.has_role("operator")


def test_admin_bootstrap_runs_once():
    made = services.admin_bootstrap()
    assert made is not None
    user, password = made
    assert user.role == "admin" and user.check_password(password)
    assert services.admin_bootstrap() is None


def test_api_token_is_stored_hashed_and_can_expire_or_be_revoked(operator_user):
    token, key = services.api_token_create(user=operator_user, name="ci")
    assert key not in (token.key_hash, token.prefix) and token.key_hash != key
    assert services.api_token_check(key) == operator_user
    assert services.api_token_check(key + "x") is None
    ApiToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert services.api_token_check(key) is None
    token2, key2 = services.api_token_create(user=operator_user, name="ci2")
    services.api_token_revoke(token=token2)
    assert services.api_token_check(key2) is None


def test_login_is_throttled_after_repeated_failures(settings, operator_user):
    settings.UUS = {**settings.UUS, "login_max_failures": 3}
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.9")
    for _ in range(3):
        assert services.login_authenticate(request=request, username=operator_user.username, password="wrong") is None
    with pytest.raises(LoginThrottled):
        # even the right password is refused while locked out: guessing must not pay
        services.login_authenticate(request=request, username=operator_user.username, password=PASSWORD)
