import pytest
from django.core.exceptions import ImproperlyConfigured

from uus import conf


def test_defaults_give_the_embedded_default(tmp_path):
    values = conf.load({"UUS_DATA_DIR": str(tmp_path)})
    assert values["database_url"] == ""
    assert values["task_backend"] == "inprocess"
    assert values["data_dir"] == str(tmp_path.resolve())


def test_environment_overrides_file(tmp_path):
    cfg = tmp_path / "uus.toml"
    cfg.write_text('task_backend = "db"\nlogin_max_failures = 3\n')
    values = conf.load({"UUS_CONFIG": str(cfg), "UUS_LOGIN_MAX_FAILURES": "7"})
    assert values["task_backend"] == "db"
    assert values["login_max_failures"] == 7


@pytest.mark.parametrize(
    ("content", "env", "named"),
    [
        ('tsak_backend = "db"\n', {}, "tsak_backend"),
        ('task_backend = "celery"\n', {}, "task_backend"),
        ('login_max_failures = "many"\n', {}, "login_max_failures"),
        ("", {"UUS_DATABSE_URL": "postgres://x/y"}, "UUS_DATABSE_URL"),
        ("", {"UUS_DATABASE_URL": "mysql://h/db"}, "database_url"),
        ("", {"UUS_DATABASE_URL": "postgres://h"}, "database_url"),
        ("", {"UUS_DEBUG": "maybe"}, "debug"),
        ("this is = = not toml", {}, "TOML"),
    ],
)
def test_a_wrong_key_stops_startup_naming_it(tmp_path, content, env, named):
    cfg = tmp_path / "uus.toml"
    cfg.write_text(content)
    with pytest.raises(ImproperlyConfigured, match=named):
        conf.load({"UUS_CONFIG": str(cfg), **env})


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        conf.load({"UUS_CONFIG": str(tmp_path / "nope.toml")})


def test_tooling_variables_are_not_settings():
    conf.load({"UUS_ACCEPTANCE_DIR": "/tmp/x", "UUS_TEST_CHROMIUM": "/usr/bin/chromium", "UUS_CONFIG": ""})


def test_secret_key_is_generated_once_with_mode_0600(tmp_path):
    key = conf.secret_key(str(tmp_path))
    assert conf.secret_key(str(tmp_path)) == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
