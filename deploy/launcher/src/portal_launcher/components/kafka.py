"""Apache Kafka 4.x, KRaft single node (broker and controller in one JVM), jars from Maven Central.

Three listeners, all on loopback, none of them open to an unauthenticated client:
- INTERNAL, SASL_PLAINTEXT (``kafka_port``): the portal's services, each a SCRAM-SHA-512 user
  whose ACLs (``kafka_acls``, from the topic registry) allow exactly its topics and groups; and
  the operator ``portal-admin`` (SASL/PLAIN, a super user: the launcher, `portal` ops tools,
  tests, and the node's own inter-broker traffic).
- PARTNER, SASL_SSL with SCRAM-SHA-512 (``kafka_sasl_port``): partner agencies, each a SCRAM user
  that ACLs confine to its own topic, over TLS with a certificate of the data folder's own CA.
- CONTROLLER, SASL_PLAINTEXT with PLAIN (``kafka_controller_port``): the KRaft quorum; only the
  operator identity authenticates there.

The operator's password lives in the data folder's secrets (never in code) and in the generated
``server.properties`` (mode 0600). The data folder is formatted once; later starts reuse it.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka.protocol.admin import DescribeClientQuotasRequest

from portal_launcher.build_cache import USER_CACHE, inputs_key, publish, staging_file
from portal_launcher.credentials import stack_secrets, write_private
from portal_launcher.kafka_acls import Grant, all_grants, principal
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import REPO_ROOT, StackSettings
from portal_launcher.tls import CA_CERT, ensure_server_cert

KAFKA_JVM_DIR = REPO_ROOT / "deploy" / "jvm" / "kafka"
KAFKA_POM = KAFKA_JVM_DIR / "pom.xml"
KAFKA_LOG4J2 = KAFKA_JVM_DIR / "log4j2.properties"
# The resolved classpath is kept per machine, keyed by the pom (every checkout shares it).
_CLASSPATH_DIR = USER_CACHE / "kafka"

# Kafka 4.x brokers need Java 17+; the machine's default `java` may be another JDK.
_DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")

_SCRAM_MECHANISM = "SCRAM-SHA-512"
_TOPIC_ALREADY_EXISTS = 36
# Kafka's tools parse SCRAM values as "key=value,key=value" (and ConfigCommand's file as Java
# properties), so secrets are kept to URL-safe characters, e.g. secrets.token_urlsafe().
_SAFE_SECRET = re.compile(r"[A-Za-z0-9_.~-]{8,256}")
_T = TypeVar("_T")


class _LoopbackSignIn(logging.Filter):
    """The operator signs in with PLAIN over loopback only; the clients warn about it on every
    connection, which says nothing new."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "in the clear" not in record.getMessage()


logging.getLogger("aiokafka.conn").addFilter(_LoopbackSignIn())


class TopicSpec(Protocol):
    """What ensure_topics needs from a topic of the contracts registry (duck-typed)."""

    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> int: ...

    @property
    def config(self) -> Mapping[str, str]: ...


# -- JVM and jars ---------------------------------------------------------------------------------
def java_home() -> Path:
    """JDK 17 for the broker: PORTAL_STACK_KAFKA_JAVA_HOME, else the Debian JDK 17, else JAVA_HOME."""
    for candidate in (
        os.environ.get("PORTAL_STACK_KAFKA_JAVA_HOME"),
        str(_DEFAULT_JAVA_HOME),
        os.environ.get("JAVA_HOME"),
    ):
        if candidate and (Path(candidate) / "bin" / "java").is_file():
            return Path(candidate)
    raise ComponentFailed(
        f"no JDK 17 found (looked at PORTAL_STACK_KAFKA_JAVA_HOME, {_DEFAULT_JAVA_HOME}, "
        "JAVA_HOME); install openjdk-17-jdk-headless"
    )


def _java() -> str:
    return str(java_home() / "bin" / "java")


def classpath_file() -> Path:
    """Where the classpath resolved from the current pom is kept."""
    return _CLASSPATH_DIR / f"classpath-{inputs_key(KAFKA_JVM_DIR, [KAFKA_POM])}.txt"


def _cached_classpath() -> list[str] | None:
    """The cached classpath if it belongs to the current pom and every jar is still there."""
    try:
        jars = [j for j in classpath_file().read_text().strip().split(os.pathsep) if j]
    except FileNotFoundError:
        return None
    if not jars or not all(Path(j).is_file() for j in jars):
        return None  # e.g. the Maven cache was cleaned
    return jars


def kafka_classpath() -> list[str]:
    """Jars of the broker and tools; resolved by Maven once, then cached until the pom changes."""
    cached = _cached_classpath()
    if cached is not None:
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ComponentFailed(
            "Maven (`mvn`) is needed to fetch the Kafka jars; apt-get install maven"
        )
    target = classpath_file()
    tmp = staging_file(target)
    env = {**os.environ, "JAVA_HOME": str(java_home())}
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:build-classpath",
         f"-Dmdep.outputFile={tmp}"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ComponentFailed(
            f"mvn could not resolve {KAFKA_POM}:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    publish(tmp, target)
    jars = _cached_classpath()
    if jars is None:
        raise ComponentFailed(f"mvn wrote no usable classpath to {classpath_file()}")
    return jars


def kafka_version_from_classpath(jars: Iterable[str]) -> str | None:
    for jar in jars:
        m = re.fullmatch(r"kafka_2\.13-(.+)\.jar", Path(jar).name)
        if m:
            return m.group(1)
    return None


def run_kafka_tool(main_class: str, args: list[str], timeout_s: float = 120.0) -> str:
    """Run one of Kafka's command-line tools from the broker's classpath; its output on success."""
    proc = subprocess.run(
        [_java(), "-Xmx256m", f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
         "-cp", os.pathsep.join(kafka_classpath()), main_class, *args],
        env={**os.environ, "JAVA_HOME": str(java_home())},
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ComponentFailed(
            f"{main_class} {' '.join(args[:2])} failed ({proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return proc.stdout


def _run_sync(coro: Awaitable[_T]) -> _T:
    """asyncio.run, also from code that already runs an event loop (e.g. an async test)."""

    async def _main() -> _T:
        return await coro

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _main()).result()


def _check_secret(password: str) -> None:
    if not _SAFE_SECRET.fullmatch(password):
        raise ValueError(
            "a Kafka SCRAM password must be 8-256 of the characters A-Z a-z 0-9 _ . ~ -"
        )


def _new_cluster_id() -> str:
    # Kafka's Uuid string form: 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


# -- the component --------------------------------------------------------------------------------
class KafkaComponent(Component):
    name = "kafka"

    @property
    def data_path(self) -> Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    def install(self) -> None:
        kafka_classpath()

    @property
    def tls_dir(self) -> Path:
        return self.settings.data_dir / "tls"

    def prepare(self) -> None:
        self._classpath = kafka_classpath()  # cached after install(); re-resolved if pom changed
        self.data_path.mkdir(parents=True, exist_ok=True)
        self._server_cert = ensure_server_cert(
            self.tls_dir, "kafka-server", partner_hostnames(self.settings)
        )
        # Rewritten on every start so that changed ports apply; the static voter list (not a
        # dynamic quorum) is what lets the controller port change between runs. It holds the
        # operator's password: 0600 from its creation.
        write_private(self.properties_file, self.server_properties())
        if not (self.data_path / "meta.properties").exists():
            self._format_storage()

    def server_properties(self) -> str:
        s = self.settings
        h = s.host
        admin, password = s.kafka_admin_user, stack_secrets(s).kafka_admin_password
        _check_secret(password)
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{admin}" password="{password}" user_{admin}="{password}";'
        )
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        keystore = self.tls_dir / "kafka-server.pem"
        return "\n".join(
            [
                "# Written by portal_launcher on every start; edit components/kafka.py instead.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{h}:{s.kafka_controller_port}",
                "controller.listener.names=CONTROLLER",
                f"listeners=INTERNAL://{h}:{s.kafka_port},"
                f"PARTNER://{h}:{s.kafka_sasl_port},CONTROLLER://{h}:{s.kafka_controller_port}",
                f"advertised.listeners=INTERNAL://{h}:{s.kafka_port},PARTNER://{h}:{s.kafka_sasl_port}",
                "listener.security.protocol.map="
                "INTERNAL:SASL_PLAINTEXT,PARTNER:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
                "inter.broker.listener.name=INTERNAL",
                f"log.dirs={self.data_path}",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                "sasl.mechanism.controller.protocol=PLAIN",
                "",
                "# Services: SCRAM users (KRaft metadata log); the operator: PLAIN, from this file.",
                f"listener.name.internal.sasl.enabled.mechanisms={_SCRAM_MECHANISM},PLAIN",
                f"listener.name.internal.scram-sha-512.sasl.jaas.config={scram}",
                f"listener.name.internal.plain.sasl.jaas.config={plain}",
                "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
                f"listener.name.controller.plain.sasl.jaas.config={plain}",
                "# Partner agencies: SCRAM users over TLS (the data folder's own CA).",
                f"listener.name.partner.sasl.enabled.mechanisms={_SCRAM_MECHANISM}",
                f"listener.name.partner.scram-sha-512.sasl.jaas.config={scram}",
                "listener.name.partner.ssl.keystore.type=PEM",
                f"listener.name.partner.ssl.keystore.location={keystore}",
                "",
                "# Deny by default: each service and partner has ACLs for exactly what it uses.",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found=false",
                f"super.users=User:{admin}",
                "",
                "# Single node: internal topics cannot have more than one replica.",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "# Topics come from the contracts registry (ensure_topics), never from a typo.",
                "auto.create.topics.enable=false",
                "# Events carry whole articles: allow up to 4 MiB (contracts MAX_MESSAGE_BYTES).",
                "message.max.bytes=4194304",
                "group.initial.rebalance.delay.ms=0",
                "# The controller appends a no-op record to the metadata log this often (default:",
                "# every 500 ms, each one flushed to disk and loaded by the broker: CPU spent while",
                "# nothing happens). A single node has no other broker waiting on it to look alive.",
                "metadata.max.idle.interval.ms=5000",
                "num.partitions=1",
                "",
                "# Threads for a node sharing a couple of cores with the whole stack (the defaults",
                "# suit a dedicated many-core broker): each idle request handler and network thread",
                "# wakes every 300 ms, and more threads than cores only switch between each other.",
                "num.network.threads=1",
                "num.io.threads=2",
                "background.threads=2",
                "group.coordinator.threads=1",
                "",
            ]
        )

    def _format_storage(self) -> None:
        run_kafka_tool(
            "kafka.tools.StorageTool",
            # "--cluster-id=<id>": an id may start with "-", which would read as an option.
            ["format", "--config", str(self.properties_file), f"--cluster-id={_new_cluster_id()}"],
        )

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        classpath = getattr(self, "_classpath", None) or kafka_classpath()
        return [
            _java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            # The client compiler only: in the pipeline bench the C2 compiler threads were a
            # third to two thirds of the broker's CPU (a fresh stack, and still minutes later),
            # for code whose hot paths are short (requests handed between threads, bytes
            # copied); C1's code is a little slower and compiled for a fraction of the CPU.
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
            "-cp",
            os.pathsep.join(classpath),
            "kafka.Kafka",
            str(self.properties_file),
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["JAVA_HOME"] = str(java_home())
        return env

    def probe(self) -> bool:
        # A plain connect first: while the JVM starts, aiokafka would log every refused attempt.
        try:
            socket.create_connection((self.settings.host, self.settings.kafka_port), 1.0).close()
        except OSError:
            return False
        return _run_sync(_cluster_has_broker(admin_client_options(self.settings), timeout_s=5.0))

    def after_ready(self) -> None:
        forget_legacy_admin(self.settings)

    def version(self) -> str:
        jars = _cached_classpath()
        return (kafka_version_from_classpath(jars) if jars else None) or "unknown"

    def endpoint(self) -> str:
        return self.settings.kafka_bootstrap


async def _cluster_has_broker(options: Mapping[str, Any], timeout_s: float) -> bool:
    admin = AIOKafkaAdminClient(
        **options,
        client_id="portal-launcher-probe",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))


# -- topics ---------------------------------------------------------------------------------------
async def ensure_topics(settings: StackSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Existing topics are left as they are (partitions and configs are not reconciled).
    """
    wanted = list(specs)
    admin = AIOKafkaAdminClient(
        **admin_client_options(settings), client_id="portal-launcher-topics"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t.name, t.partitions, 1, topic_configs=dict(t.config)) for t in missing]
        )
    finally:
        await admin.close()
    created: list[str] = []
    failures: list[str] = []
    for item in response.to_object()["topic_errors"]:
        code = item["error_code"]
        if code == 0:
            created.append(item["topic"])
        elif code != _TOPIC_ALREADY_EXISTS:  # another launcher won the race: fine
            failures.append(f"{item['topic']}: error {code} {item.get('error_message') or ''}")
    if failures:
        raise ComponentFailed("could not create Kafka topics:\n" + "\n".join(failures))
    return created


# -- who may connect, and what they may do -------------------------------------------------------
def admin_client_options(settings: StackSettings) -> dict[str, Any]:
    """Client settings of the operator (a super user) on the INTERNAL listener: the keyword
    arguments of aiokafka's and kafka-python's clients alike."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": settings.kafka_admin_user,
        "sasl_plain_password": stack_secrets(settings).kafka_admin_password,
    }


def admin_service_settings(settings: StackSettings) -> dict[str, str]:
    """The operator as a service's Kafka settings (``ServiceSettings`` fields), for tests and
    tools that build a broker as no particular service."""
    return {
        "kafka_bootstrap_servers": settings.kafka_bootstrap,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_username": settings.kafka_admin_user,
        "kafka_password": stack_secrets(settings).kafka_admin_password,
    }


def partner_hostnames(settings: StackSettings) -> list[str]:
    """Names the partner listener's certificate is valid for: the stack's host, loopback, and
    PORTAL_STACK_KAFKA_TLS_HOSTNAMES."""
    extra = [h.strip() for h in settings.kafka_tls_hostnames.split(",") if h.strip()]
    return list(dict.fromkeys([settings.host, "localhost", "127.0.0.1", *extra]))


def partner_ca_file(settings: StackSettings) -> Path:
    """The CA certificate partners verify the broker with (public; handed out with credentials)."""
    return settings.data_dir / "tls" / CA_CERT


def _admin(settings: StackSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        **admin_client_options(settings), client_id="portal-launcher", request_timeout_ms=30000
    )


def _scram_users(admin: KafkaAdminClient, users: Iterable[str]) -> set[str]:
    described: dict[str, dict[str, Any]] = admin.describe_user_scram_credentials(list(users))
    return {u for u, info in described.items() if not info.get("error")}


def upsert_scram_user(settings: StackSettings, user: str, password: str) -> None:
    """Create the SCRAM-SHA-512 user, or change its password. Takes effect at once."""
    _check_secret(password)
    admin = _admin(settings)
    try:
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)]
        )
    finally:
        admin.close()
    if errors.get(user):
        raise ComponentFailed(f"could not set the SCRAM user {user}: {errors[user]}")


def forget_legacy_admin(settings: StackSettings) -> None:
    """Drop a SCRAM credential named like the operator: data folders formatted before the operator
    moved to PLAIN kept one, with a password that was once written in code."""
    admin = _admin(settings)
    try:
        name = settings.kafka_admin_user
        if name in _scram_users(admin, [name]):
            admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)]
            )
    finally:
        admin.close()


def _binding(grant: Grant) -> ACL:
    return ACL(
        principal=grant.principal,
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType[grant.resource_type],
            grant.resource_name,
            ACLResourcePatternType[grant.pattern_type],
        ),
    )


def _grant_of(acl: ACL) -> Grant:
    pattern = acl.resource_pattern
    return Grant(
        principal=acl.principal,
        resource_type=ResourceType(pattern.resource_type).name,
        pattern_type=ACLResourcePatternType(pattern.pattern_type).name,
        resource_name=pattern.resource_name,
        operation=ACLOperation(acl.operation).name,
    )


def acls_of(settings: StackSettings, principal: str) -> list[Grant]:
    """The ALLOW bindings of ``principal`` (e.g. "User:normalize") the broker holds."""
    admin = _admin(settings)
    try:
        return _acls_of(admin, principal)
    finally:
        admin.close()


def _acls_of(admin: KafkaAdminClient, principal: str) -> list[Grant]:
    acls, _ = admin.describe_acls(  # raises on an error
        ACLFilter(
            principal=principal,
            host="*",
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(
                ResourceType.ANY, None, ACLResourcePatternType.ANY
            ),
        )
    )
    return sorted(_grant_of(acl) for acl in acls)


def apply_grants(settings: StackSettings, principal: str, wanted: Iterable[Grant]) -> None:
    """Make ``principal``'s ALLOW bindings exactly ``wanted``: add the missing, drop the rest."""
    admin = _admin(settings)
    try:
        want = set(wanted)
        have = set(_acls_of(admin, principal))
        if want - have:
            result: dict[str, Any] = admin.create_acls([_binding(g) for g in sorted(want - have)])
            if result.get("failed"):
                raise ComponentFailed(f"could not create ACLs for {principal}: {result['failed']}")
        stale = sorted(have - want)
        if stale:
            admin.delete_acls([_binding(g) for g in stale])
    finally:
        admin.close()


def ensure_service_access(settings: StackSettings, passwords: Mapping[str, str]) -> None:
    """Each service (name -> its Kafka password) as a SCRAM user with exactly the ACLs the topic
    registry gives it; passwords are set on every start (the data folder's secrets rule)."""
    grants = all_grants(passwords)
    for service, password in passwords.items():
        upsert_scram_user(settings, service, password)
        apply_grants(settings, principal(service), grants[service])


def user_quotas(settings: StackSettings, user: str) -> dict[str, float]:
    """The client quotas set on User:<user> (e.g. ``producer_byte_rate``), as the broker has them."""
    request = DescribeClientQuotasRequest(
        components=[
            DescribeClientQuotasRequest.ComponentData(entity_type="user", match_type=0, match=user)
        ],
        strict=True,
    )
    admin = _admin(settings)
    try:
        manager = admin._manager  # kafka-python has the request but no admin method for it
        response: Any = manager.run(manager.send, request)
    finally:
        admin.close()
    if response.error_code:
        raise ComponentFailed(f"could not read the quotas of {user}: {response.error_message}")
    return {v.key: v.value for entry in response.entries or () for v in entry.values}


def allow_topic(
    settings: StackSettings, user: str, topic: str, operations: Iterable[str] = ("WRITE",)
) -> None:
    """Allow User:<user> the operations on exactly this topic (literal pattern, any host)."""
    admin = _admin(settings)
    try:
        result: dict[str, Any] = admin.create_acls(
            [
                _binding(Grant(f"User:{user}", "TOPIC", "LITERAL", topic, op.upper()))
                for op in operations
            ]
        )
    finally:
        admin.close()
    if result.get("failed"):
        raise ComponentFailed(f"could not create ACLs for {user}: {result['failed']}")
