"""Regenerate ``docs/page.png``: the page of a département on the demo data,
its table and its map, as headless Chromium shows it (``make capture``).

It starts ``itte up`` (the embedded servers and the demo), waits until every
demo row is counted at France's level, opens the page's address, waits for
the map's colours, saves the first screen (1280 × 1500) and stops ``itte up``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from itte.demo import HISTORY, YEAR  # noqa: E402

API = "http://127.0.0.1:8000"
ADDRESS = "/?niveau=departement&code=33&indicateur=points_recharge_synthetique"
OUT = ROOT / "docs" / "page.png"


def france() -> list[tuple[str, int, int]]:
    url = f"{API}/indicateurs?niveau=france&limit=10000"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            rows = json.load(answer)
    except OSError:
        return []
    return sorted((r["indicateur"], r["annee"], r["communes_renseignees"]) for r in rows)


def wait_for_the_demo(limit: float = 900) -> None:
    """Until France has every year of the demo and its rows stop moving for
    20 s: the demo files are in."""
    years = {YEAR, *HISTORY}
    wanted = {(i, y) for i in ("population", "points_recharge_synthetique") for y in years}
    deadline, last, still = time.monotonic() + limit, None, 0.0
    while time.monotonic() < deadline:
        now = france()
        complete = wanted <= {(i, y) for i, y, _ in now}
        still = still + 2 if complete and now == last else 0
        if still >= 20:
            return
        last = now
        time.sleep(2)
    raise SystemExit("the demo was not in after 15 minutes")


def capture() -> None:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1500")
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        browser.get(API + ADDRESS)
        WebDriverWait(browser, 60).until(
            lambda b: (
                b.execute_script(
                    "return [...document.querySelectorAll('#carte path')]"
                    ".filter(p => p.dataset.valeur).length"
                )
                > 90
            )
        )
        time.sleep(1)  # the highlight fades
        browser.save_screenshot(str(OUT))
    finally:
        browser.quit()


def main() -> None:
    up = subprocess.Popen([str(Path(sys.executable).parent / "itte"), "up"], cwd=ROOT)
    try:
        wait_for_the_demo()
        capture()
        print(f"wrote {OUT.relative_to(ROOT)}")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)


if __name__ == "__main__":
    main()
