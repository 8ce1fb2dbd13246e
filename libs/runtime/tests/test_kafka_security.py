"""How a service's clients connect (pure): its own SASL user, or nothing at all; no default
secrets for object storage."""

from __future__ import annotations

import ssl

import pytest
from faststream.security import SASLPlaintext, SASLScram512
from pydantic import ValidationError

from portal_runtime.kafka_security import broker_security, client_options
from portal_runtime.settings import ServiceSettings
from portal_runtime.storage import ObjectStore


def test_a_service_signs_in_as_its_own_scram_user() -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers="kafka:9092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="normalize",
        kafka_password="pw-of-normalize",
    )
    assert client_options(settings) == {
        "bootstrap_servers": "kafka:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "normalize",
        "sasl_plain_password": "pw-of-normalize",
    }
    security = broker_security(settings)
    assert isinstance(security, SASLScram512) and not security.use_ssl
    assert (security.username, security.password) == ("normalize", "pw-of-normalize")


def test_over_tls_the_broker_is_verified() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_username="u",
        kafka_password="p",
    )
    context = client_options(settings)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    security = broker_security(settings)
    assert isinstance(security, SASLPlaintext) and security.use_ssl


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="KAFKA_USERNAME and KAFKA_PASSWORD"):
        ServiceSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_username="ingest")
    plain = ServiceSettings()
    assert client_options(plain) == {"bootstrap_servers": plain.kafka_bootstrap_servers}
    assert broker_security(plain) is None


def test_object_storage_has_no_default_key() -> None:
    settings = ServiceSettings(service_name="normalize")
    assert settings.s3_access_key == "" and settings.s3_secret_key.get_secret_value() == ""
    with pytest.raises(ValueError, match="S3_ACCESS_KEY and S3_SECRET_KEY"):
        ObjectStore(settings)
    store = ObjectStore(ServiceSettings(s3_access_key="k", s3_secret_key="s"))
    assert store.bucket == "portal-media"
