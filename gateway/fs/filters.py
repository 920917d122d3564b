"""Key filters: which keys of a share exist for its clients (pure functions, no I/O).

A share may name ``include`` and ``exclude`` globs and a ``filter`` regular expression;
each is matched against a key with the share's prefix removed (``a/b.txt``). Globs are
compiled once, here:

- a glob is anchored: it matches a whole key or a whole directory path, never a part of
  one (``*.txt`` is ``a.txt``, not ``d/a.txt``; write ``**/*.txt`` for every depth);
- ``*`` is any run of characters within one path component, ``?`` one character;
- ``**`` as a whole component (``**/x``, ``a/**``, ``a/**/b``) is any number of
  components, none included; elsewhere (``a**b``) it is a plain ``*``;
- a glob that matches a directory covers everything below it: ``exclude = [".git"]``
  hides ``.git/config``, ``include = ["photos"]`` shows every key under ``photos/``.

A file key is visible iff it matches some include (or there are none), no exclude, and
the filter (``re.search`` on the key, as Bacalhau does; anchor with ``^``/``$``). A
directory marker ``d/`` is visible iff ``d`` is not excluded, some include could match
``d`` or a key below it, and the filter (if any) matches the marker key ``d/`` itself.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ANY = None  # a "**" component


def _component(text: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "*":
            while i + 1 < len(text) and text[i + 1] == "*":
                i += 1  # "**" inside a component is a plain "*"
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True, slots=True)
class Glob:
    """One compiled glob: its components, ``None`` standing for ``**``."""

    text: str
    parts: tuple[re.Pattern[str] | None, ...]

    def _states(self, names: Sequence[str]) -> set[int]:
        """The pattern positions reachable after matching ``names`` (an NFA walk)."""
        states = self._close({0})
        for name in names:
            step: set[int] = set()
            for s in states:
                if s >= len(self.parts):
                    continue
                part = self.parts[s]
                if part is _ANY:
                    step.add(s)  # "**" eats this component and may eat more
                elif part.fullmatch(name):
                    step.add(s + 1)
            states = self._close(step)
            if not states:
                break
        return states

    def _close(self, states: set[int]) -> set[int]:
        """Add the positions past ``**`` components (they may match nothing)."""
        todo = list(states)
        while todo:
            s = todo.pop()
            if s < len(self.parts) and self.parts[s] is _ANY and s + 1 not in states:
                states.add(s + 1)
                todo.append(s + 1)
        return states

    def matches(self, names: Sequence[str]) -> bool:
        """The glob matches this exact path."""
        return len(self.parts) in self._states(names)

    def covers(self, names: Sequence[str]) -> bool:
        """The glob matches the path or one of its directories."""
        return any(self.matches(names[:k]) for k in range(1, len(names) + 1))

    def may_match_below(self, names: Sequence[str]) -> bool:
        """Some path strictly below directory ``names`` could match the glob."""
        return any(s < len(self.parts) for s in self._states(names))


def compile_glob(text: str) -> Glob:
    body = text.strip("/")
    if not body:
        raise ValueError("an empty glob matches nothing")
    parts = tuple(_ANY if p == "**" else _component(p) for p in body.split("/"))
    return Glob(text, parts)


class DirVerdict(enum.Enum):
    """What the filters say about every key below a directory, from its name alone."""

    HIDDEN = "hidden"  # no key below can be visible
    VISIBLE = "visible"  # every key below is visible
    UNKNOWN = "unknown"  # look at the keys (a bounded listing)


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """A share's compiled filters. ``KeyFilter.none()`` shows everything."""

    include: tuple[Glob, ...] = ()
    exclude: tuple[Glob, ...] = ()
    regex: re.Pattern[str] | None = None

    @classmethod
    def none(cls) -> KeyFilter:
        return cls()

    @classmethod
    def build(cls, include: Iterable[str], exclude: Iterable[str], regex: str | None
              ) -> KeyFilter:
        return cls(
            tuple(compile_glob(g) for g in include),
            tuple(compile_glob(g) for g in exclude),
            re.compile(regex) if regex else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude or self.regex)

    def visible(self, rel: str) -> bool:
        """Whether the key ``rel`` (share prefix removed; ``d/`` a marker) exists."""
        return self.why_hidden(rel) is None

    def why_hidden(self, rel: str) -> str | None:
        """None for a visible key, else the filter that hides it (for a 403's body)."""
        if not self.active:
            return None
        is_marker = rel.endswith("/")
        names = [n for n in rel.split("/") if n]
        for glob in self.exclude:
            if glob.covers(names):
                return f"exclude {glob.text!r}"
        if self.include:
            if is_marker:
                ok = any(g.covers(names) or g.may_match_below(names) for g in self.include)
            else:
                ok = any(g.covers(names) for g in self.include)
            if not ok:
                return "include " + ", ".join(repr(g.text) for g in self.include)
        if self.regex is not None and self.regex.search(rel) is None:
            return f"filter {self.regex.pattern!r}"
        return None

    def directory(self, rel_dir: str) -> DirVerdict:
        """What the names say about the keys below directory ``rel_dir`` (``a/b/``)."""
        if not self.active:
            return DirVerdict.VISIBLE
        names = [n for n in rel_dir.split("/") if n]
        if any(g.covers(names) for g in self.exclude):
            return DirVerdict.HIDDEN
        if self.include:
            covered = any(g.covers(names) for g in self.include)
            if not covered and not any(g.may_match_below(names) for g in self.include):
                return DirVerdict.HIDDEN
        else:
            covered = True
        if covered and self.regex is None and not any(
            g.may_match_below(names) for g in self.exclude
        ):
            return DirVerdict.VISIBLE
        return DirVerdict.UNKNOWN
