"""DN handling and host names in uus.directory.ldapclient (pure functions, no server)."""

import pytest

from uus.directory.ldapclient import (
    DirectoryConfig,
    DirectoryConfigError,
    dn_key,
    is_dn_within,
    normalize_dn,
    ou_ancestors,
    parent_dn,
)

BASE = "dc=corp,dc=test"
ADMIN = "cn=admin,dc=corp,dc=test"
C = "ou=Computers,dc=corp,dc=test"


@pytest.mark.parametrize(
    "raw,normal",
    [
        ("UID=Bob, OU=people , DC=corp, DC=test", "uid=Bob,ou=people,dc=corp,dc=test"),
        ("cn=a\\2Cb,dc=x", "cn=a\\,b,dc=x"),
        ("cn=M\\C3\\BCller,dc=x", "cn=Müller,dc=x"),
        ("cn = Printer 2nd floor ,ou=x", "cn=Printer 2nd floor,ou=x"),
        ("cn=\\ lead\\ ,dc=x", "cn=\\ lead\\ ,dc=x"),
        ("cn=a+UID=b;dc=x", "cn=a+uid=b,dc=x"),
    ],
)
def test_normalize_dn(raw, normal):
    assert normalize_dn(raw) == normal
    assert normalize_dn(normal) == normal


def test_dn_key_compares_case_and_spacing_insensitively():
    assert dn_key("UID=Bob, OU=People,DC=corp,DC=test") == dn_key("uid=bob,ou=people,dc=corp,dc=test")
    assert dn_key("cn=a+uid=b,dc=x") == dn_key("UID=B + CN=A,dc=x")
    assert dn_key("cn=a\\,b,dc=x") != dn_key("cn=a,cn=b,dc=x")


def test_ou_ancestors():
    dn = "cn=ber-web01,ou=Berlin,ou=Germany,ou=Computers,dc=corp,dc=test"
    assert ou_ancestors(dn) == [f"ou=Berlin,ou=Germany,{C}", f"ou=Germany,{C}", C]
    assert ou_ancestors(dn, "OU=Germany, OU=computers,DC=corp,DC=test") == [
        f"ou=Berlin,ou=Germany,{C}",
        f"ou=Germany,{C}",
    ]
    assert ou_ancestors("CN=W1,CN=Computers,OU=Paris,DC=corp,DC=test", "dc=corp,dc=test") == [
        "ou=Paris,dc=corp,dc=test"
    ]
    assert ou_ancestors(dn, ou_dns=[f"OU=GERMANY,{C}"]) == [f"ou=Germany,{C}"]
    assert ou_ancestors(dn, "dc=elsewhere") == []
    assert parent_dn(dn) == f"ou=Berlin,ou=Germany,{C}" and parent_dn("dc=test") is None
    assert is_dn_within(dn, "DC=Corp,DC=Test") and is_dn_within(BASE, BASE) and not is_dn_within(BASE, C)


def test_config_repr_hides_the_password():
    cfg = DirectoryConfig(
        url="ldap://x",
        base_dn=BASE,
        bind_dn=ADMIN,
        bind_password="hunter2-secret",
        ca_cert_data="-----BEGIN CERTIFICATE-----",
    )
    assert "hunter2-secret" not in repr(cfg) and "BEGIN" not in repr(cfg)


@pytest.mark.parametrize("bad", ["", "   ", "not a dn", "cn=x,", "cn=x,,dc=y", "=x", "cn=x\\", "c n=x"])
def test_invalid_dns_are_refused(bad):
    with pytest.raises(DirectoryConfigError, match="not a valid DN"):
        normalize_dn(bad)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("web01", ("web01", None)),
        ("WEB01.Corp.Test.", ("web01", "web01.corp.test")),
        ("host_with_underscore", ("host_with_underscore", None)),
        ("Printer 2nd floor", None),
        ("-bad", None),
        ("a..b", None),
        ("x" * 64, None),
    ],
)
def test_host_names(value, expected):
    from uus.directory.ldapclient import _host_name

    assert _host_name(value) == expected


def test_parsed_dns_are_cached_as_immutable_tuples_and_cleared():
    """A sync parses each DN many times; the cache must hand out values nobody can change."""
    from uus.directory import ldapclient

    ldapclient.dn_caches_clear()
    first = ldapclient._split_dn("CN=web\\2C1 , OU=Berlin;dc=corp")
    assert first == (((("cn", "web,1"),), (("ou", "Berlin"),), (("dc", "corp"),)))
    assert ldapclient._split_dn("CN=web\\2C1 , OU=Berlin;dc=corp") is first  # served from the cache
    assert normalize_dn("CN=web\\2C1 , OU=Berlin;dc=corp") == "cn=web\\,1,ou=Berlin,dc=corp"
    ldapclient.dn_caches_clear()
    again = ldapclient._split_dn("CN=web\\2C1 , OU=Berlin;dc=corp")
    assert again == first and again is not first
    with pytest.raises(DirectoryConfigError):  # errors are not cached as values
        ldapclient._split_dn("cn=x,")
    with pytest.raises(DirectoryConfigError):
        ldapclient._split_dn("cn=x,")
