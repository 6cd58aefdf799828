#!/usr/bin/env python3
"""Browser checks of the exporter's status and domain pages: Debian's headless Chromium, driven
over the DevTools protocol (python3-websocket), at a desktop (1400x900) and a phone (390x844)
viewport.

    browser.py --url http://127.0.0.1:10195 --out DIR --changed DOMAIN --customer NAME

Checks: no horizontal overflow (document.documentElement.scrollWidth <= innerWidth) on the
status page, a filtered status page and a domain page, at both sizes; the verdict and label
filters (query parameters, submitted through the page's own form) and the auto-refresh keeping
them; the domain page's step tree, findings and timeline (the change made mid-run: DOMAIN lost
its SRV record when its name servers changed); "Probe now" probing and coming back to the page.
Screenshots go to DIR. Prints one PASS/FAIL line per check; exit status 1 on any failure.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import websocket  # Debian: python3-websocket

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
VIEWPORTS = [("desktop", 1400, 900), ("phone", 390, 844)]

failures = 0


def report(ok, what, detail=""):
    global failures
    if ok:
        print(f"PASS: [browser] {what}")
    else:
        failures += 1
        print(f"FAIL: [browser] {what}" + (f" -- {detail}" if detail else ""))
    sys.stdout.flush()


class Browser:
    """One headless Chromium and one page, over the DevTools protocol."""

    def __init__(self, binary, profile):
        self.profile = profile
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or len(open(port_file).read().split("\n")) < 2:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = open(port_file).read().split("\n")[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30)
        self.next_id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def call(self, method, session=False, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.time() + 30
        while time.time() < deadline:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)
        raise RuntimeError(f"{method}: no answer")

    def wait_load(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for event in self.events:
                if event.get("method") == "Page.loadEventFired":
                    self.events.clear()
                    return
            self.events.clear()
            try:
                self.ws.settimeout(max(0.1, deadline - time.time()))
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
            finally:
                self.ws.settimeout(30)
        raise RuntimeError("the page did not finish loading")

    def viewport(self, width, height):
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def open(self, url):
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_load()

    def eval(self, expression):
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def act(self, expression):
        """Runs an action that navigates (a form submission) and waits for the new page."""
        self.events.clear()
        self.eval(expression)
        self.wait_load(timeout=60)

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics", session=True)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        data = self.call("Page.captureScreenshot", session=True, **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
ROWS = "Array.from(document.querySelectorAll('table.domains tbody tr'))"


def overflow_check(b, label, size):
    widths = b.eval("[document.documentElement.scrollWidth, window.innerWidth]")
    report(b.eval(NO_OVERFLOW), f"{label} at {size}: no horizontal scrolling (scrollWidth {widths[0]} <= {widths[1]})",
           f"scrollWidth {widths[0]} > innerWidth {widths[1]}")


def run(args):
    base = args.url.rstrip("/")
    changed = args.changed
    os.makedirs(args.out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=args.profile_dir)
    b = Browser(args.chromium, profile)
    try:
        for name, width, height in VIEWPORTS:
            size = f"{width}x{height}"
            b.viewport(width, height)
            b.open(f"{base}/")
            overflow_check(b, "status page", size)
            b.screenshot(os.path.join(args.out, f"status-{name}.png"))
            if name == "desktop":
                # The page's own <style> block applies under its Content-Security-Policy (a hash).
                report(b.eval("getComputedStyle(document.body).maxWidth") == "1500px",
                       "the status page's style applies under its Content-Security-Policy")
            rows = b.eval(f"{ROWS}.length")
            report(rows > 0, f"status page at {size} lists domains ({rows})")
            verdicts = b.eval(f"{ROWS}.map(r => r.querySelector('.v').textContent)")
            order = ["probe_error", "certificate_prompt", "not_found", "redirect_prompt", "ok", "pending"]
            ranks = [order.index(v) for v in verdicts if v in order]
            report(ranks == sorted(ranks), f"status page at {size}: worst verdict first", f"{verdicts}")
            b.open(f"{base}/domains/{urllib.parse.quote(changed)}")
            overflow_check(b, f"domain page of {changed}", size)
            b.screenshot(os.path.join(args.out, f"domain-{name}.png"), full_page=True)

        b.viewport(1400, 900)
        # The verdict filter, chosen in the page's own form and submitted (no script on the page).
        b.open(f"{base}/")
        verdict = args.changed_verdict
        b.act(f"document.querySelector('select[name=verdict]').value = {json.dumps(verdict)};"
              "document.querySelector('form.filters').submit()")
        url = b.eval("location.href")
        verdicts = b.eval(f"{ROWS}.map(r => r.querySelector('.v').textContent)")
        report(f"verdict={verdict}" in url and verdicts and set(verdicts) == {verdict},
               f"verdict filter through the form shows only {verdict} ({len(verdicts)} domains)", f"{url} {verdicts}")
        report(changed in b.eval("document.body.innerText"),
               f"{changed} (SRV record lost mid-run) is among the {verdict} domains")
        refresh = b.eval("document.querySelector('meta[http-equiv=refresh]').content")
        report(f"verdict={verdict}" in refresh, "the auto-refresh keeps the verdict filter", refresh)

        # A label filter (customer), combined with the search box.
        b.open(f"{base}/")
        b.act(f"document.querySelector('select[name=customer]').value = {json.dumps(args.customer)};"
              "document.querySelector('form.filters').submit()")
        chips = b.eval(f"{ROWS}.map(r => Array.from(r.querySelectorAll('.chip')).map(c => c.textContent))")
        report(chips and all(args.customer in c for c in chips),
               f"customer filter shows only {args.customer}'s domains ({len(chips)})", f"{chips}")
        refresh = b.eval("document.querySelector('meta[http-equiv=refresh]').content")
        report("customer=" in refresh, "the auto-refresh keeps the customer filter", refresh)
        b.viewport(390, 844)
        b.open(b.eval("location.href"))
        overflow_check(b, "filtered status page", "390x844")
        b.screenshot(os.path.join(args.out, "status-filtered-phone.png"))
        b.viewport(1400, 900)

        # The domain page: the tree, the findings, the timeline of the change made mid-run.
        b.open(f"{base}/domains/{urllib.parse.quote(changed)}")
        text = b.eval("document.body.innerText")
        details = b.eval("document.querySelectorAll('details').length")
        report(details >= 5, f"domain page shows the steps as a tree ({details} <details>)")
        report(b.eval("document.querySelectorAll('.tree > details > summary .i').length") >= 5,
               "each step has a ✓/⚠/✗ mark")
        for needle in ["NS changed from", "SRV record lost", f"verdict redirect_prompt → {verdict}",
                       "regressed_after_delegation_change"]:
            report(needle in text, f"domain page of {changed} shows {needle!r}")
        report(text.count("How to fix") == 1, "findings are listed once")
        # Expanding an address shows its facts (certificates, HTTP).
        b.eval("document.querySelectorAll('details').forEach(d => d.open = true)")
        report("HTTP" in b.eval("document.body.innerText") or "DNS" in b.eval("document.body.innerText"),
               "expanded steps show their DNS, TLS and HTTP facts")

        # Probe now: the form posts, the exporter probes, the browser lands on the page again.
        before = b.eval("document.body.innerText.match(/\\((\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) UTC\\)/)[1]")
        time.sleep(1.1)
        b.act("document.querySelector('form[action$=\"/probe\"] button').click()")
        url = b.eval("location.href")
        after = b.eval("document.body.innerText.match(/\\((\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) UTC\\)/)[1]")
        report(url.rstrip("/").endswith(f"/domains/{urllib.parse.quote(changed)}") and after > before,
               f"probe now probes and comes back to the page (probed {before} -> {after})", url)
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--changed", required=True, help="the domain whose DNS changed mid-run")
    parser.add_argument("--changed-verdict", default="not_found", help="its verdict after the change")
    parser.add_argument("--customer", required=True, help="a customer label value to filter by")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--profile-dir", default=None, help="where the fresh --user-data-dir goes")
    args = parser.parse_args()
    try:
        run(args)
    except Exception as error:  # a broken browser run is a failed check, not a traceback
        report(False, "browser run", f"{type(error).__name__}: {error}")
    print(f"[browser] {failures} failed check(s)" if failures else "[browser] every check passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
