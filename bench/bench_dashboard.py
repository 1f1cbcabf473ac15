"""Dashboard benchmark: the morning view's time to first render and transfer size, and the
signal view's response time for a 10-h window, on loopback.

The store is the browser tests' (`tests/dashboard_world.py`): a demo-like two-leg 50 Hz night
of 10 h as the latest of 14 analysed nights. `limbwatch serve` runs in its own process;
Debian's chromium-headless-shell (driven by Playwright through `executable_path`) loads the
morning view with a cold cache (a fresh profile per run) and then once more warm (cached
files revalidated). From Chromium's performance timeline: first contentful paint, the page's
own mark once the sentence, flags and charts are drawn (`lw-rendered`), and the bytes on the
wire (Resource and Navigation Timing transferSize, headers included). The signal view's
request (`/nights/{id}/signal` over the whole 10-h night, min/max buckets) is timed with httpx
at 1000 points (about one per pixel of a desktop plot) and at the cap of 5000."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dashboard_world import build_dashboard_world
from serving import served

CHROMIUM = os.environ.get("LIMBWATCH_CHROMIUM", "/usr/bin/chromium-headless-shell")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMING_JS = """() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const sum = (key) => nav[key] + res.reduce((s, r) => s + r[key], 0);
  return { fcp: paint ? paint.startTime : null,
           rendered: performance.getEntriesByName("lw-rendered")[0].startTime,
           transfer: sum("transferSize"), encoded: sum("encodedBodySize"),
           decoded: sum("decodedBodySize"), requests: res.length + 1,
           api: res.filter((r) => r.name.includes("/api/v1/"))
                   .reduce((s, r) => s + r.transferSize, 0) };
}"""


def morning(browser: Browser, base: str, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cold, warm) timings of one fresh browser context."""
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        context.request.post(f"{base}/api/v1/session", data={"token": token})
        page = context.new_page()
        got = []
        for _ in range(2):
            page.goto(f"{base}/")
            page.wait_for_selector("body[data-ready='1']", state="attached")
            got.append(page.evaluate(TIMING_JS))
        return got[0], got[1]
    finally:
        context.close()


def signal_ms(base: str, token: str, night: int, points: int, runs: int) -> list[float]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        times = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            answer = client.get(f"/api/v1/nights/{night}/signal",
                                params={"side": "left", "points": points})
            answer.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        return times[1:]  # the first warms the store's page cache


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="cold page loads (default 5)")
    p.add_argument("--signal-runs", type=int, default=20, help="(default 20)")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="limbwatch-bench-dash-"))
    started = time.perf_counter()
    world = build_dashboard_world(folder / "limbwatch.db", hours=10.0)
    print(f"store: 10-h demo-like night + 13 earlier nights, built in "
          f"{time.perf_counter() - started:.0f} s")
    token = world.tokens["caregiver"]
    try:
        with served(world.path) as base:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                loads = [morning(browser, base, token) for _ in range(args.runs)]
                browser.close()
            for label, pick in (("cold", 0), ("warm", 1)):
                rows = [load[pick] for load in loads]
                fcp = statistics.median(r["fcp"] for r in rows)
                done = statistics.median(r["rendered"] for r in rows)
                last = rows[-1]
                print(f"morning view {label}: first contentful paint {fcp:.0f} ms, rendered "
                      f"{done:.0f} ms (median of {len(rows)}); {last['requests']} requests, "
                      f"{last['transfer'] / 1024:.1f} kB transferred ({last['api'] / 1024:.1f} kB "
                      f"of API JSON), {last['decoded'] / 1024:.1f} kB decoded")
            for points in (1000, 5000):
                times = sorted(signal_ms(base, token, world.night, points, args.signal_runs))
                print(f"signal, 10-h window, {points} points: median "
                      f"{statistics.median(times):.1f} ms, p95 "
                      f"{times[int(0.95 * (len(times) - 1))]:.1f} ms ({len(times)} requests)")
    finally:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
