package vn.portal.stack;

import java.io.IOException;

import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;
import org.apache.lucene.util.ArrayUtil;

/**
 * Lucene's {@link ASCIIFoldingFilter}, token for token, with its per-character mapping read from
 * a table rather than its switch of several thousand cases.
 *
 * <p>The switch (14 KB of bytecode) is a binary search per non-ASCII character, and nearly every
 * Vietnamese syllable has one: it was the largest single cost of indexing an article. The table
 * is filled at class load from {@code ASCIIFoldingFilter.foldToASCII} itself, one UTF-16 unit at a
 * time (that method maps each unit on its own), so the output is the same for every input.
 * Emission order with {@code preserve_original} is also Lucene's: folded first, then the original
 * at the same position when it differs.
 */
final class TableFoldingFilter extends TokenFilter {

    /** The folded form of each UTF-16 unit from U+0080: null when it folds to itself. */
    private static final char[][] FOLDED = new char[0x10000 - 0x80][];

    static {
        char[] in = new char[1];
        char[] out = new char[8];
        for (int c = 0x80; c < 0x10000; c++) {
            in[0] = (char) c;
            int n = ASCIIFoldingFilter.foldToASCII(in, 0, out, 0, 1);
            if (n != 1 || out[0] != c) {
                char[] folded = new char[n];
                System.arraycopy(out, 0, folded, 0, n);
                FOLDED[c - 0x80] = folded;
            }
        }
    }

    private final boolean preserveOriginal;
    private final CharTermAttribute termAtt = addAttribute(CharTermAttribute.class);
    private final PositionIncrementAttribute posIncAttr = addAttribute(PositionIncrementAttribute.class);
    private char[] output = new char[512];
    private int outputPos;
    private State state;

    TableFoldingFilter(TokenStream input, boolean preserveOriginal) {
        super(input);
        this.preserveOriginal = preserveOriginal;
    }

    @Override
    public boolean incrementToken() throws IOException {
        if (state != null) {
            restoreState(state);
            posIncAttr.setPositionIncrement(0);
            state = null;
            return true;
        }
        if (!input.incrementToken()) {
            return false;
        }
        final char[] buffer = termAtt.buffer();
        final int length = termAtt.length();
        for (int i = 0; i < length; ++i) {
            if (buffer[i] >= '\u0080') {
                fold(buffer, length);
                termAtt.copyBuffer(output, 0, outputPos);
                break;
            }
        }
        return true;
    }

    private void fold(char[] input, int length) {
        final int maxSizeNeeded = 4 * length;
        if (output.length < maxSizeNeeded) {
            output = new char[ArrayUtil.oversize(maxSizeNeeded, Character.BYTES)];
        }
        final char[] out = output;
        int pos = 0;
        for (int i = 0; i < length; ++i) {
            final char c = input[i];
            final char[] folded = c < '\u0080' ? null : FOLDED[c - 0x80];
            if (folded == null) {
                out[pos++] = c;
            } else {
                for (char f : folded) {
                    out[pos++] = f;
                }
            }
        }
        outputPos = pos;
        // Captured before the caller replaces the term: the state holds the original.
        if (preserveOriginal && differs(input, length)) {
            state = captureState();
        }
    }

    /** Lucene's test, as is: the original is kept only when the folded term is another one. */
    private boolean differs(char[] input, int length) {
        if (length != outputPos) {
            return true;
        }
        for (int i = 0; i < length; i++) {
            if (input[i] != output[i]) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        state = null;
    }
}
