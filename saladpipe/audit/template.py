"""Render the report's Jinja2 templates, which ship in this package's templates/ folder.

Autoescaping is on: every text from the run (corpus texts, ids, voice names) is
escaped; only the SVG the chart code built (and escaped itself) is marked safe.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from saladpipe.audit.charts import fmt


@cache
def asset(name: str) -> Markup:
    """A style sheet or script of templates/, inlined as it is."""
    files = resources.files("saladpipe.audit").joinpath("templates", name)
    return Markup(files.read_text(encoding="utf-8"))


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("saladpipe.audit", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(asset=asset, fmt=fmt)
    return environment


def render(name: str, context: dict[str, Any]) -> str:
    return _environment().get_template(name).render(**context)


def svg(markup: str) -> Markup:
    """Mark chart SVG as safe: the chart code escaped every text it holds."""
    return Markup(markup)
