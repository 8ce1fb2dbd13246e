"""Apache Kafka 4.x, KRaft single node (broker and controller in one JVM), jars from Maven Central.

Three listeners, all on loopback:
- PLAINTEXT (``kafka_port``): the portal's own services; no authentication (principal ANONYMOUS).
- SASL_PLAINTEXT with SCRAM-SHA-512 (``kafka_sasl_port``): partner agencies, each a SCRAM user
  that ACLs confine to its own topic.
- CONTROLLER (``kafka_controller_port``): the KRaft quorum, used by the node itself.

The data folder is formatted once (``kafka.tools.StorageTool format``), which also writes the
admin SCRAM user into the metadata log; later starts reuse it.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from portal_launcher.build_cache import USER_CACHE, inputs_key, publish, staging_file
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import REPO_ROOT, StackSettings

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

    def prepare(self) -> None:
        self._classpath = kafka_classpath()  # cached after install(); re-resolved if pom changed
        self.data_path.mkdir(parents=True, exist_ok=True)
        # Rewritten on every start so that changed ports apply; the static voter list (not a
        # dynamic quorum) is what lets the controller port change between runs.
        self.properties_file.write_text(self.server_properties())
        if not (self.data_path / "meta.properties").exists():
            self._format_storage()

    def server_properties(self) -> str:
        s = self.settings
        h = s.host
        return "\n".join(
            [
                "# Written by portal_launcher on every start; edit components/kafka.py instead.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{h}:{s.kafka_controller_port}",
                "controller.listener.names=CONTROLLER",
                f"listeners=PLAINTEXT://{h}:{s.kafka_port},"
                f"SASL_PLAINTEXT://{h}:{s.kafka_sasl_port},CONTROLLER://{h}:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://{h}:{s.kafka_port},"
                f"SASL_PLAINTEXT://{h}:{s.kafka_sasl_port}",
                "listener.security.protocol.map="
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_path}",
                "",
                "# Partner agencies: SCRAM-SHA-512 users, stored in the KRaft metadata log.",
                f"sasl.enabled.mechanisms={_SCRAM_MECHANISM}",
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "",
                "# Deny by default; each partner user gets ACLs on its own topic only.",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found=false",
                "# User:ANONYMOUS is every client of the PLAINTEXT and CONTROLLER listeners: the",
                "# portal's own services and this node's internal controller traffic. It is a super",
                "# user because those listeners bind to loopback only here (in production they are",
                "# reachable only inside the platform network); partners never get them.",
                f"super.users=User:ANONYMOUS;User:{s.kafka_admin_user}",
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
                "num.partitions=1",
                "",
            ]
        )

    def _format_storage(self) -> None:
        s = self.settings
        _check_secret(s.kafka_admin_password)
        scram = f"{_SCRAM_MECHANISM}=[name={s.kafka_admin_user},password={s.kafka_admin_password}]"
        run_kafka_tool(
            "kafka.tools.StorageTool",
            ["format", "--config", str(self.properties_file),
             "--cluster-id", _new_cluster_id(), "--add-scram", scram],
        )  # fmt: skip

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        classpath = getattr(self, "_classpath", None) or kafka_classpath()
        return [
            _java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
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
        return _run_sync(_cluster_has_broker(self.settings.kafka_bootstrap, timeout_s=5.0))

    def version(self) -> str:
        jars = _cached_classpath()
        return (kafka_version_from_classpath(jars) if jars else None) or "unknown"

    def endpoint(self) -> str:
        return self.settings.kafka_bootstrap


async def _cluster_has_broker(bootstrap: str, timeout_s: float) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
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
        bootstrap_servers=settings.kafka_bootstrap, client_id="portal-launcher-topics"
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


# -- partner users and ACLs -----------------------------------------------------------------------
# aiokafka 0.14's admin client has neither CreateAcls nor AlterUserScramCredentials, so these use
# Kafka's own tools (the Java admin client) from the broker's classpath over the PLAINTEXT
# listener, whose ANONYMOUS principal is a super user. Each call starts a JVM (~1-2 s).
def upsert_scram_user(settings: StackSettings, user: str, password: str) -> None:
    """Create the SCRAM-SHA-512 user, or change its password. Takes effect at once."""
    _check_secret(password)
    with tempfile.TemporaryDirectory(prefix="kafka-scram-") as tmp:
        # A file, not --add-config, so that the password never shows in a process list. In a
        # file ConfigCommand takes the value as is: no [...] around it (unlike the command line).
        config = Path(tmp) / "scram.properties"
        config.touch(mode=0o600)
        config.write_text(f"{_SCRAM_MECHANISM}=password={password}\n")
        run_kafka_tool(
            "org.apache.kafka.tools.ConfigCommand",
            ["--bootstrap-server", settings.kafka_bootstrap, "--alter",
             "--entity-type", "users", "--entity-name", user, "--add-config-file", str(config)],
        )  # fmt: skip


def allow_topic(
    settings: StackSettings, user: str, topic: str, operations: Iterable[str] = ("Write",)
) -> None:
    """Allow User:<user> the operations on exactly this topic (literal pattern, any host)."""
    args = ["--bootstrap-server", settings.kafka_bootstrap, "--add",
            "--allow-principal", f"User:{user}", "--topic", topic,
            "--resource-pattern-type", "literal"]  # fmt: skip
    for op in operations:
        args += ["--operation", op]
    run_kafka_tool("org.apache.kafka.tools.AclCommand", args)


def list_acls(settings: StackSettings, user: str) -> str:
    """Kafka's own listing of the ACLs whose principal is User:<user> (for humans and tests)."""
    return run_kafka_tool(
        "org.apache.kafka.tools.AclCommand",
        ["--bootstrap-server", settings.kafka_bootstrap, "--list", "--principal", f"User:{user}"],
    )
