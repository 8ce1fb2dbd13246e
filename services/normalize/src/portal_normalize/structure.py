"""One canonical structure for every source (pure logic on already sanitised HTML).

The sanitiser has removed everything unsafe; this pass reshapes what is left the way partners'
CMSs commonly get it wrong, so every article reads the same:
* the Vietnamese CMS "image table" (one column: a picture cell and a caption cell) becomes
  ``<figure><img><figcaption>``; a paragraph holding only a picture becomes a figure, with
  the following all-italic short paragraph as its caption;
* single-cell layout tables are unwrapped; ``<b>``/``<i>`` become ``<strong>``/``<em>``;
* paragraphs separated by ``<br><br>`` become paragraphs; loose text becomes a paragraph;
* empty elements (spacers, empty bold, figures without a picture) are removed;
* allow-listed video players (YouTube, Vimeo, Facebook, Dailymotion) get one canonical,
  sandboxed ``<iframe>`` in a figure; every other iframe is gone already.
The sanitiser's output is escaped and well-formed; this pass only moves, removes and adds
elements and attributes of its own, so it cannot make anything executable.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from typing import TypeAlias
from urllib.parse import parse_qs, urlencode, urlsplit

import lxml.html
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction

_INLINE = frozenset({"a", "strong", "em", "u", "b", "i", "br", "img", "span", "sub", "sup"})
_KEEP_EMPTY = frozenset({"br", "img", "iframe", "td", "th", "tr", "thead", "tbody", "tfoot"})
_CONTAINERS = frozenset({"p", "li", "td", "th", "blockquote", "figcaption", "h2", "h3", "h4"})
CAPTION_MAX_CHARS = 300

# --- parsing --------------------------------------------------------------------------------

# lxml.html's own parser picks each element's class by a call back into Python, every time an
# element is touched from Python; the only classes it adds are for form controls, which no
# sanitised markup holds. This parser picks them in C (one per thread: lxml parsers are not
# shared between threads).
_parsers = threading.local()


def _parser() -> lxml.html.HTMLParser:
    parser: lxml.html.HTMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = lxml.html.HTMLParser()
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement,
                comment=HtmlComment,
                pi=HtmlProcessingInstruction,
                entity=HtmlEntity,
            )
        )
        _parsers.parser = parser
    return parser


def parse_fragment(markup: str) -> HtmlElement:
    """``markup`` parsed into a tree under one ``div``: ``lxml.html.fragment_fromstring`` with
    ``create_parent="div"``, the ``div`` made by this parser too (the tree takes the lookup of
    its root's document)."""
    parser = _parser()
    nodes = lxml.html.fragments_fromstring(markup, parser=parser, no_leading_text=False)
    root: HtmlElement = parser.makeelement("div")
    if nodes:
        if isinstance(nodes[0], str):
            root.text = nodes.pop(0)
        root.extend(nodes)
    return root


# --- video players ----------------------------------------------------------------------------

_YOUTUBE_HOSTS = frozenset(
    {"www.youtube.com", "youtube.com", "m.youtube.com", "www.youtube-nocookie.com",
     "youtube-nocookie.com"}
)  # fmt: skip
_YOUTUBE_ID = re.compile(r"^/embed/([A-Za-z0-9_-]{11})/?$")
_VIMEO = re.compile(r"^/video/(\d{1,12})/?$")
_DAILYMOTION = re.compile(r"^/embed/video/([A-Za-z0-9]{5,12})/?$")
IFRAME_ATTRIBUTES = {
    "title": "Video",
    "loading": "lazy",
    "referrerpolicy": "strict-origin-when-cross-origin",
    "sandbox": "allow-scripts allow-same-origin allow-presentation allow-popups",
    "allow": "encrypted-media; picture-in-picture; fullscreen",
    "allowfullscreen": "allowfullscreen",
}


def video_embed(src: str) -> str | None:
    """The canonical player URL of an allow-listed video embed, or None."""
    try:
        parts = urlsplit(src.strip())
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or parts.username or parts.port:
        return None
    host = (parts.hostname or "").lower()
    if host in _YOUTUBE_HOSTS and (m := _YOUTUBE_ID.match(parts.path)):
        return f"https://www.youtube-nocookie.com/embed/{m.group(1)}"
    if host == "player.vimeo.com" and (m := _VIMEO.match(parts.path)):
        return f"https://player.vimeo.com/video/{m.group(1)}"
    if host in ("www.dailymotion.com", "dailymotion.com") and (m := _DAILYMOTION.match(parts.path)):
        return f"https://www.dailymotion.com/embed/video/{m.group(1)}"
    if host in ("www.facebook.com", "facebook.com") and parts.path == "/plugins/video.php":
        href = parse_qs(parts.query).get("href", [""])[0]
        target = urlsplit(href)
        if target.scheme == "https" and (target.hostname or "").endswith("facebook.com"):
            return "https://www.facebook.com/plugins/video.php?" + urlencode({"href": href})
    return None


# --- helpers ----------------------------------------------------------------------------------


def _text(el: HtmlElement) -> str:
    return " ".join(el.text_content().split())


def _has_text(el: HtmlElement) -> bool:
    """Whether ``_text(el)`` is not empty: stops at the first text that is not whitespace
    (most often the element's own, read before a walk is started)."""
    own = el.text
    if own and not own.isspace():
        return True
    return any(not t.isspace() for t in el.itertext() if t)


def _has_media(el: HtmlElement) -> bool:
    return el.tag in ("img", "iframe") or _holds(el, "img", "iframe")


def _holds(el: HtmlElement, *tags: str) -> bool:
    """Whether ``el`` holds (below itself) one of ``tags``; a walk, not an XPath compiled on
    every call."""
    return next(el.iterdescendants(*tags), None) is not None


def _only_child(el: HtmlElement) -> HtmlElement | None:
    """The single element child of ``el`` when nothing but whitespace surrounds it."""
    children = [c for c in el if c.tag != "br"]
    if len(children) != 1 or (el.text or "").strip():
        return None
    child = children[0]
    if (child.tail or "").strip() or any((c.tail or "").strip() for c in el if c.tag == "br"):
        return None
    return child


def _picture(el: HtmlElement) -> HtmlElement | None:
    """The img (or link around an img) that is all ``el`` holds, else None."""
    child = _only_child(el)
    if child is None:
        return None
    if child.tag == "img":
        return child
    if child.tag == "a" and _picture(child) is not None and not _has_text(child):
        return child
    return None


def _new(tag: str, *children: HtmlElement, text: str | None = None) -> HtmlElement:
    el: HtmlElement = _parser().makeelement(tag)
    el.text = text
    for c in children:
        el.append(c)
    return el


def _detach(el: HtmlElement) -> HtmlElement:
    """Remove ``el`` from its parent, keeping its tail text in place."""
    parent = el.getparent()
    if parent is not None:
        tail, el.tail = el.tail, None
        prev = el.getprevious()
        parent.remove(el)
        if tail:
            if prev is not None:
                prev.tail = (prev.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
    return el


# --- the passes -------------------------------------------------------------------------------


def _rename(root: HtmlElement, counts: Counter[str]) -> None:
    for old, new in (("b", "strong"), ("i", "em")):
        for el in root.iter(old):
            el.tag = new


def _videos(root: HtmlElement, counts: Counter[str]) -> None:
    for frame in list(root.iter("iframe")):
        src = video_embed(frame.get("src", ""))
        if src is None:
            frame.drop_tree()
            continue
        for key in list(frame.attrib):
            del frame.attrib[key]
        frame.set("src", src)
        for key, value in IFRAME_ATTRIBUTES.items():
            frame.set(key, value)
        frame.text = None
        for child in list(frame):
            frame.remove(child)
        parent = frame.getparent()
        if parent is not None and parent.tag != "figure":
            figure = _new("figure")
            frame.addprevious(figure)
            figure.tail, frame.tail = frame.tail, None
            figure.append(_detach(frame))
        counts["video players"] += 1


def _caption_tables(root: HtmlElement, counts: Counter[str]) -> None:
    for table in list(root.iter("table")):
        rows = table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")
        cells = [row.xpath("./td|./th") for row in rows]
        if not rows or any(len(c) != 1 for c in cells):
            continue
        flat = [c[0] for c in cells]
        if len(flat) == 1:
            # A single cell: layout only. Its content replaces the table.
            cell = flat[0]
            box = _new("div")
            box.text = cell.text
            for child in list(cell):
                box.append(child)
            table.addprevious(box)
            box.tail, table.tail = table.tail, None
            _detach(table)
            box.drop_tag()
            counts["layout tables unwrapped"] += 1
            continue
        pictures = [c for c in flat if _has_media(c)]
        if len(pictures) != 1 or len(flat) > 3:
            continue
        img_cell = pictures[0]
        caption = " ".join(_text(c) for c in flat if c is not img_cell)
        if len(caption) > CAPTION_MAX_CHARS or _has_text(img_cell):
            continue
        imgs = list(img_cell.iterdescendants("img", "iframe"))
        figure = _new("figure", imgs[0])
        if caption:
            figure.append(_new("figcaption", text=caption))
        table.addprevious(figure)
        figure.tail, table.tail = table.tail, None
        _detach(table)
        counts["image tables made figures"] += 1


def _figures(root: HtmlElement, counts: Counter[str]) -> None:
    for p in list(root.iter("p")):
        if not len(p):
            continue  # text alone: no picture
        picture = _picture(p)
        if picture is None or p.getparent() is None:
            continue
        p.tag = "figure"
        p.text = None
        for br in p.findall("br"):
            _detach(br)
        nxt = p.getnext()
        if nxt is not None and nxt.tag == "p" and not (p.tail or "").strip():
            only = _only_child(nxt)
            text = _text(nxt)
            if only is not None and only.tag == "em" and 0 < len(text) <= CAPTION_MAX_CHARS:
                p.append(_new("figcaption", text=text))
                _detach(nxt)
                counts["captions found"] += 1
        counts["pictures made figures"] += 1


Node: TypeAlias = HtmlElement | str


def _nodes(parent: HtmlElement) -> list[Node]:
    """``parent``'s content as text and elements in order; the parent is left empty."""
    nodes: list[Node] = [parent.text] if parent.text else []
    parent.text = None
    for child in list(parent):
        tail, child.tail = child.tail, None
        parent.remove(child)
        nodes.append(child)
        if tail:
            nodes.append(tail)
    return nodes


def _fill(parent: HtmlElement, nodes: list[Node]) -> None:
    last: HtmlElement | None = None
    for node in nodes:
        if isinstance(node, str):
            if last is None:
                parent.text = (parent.text or "") + node
            else:
                last.tail = (last.tail or "") + node
        else:
            parent.append(node)
            last = node


def _is_br(node: Node) -> bool:
    return not isinstance(node, str) and node.tag == "br"


def _blank(node: Node) -> bool:
    return isinstance(node, str) and not node.strip()


def _paragraph_breaks(root: HtmlElement, counts: Counter[str]) -> None:
    """<p>a<br><br>b</p> -> <p>a</p><p>b</p> (a partner's way of writing paragraphs)."""
    for p in list(root.iter("p")):
        if len(p) < 2:
            continue  # (most paragraphs: text alone)
        kids = list(p)
        if not any(
            a.tag == "br" and b.tag == "br" and not (a.tail or "").strip()
            for a, b in itertools.pairwise(kids)
        ):
            continue
        groups: list[list[Node]] = [[]]
        for node in _nodes(p):
            group = groups[-1]
            if _is_br(node):
                while group and _blank(group[-1]):
                    group.pop()
                if group and _is_br(group[-1]):
                    group.pop()
                    groups.append([])
                    continue
            group.append(node)
        groups = [g for g in groups if any(not _blank(n) for n in g)]
        anchor = p
        for group in groups:
            para = _new("p")
            _fill(para, group)
            anchor.addnext(para)
            anchor = para
        anchor.tail, p.tail = p.tail, None
        p.drop_tree()
        counts["line breaks made paragraphs"] += max(0, len(groups) - 1)


def _trim_breaks(root: HtmlElement) -> None:
    # One walk for every container: each trims only its own child breaks, so the order in
    # which containers are trimmed does not matter.
    for el in root.iter(*_CONTAINERS):
        if not len(el):
            continue  # (most containers: text alone)
        children = list(el)
        while children and children[0].tag == "br" and not (el.text or "").strip():
            _detach(children.pop(0))
        while children and children[-1].tag == "br" and not (children[-1].tail or "").strip():
            _detach(children.pop())


def _loose_text(root: HtmlElement, counts: Counter[str]) -> None:
    """Text and inline elements directly at the top level go into paragraphs."""
    children = list(root)
    if not root.text and all(c.tag not in _INLINE and not (c.tail or "").strip() for c in children):
        # Blocks alone (most bodies): what the walk below leaves, without taking them out and
        # putting them back one by one; blank text between them goes.
        for child in children:
            child.tail = None
        root.text = None
        return
    run: list[Node] = []

    def flush() -> None:
        if any(not _blank(n) and not _is_br(n) for n in run):
            para = _new("p")
            _fill(para, run)
            root.append(para)
            counts["loose text made paragraphs"] += 1
        run.clear()

    for node in _nodes(root):
        if isinstance(node, str) or node.tag in _INLINE:
            run.append(node)
        else:
            flush()
            root.append(node)
    flush()


def _empties(root: HtmlElement, counts: Counter[str]) -> None:
    changed = True
    while changed:
        changed = False
        for el in list(root.iter()):
            tag = el.tag
            if el is root or tag in _KEEP_EMPTY or not isinstance(tag, str):
                continue
            if tag == "figure" and not _holds(el, "img", "iframe"):
                el.drop_tree()
                counts["empty elements removed"] += 1
                changed = True
                continue
            if _has_text(el) or _has_media(el):
                continue
            if tag in ("table", "ul", "ol") or not _holds(el, "td", "th", "li"):
                el.drop_tree()
                counts["empty elements removed"] += 1
                changed = True
    for h in list(root.iterdescendants("h2", "h3", "h4", "h5", "h6")):
        only = _only_child(h)
        if only is not None and only.tag in ("strong", "em"):
            only.drop_tag()  # a heading is bold already


def canonical_structure(safe_html: str) -> tuple[str, Counter[str]]:
    """The canonical form of sanitised HTML, and what was reshaped."""
    out, counts, _ = canonical_tree(safe_html)
    return out, counts


def canonical_tree(safe_html: str) -> tuple[str, Counter[str], HtmlElement | None]:
    """``canonical_structure``, and the tree it serialised (in a ``div``; None when empty)."""
    counts: Counter[str] = Counter()
    if not safe_html.strip():
        return "", counts, None
    root = parse_fragment(safe_html)
    _rename(root, counts)
    _videos(root, counts)
    _caption_tables(root, counts)
    _paragraph_breaks(root, counts)
    _figures(root, counts)
    _trim_breaks(root)
    _loose_text(root, counts)
    _empties(root, counts)
    return inner_html(root).strip(), counts, root


def inner_html(root: HtmlElement) -> str:
    """What ``root`` holds, as markup: its text as it is, then each child (with its tail)."""
    whole: str = lxml.html.tostring(root, encoding="unicode")
    if not root.text and whole.startswith("<div>") and whole.endswith("</div>"):
        return whole[5:-6]  # one serialisation rather than one per child
    return (root.text or "") + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in root
    )
