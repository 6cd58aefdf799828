#!/usr/bin/env python3
"""Static checks for the Grafana dashboards in this directory.

Usage: python3 dashboards/check_dashboards.py [DASHBOARD.json ...]

Checks every dashboards/*.json (or the files given):
  * stable `uid`, schemaVersion 39, no import-only `${DS_...}` placeholders;
  * a `datasource` variable of type datasource (prometheus), plus `job` and `domain`;
  * every panel and every target uses {"type": "prometheus", "uid": "${datasource}"};
  * every panel has a description, a unit (fieldConfig.defaults.unit) and targets;
  * rate()/irate()/increase() use [$__rate_interval]; counters (*_total) only appear
    inside them; dashboard links point at dashboards that exist here;
  * every target expression and every label_values() selector is valid PromQL:
    the variables are substituted ($job, $domain -> .+, $__rate_interval -> 5m,
    $__range -> 1h, $__interval -> 1m), the expressions are written as recording
    rules to a temporary file and parsed by `promtool check rules`
    (PROMTOOL=/path/to/promtool to use another binary).

Exit status 0 when everything passes, 1 otherwise. Needs only the Python standard
library and promtool.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
SUBSTITUTIONS = {
    "job": ".+",
    "domain": ".+",
    "customer": ".*",
    "__rate_interval": "5m",
    "__range": "1h",
    "__interval": "1m",
}
RATE_FUNCTIONS = ("rate", "irate", "increase")

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def substitute(expr):
    """Replaces $var, ${var} and ${var:format} by the values promtool should see."""

    def repl(match):
        name = match.group(1) or match.group(2)
        return SUBSTITUTIONS.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def call_spans(expr, functions):
    """(start, end) of every call to one of `functions`, end just after its ')'."""
    spans = []
    for match in re.finditer(r"\b(%s)\s*\(" % "|".join(functions), expr):
        depth, i = 0, match.end() - 1
        while i < len(expr):
            if expr[i] == "(":
                depth += 1
            elif expr[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        spans.append((match.start(), i + 1))
    return spans


def check_expr_conventions(where, expr):
    spans = call_spans(expr, RATE_FUNCTIONS)
    for start, end in spans:
        ranges = re.findall(r"\[([^\]]*)\]", expr[start:end])
        if ranges != ["$__rate_interval"]:
            problem(where, f"{expr[start:end]!r} must use [$__rate_interval]")
    outside = expr
    for start, end in reversed(spans):
        outside = outside[:start] + outside[end:]
    if re.search(r"\b\w+_total\b", outside):
        problem(where, "counter (*_total) used outside rate()/irate()/increase()")


def walk_panels(panels):
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def check_dashboard(path, exprs, uids):
    data = json.loads(path.read_text())
    name = path.name
    uid = data.get("uid")
    if not uid or not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid):
        problem(name, f"missing or invalid uid {uid!r}")
    elif uid != path.stem:
        problem(name, f"uid {uid!r} should match the file name {path.stem!r}")
    if data.get("schemaVersion") != SCHEMA_VERSION:
        problem(name, f"schemaVersion {data.get('schemaVersion')!r}, expected {SCHEMA_VERSION}")
    if not data.get("title"):
        problem(name, "missing title")
    if data.get("id") is not None:
        problem(name, "id must be null so that import and provisioning assign one")
    if "${DS_" in path.read_text() or data.get("__inputs"):
        problem(name, "import-only ${DS_...} placeholders do not work with provisioning")

    variables = {v.get("name"): v for v in data.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem(name, "needs a variable `datasource` of type datasource with query prometheus")
    for required in ("job", "domain"):
        if required not in variables:
            problem(name, f"missing variable `{required}`")
    for var in variables.values():
        if var.get("type") in ("query", "adhoc") and var.get("datasource") != DATASOURCE:
            problem(name, f"variable {var.get('name')} must use datasource {DATASOURCE}")
        if var.get("type") == "query":
            query = var.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
            if match:
                exprs.append((f"{name} variable {var['name']}", match.group(1)))
            elif not re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", query):
                problem(name, f"variable {var['name']}: unsupported query {query!r}")

    ids = set()
    for panel in walk_panels(data.get("panels", [])):
        title = panel.get("title") or "<untitled>"
        where = f"{name} panel {title!r}"
        pid = panel.get("id")
        if pid in ids:
            problem(where, f"duplicate panel id {pid}")
        ids.add(pid)
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24:
            problem(where, f"invalid gridPos {grid}")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problem(where, f"datasource must be {DATASOURCE}")
        if not (panel.get("description") or "").strip():
            problem(where, "missing description")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            problem(where, "missing fieldConfig.defaults.unit")
        targets = panel.get("targets") or []
        if not targets:
            problem(where, "no targets")
        refs = set()
        for target in targets:
            ref = target.get("refId")
            if not ref or ref in refs:
                problem(where, f"missing or duplicate refId {ref!r}")
            refs.add(ref)
            if target.get("datasource") != DATASOURCE:
                problem(f"{where} {ref}", f"datasource must be {DATASOURCE}")
            expr = target.get("expr", "")
            if not expr.strip():
                problem(f"{where} {ref}", "empty expr")
                continue
            check_expr_conventions(f"{where} {ref}", expr)
            exprs.append((f"{where} {ref}", expr))

    for link in data.get("links", []):
        match = re.search(r"/d/([^/?]+)", link.get("url", ""))
        if link.get("type") == "link" and match:
            uids.setdefault("linked", []).append((name, match.group(1)))
    uids.setdefault("own", []).append((name, uid))


def promtool_check(exprs):
    """Parses every expression with `promtool check rules`; names the failing ones."""
    promtool = os.environ.get("PROMTOOL", "promtool")
    groups = []
    for i, (where, expr) in enumerate(exprs):
        concrete = substitute(expr)
        if "$" in concrete:
            problem(where, f"unknown variable left after substitution: {concrete!r}")
            continue
        groups.append({"name": f"{i:03d} {where}",
                       "rules": [{"record": f"dashboard:expr:{i}", "expr": concrete}]})
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "dashboard-exprs.rules.yml"
        rules.write_text(json.dumps({"groups": groups}, indent=1))  # JSON is YAML
        try:
            result = subprocess.run([promtool, "check", "rules", str(rules)],
                                    capture_output=True, text=True)
        except FileNotFoundError:
            problem("promtool", f"{promtool!r} not found (set PROMTOOL)")
            return
        if result.returncode != 0:
            problem("promtool check rules", (result.stdout + result.stderr).strip())
    print(f"promtool parsed {len(groups)} expressions")


def main(argv):
    here = Path(__file__).resolve().parent
    paths = [Path(p) for p in argv[1:]] or sorted(here.glob("*.json"))
    if not paths:
        problem(str(here), "no dashboards found")
    exprs, uids = [], {}
    for path in paths:
        try:
            check_dashboard(path, exprs, uids)
        except (OSError, ValueError) as err:
            problem(path.name, f"cannot load: {err}")
    own = [uid for _, uid in uids.get("own", [])]
    if len(own) != len(set(own)):
        problem("dashboards", f"duplicate uids {own}")
    for name, target in uids.get("linked", []):
        if target not in own:
            problem(name, f"links to unknown dashboard uid {target!r}")
    if exprs:
        promtool_check(exprs)
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"OK: {len(paths)} dashboards, {len(exprs)} expressions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
