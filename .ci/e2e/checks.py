#!/usr/bin/env python3
"""Assertions of the end-to-end suite (stdlib only).

Every check prints one "PASS: ..." or "FAIL: ..." line; the exit status is 1 when any check
failed. run.sh calls the subcommands below; scenarios.json holds the expected verdicts.
"""

import argparse
import base64
import calendar
import hashlib
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Outlook's order (SPEC §3.1, §3): Microsoft 365 first, then the four classic steps. The step's
# number (autodiscover_step_reached) is an id, not a position: microsoft365 is 5.
STEPS = ["microsoft365", "root_domain", "autodiscover_domain", "http_redirect", "srv_record"]
STEP_NUMBER = {"root_domain": 1, "autodiscover_domain": 2, "http_redirect": 3, "srv_record": 4, "microsoft365": 5}
OUTCOMES = ["ok", "redirect_prompt", "certificate_prompt", "not_found", "probe_error"]
STATUSES = [
    "endpoint_found", "dns_no_record", "dns_error", "connect_refused", "timeout",
    "tls_handshake_failed", "cert_name_mismatch", "cert_untrusted", "cert_expired",
    "cert_not_yet_valid", "http_status", "not_autodiscover", "redirect_invalid", "excluded",
]
PROCESS_METRICS = [
    "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total",
    "process_open_fds", "process_max_fds", "process_start_time_seconds",
]


class Checker:
    def __init__(self, prefix=""):
        self.prefix = prefix
        self.failures = 0

    def check(self, ok, what, detail=""):
        tag = "PASS" if ok else "FAIL"
        line = f"{tag}: {self.prefix}{what}"
        if not ok and detail:
            line += f" -- {detail}"
        print(line, flush=True)
        if not ok:
            self.failures += 1
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, what, f"got {got!r}, want {want!r}")

    def done(self):
        return 1 if self.failures else 0


def load_scenarios(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["scenarios"]


def scenario_by(scenarios, key, value):
    for s in scenarios:
        if s[key] == value:
            return s
    raise SystemExit(f"no scenario with {key}={value}")


def to_ascii(name):
    """A host or domain in A-label form (lower case, no trailing dot): Unicode and Punycode
    spellings of one name compare equal (SPEC §3.3)."""
    name = (name or "").rstrip(".").lower()
    try:
        return ".".join(label.encode("idna").decode("ascii") if label and not label.isascii() else label
                        for label in name.split("."))
    except UnicodeError:
        return name


def norm_host(h):
    return to_ascii(h)


def norm_url(u):
    """Lower case, host in A-label form: the SPEC does not say whether URLs of an international
    domain show the A-label or the Unicode host, so both spellings are accepted."""
    u = (u or "").lower()
    m = re.match(r"^([a-z]+://)([^/:?#]*)(.*)$", u, re.S)
    if not m:
        return u
    return m.group(1) + to_ascii(urllib.parse.unquote(m.group(2))) + m.group(3)


def norm_address(a):
    """local@domain with the domain in A-label form."""
    local, at, domain = (a or "").rpartition("@")
    return f"{local}{at}{to_ascii(domain)}" if at else (a or "")


def expected(s, variant=None, configured=False):
    """The scenario's expectations: the defaults, then what 'serve' (the generated config applies
    to the domain) or the named variant overrides."""
    e = dict(s)
    if configured:
        e.update(s.get("serve", {}))
    if variant:
        e.update(s["variants"][variant])
    return e


def cert_fingerprint(pki, name):
    """SHA-256 of the DER of PKI/<name>.pem, lower-case hex."""
    with open(os.path.join(pki, name + ".pem")) as f:
        pem = f.read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest()


def norm_fingerprint(fp):
    return re.sub(r"[^0-9a-f]", "", (fp or "").lower())


# ---------------------------------------------------------------------------------------------
# Probe reports (check --output json, /domains/D with Accept: application/json)

def assert_report(c, s, report, address=None):
    if not c.check(isinstance(report, dict), "report is a JSON object", f"got {type(report).__name__}"):
        return
    for key in ["address", "domain", "outcome", "endpoint", "certificate_prompts", "redirect_prompt",
                "srv", "steps", "findings", "redirects", "duration_seconds"]:
        c.check(key in report, f"report has '{key}'", f"keys: {sorted(report)}")
    c.equal(report.get("domain"), s["domain"], "domain (as configured or given)")
    want_address = address
    if want_address:
        c.check(norm_address(report.get("address")) == norm_address(want_address), "address",
                f"got {report.get('address')!r}, want {want_address!r}")
    else:
        c.check(norm_address(str(report.get("address", ""))).endswith("@" + to_ascii(s["domain"])),
                "address is local@domain", f"got {report.get('address')!r}")
    c.equal(report.get("outcome"), s["outcome"], "outcome")

    endpoint = report.get("endpoint")
    if s["endpoint"] is None:
        c.equal(endpoint, None, "no endpoint")
    elif c.check(isinstance(endpoint, dict), "endpoint present", f"got {endpoint!r}"):
        c.equal(endpoint.get("step"), s["endpoint"]["step"], "endpoint.step")
        c.equal(norm_url(endpoint.get("url")), norm_url(s["endpoint"]["url"]), "endpoint.url")

    c.equal(report.get("certificate_prompts"), s["certificate_prompts"], "certificate_prompts")
    c.equal(report.get("redirect_prompt"), s["redirect_prompt"], "redirect_prompt")

    srv = report.get("srv") or {}
    c.equal(bool(srv.get("present")), bool(s["srv"]), "srv.present")
    records = [
        {"target": norm_host(r.get("target")), "port": r.get("port"), "priority": r.get("priority"),
         "weight": r.get("weight")}
        for r in (srv.get("records") or [])
    ]
    c.equal(records, s["srv"], "srv.records")

    steps = report.get("steps") or []
    c.equal([st.get("step") for st in steps], STEPS, "steps in Outlook's order")
    want = s["steps"]
    c.equal(len(want), len(STEPS), "scenarios.json lists one status per step")
    got = {st.get("step"): st.get("status") for st in steps}
    for step, status in zip(STEPS, want):
        c.equal(got.get(step), status, f"step {step} status")
    for st in steps:
        c.check(isinstance(st.get("duration_seconds"), (int, float)), f"step {st.get('step')} has duration_seconds")
        c.check("url" in st, f"step {st.get('step')} has url")

    findings = report.get("findings")
    if c.check(isinstance(findings, list), "findings is a list"):
        for f in findings:
            c.check(isinstance(f, dict) and all(k in f for k in ("severity", "code", "message", "hint")),
                    "finding has severity, code, message, hint", repr(f)[:200])
        if s["outcome"] != "ok" or s.get("has_findings"):
            c.check(len(findings) > 0, "a non-ok verdict (or a risk for other clients) comes with findings")
        codes = [f.get("code") for f in findings if isinstance(f, dict)]
        for want_f in s.get("findings_include", []):
            found = [f for f in findings if isinstance(f, dict) and f.get("code") == want_f["code"]
                     and ("severity" not in want_f or f.get("severity") == want_f["severity"])]
            c.check(bool(found), f"findings include {want_f}", f"codes: {codes}")
    c.check(isinstance(report.get("redirects"), list), "redirects is a list")
    c.check(isinstance(report.get("duration_seconds"), (int, float)), "duration_seconds is a number")


def cmd_report(args):
    scenarios = load_scenarios(args.scenarios)
    s = scenario_by(scenarios, "name", args.name)
    if args.context == "check":  # no configuration: what differs without it (e.g. credentials)
        s = {**s, **s.get("check", {})}
    c = Checker(f"[{args.context} {s['name']}{'/' + args.variant if args.variant else ''} {s['domain']}] ")
    if args.exit_code is not None:
        c.equal(args.exit_code, expected(s, args.variant)["exit"], "exit code")
    try:
        with open(args.report, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, "output parses as JSON", str(e))
        return c.done()
    configured = args.context != "check"  # the exporter applies the domain's configuration
    address = args.address or (s.get("config", {}).get("email") if configured else None)
    assert_report(c, expected(s, args.variant, configured), report, address=address)
    return c.done()


def cmd_probe_error(args):
    c = Checker(f"[check unreachable resolver] ")
    c.equal(args.exit_code, 1, "exit code")
    try:
        with open(args.report, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, "output parses as JSON", str(e))
        return c.done()
    c.equal(report.get("outcome"), "probe_error", "outcome")
    return c.done()


# ---------------------------------------------------------------------------------------------
# Exporter configuration

def yaml_str(v):
    return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def cmd_serve_config(args):
    scenarios = load_scenarios(args.scenarios)
    lines = [
        "# Generated by .ci/e2e/checks.py serve-config",
        "defaults:",
        "  interval: 15s",
        "  timeout: 20s",
        "resolver:",
        f"  nameservers: [{yaml_str(args.nameserver)}]",
        "tls:",
        f"  ca_file: {yaml_str(args.ca_file)}",
        "microsoft365:",
        '  url: "https://outlook.office365.com"   # the default, spelled out; the world\'s DNS leads there',
        "domains:",
    ]
    if args.default_steps:
        lines[4:4] = [f"  steps: [{', '.join(args.default_steps.split(','))}]"]
    for s in scenarios:
        lines.append(f"  - domain: {s['domain']}")  # Unicode as written (bücher.e2e.test)
        lines.append(f"    labels: {{customer: {yaml_str(s['customer'])}}}")
        cfg = s.get("config", {})
        if "email" in cfg:
            lines.append(f"    email: {cfg['email']}")
        if "steps" in cfg:
            lines.append(f"    steps: [{', '.join(cfg['steps'])}]")
        if "credentials_file" in cfg:  # @WORK@: the work dir, where --out is written
            work = os.path.dirname(os.path.abspath(args.out))
            lines.append(f"    credentials_file: {yaml_str(cfg['credentials_file'].replace('@WORK@', work))}")
        if "expect" in cfg:
            lines.append("    expect:")
            for k, v in cfg["expect"].items():
                lines.append(f"      {k}: {v}")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# Prometheus text format

LINE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_labels(text):
    labels = {}
    inner = text[1:-1]
    pos = 0
    while pos < len(inner):
        m = LABEL_RE.match(inner, pos)
        if not m:
            raise ValueError(f"bad labels: {text}")
        value = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        labels[m.group(1)] = value
        pos = m.end()
    return labels


def parse_metrics(text):
    """Returns [(name, labels, value)]."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            raise ValueError(f"unparsable line: {raw}")
        labels = parse_labels(m.group(2)) if m.group(2) else {}
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def select(samples, name, **match):
    return [(l, v) for n, l, v in samples if n == name and all(l.get(k) == val for k, val in match.items())]


def one_value(samples, name, **match):
    found = select(samples, name, **match)
    return found[0][1] if len(found) == 1 else None


def assert_domain_metrics(c, samples, s, pki, now, interval):
    d = s["domain"]
    own = [(n, l) for n, l, _ in samples if l.get("domain") == d]
    c.check(all(l.get("customer") == s["customer"] for _, l in own), "every series carries customer label",
            str([n for n, l in own if l.get("customer") != s["customer"]][:5]))

    outcomes = {l.get("outcome"): v for l, v in select(samples, "autodiscover_outcome", domain=d)}
    c.equal(sorted(outcomes), sorted(OUTCOMES), "autodiscover_outcome has the 5 outcomes")
    c.equal({k: v for k, v in outcomes.items() if v == 1}, {s["outcome"]: 1.0}, "autodiscover_outcome")

    success = 1.0 if s["outcome"] in ("ok", "redirect_prompt") else 0.0
    c.equal(one_value(samples, "autodiscover_probe_success", domain=d), success, "autodiscover_probe_success")
    reached = STEP_NUMBER[s["endpoint"]["step"]] if s["endpoint"] else 0
    c.equal(one_value(samples, "autodiscover_step_reached", domain=d), float(reached), "autodiscover_step_reached")

    want_steps = s["steps"]
    status = select(samples, "autodiscover_step_status", domain=d)
    got = sorted((l.get("step"), l.get("status"), v) for l, v in status)
    c.equal(got, sorted((st, want, 1.0) for st, want in zip(STEPS, want_steps)), "autodiscover_step_status")

    durations = select(samples, "autodiscover_step_duration_seconds", domain=d)
    c.equal(sorted(l.get("step") for l, _ in durations), sorted(STEPS), "autodiscover_step_duration_seconds steps")

    prompts = {l.get("step"): v for l, v in select(samples, "autodiscover_certificate_prompt", domain=d)}
    c.equal(prompts, {st: (1.0 if st in s["certificate_prompts"] else 0.0) for st in STEPS},
            "autodiscover_certificate_prompt")
    c.equal(one_value(samples, "autodiscover_redirect_prompt", domain=d), 1.0 if s["redirect_prompt"] else 0.0,
            "autodiscover_redirect_prompt")
    c.equal(one_value(samples, "autodiscover_srv_record_present", domain=d), 1.0 if s["srv"] else 0.0,
            "autodiscover_srv_record_present")
    srv = sorted((norm_host(l.get("target")), l.get("port"), l.get("priority"), l.get("weight"), v)
                 for l, v in select(samples, "autodiscover_srv_record_info", domain=d))
    c.equal(srv, sorted((r["target"], str(r["port"]), str(r["priority"]), str(r["weight"]), 1.0) for r in s["srv"]),
            "autodiscover_srv_record_info")

    endpoint = [(l.get("step"), norm_url(l.get("url")), v) for l, v in select(samples, "autodiscover_endpoint_info", domain=d)]
    want_endpoint = [(s["endpoint"]["step"], norm_url(s["endpoint"]["url"]), 1.0)] if s["endpoint"] else []
    c.equal(endpoint, want_endpoint, "autodiscover_endpoint_info")

    def host_series(name, step, host):
        # host labels of an international name may be A-labels or Unicode: both are accepted
        return [(l, v) for l, v in select(samples, name, domain=d, step=step) if norm_host(l.get("host")) == norm_host(host)]

    def host_value(name, step, host):
        found = host_series(name, step, host)
        return found[0][1] if len(found) == 1 else None

    for cert in s.get("certificates", []):
        step, host = cert["step"], cert["host"]
        where = f"{{step={step},host={host}}}"
        c.equal(host_value("autodiscover_certificate_name_mismatch", step, host),
                float(cert["mismatch"]), f"autodiscover_certificate_name_mismatch{where}")
        infos = host_series("autodiscover_certificate_info", step, host)
        fps = {norm_fingerprint(l.get("fingerprint_sha256")) for l, _ in infos}
        c.check(cert_fingerprint(pki, cert["pem"]) in fps, f"autodiscover_certificate_info{where} lists {cert['pem']}.pem",
                f"fingerprints seen: {sorted(fps)}")
        for l, _ in infos:
            c.check(all(l.get(k) for k in ("subject", "issuer", "serial")), f"certificate_info{where} has subject/issuer/serial", str(l))
    # Expiry: earliest across the host's addresses.
    hosts = {}
    for cert in s.get("certificates", []):
        hosts.setdefault((cert["step"], cert["host"]), []).append(cert["pem"])
    for (step, host), pems in hosts.items():
        not_after = min(pem_not_after(pki, p) for p in pems)
        where = f"{{step={step},host={host}}}"
        got = host_value("autodiscover_certificate_not_after_timestamp_seconds", step, host)
        c.equal(got, float(not_after), f"autodiscover_certificate_not_after_timestamp_seconds{where}")
        days = host_value("autodiscover_certificate_days_to_expiry", step, host)
        want_days = (not_after - now) / 86400
        c.check(days is not None and abs(days - want_days) < 0.05, f"autodiscover_certificate_days_to_expiry{where} ~ {want_days:.2f}",
                f"got {days!r}")

    ts = one_value(samples, "autodiscover_probe_timestamp_seconds", domain=d)
    c.check(ts is not None and now - 120 < ts <= now + 5, "autodiscover_probe_timestamp_seconds is recent", f"got {ts!r}, now {now:.0f}")
    dur = one_value(samples, "autodiscover_probe_duration_seconds", domain=d)
    c.check(dur is not None and 0 <= dur < 30, "autodiscover_probe_duration_seconds", f"got {dur!r}")
    if interval is not None:
        c.equal(one_value(samples, "autodiscover_probe_interval_seconds", domain=d), interval, "autodiscover_probe_interval_seconds")


PEM_NOT_AFTER = {}


def pem_not_after(pki, name):
    """notAfter of PKI/<name>.pem as Unix seconds."""
    if name not in PEM_NOT_AFTER:
        import subprocess
        out = subprocess.run(["openssl", "x509", "-in", os.path.join(pki, name + ".pem"), "-noout", "-enddate"],
                             check=True, capture_output=True, text=True).stdout.strip()
        stamp = out.split("=", 1)[1]
        PEM_NOT_AFTER[name] = calendar.timegm(time.strptime(" ".join(stamp.replace("GMT", "").split()), "%b %d %H:%M:%S %Y"))
    return PEM_NOT_AFTER[name]


def read_samples(c, path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        return parse_metrics(text)
    except ValueError as e:
        c.check(False, "metrics parse", str(e))
        return []


def cmd_metrics(args):
    scenarios = load_scenarios(args.scenarios)
    c = Checker("[/metrics] ")
    samples = read_samples(c, args.file)
    now = time.time()
    c.equal(one_value(samples, "autodiscover_exporter_domains"), float(len(scenarios)), "autodiscover_exporter_domains")
    build = select(samples, "autodiscover_exporter_build_info")
    c.check(len(build) == 1 and build[0][1] == 1 and build[0][0].get("version"), "autodiscover_exporter_build_info{version,revision} 1",
            str(build))
    c.check(len(build) == 1 and "revision" in build[0][0], "build_info has a revision label", str(build))
    probes = select(samples, "autodiscover_exporter_probes_total")
    c.check(sum(v for _, v in probes) >= len(scenarios), "autodiscover_exporter_probes_total counts the probes", str(probes))
    c.check({l.get("outcome") for l, _ in probes} <= set(OUTCOMES), "probes_total outcome values", str(probes))
    c.equal(one_value(samples, "autodiscover_exporter_config_last_reload_successful"), 1.0,
            "autodiscover_exporter_config_last_reload_successful")
    ts = one_value(samples, "autodiscover_exporter_config_last_reload_success_timestamp_seconds")
    c.check(ts is not None and now - 3600 < ts <= now + 5, "config_last_reload_success_timestamp_seconds is recent", f"got {ts!r}")
    for name in PROCESS_METRICS:
        c.check(len(select(samples, name)) == 1, f"{name} present")
    domains = {l["domain"] for _, l, _ in samples if "domain" in l}
    c.equal(sorted(domains), sorted(s["domain"] for s in scenarios), "domain label values")
    for s in scenarios:
        dc = Checker(f"[/metrics {s['name']} {s['domain']}] ")
        assert_domain_metrics(dc, samples, expected(s, configured=True), args.pki, now, args.interval)
        c.failures += dc.failures
    return c.done()


def cmd_probe_metrics(args):
    scenarios = load_scenarios(args.scenarios)
    s = scenario_by(scenarios, "domain", args.domain)
    c = Checker(f"[/probe?target={args.domain}] ")
    samples = read_samples(c, args.file)
    c.equal(sorted({l.get("domain") for _, l, _ in samples if "domain" in l}), [args.domain], "only the target's series")
    c.check(not any(n.startswith("autodiscover_exporter_") or n.startswith("process_") for n, _, _ in samples),
            "no exporter's own metrics", str(sorted({n for n, _, _ in samples if n.startswith(("autodiscover_exporter_", "process_"))})))
    assert_domain_metrics(c, samples, expected(s, configured=True), args.pki, time.time(), None)
    return c.done()


def cmd_demo_metrics(args):
    c = Checker("[demo /metrics] ")
    samples = read_samples(c, args.file)
    outcome = select(samples, "autodiscover_outcome")
    domains = {l.get("domain") for l, _ in outcome}
    c.check(len(domains) >= 3, "at least 3 simulated domains", str(sorted(domains)))
    verdicts = {l.get("outcome") for l, v in outcome if v == 1}
    c.check(len(verdicts) >= 3, "at least 3 different verdicts", str(sorted(verdicts)))
    c.check("certificate_prompt" in verdicts, "the seed's certificate prompt is shown", str(sorted(verdicts)))
    return c.done()


# ---------------------------------------------------------------------------------------------
# Sharding (--shard I/N: FNV-1a 64 of the lower-case domain, modulo N equals I-1)

def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in text.lower().encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def cmd_shard(args):
    scenarios = load_scenarios(args.scenarios)
    n = len(args.files)
    c = Checker(f"[--shard i/{n}] ")
    # An international domain may be hashed as written or as its A-label (the SPEC does not say):
    # either shard is accepted for it, once.
    allowed = {s["domain"]: {fnv1a64(s["domain"]) % n, fnv1a64(to_ascii(s["domain"])) % n} for s in scenarios}
    seen = []
    for i, path in enumerate(args.files, start=1):
        samples = read_samples(c, path)
        got = sorted({l["domain"] for _, l, _ in samples if "domain" in l})
        want = sorted(d for d, shards in allowed.items() if shards == {i - 1})
        maybe = sorted(d for d, shards in allowed.items() if i - 1 in shards and len(shards) > 1)
        c.check(set(want) <= set(got) <= set(want) | set(maybe), f"shard {i}/{n} domains",
                f"got {got!r}, want {want!r}" + (f" and any of {maybe!r}" if maybe else ""))
        c.equal(one_value(samples, "autodiscover_exporter_domains"), float(len(got)), f"shard {i}/{n} autodiscover_exporter_domains")
        seen += got
    c.equal(sorted(seen), sorted(s["domain"] for s in scenarios), "shards cover every domain once")
    return c.done()


# ---------------------------------------------------------------------------------------------
# Status page and trace page

def cmd_status_page(args):
    scenarios = load_scenarios(args.scenarios)
    c = Checker("[/] ")
    with open(args.file, encoding="utf-8", errors="replace") as f:
        html = f.read()
    for s in scenarios:
        d = s["domain"]
        c.check(d in html, f"status page lists {d}")
        links = {f"/domains/{d}", f"/domains/{urllib.parse.quote(d)}", f"/domains/{to_ascii(d)}"}
        c.check(any(link in html or link.lower() in html.lower() for link in links), f"status page links /domains/{d}",
                f"none of {sorted(links)}")
    return c.done()


# ---------------------------------------------------------------------------------------------
# Prometheus HTTP API

class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=30) as r:
            return json.load(r)

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            return self.get("/api/v1/query", **params)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def query_range(self, expr, start, end, step):
        try:
            return self.get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
        except urllib.error.HTTPError as e:
            return json.load(e)


def result_size(answer):
    data = answer.get("data") or {}
    if data.get("resultType") == "scalar":
        return 1
    return len(data.get("result") or [])


def cmd_prom_wait(args):
    """Waits (bounded) until EXPR returns at least one series."""
    prom = Prom(args.prom)
    for _ in range(args.tries):
        try:
            answer = prom.query(args.expr)
            if answer.get("status") == "success" and result_size(answer) > 0:
                print(f"PASS: Prometheus has {args.expr}")
                return 0
        except (OSError, ValueError):
            pass
        time.sleep(args.sleep)
    print(f"FAIL: Prometheus still has no result for {args.expr} after {args.tries * args.sleep:.0f}s")
    return 1


GRAFANA_BUILTINS = {
    "__rate_interval": "1m", "__range": "5m", "__range_s": "300", "__range_ms": "300000",
    "__interval": "15s", "__interval_ms": "15000", "__auto": "15s",
}
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]|\$(\w+)")


def dashboard_variables(dash):
    values = dict(GRAFANA_BUILTINS)
    for v in (dash.get("templating") or {}).get("list") or []:
        name, kind = v.get("name"), v.get("type")
        if not name:
            continue
        if kind == "datasource":
            values[name] = "prometheus"
        elif kind in ("query", "adhoc"):
            values[name] = ".+"
        else:
            cur = (v.get("current") or {}).get("value")
            if isinstance(cur, list):
                cur = cur[0] if cur else None
            if cur in (None, "", "$__all"):
                opts = v.get("options") or []
                cur = opts[0].get("value") if opts else str(v.get("query", "")).split(",")[0]
            values[name] = ".+" if cur == "$__all" else str(cur)
    return values


def substitute(expr, values):
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name.isdigit():  # regex back-references such as label_replace's "$1"
            return m.group(0)
        if name in values:
            return values[name]
        unknown.append(name)
        return m.group(0)

    return VAR_RE.sub(repl, expr), unknown


def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def dashboard_queries(path):
    """Yields (key, expr, range_query, unknown_vars) for every panel target and variable query."""
    with open(path) as f:
        dash = json.load(f)
    if "dashboard" in dash and "panels" not in dash:
        dash = dash["dashboard"]
    values = dashboard_variables(dash)
    base = os.path.basename(path)
    panels = list(walk_panels(dash.get("panels")))
    for row in dash.get("rows") or []:
        panels += list(walk_panels(row.get("panels")))
    for p in panels:
        for t in p.get("targets") or []:
            expr = t.get("expr")
            if not expr:
                continue
            title = p.get("title") or f"panel {p.get('id')}"
            key = f"dashboard:{base}:{title}:{t.get('refId', '')}"
            rangeq = not t.get("instant") and p.get("type") not in ("table", "stat", "gauge", "bargauge", "piechart")
            if t.get("range") is True:
                rangeq = True
            sub, unknown = substitute(expr, values)
            yield key, sub, rangeq, unknown
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if not q:
            continue
        key = f"variable:{base}:{v.get('name')}"
        sub, unknown = substitute(q, values)
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", sub, re.S)
        if m:
            sub = f"group by ({m.group(2)}) ({m.group(1)})"
        else:
            m = re.fullmatch(r"\s*label_values\(\s*(\w+)\s*\)\s*", sub)
            if m:
                sub = f"group by ({m.group(1)}) ({{{m.group(1)}!=\"\"}})"
            else:
                m = re.fullmatch(r"\s*query_result\((.*)\)\s*", sub, re.S)
                if m:
                    sub = m.group(1)
        yield key, sub, False, unknown


def load_allow_list(path):
    allow = {}
    if not os.path.exists(path):
        return allow
    with open(path) as f:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if " | " not in line or not line.split(" | ", 1)[1].strip():
                print(f"FAIL: {path}:{n}: expected 'key | reason', got {line!r}")
                allow[line] = None
                continue
            key, reason = line.split(" | ", 1)
            allow[key.strip()] = reason.strip()
    return allow


def cmd_prom_queries(args):
    prom = Prom(args.prom)
    c = Checker("[prometheus] ")
    allow = load_allow_list(args.allow)
    if any(v is None for v in allow.values()):
        c.failures += 1
    now = time.time()
    used = set()

    def evaluate(key, expr, rangeq):
        answer = prom.query(expr, at=now)
        if answer.get("status") != "success":
            c.check(False, f"{key} evaluates", f"{answer.get('errorType')}: {answer.get('error')} -- {expr}")
            return
        size = result_size(answer)
        if size == 0 and rangeq:
            answer = prom.query_range(expr, args.since, now, "5s")
            size = result_size(answer) if answer.get("status") == "success" else 0
        if key in allow:
            used.add(key)
            if size == 0:
                c.check(True, f"{key} is empty, as expected ({allow[key]})")
            else:
                print(f"NOTE: {key} is allow-listed as empty but returned {size} series: {expr}")
            return
        c.check(size > 0, f"{key} returns data ({size} series)", f"empty result; add it to expected-empty.txt with a reason if that is right -- {expr}")

    dashboards = sorted(args.dashboards)
    if not dashboards:
        print("SKIP: no dashboards/*.json yet")
    for path in dashboards:
        try:
            queries = list(dashboard_queries(path))
        except (OSError, ValueError) as e:
            c.check(False, f"{path} parses", str(e))
            continue
        c.check(len(queries) > 0, f"{os.path.basename(path)} has queries")
        for key, expr, rangeq, unknown in queries:
            if unknown:
                c.check(False, f"{key} uses only known variables", f"unknown: {unknown}")
                continue
            evaluate(key, expr, rangeq)

    rules = prom.get("/api/v1/rules")["data"]["groups"]
    count = 0
    for g in rules:
        for r in g["rules"]:
            count += 1
            kind = "alert" if r["type"] == "alerting" else "record"
            key = f"{kind}:{r['name']}"
            c.check(r.get("health") == "ok", f"{key} evaluates in Prometheus", r.get("lastError", ""))
            evaluate(key, r["query"], False)
            if kind == "alert":
                labels, ann = r.get("labels") or {}, r.get("annotations") or {}
                c.check(labels.get("severity") in ("critical", "warning", "info"), f"{key} has a severity label", str(labels))
                for a in ("summary", "description", "runbook_url"):
                    c.check(bool(ann.get(a)), f"{key} has annotation {a}")
                want = "https://github.com/autodiscover-exporter/autodiscover-exporter/blob/main/README.md#" + r["name"].lower()
                c.equal(ann.get("runbook_url"), want, f"{key} runbook_url")
                if args.readme and not os.path.exists(args.readme):
                    print(f"SKIP: no README.md yet: runbook section of {r['name']} not checked")
                elif args.readme:
                    with open(args.readme) as f:
                        readme = f.read()
                    runbook = readme.split("\n## Runbook", 1)[1] if "\n## Runbook" in readme else ""
                    c.check(re.search(rf"^### {re.escape(r['name'])}\s*$", runbook, re.M) is not None,
                            f"{key} has a '### {r['name']}' section under '## Runbook' in README.md")
    if args.expect_rules is not None:
        c.equal(count, args.expect_rules, "rules loaded by Prometheus = rules found by promtool")
    for key in sorted(set(allow) - used):
        print(f"NOTE: expected-empty.txt entry matches no query: {key}")
    return c.done()


def cmd_prom_alerts(args):
    """Waits (bounded) until every expected alert is pending or firing, then checks the quiet ones."""
    prom = Prom(args.prom)
    wanted, quiet = [], []
    with open(args.expected, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, *matchers = line.split()
            entry = (name.lstrip("!"), dict(m.split("=", 1) for m in matchers))
            (quiet if name.startswith("!") else wanted).append(entry)
    rules = {r["name"] for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"}
    c = Checker("[alerts] ")

    def active_matching(active, name, m):
        return [a for a in active if a["state"] in ("pending", "firing")
                and (name == "*" or a["labels"].get("alertname") == name)
                and all(a["labels"].get(k) == v for k, v in m.items())]

    def label(name, m):
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in m.items()) + "}"

    active = []
    for _ in range(args.tries):
        active = prom.get("/api/v1/alerts")["data"]["alerts"]
        if all(name not in rules or active_matching(active, name, m) for name, m in wanted):
            break
        time.sleep(args.sleep)
    missing = sorted({name for name, _ in wanted + quiet if name != "*" and name not in rules})
    c.check(not missing, "every alert named in expected-alerts.txt is an alerting rule", f"not rules: {missing}")
    for name, m in wanted:
        if name not in rules:
            continue
        found = active_matching(active, name, m)
        c.check(bool(found), f"{label(name, m)} is pending or firing",
                "active: " + ", ".join(sorted({label(a['labels'].get('alertname'), {'domain': a['labels'].get('domain', '')}) for a in active})))
    for name, m in quiet:
        found = active_matching(active, name, m)
        c.check(not found, f"no {label(name, m)} alert", "active: " + ", ".join(sorted({a["labels"].get("alertname") for a in found})))
    return c.done()


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# After Autodiscover (services.sh): settings, service endpoints, service prompts, credentials

def cmd_services(args):
    s = scenario_by(load_scenarios(args.scenarios), "name", args.name)
    c = Checker(f"[{args.context} services {s['name']} {s['domain']}] ")
    try:
        with open(args.report) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, "report parses as JSON", str(e))
        return c.done()
    c.equal(report.get("service_certificate_prompts"), s["service_certificate_prompts"], "service_certificate_prompts")
    source = report.get("settings_source") or {}
    c.equal(source.get("authenticated"), s["settings_authenticated"], "settings_source.authenticated")
    c.check(isinstance(report.get("settings"), dict) and report["settings"].get("protocols"),
            "report has the announced settings", str(report.get("settings"))[:200])
    got = {(x.get("service"), x.get("host"), x.get("port")): x for x in report.get("services") or []}
    for want in s["services"]:
        key = (want["service"], want["host"], want["port"])
        x = got.get(key)
        if not c.check(x is not None, f"service {key} checked", f"checked: {sorted(got)}"):
            continue
        c.equal(x.get("protocol"), want["protocol"], f"service {key} protocol")
        c.equal(x.get("status"), want["status"], f"service {key} status")
        if want["protocol"].endswith("_starttls"):
            attempts = x.get("addresses") or [{}]
            c.equal(attempts[0].get("starttls_offered"), True, f"service {key} advertises STARTTLS")
    c.equal(len(got), len(s["services"]), "number of service endpoints")
    codes = {f.get("code") for f in report.get("findings") or []}
    if s["service_certificate_prompts"]:
        c.check("service_certificate_prompt" in codes, "finding service_certificate_prompt", str(sorted(codes)))
    credentials = report.get("credentials")
    if s["settings_authenticated"]:
        c.equal((credentials or {}).get("result"), "sent", "credentials sent")
        c.check("Authorization" not in json.dumps(report), "no Authorization header in the report")
    return c.done()


def cmd_services_metrics(args):
    samples_c = Checker("[/metrics services] ")
    samples = read_samples(samples_c, args.file)
    for s in load_scenarios(args.scenarios):
        if "services" not in s:
            continue
        d = s["domain"]
        c = Checker(f"[/metrics services {s['name']} {d}] ")
        info = sorted((l.get("service"), l.get("protocol"), l.get("host"), l.get("port"), v)
                      for l, v in select(samples, "autodiscover_service_info", domain=d))
        c.equal(info, sorted((x["service"], x["protocol"], x["host"], str(x["port"]), 1.0) for x in s["services"]),
                "autodiscover_service_info")
        status = sorted((l.get("service"), l.get("host"), l.get("status"), v)
                        for l, v in select(samples, "autodiscover_service_status", domain=d))
        c.equal(status, sorted((x["service"], x["host"], x["status"], 1.0) for x in s["services"]),
                "autodiscover_service_status")
        prompts = {(p["service"], p["host"]) for p in s["service_certificate_prompts"]}
        got = sorted((l.get("service"), l.get("host"), v)
                     for l, v in select(samples, "autodiscover_service_certificate_prompt", domain=d))
        c.equal(got, sorted((x["service"], x["host"], 1.0 if (x["service"], x["host"]) in prompts else 0.0)
                            for x in s["services"]), "autodiscover_service_certificate_prompt")
        c.equal(one_value(samples, "autodiscover_outcome", domain=d, outcome="certificate_prompt"),
                1.0 if s["outcome"] == "certificate_prompt" else 0.0, "autodiscover_outcome certificate_prompt")
        for host, mismatch in s.get("service_certificates", {}).items():
            c.equal(one_value(samples, "autodiscover_certificate_name_mismatch", domain=d, step="service", host=host),
                    float(mismatch), f"autodiscover_certificate_name_mismatch{{step=service,host={host}}}")
            days = one_value(samples, "autodiscover_certificate_days_to_expiry", domain=d, step="service", host=host)
            c.check(days is not None, f"autodiscover_certificate_days_to_expiry{{step=service,host={host}}}")
        samples_c.failures += c.failures
    return samples_c.done()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    a = sub.add_parser("report")
    a.add_argument("--scenarios", required=True)
    a.add_argument("--context", default="check")
    a.add_argument("--address")
    a.add_argument("--exit-code", type=int)
    a.add_argument("--variant", help="check against the scenario's variants[VARIANT] expectations")
    a.add_argument("name")
    a.add_argument("report")
    a.set_defaults(func=cmd_report)

    a = sub.add_parser("probe-error")
    a.add_argument("--exit-code", type=int, required=True)
    a.add_argument("report")
    a.set_defaults(func=cmd_probe_error)

    a = sub.add_parser("serve-config")
    a.add_argument("--scenarios", required=True)
    a.add_argument("--nameserver", required=True)
    a.add_argument("--ca-file", required=True)
    a.add_argument("--default-steps", help="defaults.steps, comma-separated (default: the exporter's)")
    a.add_argument("--out", required=True)
    a.set_defaults(func=cmd_serve_config)

    a = sub.add_parser("services")
    a.add_argument("--scenarios", required=True)
    a.add_argument("--context", default="check")
    a.add_argument("name")
    a.add_argument("report")
    a.set_defaults(func=cmd_services)

    a = sub.add_parser("services-metrics")
    a.add_argument("--scenarios", required=True)
    a.add_argument("file")
    a.set_defaults(func=cmd_services_metrics)

    a = sub.add_parser("metrics")
    a.add_argument("--scenarios", required=True)
    a.add_argument("--pki", required=True)
    a.add_argument("--interval", type=float, default=15.0)
    a.add_argument("file")
    a.set_defaults(func=cmd_metrics)

    a = sub.add_parser("probe-metrics")
    a.add_argument("--scenarios", required=True)
    a.add_argument("--pki", required=True)
    a.add_argument("domain")
    a.add_argument("file")
    a.set_defaults(func=cmd_probe_metrics)

    a = sub.add_parser("demo-metrics")
    a.add_argument("file")
    a.set_defaults(func=cmd_demo_metrics)

    a = sub.add_parser("shard")
    a.add_argument("--scenarios", required=True)
    a.add_argument("files", nargs="+")
    a.set_defaults(func=cmd_shard)

    a = sub.add_parser("status-page")
    a.add_argument("--scenarios", required=True)
    a.add_argument("file")
    a.set_defaults(func=cmd_status_page)

    a = sub.add_parser("prom-wait")
    a.add_argument("--prom", required=True)
    a.add_argument("--tries", type=int, default=30)
    a.add_argument("--sleep", type=float, default=2.0)
    a.add_argument("expr")
    a.set_defaults(func=cmd_prom_wait)

    a = sub.add_parser("prom-queries")
    a.add_argument("--prom", required=True)
    a.add_argument("--allow", required=True)
    a.add_argument("--since", type=float, required=True)
    a.add_argument("--readme")
    a.add_argument("--expect-rules", type=int)
    a.add_argument("dashboards", nargs="*")
    a.set_defaults(func=cmd_prom_queries)

    a = sub.add_parser("prom-alerts")
    a.add_argument("--prom", required=True)
    a.add_argument("--expected", required=True)
    a.add_argument("--tries", type=int, default=20)
    a.add_argument("--sleep", type=float, default=2.0)
    a.set_defaults(func=cmd_prom_alerts)

    args = p.parse_args()
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
