import logging

from uus.core.logging import RedactSecretsFilter, redact


def test_redact_hides_passwords_and_tokens():
    text = 'bind_password=s3cret-Value token: "abc123" Authorization: Token uus_XYZ password="pw!"'
    out = redact(text)
    for secret in ("s3cret-Value", "abc123", "uus_XYZ", "pw!"):
        assert secret not in out


def test_filter_rewrites_records(caplog):
    logger = logging.getLogger("uus.test.redact")
    logger.addFilter(RedactSecretsFilter())
    with caplog.at_level(logging.INFO, logger="uus.test.redact"):
        logger.info("connecting with password=%s", "hunter2hunter2")
    assert "hunter2hunter2" not in caplog.text
    assert "password=***" in caplog.text
