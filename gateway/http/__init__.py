"""The HTTP front-end: GET/HEAD of objects with ranges and conditionals, listings."""

from __future__ import annotations
