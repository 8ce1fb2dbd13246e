"""How a service's Kafka clients connect: its own SASL user, over plaintext or TLS.

Every client of a service (the FastStream broker, admin clients, replay consumers, partner
provisioning) takes its connection settings from here, so none of them can connect as anyone but
the service's own principal, whose ACLs the broker enforces.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from portal_runtime.settings import ServiceSettings


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    """The TLS context of SASL_SSL: the configured CA bundle, else the system's; None otherwise."""
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    context: ssl.SSLContext = create_ssl_context(cafile=settings.kafka_ssl_ca_file or None)
    return context


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments of an aiokafka (or kafka-python) client: address and credentials."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers}
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    options.update(
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_plain_username=settings.kafka_username,
        sasl_plain_password=settings.kafka_password.get_secret_value(),
    )
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The same credentials for FastStream's ``KafkaBroker(security=...)``."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    kind = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
    return kind[settings.kafka_sasl_mechanism](
        username=settings.kafka_username,
        password=settings.kafka_password.get_secret_value(),
        use_ssl=settings.kafka_security_protocol == "SASL_SSL",
        ssl_context=ssl_context(settings),
    )
