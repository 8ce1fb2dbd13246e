"""Mammoth's HTML of a Word document rebuilt as the portal's canonical article markup (pure).

Only the canonical elements survive (h2, h3, p, lists, tables, figure/img/figcaption, strong,
em, br, links to http/https/mailto); no attribute but an image's src and alt, a link's href
and a cell's spans. The first h1 is the title. An image becomes a figure of its own, and a
Caption paragraph right after it becomes its figcaption.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

_KEEP = frozenset(
    [
        "h2",
        "h3",
        "p",
        "ul",
        "ol",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "figure",
        "img",
        "figcaption",
        "strong",
        "em",
        "br",
        "a",
    ]
)
_VOID = frozenset({"img", "br"})
_ATTRIBUTES = {
    "img": ("src", "alt"),
    "a": ("href",),
    "td": ("colspan", "rowspan"),
    "th": ("colspan", "rowspan"),
}
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_DROP_WITH_CONTENT = frozenset({"script", "style"})
_RENAME = {"h1": "h2", "h4": "h3", "h5": "h3", "h6": "h3", "b": "strong", "i": "em"}
_BLOCKS_WITH_TEXT = frozenset({"p", "h2", "h3", "figcaption"})

DROPPED_IMAGE = "dropped:"
"""The src the import gives an image it refused; the image is left out of the markup."""


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            self.skip += 1
            return
        node = Node(tag, {k: v for k, v in attrs if v is not None})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _DROP_WITH_CONTENT:
            self.stack[-1].children.append(Node(tag, {k: v for k, v in attrs if v is not None}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self.skip = max(0, self.skip - 1)
            return
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.stack[-1].children.append(data)


def parse(markup: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    return builder.root


def take_title(root: Node) -> str:
    """The text of the first h1 (Title or Heading 1), removed from the body; "" if none."""
    for i, child in enumerate(root.children):
        if isinstance(child, Node) and child.tag == "h1":
            del root.children[i]
            return " ".join(child.text().split())
    return ""


def first_paragraph_text(root: Node) -> str:
    for child in root.children:
        if isinstance(child, Node) and child.tag in ("p", "h2", "h3", "h4", "h5", "h6"):
            text = " ".join(child.text().split())
            if text:
                return text
    return ""


def _images_in(node: Node) -> list[Node]:
    found: list[Node] = []
    for child in node.children:
        if isinstance(child, Node):
            found += [child] if child.tag == "img" else _images_in(child)
    return found


def _without_images(node: Node) -> Node:
    kept: list[Node | str] = []
    for child in node.children:
        if isinstance(child, Node):
            if child.tag != "img":
                kept.append(_without_images(child))
        else:
            kept.append(child)
    return Node(node.tag, node.attrs, kept)


def _figure(img: Node) -> Node | None:
    if img.attrs.get("src", "").startswith(DROPPED_IMAGE) or not img.attrs.get("src"):
        return None
    return Node("figure", {}, [img])


def _blocks(children: list[Node | str], captions: dict[str, str]) -> list[Node | str]:
    """Block children with images lifted into figures and captions attached to them."""
    out: list[Node | str] = []
    for child in children:
        if isinstance(child, str):
            out.append(child)
            continue
        if child.tag == "figcaption":
            last = out[-1] if out else None
            if isinstance(last, Node) and last.tag == "figure" and len(last.children) == 1:
                caption = " ".join(child.text().split())
                img = last.children[0]
                if caption and isinstance(img, Node):
                    last.children.append(Node("figcaption", {}, child.children))
                    captions[img.attrs.get("src", "")] = caption
                continue
            child = Node("p", {}, child.children)  # a caption with no image before it
        if child.tag in ("ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th"):
            inner = _blocks(child.children, captions)
            if child.tag in ("td", "th") and len(inner) == 1:
                only = inner[0]
                if isinstance(only, Node) and only.tag == "p":
                    inner = only.children  # a cell of one paragraph holds its text
            out.append(Node(child.tag, child.attrs, inner))
            continue
        images = _images_in(child) if child.tag != "img" else [child]
        if not images:
            out.append(child)
            continue
        rest = _without_images(child) if child.tag != "img" else None
        if rest is not None and rest.text().strip():
            out.append(rest)
        for img in images:
            figure = _figure(img)
            if figure is not None:
                out.append(figure)
    return out


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _safe_href(href: str) -> str | None:
    href = href.strip()
    try:
        scheme = urlsplit(href).scheme.lower()
    except ValueError:
        return None
    return href if scheme in _LINK_SCHEMES else None


def _render(node: Node | str, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(_escape(node))
        return
    tag = _RENAME.get(node.tag, node.tag)
    if tag not in _KEEP:
        for child in node.children:  # not canonical: its text stays, the element goes
            _render(child, out)
        return
    attrs: list[tuple[str, str]] = []
    for name in _ATTRIBUTES.get(tag, ()):
        value = node.attrs.get(name)
        if value is None:
            continue
        if name == "href":
            value = _safe_href(value)
            if value is None:
                continue
        if name in ("colspan", "rowspan") and (not value.isdigit() or value == "1"):
            continue
        attrs.append((name, value))
    if tag == "a" and not attrs:
        for child in node.children:
            _render(child, out)
        return
    inner: list[str] = []
    for child in node.children:
        _render(child, inner)
    body = "".join(inner)
    if tag in _BLOCKS_WITH_TEXT and not body.strip():
        return  # empty paragraphs are spacing in Word, not content
    attr_text = "".join(f' {n}="{html.escape(v, quote=True)}"' for n, v in attrs)
    if tag in _VOID:
        out.append(f"<{tag}{attr_text}>")
        return
    out.append(f"<{tag}{attr_text}>{body}</{tag}>")


def _with_tbody(node: Node) -> None:
    """Rows outside thead go in a tbody: canonical tables always have one."""
    for child in node.children:
        if isinstance(child, Node):
            _with_tbody(child)
    if node.tag != "table":
        return
    rows = [c for c in node.children if isinstance(c, Node) and c.tag == "tr"]
    if rows:
        others = [c for c in node.children if not (isinstance(c, Node) and c.tag == "tr")]
        node.children = [*others, Node("tbody", {}, list(rows))]


def canonical_body(root: Node) -> tuple[str, dict[str, str]]:
    """The body's canonical markup, and each kept image's caption by its src."""
    captions: dict[str, str] = {}
    body = Node("root", {}, _blocks(root.children, captions))
    _with_tbody(body)
    out: list[str] = []
    for child in body.children:
        if isinstance(child, str):
            if child.strip():
                out.append(f"<p>{_escape(child.strip())}</p>")
            continue
        _render(child, out)
    return "".join(out), captions
