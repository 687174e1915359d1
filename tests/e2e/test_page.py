"""The web page in a real browser (headless Chromium): an agent finds
"Annecy", sees the Grand Annecy's population equal to the API's, its
charging-point objective at its scale, and sees the population change within
2 s of a correction pushed through the ingestor, without reloading. A
screenshot of the page is left in the test's folder."""

from __future__ import annotations

import random
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import Select, WebDriverWait

from common.referential import load
from tests.e2e.stack import Stack, eventually, get_json, push_values

IND = "population"
# A year of its own, the latest the API takes: the page shows the latest year,
# and no other test of the session pushes it.
YEAR = 2100
GRAND_ANNECY = "200066793"
MEMBERS = sorted(c.code for c in load().communes.values() if c.epci == GRAND_ANNECY)
SOURCES_DU_LAC = "247400773"  # another EPCI with charging points, fewer
OTHERS = sorted(c.code for c in load().communes.values() if c.epci == SOURCES_DU_LAC)
# The test catalogue's objective: 400,000 charging points in 2030, by population.
OBJECTIVE = Decimal(400_000) * sum(load().communes[c].population or 0 for c in MEMBERS)
OBJECTIVE /= sum(c.population or 0 for c in load().communes.values())


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are missing: `make test` installs them")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1600")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports too
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    yield chrome
    chrome.quit()


def api_value(stack: Stack, indicateur: str = IND) -> Decimal | None:
    query = f"/indicateurs?epci={GRAND_ANNECY}&indicateur={indicateur}&annee={YEAR}&exact=true"
    rows = get_json(stack.url("api", query))
    return Decimal(rows[0]["valeur"]) if rows else None


def french(number: Decimal) -> str:
    """As Intl.NumberFormat('fr-FR') writes an integer: narrow no-break spaces."""
    return f"{int(number):,}".replace(",", "\u202f")


def test_an_agent_finds_annecy_and_sees_a_correction_live(
    stack: Stack, browser: WebDriver, tmp_path: Path
) -> None:
    values = {code: 1000 + i for i, code in enumerate(MEMBERS)}
    push_values(stack, "nb_pdc", dict.fromkeys(MEMBERS, 10), 1, YEAR)
    push_values(stack, "nb_pdc", dict.fromkeys(OTHERS, 1), 1, YEAR)
    push_values(stack, IND, values, 1, YEAR)
    total = Decimal(sum(values.values()))
    eventually(lambda: api_value(stack) == total, 60, "the Grand Annecy's value served")
    eventually(lambda: api_value(stack, "nb_pdc") == 10 * len(MEMBERS), 60, "nb_pdc served")

    browser.get(stack.url("api", "/"))
    wait = WebDriverWait(browser, 20)
    search = wait.until(shown.element_to_be_clickable((By.ID, "q")))
    search.send_keys("Annecy\n")
    result = wait.until(
        shown.element_to_be_clickable(
            (By.XPATH, "//ul[@id='resultats']//button[contains(., 'Grand Annecy')]")
        )
    )
    result.click()
    cell = (By.CSS_SELECTOR, f"tr[data-cle='{IND}|total'] td.valeur")
    wait.until(shown.text_to_be_present_in_element(cell, french(total)))
    assert "CA du Grand Annecy" in browser.find_element(By.ID, "titre").text
    # The edition of the map the values are served on.
    caption = browser.find_element(By.CSS_SELECTOR, "#indicateurs caption").text
    assert caption.endswith("sur la carte du COG 2026"), caption
    links = {
        name: browser.find_element(By.ID, name).get_attribute("href")
        for name in ("csv", "csv-large", "parquet")
    }
    assert links["csv"].endswith("format=csv-fr")
    assert links["csv-large"].endswith("format=csv-fr&forme=large")
    assert links["parquet"].endswith("format=parquet")
    for link in links.values():  # each one downloads
        assert urllib.request.urlopen(link, timeout=30).status == 200
    # The objective at the Grand Annecy's scale, its value, and not reached.
    objective = (By.CSS_SELECTOR, "#objectifs tr[data-indicateur='nb_pdc'] td.objectif")
    wait.until(shown.text_to_be_present_in_element(objective, french(OBJECTIVE)))
    row = browser.find_element(By.CSS_SELECTOR, "#objectifs tr[data-indicateur='nb_pdc']").text
    assert f"{french(Decimal(10 * len(MEMBERS)))} u ({YEAR})" in row
    reached = browser.find_element(
        By.CSS_SELECTOR, "#objectifs tr[data-indicateur='nb_pdc'] .atteint"
    )
    assert reached.text == "non"
    # No baseline for it in the catalogue: no position on a path, and why.
    path = browser.find_element(
        By.CSS_SELECTOR, "#objectifs tr[data-indicateur='nb_pdc'] .trajectoire"
    )
    assert path.text == "—"
    assert path.get_attribute("title") == "pas d’année de référence dans le catalogue"
    # co2's path (2,000,000 in 2020 to 1,000,000 in 2030, by population):
    # in 2100 the target itself, far above 1 a commune; lower is better.
    push_values(stack, "co2", dict.fromkeys(MEMBERS, 1), 1, YEAR)
    eventually(lambda: api_value(stack, "co2") == len(MEMBERS), 60, "co2 served")

    def co2() -> list[str] | None:  # read at once: the table is redrawn on each change
        return browser.execute_script(
            "const c = document.querySelector("
            "\"#objectifs tr[data-indicateur='co2'] .trajectoire\");"
            "return c && [c.dataset.position, c.textContent, c.title];"
        )

    wait.until(lambda b: (co2() or [None])[0] == "en_avance")
    _, text, title = co2() or ["", "", ""]
    assert text.startswith("en avance (−") and f"Attendu en {YEAR}" in title
    # Its rank among the EPCI with charging points that year: first of two.
    rank = "#rangs tr[data-indicateur='nb_pdc']"
    wait.until(shown.text_to_be_present_in_element((By.CSS_SELECTOR, f"{rank} .rang"), "1 sur 2"))
    better = browser.find_element(By.CSS_SELECTOR, f"{rank} .mieux").text
    assert better.replace("\xa0", " ").replace("\u202f", " ") == "100 % des EPCI"

    corrected = {MEMBERS[0]: values[MEMBERS[0]] + 500}
    push_values(stack, IND, corrected, 2, YEAR)
    pushed = time.monotonic()
    WebDriverWait(browser, 2, poll_frequency=0.05).until(
        shown.text_to_be_present_in_element(cell, french(total + 500))
    )
    seconds = time.monotonic() - pushed
    parent = (By.CSS_SELECTOR, f"tr[data-cle='{IND}|total'] td:last-child")
    wait.until(shown.text_to_be_present_in_element(parent, french(total + 500)))  # Haute-Savoie
    assert api_value(stack) == total + 500 and seconds < 2
    print(f"the page changed {seconds:.2f} s after the correction's 202")  # pytest -s
    browser.save_screenshot(str(tmp_path / "page.png"))
    console = browser.get_log("browser")
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert all("favicon.ico" in e["message"] for e in errors), errors
    # The page works under its Content-Security-Policy (issue #30): nothing refused.
    assert not [e for e in console if "Content Security Policy" in e["message"]], console


def test_a_territory_has_an_address_that_opens_it(stack: Stack, browser: WebDriver) -> None:
    """Opened directly, titled for a link preview by the server itself, one
    history step a territory, the indicator by member in the address too."""
    push_values(stack, "nb_pdc", dict.fromkeys(MEMBERS, 10), 1, YEAR)
    eventually(lambda: api_value(stack, "nb_pdc") is not None, 60, "nb_pdc served")
    address = stack.url("api", f"/?niveau=epci&code={GRAND_ANNECY}")
    served = urllib.request.urlopen(address, timeout=30).read().decode()
    assert "<title>CA du Grand Annecy (EPCI) — Indicateurs" in served
    assert '<meta property="og:title" content="CA du Grand Annecy (EPCI)' in served
    with pytest.raises(urllib.error.HTTPError) as nowhere:
        urllib.request.urlopen(stack.url("api", "/?niveau=epci&code=999999999"), timeout=30)
    assert nowhere.value.code == 404

    browser.get(address)
    wait = WebDriverWait(browser, 20)
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "CA du Grand Annecy"))
    assert browser.title.startswith("CA du Grand Annecy (EPCI)")
    choice = wait.until(shown.visibility_of_element_located((By.ID, "indicateur-membres")))
    chosen = next(o for o in choice.find_elements(By.TAG_NAME, "option") if not o.is_selected())
    wanted = chosen.get_attribute("value")
    chosen.click()
    wait.until(lambda b: f"indicateur={wanted}" in b.current_url)
    # The address with the indicator opens on it.
    browser.get(browser.current_url)
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "CA du Grand Annecy"))
    wait.until(
        lambda b: b.find_element(By.ID, "indicateur-membres").get_attribute("value") == wanted
    )
    # Another territory, then back: each one a step of the history.
    search = browser.find_element(By.ID, "q")
    search.clear()
    search.send_keys("Haute-Savoie\n")
    found = (By.XPATH, "//ul[@id='resultats']//button[contains(., 'département, 74')]")
    wait.until(shown.element_to_be_clickable(found)).click()
    wait.until(lambda b: "niveau=departement" in b.current_url and "code=74" in b.current_url)
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "Haute-Savoie"))
    browser.back()
    wait.until(lambda b: f"code={GRAND_ANNECY}" in b.current_url)
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "CA du Grand Annecy"))


def test_each_series_is_drawn_beside_its_parents_with_the_apis_values(
    stack: Stack, browser: WebDriver, tmp_path: Path
) -> None:
    """Seven years of the Grand Annecy's population, random: its chart holds
    the sums pushed for each year, equal to the API's, and its parent's (the
    Haute-Savoie) beside them."""
    rng = random.Random(YEAR)
    years = range(YEAR - 6, YEAR)
    pushed = {y: {code: rng.randint(0, 10**6) for code in MEMBERS} for y in years}
    for year, values in pushed.items():
        push_values(stack, IND, values, 1, year)
    push_values(stack, IND, pushed[YEAR - 1], 1, YEAR)  # kept only where no newer version is
    eventually(lambda: api_value(stack) is not None, 60, "the year served")

    def api(area: str) -> dict[int, str]:
        rows = get_json(
            stack.url("api", f"/indicateurs?{area}&indicateur={IND}&annee_min={YEAR - 6}")
        )
        return {r["annee"]: f"{french(Decimal(str(r['valeur'])))} {r['unite']}" for r in rows}

    eventually(lambda: set(api(f"epci={GRAND_ANNECY}")) == {*years, YEAR}, 60, "every year")
    territory, parent = api(f"epci={GRAND_ANNECY}"), api("departement=74")
    assert set(parent) == set(territory)
    for year in years:  # the stored values, summed here
        assert territory[year].rsplit(" ", 1)[0] == french(Decimal(sum(pushed[year].values())))
    browser.get(stack.url("api", f"/?niveau=epci&code={GRAND_ANNECY}"))
    wait = WebDriverWait(browser, 20)
    table = (By.CSS_SELECTOR, f"figure[data-cle='{IND}|total'] table.serie")
    wait.until(shown.presence_of_element_located(table))

    def drawn() -> dict[int, tuple[str, str]]:
        rows = browser.find_elements(
            By.CSS_SELECTOR, f"figure[data-cle='{IND}|total'] tr[data-annee]"
        )
        return {
            int(r.get_attribute("data-annee")): tuple(
                c.get_attribute("textContent") for c in r.find_elements(By.TAG_NAME, "td")[1:]
            )
            for r in rows
        }

    wanted = {year: (territory[year], parent[year]) for year in territory}
    assert {y: d for y, d in drawn().items() if y in wanted} == wanted
    figure = browser.find_element(By.CSS_SELECTOR, f"figure[data-cle='{IND}|total']")
    assert figure.find_elements(By.TAG_NAME, "canvas")  # the chart itself
    browser.execute_script("arguments[0].scrollIntoView()", figure)
    figure.screenshot(str(tmp_path / "series.png"))


def test_a_ratio_says_when_it_divided_by_an_earlier_years_population(
    stack: Stack, browser: WebDriver
) -> None:
    """co2_par_hab_repli (tests/catalogue.toml) divides by a population of up
    to two years before: a commune with none in its year says which one."""
    commune, year = "64001", 2099  # no other test pushes them
    push_values(stack, "pop", {commune: 400}, 1, year - 2)
    push_values(stack, "co2", {commune: 10}, 1, year)
    query = f"/indicateurs?commune={commune}&indicateur=co2_par_hab_repli&annee={year}"
    [row] = eventually(lambda: get_json(stack.url("api", query)), 60, "the ratio served")
    assert (row["valeur"], row["annee_denominateur"], row["communes_repli"]) == (25, year - 2, 1)
    browser.get(stack.url("api", f"/?niveau=commune&code={commune}"))
    cell = (By.CSS_SELECTOR, "tr[data-cle='co2_par_hab_repli|total'] td.valeur")
    WebDriverWait(browser, 20).until(
        shown.text_to_be_present_in_element(cell, f"(dénominateur de {year - 2})")
    )
    assert browser.find_element(*cell).text.startswith("25")


# The map's test: charging points in one commune of each of a dozen
# départements, in a year no other test pushes.
MAP_YEAR = 2097
MAP_DEPARTEMENTS = ["01", "13", "2A", "29", "33", "59", "67", "69", "74", "75", "971", "974"]
CLASSES = ["#dee5f7", "#a9bbeb", "#7490db", "#3f5ec4", "#000091"]


def first_commune(departement: str) -> str:
    return min(c.code for c in load().communes.values() if c.departement == departement)


def quantile_class(value: Decimal, values: list[Decimal]) -> int:
    """The documented rule, computed here: breaks at each fifth of the sorted
    values; a value's class is the number of breaks at or below it."""
    ordered = sorted(values)
    breaks = [ordered[i * len(ordered) // 5] for i in range(1, 5)]
    return sum(value >= b for b in breaks)


def test_the_map_colours_each_departement_by_the_apis_value_and_follows_changes(
    stack: Stack, browser: WebDriver, tmp_path: Path
) -> None:
    """Opened on a département's address, the map holds the API's value for
    every département, coloured by its quantile class, the others hatched as
    missing; a correction recolours it live; a click opens the territory."""
    communes = {d: first_commune(d) for d in MAP_DEPARTEMENTS}
    values = {communes[d]: 10 * (i + 1) ** 2 for i, d in enumerate(MAP_DEPARTEMENTS)}
    push_values(stack, "nb_pdc", values, 1, MAP_YEAR)
    query = f"/indicateurs?niveau=departement&indicateur=nb_pdc&annee={MAP_YEAR}&exact=true"

    def served() -> dict[str, Decimal]:
        return {r["code"]: Decimal(r["valeur"]) for r in get_json(stack.url("api", query))}

    eventually(lambda: set(served()) == set(MAP_DEPARTEMENTS), 60, "every département served")
    browser.get(stack.url("api", "/?niveau=departement&code=74&indicateur=nb_pdc"))
    wait = WebDriverWait(browser, 20)
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "Haute-Savoie"))
    wait.until(
        lambda b: b.find_element(By.ID, "carte-indicateur").get_attribute("value") == "nb_pdc"
    )
    # One commune of the Haute-Savoie reported: not ranked, and said in French.
    ranks = browser.find_element(By.ID, "rangs").text
    assert "ont répondu" in ranks and "reported" not in ranks, ranks
    years = (By.CSS_SELECTOR, f"#carte-annee option[value='{MAP_YEAR}']")
    wait.until(shown.presence_of_element_located(years))
    Select(browser.find_element(By.ID, "carte-annee")).select_by_value(str(MAP_YEAR))
    # The indicator and year chosen are in the address.
    wait.until(lambda b: f"indicateur=nb_pdc&annee={MAP_YEAR}" in b.current_url)

    def drawn() -> dict[str, tuple[str, str, str]]:
        shapes = browser.execute_script(
            "return [...document.querySelectorAll('#carte path[data-code]')].map(p =>"
            " [p.dataset.code, p.dataset.valeur, p.dataset.classe, p.getAttribute('fill')])"
        )
        return {code: (value, klass, fill) for code, value, klass, fill in shapes}

    def expected(api: dict[str, Decimal], codes: set[str]) -> dict[str, tuple[str, str, str]]:
        missing = ("", "manquante", "url(#carte-hachures)")
        classes = {code: quantile_class(v, list(api.values())) for code, v in api.items()}
        return {
            code: (str(api[code]), str(classes[code]), CLASSES[classes[code]])
            if code in api
            else missing
            for code in codes
        }

    wait.until(lambda b: len(drawn()) == 101)  # the overseas collectivités have no shape
    codes = set(drawn())
    assert codes <= set(load().departements) and set(MAP_DEPARTEMENTS) <= codes
    wait.until(lambda b: drawn() == expected(served(), codes))
    # Paris and its first ring twice, the second enlarged, each pair alike.
    for code in ("75", "92", "93", "94"):
        pair = browser.find_elements(By.CSS_SELECTOR, f"#carte path[data-code='{code}']")
        assert len(pair) == 2 and len({p.get_attribute("fill") for p in pair}) == 1
    assert "ici" in browser.find_element(
        By.CSS_SELECTOR, "#carte path[data-code='74']"
    ).get_attribute("class")
    legend = browser.find_element(By.ID, "carte-legende").text
    assert "pas de valeur" in legend and "(3)" in legend  # 12 values, about 3 a class
    browser.find_element(By.ID, "bloc-carte").screenshot(str(tmp_path / "map.png"))
    # Hover (or keyboard focus) reads a shape's name and value.
    gironde = browser.find_element(By.CSS_SELECTOR, "#carte path[data-code='33']")
    ActionChains(browser).move_to_element(gironde).perform()
    wait.until(shown.text_to_be_present_in_element((By.ID, "carte-survol"), "Gironde : 250 u"))
    browser.execute_script("document.querySelector(\"#carte path[data-code='40']\").focus()")
    wait.until(
        shown.text_to_be_present_in_element((By.ID, "carte-survol"), "Landes : pas de valeur")
    )

    # A correction recolours the map without reloading.
    push_values(stack, "nb_pdc", {communes["74"]: 5000}, 2, MAP_YEAR)
    eventually(lambda: served()["74"] == 5000, 60, "the correction served")
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda b: drawn() == expected(served(), codes)
    )
    assert drawn()["74"][1] == "4"

    # The régions: the Auvergne-Rhône-Alpes (01, 69, 74) outlined, each
    # région holding the API's value for it, the others hatched.
    Select(browser.find_element(By.ID, "carte-niveau")).select_by_value("region")
    regions_query = query.replace("niveau=departement", "niveau=region")
    by_region = {r["code"]: Decimal(r["valeur"]) for r in get_json(stack.url("api", regions_query))}
    assert len(by_region) == 10  # the twelve départements lie in ten régions
    wait.until(lambda b: len(drawn()) == 18)
    region_codes = set(drawn())
    assert region_codes == {r for r in load().regions if len(r) == 2}  # not the collectivités
    wait.until(lambda b: drawn() == expected(by_region, region_codes))
    outlined = browser.find_element(By.CSS_SELECTOR, "#carte path.ici").get_attribute("data-code")
    assert outlined == "84"
    Select(browser.find_element(By.ID, "carte-niveau")).select_by_value("departement")
    wait.until(lambda b: len(drawn()) == 101)

    # The address opens on the indicator and year chosen.
    browser.get(browser.current_url)
    wait.until(
        lambda b: b.find_element(By.ID, "carte-annee").get_attribute("value") == str(MAP_YEAR)
    )
    assert browser.find_element(By.ID, "carte-indicateur").get_attribute("value") == "nb_pdc"
    wait.until(lambda b: drawn() == expected(served(), codes))

    # A click on a shape opens its territory.
    browser.execute_script(
        "document.querySelector(\"#carte path[data-code='33']\")"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    )
    wait.until(shown.text_to_be_present_in_element((By.ID, "titre"), "Gironde"))
    assert "code=33" in browser.current_url


def test_pages_in_hidden_tabs_leave_their_connections_to_the_shown_one(
    stack: Stack, browser: WebDriver
) -> None:
    """Three streams a page (its territory, its parent, the map), and six
    connections a server for a browser over HTTP/1.1: a page hidden closes
    its streams, or the third tab would wait forever; shown again, it
    follows its territory again."""
    push_values(stack, "nb_pdc", {first_commune("74"): 3}, 1, MAP_YEAR - 1)
    query = f"/indicateurs?departement=74&indicateur=nb_pdc&annee={MAP_YEAR - 1}"
    eventually(lambda: get_json(stack.url("api", query)), 60, "the Haute-Savoie's value")
    address = stack.url("api", "/?niveau=departement&code=74&indicateur=nb_pdc")
    coloured = "return [...document.querySelectorAll('#carte path')].some(p => p.dataset.valeur)"
    first = browser.current_window_handle
    for _ in range(3):
        browser.switch_to.new_window("tab")
        browser.get(address)
        WebDriverWait(browser, 20).until(lambda b: b.execute_script(coloured))
        assert browser.execute_script("return document.visibilityState") == "visible"
    tabs = [h for h in browser.window_handles if h != first]
    browser.switch_to.window(tabs[0])
    assert browser.execute_script("return document.visibilityState") == "visible"
    WebDriverWait(browser, 20).until(lambda b: b.execute_script(coloured))
    for tab in tabs:
        browser.switch_to.window(tab)
        browser.close()
    browser.switch_to.window(first)
