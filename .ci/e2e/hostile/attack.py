#!/usr/bin/env python3
"""Hostile clients and the measurements of the hostile-world suite (standard library only).

    attack.py probe-flood  2,000 connections that each send /probe for hostile targets, again and
                           again until --duration is over (half of them one target per domain, so
                           identical requests meet; half a fresh address each time)
    attack.py auth-flood   wrong passwords (known and unknown users) as fast as --concurrency
                           connections allow, until --duration is over
    attack.py sample       the authorised scraper: /metrics every --every seconds, with its
                           latency, the verdicts it shows, and the exporter's RSS and open fds
    attack.py report       PASS/FAIL lines from the sample file (latency, verdicts, RSS, fds)

Each flood prints one JSON line with what it saw; every wait is bounded.
"""

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import statistics
import sys
import time


def raise_fd_limit():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    except (ImportError, ValueError, OSError):
        pass


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def split(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def one_request(host, port, path, headers, timeout):
    """Status code of one request on a fresh connection ('error:Kind' when there is none)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
        first = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = first.split(" ")
        return parts[1] if len(parts) > 1 and parts[1].isdigit() else "error:malformed"
    except asyncio.TimeoutError:
        return "error:timeout"
    except (ConnectionError, OSError) as e:
        return f"error:{type(e).__name__}"
    finally:
        if writer is not None:
            writer.close()


async def probe_flood(args):
    host, port = split(args.exporter)
    auth = basic(args.user, args.password)
    domains = args.targets.split(",")
    end = time.monotonic() + args.duration
    counts = {}
    state = {"in_flight": 0, "most": 0, "sent": 0}

    async def worker(i):
        # Started over a second, not in one instant: 2,000 simultaneous SYNs overflow any
        # listen queue, and the scraper's connection would wait for the kernel's 1 s SYN retry.
        await asyncio.sleep(args.ramp * i / args.concurrency)
        n = 0
        while time.monotonic() < end:
            domain = domains[i % len(domains)]
            if i % 2:
                target = f"flood{i}x{n}%40{domain}"
            else:
                target = domain
            n += 1
            state["in_flight"] += 1
            state["most"] = max(state["most"], state["in_flight"])
            state["sent"] += 1
            status = await one_request(host, port, f"/probe?target={target}",
                                       {"Authorization": auth,
                                        "X-Prometheus-Scrape-Timeout-Seconds": str(args.scrape_timeout)},
                                       args.scrape_timeout + 20)
            state["in_flight"] -= 1
            counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    print(json.dumps({"sent": state["sent"], "most_in_flight": state["most"], "status": counts}))


async def auth_flood(args):
    host, port = split(args.exporter)
    end = time.monotonic() + args.duration
    counts = {}

    async def worker(i):
        n = 0
        while time.monotonic() < end:
            user = args.user if n % 2 == 0 else f"nobody{i}"
            status = await one_request(host, port, "/metrics",
                                       {"Authorization": basic(user, f"wrong-{i}-{n}")}, 20)
            n += 1
            counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    print(json.dumps({"status": counts}))


OUTCOME_RE = re.compile(r'^autodiscover_outcome\{(.*)\} (\S+)$')


def outcomes(text):
    """{domain: outcome} of the state-set lines with value 1."""
    out = {}
    for line in text.splitlines():
        m = OUTCOME_RE.match(line)
        if not m or float(m.group(2)) != 1:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if "domain" in labels and "outcome" in labels:
            out[labels["domain"]] = labels["outcome"]
    return out


def probe_times(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("autodiscover_probe_timestamp_seconds{"):
            m = re.search(r'domain="([^"]*)"', line)
            if m:
                out[m.group(1)] = float(line.rsplit(" ", 1)[1])
    return out


def proc_stats(pid):
    stats = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "Threads:")):
                    key, value = line.split(":", 1)
                    stats[key] = int(value.split()[0])
        stats["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        stats["gone"] = True
    return stats


def sample(args):
    """Scrapes as Prometheus does, over one kept-alive connection (opened again when it breaks);
    every fourth scrape also opens a fresh connection, which shows the exporter still accepts
    new clients, but can wait for the kernel's SYN retry while 2,000 clients connect."""
    host, port = split(args.exporter)
    auth = basic(args.user, args.password)
    end = time.monotonic() + args.duration
    kept = None
    n = 0
    with open(args.out, "a") as out:
        while time.monotonic() < end:
            fresh = n % 4 == 3
            n += 1
            started = time.monotonic()
            record = {"t": time.time(), "phase": args.phase, "fresh": fresh}
            conn = None
            try:
                if fresh or kept is None:
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                else:
                    conn = kept
                conn.request("GET", "/metrics", headers={"Authorization": auth})
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace")
                record["status"] = resp.status
                record["outcomes"] = outcomes(body)
                record["probed"] = probe_times(body)
                if fresh:
                    conn.close()
                else:
                    kept = None if resp.will_close else conn
            except (OSError, http.client.HTTPException) as e:
                record["status"] = f"error:{type(e).__name__}"
                if conn is not None:
                    conn.close()
                if not fresh:
                    kept = None
            record["seconds"] = time.monotonic() - started
            record.update(proc_stats(args.pid))
            out.write(json.dumps(record) + "\n")
            out.flush()
            keep_wrong_reports(args, record, auth)
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))


def keep_wrong_reports(args, record, auth):
    """Saves the JSON report of a healthy domain the first times its verdict is wrong, next to
    the samples: what the probe saw is the first thing to read when that check fails."""
    expect = dict(pair.split("=", 1) for pair in args.expect.split(",") if pair)
    for domain, want in expect.items():
        got = record.get("outcomes", {}).get(domain)
        path = os.path.join(os.path.dirname(os.path.abspath(args.out)), f"wrong-{args.phase}-{domain}.json")
        if got in (None, want) or os.path.exists(path):
            continue
        try:
            status, body = get(args.exporter, args.user, args.password, f"/domains/{domain}?format=json")
        except (OSError, http.client.HTTPException):
            continue
        with open(path, "w") as f:
            f.write(body)


def report(args):
    expect = dict(pair.split("=", 1) for pair in args.expect.split(","))
    samples = [json.loads(line) for line in open(args.samples)]
    ok = True

    def result(passed, text):
        nonlocal ok
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}: {text}")

    for phase in args.phases.split(","):
        mine = [s for s in samples if s["phase"] == phase]
        if not mine:
            result(False, f"[{phase}] no /metrics samples")
            continue
        bad = [s for s in mine if s.get("status") != 200]
        result(not bad, f"[{phase}] every authorised /metrics scrape answered 200 ({len(mine)} scrapes)"
               + (f"; not 200: {sorted({str(s.get('status')) for s in bad})}" if bad else ""))
        fresh = sorted(s["seconds"] for s in mine if s.get("fresh") and s.get("status") == 200)
        if fresh:
            print(f"INFO: measured [{phase}] /metrics on a fresh connection: median "
                  f"{statistics.median(fresh) * 1000:.1f} ms, max {fresh[-1] * 1000:.1f} ms ({len(fresh)} scrapes)")
        latencies = sorted(s["seconds"] for s in mine if not s.get("fresh") and s.get("status") == 200)
        if len(latencies) >= args.min_samples:
            median = statistics.median(latencies)
            worst = latencies[-1]
            p90 = latencies[int(0.9 * (len(latencies) - 1))]
            result(median < args.median_limit,
                   f"[{phase}] /metrics median latency {median * 1000:.1f} ms < {args.median_limit * 1000:.0f} ms "
                   f"({len(latencies)} scrapes on the kept-alive connection, p90 {p90 * 1000:.1f} ms, "
                   f"max {worst * 1000:.1f} ms)")
            result(worst < args.max_limit,
                   f"[{phase}] /metrics slowest scrape {worst * 1000:.1f} ms < {args.max_limit * 1000:.0f} ms")
        else:
            result(False, f"[{phase}] only {len(latencies)} successful scrapes, want at least {args.min_samples}")
        wrong = []
        for s in mine:
            for domain, want in expect.items():
                got = s.get("outcomes", {}).get(domain)
                if s.get("status") == 200 and got != want:
                    wrong.append(f"{domain}={got}")
        if phase == "attack":
            # The verdicts above come from probes that ran during the attack, not only from
            # before it: the scheduler's probes share the slots with /probe, fairly.
            answered = [s for s in mine if s.get("status") == 200]
            for domain in expect:
                times = {s.get("probed", {}).get(domain) for s in answered}
                first = answered[0].get("probed", {}).get(domain) if answered else None
                fresh = len({t for t in times if t is not None and first is not None and t > first})
                result(fresh >= 1, f"[{phase}] {domain} was probed {fresh} time(s) in the background during the attack")
        result(not wrong, f"[{phase}] healthy verdicts in every scrape: "
               + ", ".join(f"{d} {v}" for d, v in expect.items())
               + (f"; seen instead: {sorted(set(wrong))} (their reports: wrong-{phase}-DOMAIN.json "
                  f"next to the samples)" if wrong else ""))
        rss = [s["VmRSS"] for s in mine if "VmRSS" in s]
        fds = [s["fds"] for s in mine if "fds" in s]
        threads = [s["Threads"] for s in mine if "Threads" in s]
        gone = [s for s in mine if s.get("gone")]
        result(not gone, f"[{phase}] the exporter process stayed up")
        if rss:
            result(max(rss) < args.rss_limit_mib * 1024,
                   f"[{phase}] peak RSS {max(rss) / 1024:.1f} MiB < {args.rss_limit_mib} MiB "
                   f"(first {rss[0] / 1024:.1f}, last {rss[-1] / 1024:.1f})")
        if fds:
            limit = args.fd_limit_attack if phase == "attack" else args.fd_limit
            result(max(fds) < limit, f"[{phase}] peak open fds {max(fds)} < {limit} (last {fds[-1]})")
        if latencies and rss and fds:
            print(f"INFO: measured [{phase}] /metrics median {statistics.median(latencies) * 1000:.1f} ms, "
                  f"max {latencies[-1] * 1000:.1f} ms ({len(latencies)} scrapes); peak RSS {max(rss) / 1024:.1f} MiB; "
                  f"peak fds {max(fds)}; peak threads {max(threads) if threads else '?'}")
    return 0 if ok else 1


def get(exporter, user, password, path, timeout=10):
    host, port = split(exporter)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", path, headers={"Authorization": basic(user, password)})
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, body


def probed_since(args):
    """Exit 0 when every listed domain's latest background probe finished after --since."""
    status, body = get(args.exporter, args.user, args.password, "/metrics")
    times = probe_times(body) if status == 200 else {}
    late = [d for d in args.domains.split(",") if d and times.get(d, 0) <= args.since]
    if late:
        print("not yet probed again: " + ", ".join(late))
        return 1
    return 0


def flood_report(args):
    """PASS/FAIL lines from the two floods' summaries."""
    ok = True

    def result(passed, text):
        nonlocal ok
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}: {text}")

    probe = json.loads(open(args.probe).read().strip().splitlines()[-1])
    statuses = probe["status"]
    answered = sum(v for k, v in statuses.items() if k in ("200", "503"))
    other = {k: v for k, v in statuses.items() if k not in ("200", "503")}
    result(probe["most_in_flight"] >= 2000,
           f"probe flood: {probe['most_in_flight']} /probe requests in flight at once ({probe['sent']} sent)")
    result(statuses.get("200", 0) > 0, f"probe flood: {statuses.get('200', 0)} answered 200 with the target's metrics")
    result(not other, f"probe flood: every request answered 200 or 503 ({answered}), none failed"
           + (f"; other: {other}" if other else ""))
    auth = json.loads(open(args.auth).read().strip().splitlines()[-1])["status"]
    other = {k: v for k, v in auth.items() if k not in ("401", "429")}
    result(auth.get("429", 0) > 0, f"password flood: {auth.get('429', 0)} answered 429 at once (two bcrypt checks at a time)")
    result(auth.get("401", 0) > 0, f"password flood: {auth.get('401', 0)} checked and refused with 401")
    result(not other, "password flood: nothing but 401 and 429" + (f"; other: {other}" if other else ""))
    return 0 if ok else 1


def domains(args):
    """Checks the /domains/D JSON of every domain against the expected outcomes, steps and findings."""
    expected = json.load(open(args.expected))
    ok = True

    def result(passed, text):
        nonlocal ok
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}: [{args.phase}] {text}")

    for name, want in expected["domains"].items():
        path = os.path.join(args.dir, f"{name}.json")
        try:
            report = json.load(open(path))
        except (OSError, ValueError) as e:
            result(False, f"{name}: no JSON report ({e})")
            continue
        domain = f"{name}.hostile.test"
        outcome = report.get("outcome")
        result(outcome == want["outcome"], f"{domain}: outcome {outcome}, want {want['outcome']}")
        steps = {s["step"]: s for s in report.get("steps", [])}
        for step, status in want.get("steps", {}).items():
            allowed = status if isinstance(status, list) else [status]
            got = steps.get(step, {}).get("status")
            result(got in allowed, f"{domain}: step {step} {got}, want {' or '.join(allowed)}")
        codes = [f["code"] for f in report.get("findings", [])]
        for code in want.get("findings", []):
            result(code in codes, f"{domain}: finding {code} (findings: {', '.join(sorted(set(codes))) or 'none'})")
        for code in expected["never"]:
            result(code not in codes, f"{domain}: no finding {code}")
        slowest = max((s.get("duration_seconds", 0) for s in steps.values()), default=0)
        limit = args.step_timeout + args.margin
        result(slowest <= limit, f"{domain}: slowest step {slowest:.2f}s <= step_timeout + {args.margin:g}s")
        for key, check in want.get("facts", {}).items():
            value = fact(report, key)
            if "equals" in check:
                passed = value == check["equals"]
            else:
                passed = value is not None and check.get("min", value) <= value <= check.get("max", value)
            result(passed, f"{domain}: {key} = {value} ({check})")
    return 0 if ok else 1


def fact(report, key):
    """A number from the report: `srv.records`, `srv.published`, `lookup.STEP.addresses`,
    `lookup.STEP.published`, `lookup.STEP.cnames`."""
    parts = key.split(".")
    if parts[0] == "srv":
        srv = next((s.get("srv") for s in report.get("steps", []) if s.get("srv")), None)
        if srv is None:
            return None
        return len(srv.get("records", [])) if parts[1] == "records" else srv.get("records_published")
    if parts[0] == "lookup":
        step = next((s for s in report.get("steps", []) if s["step"] == parts[1]), None)
        lookup = step and step.get("hops") and step["hops"][0].get("lookup")
        if not lookup:
            return None
        return {"addresses": len(lookup.get("addresses", [])),
                "published": lookup.get("addresses_published"),
                "cnames": len(lookup.get("cname_chain", []))}[parts[2]]
    return None


def query_rate(args):
    """PASS when the simulated Microsoft 365 got at most --per-second queries a second over the
    run (the exporter spaces them; counted over the whole run, so arrival jitter cannot fail it)."""
    times = sorted(float(line.split()[0]) for line in open(args.log)
                   if "/autodiscover.json/" in line.lower())
    if len(times) < 2:
        print(f"FAIL: the simulated Microsoft 365 got {len(times)} queries")
        return 1
    span = times[-1] - times[0]
    allowed = args.per_second * span + 2
    passed = len(times) <= allowed
    print(f"{'PASS' if passed else 'FAIL'}: the simulated Microsoft 365 got {len(times)} queries in {span:.1f}s "
          f"({len(times) / span:.2f} a second; at most {args.per_second:g} a second allowed), "
          f"although the /probe flood named about {args.asked} new addresses")
    return 0 if passed else 1


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("probe-flood", "auth-flood", "sample"):
        a = sub.add_parser(name)
        a.add_argument("--exporter", required=True)
        a.add_argument("--user", required=True)
        a.add_argument("--password", required=True)
        a.add_argument("--duration", type=float, required=True)
        if name == "probe-flood":
            a.add_argument("--concurrency", type=int, default=2000)
            a.add_argument("--targets", required=True)
            a.add_argument("--scrape-timeout", type=float, default=10)
            a.add_argument("--ramp", type=float, default=1.0)
        elif name == "auth-flood":
            a.add_argument("--concurrency", type=int, default=16)
        else:
            a.add_argument("--pid", required=True)
            a.add_argument("--every", type=float, default=0.25)
            a.add_argument("--phase", required=True)
            a.add_argument("--out", required=True)
            a.add_argument("--expect", default="", help="domain=outcome,...: keep the report when wrong")
    a = sub.add_parser("probed-since")
    a.add_argument("--exporter", required=True)
    a.add_argument("--user", required=True)
    a.add_argument("--password", required=True)
    a.add_argument("--since", type=float, required=True)
    a.add_argument("--domains", required=True)
    a = sub.add_parser("flood-report")
    a.add_argument("--probe", required=True)
    a.add_argument("--auth", required=True)
    a = sub.add_parser("domains")
    a.add_argument("--expected", required=True)
    a.add_argument("--phase", required=True)
    a.add_argument("--dir", required=True)
    a.add_argument("--step-timeout", type=float, required=True)
    a.add_argument("--margin", type=float, default=3.0)
    a = sub.add_parser("query-rate")
    a.add_argument("--log", required=True)
    a.add_argument("--per-second", type=float, default=5)
    a.add_argument("--asked", default="?")
    a = sub.add_parser("report")
    a.add_argument("--samples", required=True)
    a.add_argument("--phases", required=True)
    a.add_argument("--expect", required=True, help="domain=outcome,...")
    a.add_argument("--min-samples", type=int, default=20)
    a.add_argument("--median-limit", type=float, default=0.1)
    a.add_argument("--max-limit", type=float, default=2.0)
    a.add_argument("--rss-limit-mib", type=float, default=200)
    a.add_argument("--fd-limit", type=int, default=256)
    a.add_argument("--fd-limit-attack", type=int, default=3000)
    args = parser.parse_args()
    raise_fd_limit()
    if args.command == "probe-flood":
        asyncio.run(probe_flood(args))
    elif args.command == "auth-flood":
        asyncio.run(auth_flood(args))
    elif args.command == "sample":
        sample(args)
    elif args.command == "probed-since":
        return probed_since(args)
    elif args.command == "flood-report":
        return flood_report(args)
    elif args.command == "domains":
        return domains(args)
    elif args.command == "query-rate":
        return query_rate(args)
    else:
        return report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
