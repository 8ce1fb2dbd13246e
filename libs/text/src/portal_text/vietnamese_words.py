"""What correct Vietnamese words look like: syllables, letters, and how a decoded word scores."""

from __future__ import annotations

import re
import unicodedata

from portal_text.memo import word_cache

# --- the Vietnamese alphabet and syllables ----------------------------------------------------

_TONES = {
    "\u0300": "grave",
    "\u0301": "acute",
    "\u0303": "tilde",
    "\u0309": "hook",
    "\u0323": "dot",
}


_VOWELS = "aăâeêioôơuưy"


_LOWER_LETTERS = frozenset(
    unicodedata.normalize("NFC", v + t) for v in _VOWELS for t in ("", *_TONES)
) | frozenset("bcdđghklmnpqrstvx")


VIETNAMESE_LETTERS: frozenset[str] = _LOWER_LETTERS | {c.upper() for c in _LOWER_LETTERS}


_PLAIN_LETTERS = frozenset("aăâbcdđeêghiklmnoôơpqrstuưvxy")


_ONSETS_TEXT = "b c ch d đ g gh gi h k kh l m n ng ngh nh p ph qu r s t th tr v x"


_ONSETS = sorted(
    _ONSETS_TEXT.split(),
    key=len,
    reverse=True,
)


# Rhymes without the tone mark; with "qu" the u belongs to the onset ("quy", "quyết").
_RHYMES_TEXT = """
    a ai ao au ay ac ach am an ang anh ap at ăc ăm ăn ăng ăp ăt
    âc âm ân âng âp ât âu ây e eo ec em en eng ep et ê êu êch êm ên ênh êp êt
    i ia iu ich im in inh ip it iêc iêm iên iêng iêp iêt iêu
    o oi oc om on ong op ot oa oai oay oac oach oam oan oang oanh oap oat oao
    oăc oăm oăn oăng oăt oe oeo oen oet oem oong ooc ô ôi ôc ôm ôn ông ôp ôt
    ơ ơi ơm ơn ơp ơt u ua ui uc um un ung up ut uân uâng uât uây uê uêch uênh uơ
    uy uya uyu uyên uyêt uynh uych uyt uyn uôc uôi uôm uôn uông uôt
    ư ưa ưi ưu ưc ưng ưt ưm ưn ươc ươi ươm ươn ương ươp ươt ươu
    y yêm yên yêng yêt yêu yt ynh ych yn
"""


_RHYMES = frozenset(_RHYMES_TEXT.split())


_STOP_CODAS = ("c", "ch", "p", "t")


@word_cache(65536)  # a pure function of one word; articles repeat words
def is_vietnamese_syllable(word: str) -> bool:
    """True for one written Vietnamese syllable ("Nghiêng", "quyết", "Đảng"), any case."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = [c for c in decomposed if c in _TONES]
    if len(tones) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
    if not base or any(c not in _PLAIN_LETTERS for c in base):
        return False
    for onset in (*_ONSETS, ""):
        if base.startswith(onset):
            rhyme = base[len(onset) :]
            if rhyme in _RHYMES or (onset == "gi" and rhyme == ""):
                if (
                    tones
                    and rhyme.endswith(_STOP_CODAS)
                    and _TONES[tones[0]] not in ("acute", "dot")
                ):
                    continue
                return True
    return False


# --- scoring ----------------------------------------------------------------------------------

EDGE_PUNCT = "\"'()[]{}<>.,;:!?*/\\|-_=+~`^@#$%&“”‘’–—…«»•\u00a0"


def word_core(token: str) -> str:
    return token.strip(EDGE_PUNCT)


@word_cache(16384)  # a pure function of one token; text repeats its words
def token_score(decoded: str, original: str | None = None) -> int:
    """+1 a Vietnamese word with diacritics, 0 plain ASCII or no letters, -1 anything else.

    With ``original`` (the token as it came), a token that had no letters cannot vote for a
    decoding ("©" decoded to a lone letter proves nothing), only against it.
    """
    core = word_core(decoded)
    if not core or core.isascii() or not any(c.isalpha() for c in core):
        return 0  # no letters ("©", "25°"): says nothing either way
    parts = [p for p in re.split(r"[-'’]", core) if p]
    score = 1 if parts and all(p.isascii() or is_vietnamese_syllable(p) for p in parts) else -1
    if score > 0 and original is not None and not any(c.isalpha() for c in original):
        return 0
    return score
