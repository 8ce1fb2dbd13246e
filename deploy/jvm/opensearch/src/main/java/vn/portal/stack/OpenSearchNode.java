package vn.portal.stack;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One real OpenSearch node in this JVM, for the local stack.
 *
 * <p>A distribution loads its modules from modules/ with one class loader each; here the module jars
 * are on the classpath, so they are handed to the node as classpath plugins (the protected Node
 * constructor the OpenSearch test framework uses too). Settings that vary (paths, ports, host, node
 * name) come as {@code -Ekey=value} arguments, like the opensearch CLI; the rest is fixed below.
 * The process runs until SIGTERM/SIGINT and then closes the node, so Lucene commits and the
 * translog are flushed and the data folder is reusable on the next start.
 */
public final class OpenSearchNode extends Node {

    private static final List<Class<? extends Plugin>> MODULES = List.of(
            Netty4Plugin.class,          // transport-netty4: the HTTP and transport layers
            CommonAnalysisPlugin.class,  // analysis-common: asciifolding, lowercase, ngram, ...
            MapperExtrasPlugin.class,    // mapper-extras: scaled_float, rank_feature, search_as_you_type
            PainlessPlugin.class,        // lang-painless: scripts in queries and updates
            VietnameseFoldingPlugin.class); // portal_asciifolding: asciifolding by table lookup

    private OpenSearchNode(Environment environment) {
        super(environment, MODULES, true);
    }

    static Settings settings(String[] args) {
        Settings.Builder b = Settings.builder()
                .put("cluster.name", "portal-local")
                .put("node.name", "portal-local-1")
                .put("network.host", "127.0.0.1")
                .put("discovery.type", "single-node")
                // A dev disk is often nearly full: without this, the flood-stage watermark makes
                // every index read-only and writes fail with a "read_only_allow_delete" block.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                // The netty transport is the only one on the classpath; name it explicitly.
                .put("http.type", "netty4")
                .put("transport.type", "netty4");
        for (String arg : args) {
            if (!arg.startsWith("-E") || arg.indexOf('=') < 0) {
                throw new IllegalArgumentException("expected -Ekey=value, got: " + arg);
            }
            String kv = arg.substring(2);
            int eq = kv.indexOf('=');
            b.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return b.build();
    }

    public static void main(String[] args) throws Exception {
        Settings settings = settings(args);
        String home = settings.get("path.home");
        if (home == null) {
            throw new IllegalArgumentException("-Epath.home=... is required");
        }
        // PluginsService lists these folders; they stay empty since every module is on the classpath.
        Files.createDirectories(Path.of(home, "plugins"));
        Files.createDirectories(Path.of(home, "modules"));
        Files.createDirectories(Path.of(home, "config"));

        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, Collections.emptyMap(), null, () -> settings.get("node.name"));
        Node node = new OpenSearchNode(env);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                    System.err.println("opensearch node did not close within 30s");
                }
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "opensearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            // A port already taken or a bad setting: exit (closing the node through the hook)
            // instead of idling without HTTP, so the launcher sees the failure at once.
            t.printStackTrace();
            System.exit(1);
        }
        // One node can hold no replica: zero replicas by default keeps indices (and the health)
        // green. OpenSearch reads this default from the cluster state only, not from node settings,
        // so it is stored as a persistent cluster setting (a no-op once it is there).
        node.client().admin().cluster().prepareUpdateSettings()
                .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0))
                .get();
        // OpenSearch's own threads are daemons: keep the JVM alive until the shutdown hook ran.
        stopped.await();
    }
}
