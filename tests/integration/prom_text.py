"""A strict reader of the Prometheus text exposition format (0.0.4), the format
node_exporter's textfile collector reads (promtool is not available here).

parse(text) returns {(name, ((label, value), ...)): float} and raises ValueError naming
the line for anything the format does not allow: a sample outside its family (HELP
and TYPE first, each family once and contiguous), bad metric or label names, bad
escaping, a value that is not a float, a series twice, a counter not named *_total,
a missing final newline."""

from __future__ import annotations

import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
HELP_RE = re.compile(rf"# HELP ({NAME})(?: (.*))?")
TYPE_RE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|untyped|summary|histogram)")
SAMPLE_RE = re.compile(rf"({NAME})(?:\{{((?:{LABEL}={VALUE})(?:,{LABEL}={VALUE})*,?)?\}})? (\S+)(?: (-?\d+))?")
PAIR_RE = re.compile(rf"({LABEL})=({VALUE})")


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])


def _float(s: str) -> float:
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise ValueError(s)
    return float(s)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    seen: set[str] = set()
    family, ftype = None, None
    for n, line in enumerate(text.splitlines(), 1):
        where = f"line {n}: {line!r}"
        if m := HELP_RE.fullmatch(line):
            if m.group(1) in seen:
                raise ValueError(f"{where}: family {m.group(1)} appears twice")
            seen.add(m.group(1))
            family, ftype = m.group(1), None
        elif m := TYPE_RE.fullmatch(line):
            if m.group(1) != family or ftype is not None:
                raise ValueError(f"{where}: TYPE must follow its family's HELP, once")
            ftype = m.group(2)
            if ftype == "counter" and not family.endswith("_total"):
                raise ValueError(f"{where}: a counter's name ends in _total")
        elif line.startswith("#") or not line.strip():
            raise ValueError(f"{where}: neither HELP, TYPE nor a sample")
        elif m := SAMPLE_RE.fullmatch(line):
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            if name != family or ftype is None:
                raise ValueError(f"{where}: sample outside its family (HELP and TYPE first)")
            pairs = tuple((k, _unescape(v)) for k, v in PAIR_RE.findall(labels))
            if len({k for k, _ in pairs}) != len(pairs):
                raise ValueError(f"{where}: a label repeated")
            try:
                number = _float(value)
            except ValueError:
                raise ValueError(f"{where}: {value!r} is not a float") from None
            key = (name, tuple(sorted(pairs)))
            if key in out:
                raise ValueError(f"{where}: series repeated")
            out[key] = number
        else:
            raise ValueError(f"{where}: not a valid sample")
    return out


def value(metrics: dict, name: str, **labels: str) -> float | None:
    """The value of the series `name` with exactly these labels, or None."""
    return metrics.get((name, tuple(sorted(labels.items()))))
