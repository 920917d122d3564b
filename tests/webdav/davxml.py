"""WebDAV request bodies (LOCK, PROPFIND) and 207 answers read as parsed XML, for the
metadata-method tests (OPTIONS, PROPFIND, PROPPATCH, LOCK, UNLOCK)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

D = "{DAV:}"
LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype>{owner}</D:lockinfo>"
)


def lock_body(scope: str = "exclusive", owner: str = "<D:owner>litmus test suite</D:owner>"
              ) -> str:
    return LOCK_BODY.format(scope=scope, owner=owner)


def propfind_body(*names: str) -> str:
    """A DAV:propfind asking for ``names`` (Clark names)."""
    props = []
    for i, name in enumerate(names):
        ns, _, local = name[1:].partition("}")
        props.append(f'<p{i}:{local} xmlns:p{i}="{ns}"/>')
    return f'<D:propfind xmlns:D="DAV:"><D:prop>{"".join(props)}</D:prop></D:propfind>'


@dataclass
class Answer:
    """One D:response: property elements by status code."""

    href: str
    by_status: dict[int, dict[str, etree._Element]] = field(default_factory=dict)
    descriptions: dict[int, str] = field(default_factory=dict)

    def ok(self) -> dict[str, etree._Element]:
        return self.by_status.get(200, {})

    def status_of(self, name: str) -> int | None:
        for code, props in self.by_status.items():
            if name in props:
                return code
        return None


def multistatus(body: bytes) -> dict[str, Answer]:
    """Parse a 207 body into answers by href (asserting it is a DAV:multistatus)."""
    root = etree.fromstring(body)
    assert root.tag == D + "multistatus"
    answers: dict[str, Answer] = {}
    for resp in root.findall(D + "response"):
        href = resp.findtext(D + "href")
        assert href is not None
        answer = Answer(href)
        for stat in resp.findall(D + "propstat"):
            status = stat.findtext(D + "status")
            assert status is not None
            code = int(status.split()[1])
            prop = stat.find(D + "prop")
            assert prop is not None
            answer.by_status.setdefault(code, {}).update({p.tag: p for p in prop})
            description = stat.findtext(D + "responsedescription")
            if description:
                answer.descriptions[code] = description
        answers[href] = answer
    return answers


def activelock(body: bytes) -> etree._Element:
    """The single activelock of a LOCK answer (prop/lockdiscovery/activelock)."""
    root = etree.fromstring(body)
    assert root.tag == D + "prop"
    locks = root.findall(f"{D}lockdiscovery/{D}activelock")
    assert len(locks) == 1
    return locks[0]
