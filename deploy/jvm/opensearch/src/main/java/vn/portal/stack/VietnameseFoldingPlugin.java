package vn.portal.stack;

import java.util.Map;

import org.apache.lucene.analysis.TokenStream;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractTokenFilterFactory;
import org.opensearch.index.analysis.NormalizingTokenFilterFactory;
import org.opensearch.index.analysis.TokenFilterFactory;
import org.opensearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.opensearch.plugins.AnalysisPlugin;
import org.opensearch.plugins.Plugin;

/**
 * The token filter {@code portal_asciifolding}: {@code asciifolding} (same settings, same tokens)
 * by table lookup; see {@link TableFoldingFilter}.
 *
 * <p>The factory behaves as analysis-common's {@code ASCIIFoldingTokenFilterFactory} in every
 * role, not only in indexing: normalizers and multi-term queries (prefix, wildcard, fuzzy) fold
 * too, and both of them and synonym rules never keep the original (one token per input there).
 */
public final class VietnameseFoldingPlugin extends Plugin implements AnalysisPlugin {

    public static final String NAME = "portal_asciifolding";

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(NAME, Factory::new);
    }

    static final class Factory extends AbstractTokenFilterFactory implements NormalizingTokenFilterFactory {
        private final boolean preserveOriginal;

        Factory(IndexSettings indexSettings, Environment environment, String name, Settings settings) {
            super(indexSettings, name, settings);
            this.preserveOriginal = settings.getAsBoolean("preserve_original", false);
        }

        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new TableFoldingFilter(tokenStream, preserveOriginal);
        }

        @Override
        public TokenStream normalize(TokenStream tokenStream) {
            return new TableFoldingFilter(tokenStream, false);
        }

        @Override
        public TokenFilterFactory getSynonymFilter() {
            if (!preserveOriginal) {
                return this;
            }
            // As asciifolding: synonym rules are parsed without the kept originals (LUCENE-7536).
            Factory parent = this;
            return new TokenFilterFactory() {
                @Override
                public String name() {
                    return parent.name();
                }

                @Override
                public TokenStream create(TokenStream tokenStream) {
                    return new TableFoldingFilter(tokenStream, false);
                }
            };
        }
    }
}
