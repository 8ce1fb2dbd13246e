"""OpenSearch 2.19.x, one real node in one JVM, from Maven Central artifacts (no Docker, no tarball).

deploy/jvm/opensearch/ is a small Maven project: the server jar, the module plugins
(transport-netty4, analysis-common, mapper-extras, lang-painless) and a launcher class,
``vn.portal.stack.OpenSearchNode``, that passes those modules to the node as classpath plugins,
with one of our own: the token filter ``portal_asciifolding`` (services/search/README.md).
``mvn package`` leaves the launcher jar and every dependency in the checkout's git-ignored target/;
they are then kept in the user's cache (``~/.cache/portal/opensearch/<hash of the pom and src/>``,
see build_cache) and run from there, so another checkout of the same sources builds nothing.

Layout under ``<data_dir>/opensearch/``: ``home/`` (path.home), ``data/`` (indices, kept across
restarts), ``logs/``, ``tmp/`` and the process log ``opensearch.log``.

``OPENSEARCH_JAVA_OPTS`` (as in the distribution) adds JVM options after the launcher's own; the
last of two contradicting flags wins (e.g. ``-XX:TieredStopAtLevel=4`` brings C2 back).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from portal_launcher.build_cache import USER_CACHE, inputs_key, publish, staging_dir
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import REPO_ROOT

OPENSEARCH_JVM_DIR = REPO_ROOT / "deploy" / "jvm" / "opensearch"
_POM = OPENSEARCH_JVM_DIR / "pom.xml"
_TARGET = OPENSEARCH_JVM_DIR / "target"
_JAR_NAME = "opensearch-node.jar"
_MAIN_CLASS = "vn.portal.stack.OpenSearchNode"

# OpenSearch 2.19 runs on Java 17 (3.x would need 21); the default `java` may be another JDK.
_DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")


def java_home() -> Path:
    """JDK 17: PORTAL_STACK_OPENSEARCH_JAVA_HOME, else the Debian JDK 17, else JAVA_HOME."""
    for candidate in (
        os.environ.get("PORTAL_STACK_OPENSEARCH_JAVA_HOME"),
        str(_DEFAULT_JAVA_HOME),
        os.environ.get("JAVA_HOME"),
    ):
        if candidate and (Path(candidate) / "bin" / "java").is_file():
            return Path(candidate)
    raise ComponentFailed(
        f"no JDK 17 found (looked at PORTAL_STACK_OPENSEARCH_JAVA_HOME, {_DEFAULT_JAVA_HOME}, "
        "JAVA_HOME); install openjdk-17-jdk-headless"
    )


def sources_key() -> str:
    """Key of everything the build reads: the pom and every file under src/."""
    sources = (OPENSEARCH_JVM_DIR / "src").rglob("*")
    return inputs_key(OPENSEARCH_JVM_DIR, [_POM, *(p for p in sources if p.is_file())])


def build_dir(key: str) -> Path:
    """Where the build of the sources with this key is kept: the jar and ``lib/``."""
    return USER_CACHE / "opensearch" / key


def _is_built(key: str) -> bool:
    built = build_dir(key)
    return (built / _JAR_NAME).is_file() and any((built / "lib").glob("*.jar"))


def build_node_jar() -> Path:
    """The folder with the launcher jar and its ``lib/``: `mvn package` and keep the result,
    unless this machine already holds the build of these sources."""
    key = sources_key()
    if _is_built(key):
        return build_dir(key)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ComponentFailed("Maven (`mvn`) is needed to build OpenSearch; apt-get install maven")
    _TARGET.mkdir(parents=True, exist_ok=True)
    # Two stacks of this checkout (make run, make test) may start at once: one builds in target/,
    # the other waits for it. Other checkouts build in their own target/.
    with (_TARGET / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_built(key):
            return build_dir(key)
        # copy-dependencies never deletes: jars of an older pom would end up on the classpath.
        shutil.rmtree(_TARGET / "lib", ignore_errors=True)
        proc = subprocess.run(
            [mvn, "-q", "-B", "-f", str(_POM), "package"],
            env={**os.environ, "JAVA_HOME": str(java_home())},
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr)[-3000:]
            raise ComponentFailed(f"mvn package failed for {_POM}:\n{output}")
        staged = staging_dir(build_dir(key))
        try:
            shutil.copy2(_TARGET / _JAR_NAME, staged / _JAR_NAME)
            shutil.copytree(_TARGET / "lib", staged / "lib")
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        publish(staged, build_dir(key))
    return build_dir(key)


class OpenSearchComponent(Component):
    name = "opensearch"

    @property
    def home_dir(self) -> Path:
        return self.dir / "home"

    @property
    def data_path(self) -> Path:
        return self.dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.dir / "tmp"

    def install(self) -> None:
        build_node_jar()

    def prepare(self) -> None:
        build_node_jar()
        for d in (self.home_dir, self.data_path, self.logs_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        s = self.settings
        built = build_dir(sources_key())
        return [
            str(java_home() / "bin" / "java"),
            f"-Xms{s.opensearch_heap}",
            f"-Xmx{s.opensearch_heap}",
            # A heap of a few hundred MB on two shared cores: the serial collector's short
            # young-generation pauses cost less CPU than G1's write barriers and its
            # concurrent threads (refresh every 250 ms keeps search latency far above a pause).
            "-XX:+UseSerialGC",
            # C1 only: C2's compiler thread was half of the node's CPU in pipeline bench runs
            # even after a warm-up of 2,000 (and of 8,000) articles on two shared cores (about
            # 500 new methods still reached C2 per minute); C1's code is slower in Lucene's
            # loops (about +0.2 ms an article in the write and refresh threads), far less
            # than C2 cost.
            "-XX:TieredStopAtLevel=1",
            "-XX:+HeapDumpOnOutOfMemoryError",
            f"-XX:HeapDumpPath={self.logs_dir}",
            "-XX:-OmitStackTraceInFastThrow",
            # Flags of the distribution's jvm.options that still matter without its bootstrap:
            # a private tmp dir (also JNA's), the date/number formats OpenSearch expects, no JMX.
            f"-Djava.io.tmpdir={self.tmp_dir}",
            f"-Djna.tmpdir={self.tmp_dir}",
            "-Djna.nosys=true",
            "-Djava.locale.providers=SPI,COMPAT",
            "-Dfile.encoding=UTF-8",
            "-Dlog4j2.disable.jmx=true",
            "-Dio.netty.noUnsafe=true",
            "-Dio.netty.noKeySetOptimization=true",
            "-Dio.netty.recycler.maxCapacityPerThread=0",
            # The distribution's hook for more (or overriding: the last flag wins) JVM options.
            *os.environ.get("OPENSEARCH_JAVA_OPTS", "").split(),
            "-cp",
            f"{built / _JAR_NAME}{os.pathsep}{built / 'lib'}/*",
            _MAIN_CLASS,
            f"-Epath.home={self.home_dir}",
            f"-Epath.data={self.data_path}",
            f"-Epath.logs={self.logs_dir}",
            f"-Enetwork.host={s.host}",
            f"-Ehttp.port={s.opensearch_port}",
            f"-Etransport.port={s.opensearch_transport_port}",
            # Per-task CPU and memory accounting (a thread CPU-time read at every search task's
            # start and end) and the search back-pressure monitor it feeds (every second, here
            # only monitoring): bookkeeping for a shared production cluster, idle work here.
            "-Etask_resource_tracking.enabled=false",
            "-Esearch_backpressure.mode=disabled",
        ]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "JAVA_HOME": str(java_home())}

    def probe(self) -> bool:
        r = httpx.get(f"{self.endpoint()}/_cluster/health", timeout=5.0)
        return r.status_code == 200 and r.json().get("status") in ("green", "yellow")

    def version(self) -> str:
        try:
            r = httpx.get(f"{self.endpoint()}/", timeout=5.0)
            r.raise_for_status()
            return str(r.json()["version"]["number"])
        except (httpx.HTTPError, KeyError, ValueError):
            return "unknown"

    def endpoint(self) -> str:
        return self.settings.opensearch_url
