"""The HTML report of a results store: offline, escaped, sortable, readable at 1280 and 390 px.

The store holds a real adversarial ↔ knowledge study on tiny models, surrogate and
robust-transfer results with realistic small values (their studies take minutes), a future
result type and some intermediate jobs. The browser tests use Debian's chromium and
chromedriver through Selenium (never a downloaded browser) and skip when they are missing.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from transferability._results import Result
from transferability.attacks import AttackSpec
from transferability.data import ImageDataset
from transferability.html_report import page, render_report, section_id, sections, write_report
from transferability.jobs import Job, ResultStore, job_kind, list_job_kinds
from transferability.models import create_model
from transferability.studies import list_studies
from transferability.studies.adv_knowledge import adv_knowledge_study
from transferability.studies.robust_transfer import RobustTransferResult
from transferability.studies.robust_transfer import _claims as robust_claims
from transferability.studies.robust_transfer import _summary as robust_summary
from transferability.studies.surrogates import SurrogateStudyResult
from transferability.studies.surrogates import _claims as surrogate_claims
from transferability.studies.surrogates import _summary as surrogate_summary
from transferability.training import fit
from transferability.transfer_matrix import TransferMatrix

EVIL = "<script>alert(1)</script>"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _never_run(config, inputs):  # the test's job kinds: results are put, never computed
    raise AssertionError("not run in this test")


for _kind in ("features", "study", "surrogates", "robust", "benchmark"):
    job_kind(f"test_report_{_kind}")(_never_run)


def _kind(real: str, stand_in: str) -> str:
    """The library's job kind for a study where it has one, else this test's."""
    return real if real in list_job_kinds() else f"test_report_{stand_in}"


# ---- results ----------------------------------------------------------------------------

def _bands(seed: int) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(4).repeat(20)
    x = torch.rand(80, 1, 28, 28, generator=g) * 0.3
    for c in range(4):
        x[y == c, :, 7 * c:7 * c + 7, :] += 0.6
    return ImageDataset(x.clamp(0, 1), y, name="bands")


def _knowledge_study() -> dict:
    """The real study on four tiny sources, one named like an injection attempt."""
    train, test = _bands(0), _bands(1)
    torch.manual_seed(0)
    reference = create_model("mlp", num_classes=4)
    fit(reference, train, epochs=2, batch_size=32)
    sources = {"mlp-a": create_model("mlp", num_classes=5),
               EVIL: create_model("lenet", num_classes=3),
               "cnn-c": create_model("cnn", num_classes=6),
               "mlp-d": create_model("mlp", num_classes=4)}
    fit(sources["mlp-d"], train, epochs=1, batch_size=32)
    return adv_knowledge_study(reference, sources, train, test, alpha_per_class=4, shots=2,
                               repeats=2,
                               attack=AttackSpec("pgd", {"steps": 2}),
                               matrix_attack=AttackSpec("pgd", {"steps": 2})).to_dict()


def _surrogate_study() -> dict:
    per_epoch, rows = [], []
    for seed in (0, 1):
        for epoch, (lr, transfer) in enumerate([(0.05, 0.41), (0.05, 0.56), (0.005, 0.47)], 1):
            per_epoch.append({"seed": seed, "epoch": epoch, "lr": lr,
                              "accuracy": 0.82 + 0.04 * epoch - 0.01 * seed,
                              "transfer": transfer + 0.03 * seed, "fooled": 40 + epoch,
                              "pairs": 96, "white_box": 1.0, "weak": False})
        for kind, rho, epoch, transfer, sharp, model in [
                ("early stopped", None, 2, 0.56, 310.0, f"sgd-s{seed}@2"),
                ("fully trained", None, 3, 0.47, 820.0, f"sgd-s{seed}@3"),
                ("SAM rho=0.05", 0.05, 3, 0.58, 140.0, f"sam-r0.05-s{seed}"),
                ("l-SAM rho=0.1", 0.1, 3, 0.66, 45.0, f"lsam-r0.1-s{seed}"),
                ("LGV (4 models)", None, 4, 0.61, 95.0, f"lgv-s{seed}")]:
            rows.append({"regime": kind, "seed": seed, "rho": rho, "epoch": epoch, "model": model,
                         "transfer": transfer + 0.02 * seed, "fooled": int(96 * transfer),
                         "pairs": 96, "white_box": 0.99, "weak": False,
                         "accuracy": 0.9 - 0.01 * seed, "diverged": False,
                         "sharpness": sharp * (1 + 0.1 * seed)})
    pair = [{"lam": 0.0, "a_to_b": 0.62, "b_to_a": 0.58, "accuracy_a": 0.91, "accuracy_b": 0.93},
            {"lam": 5.0, "a_to_b": 0.31, "b_to_a": 0.27, "accuracy_a": 0.89, "accuracy_b": 0.92}]
    sharp = {"spearman": -0.83, "low": -0.97, "high": -0.41, "n": 10}
    summary = surrogate_summary(rows)
    return SurrogateStudyResult(rows, per_epoch, summary, sharp, pair,
                                surrogate_claims(rows, pair, sharp),
                                {"target": "mnist", "seeds": [0, 1], "epochs": 3}).to_dict()


def _robust_study() -> dict:
    recipes = ["linear probe", "last 3 blocks", "full fine-tune", "LwF",
               "NEFT + BN frozen (last 3)"]
    base = {"standard": (0.95, 0.02), "pgd_at": (0.86, 0.41), "cartl_fdm": (0.84, 0.45)}
    rows = [{"source_method": source, "recipe": m, "seed": seed,
             "accuracy": clean + 0.01 * k - 0.01 * seed,
             "robust_accuracy@0.1": max(0.0, robust - 0.07 * k + 0.01 * seed)}
            for seed in (0, 1) for source, (clean, robust) in base.items()
            for k, m in enumerate(recipes)]
    summary = robust_summary(rows, (0.1,))
    ablation = [s for s in summary if s["source_method"] in ("pgd_at", "cartl_fdm")
                and s["recipe"] in ("last 3 blocks", "NEFT + BN frozen (last 3)")]
    return RobustTransferResult(rows, summary, ablation, robust_claims(rows, 0.1),
                                {"seeds": [0, 1], "target": "mnist", "radii": [0.1],
                                 "recipes": recipes}).to_dict()


BENCHMARK = {"type": "BenchmarkResult", "schema": 1, "suite": "tiny", "n_models": 2,
             "rows": [{"model": "mlp", "accuracy": 0.91, "seconds": 1.25},
                      {"model": EVIL, "accuracy": 0.42, "seconds": 3.5}],
             "notes": ["a result type this report does not know"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A store with every kind of study, and its report: ``(store path, report, records)``."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERABILITY_CACHE", str(root / "cache"))
        knowledge = _knowledge_study()
    store = ResultStore(root / "results.sqlite")
    t = time.time() - 3600
    features = Job("test_report_features", {"model": "mlp-a", "seed": 0}, label="features mlp-a")
    matrix = Job("test_report_features", {"matrix": True})
    store.put(features, {"n": 80}, started=t, finished=t + 2.5, study="knowledge")
    store.put(matrix, knowledge["transfer_matrix"], started=t, finished=t + 1.5, study="knowledge")
    studies = {}
    for seed, offset in ((0, 10), (1, 20)):
        job = Job(_kind("adv_knowledge_study", "study"),
                  {"target": "bands", "seed": seed, "sources": 4},
                  {"features": features, "matrix": matrix}, label=f"bands, seed {seed}")
        studies[f"knowledge-{seed}"] = store.put(job, knowledge, started=t + offset,
                                                 finished=t + offset + 4.2, study="knowledge")
    for name, kind, value in (
            ("surrogates", _kind("surrogate_study", "surrogates"), _surrogate_study()),
            ("robust", _kind("robust_transfer_study", "robust"), _robust_study()),
            ("benchmark", "test_report_benchmark", BENCHMARK)):
        studies[name] = store.put(Job(kind, {"quick": True}), value, started=t + 30,
                                  finished=t + 95.5, study=name)
    report = write_report(store, root / "report.html")
    store.close()
    return root / "results.sqlite", report, studies


# ---- the file ---------------------------------------------------------------------------

class _Checker(HTMLParser):
    """Balanced tags, unique ids, and every script and stylesheet inline."""

    VOID = {"meta", "link", "br", "hr", "img", "input", "circle", "rect", "line", "path"}

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "script" and "src" in attrs:
            self.errors.append(f"external script {attrs['src']}")
        if tag == "link" and not (attrs.get("href") or "").startswith("data:"):
            self.errors.append(f"linked resource {attrs.get('href')}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _check(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    return checker


def test_report_is_self_contained_valid_and_escaped(built):
    _, report, studies = built
    text = report.read_text()
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert "@import" not in text and not re.search(r"\b(src|href)\s*=\s*[\"']?//", text)
    checker = _check(text)
    assert text.count("<script") == 1  # the inline sorting script, nothing from a name
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for name in ("knowledge-0", "knowledge-1", "surrogates", "robust", "benchmark"):
        assert section_id(studies[name]) in checker.ids
    assert "provenance" in checker.ids
    assert sum(i.startswith("study-") and i.count("-") == 1 for i in checker.ids) == 5
    # what the sections say: CIs, explicit denominators, units
    assert re.search(r"[+-]\d\.\d\d \[[+-]\d\.\d\d, [+-]\d\.\d\d\]", text)
    assert re.search(r"fooled / both correct: \d+/\d+ \(\d+\.\d%\)", text)
    assert "fooled / all samples:" in text and "n = 4 sources" in text
    assert "seed = 0" in text and "seed = 1" in text  # two configs of one kind, told apart
    assert "compute time" in text and " s</td>" in text
    for claim in ("Adam&#x27;s effect", "(a) ", "LGV"):
        assert claim in text
    assert "a result type this report does not know" in text  # the generic section
    assert "could not be drawn" not in text  # every stored result read back and drawn


def test_intermediate_jobs_and_superseded_records_get_no_section(built, tmp_path):
    path, _, studies = built
    text = (tmp_path / "r.html")
    with ResultStore(path) as store:
        write_report(store, text)
        html = text.read_text()
        assert html.count('<section id="study-') == 5  # not the features nor the matrix job
        # the same kind, label and config, finished later (another input, as after a code
        # change): it replaces the older one
        newer = Job(_kind("adv_knowledge_study", "study"),
                    {"target": "bands", "seed": 0, "sources": 4},
                    {"features": Job("test_report_features", {"model": "mlp-a", "seed": 1})},
                    label=studies["knowledge-0"].label)
        rerun = store.put(newer, store.get(studies["knowledge-0"].key).value,
                          started=time.time(), finished=time.time() + 1)
        html = render_report(store)
    assert f'id="{section_id(rerun)}"' in html
    assert f'id="{section_id(studies["knowledge-0"])}"' not in html
    assert html.count('<section id="study-') == 5


def test_empty_store_and_undrawable_results(tmp_path):
    with ResultStore(tmp_path / "empty.sqlite") as store:
        report = write_report(store, tmp_path / "empty.html")
    text = report.read_text()
    _check(text)
    assert "No studies yet" in text and "0 jobs" in text
    with pytest.raises(ValueError, match="no such results store"):
        write_report(tmp_path / "missing.sqlite", tmp_path / "x.html")
    with ResultStore(tmp_path / "odd.sqlite") as store:  # a stored study this code cannot draw
        store.put(Job("test_report_study", {"odd": 1}), {"type": "StudyResult", "rows": "?"},
                  started=0.0, finished=1.0)
    text = write_report(tmp_path / "odd.sqlite", tmp_path / "odd.html").read_text()
    _check(text)
    assert "could not be drawn" in text and "Provenance" in text


# ---- in a browser -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium not installed: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("headless Chromium not installed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _column(driver, table_id: str, column: str) -> list[tuple[str, float]]:
    """(source, value) per row of a table, in display order."""
    return driver.execute_script("""
        const t = document.getElementById(arguments[0]);
        const heads = [...t.tHead.rows[0].cells].map(h => h.dataset.col);
        const k = heads.indexOf(arguments[1]), s = heads.indexOf("source");
        return [...t.tBodies[0].rows].map(r => [r.cells[s].textContent,
                                                 Number(r.cells[k].dataset.v)]);
    """, table_id, column)


def _screenshot(driver, width: int, path: Path) -> int:
    """A full-page PNG at ``width`` CSS pixels; returns the page's scroll width."""
    driver.execute_script("window.scrollTo(0, 0)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    height = driver.execute_script("return document.documentElement.scrollHeight")
    scroll_width = driver.execute_script("return document.documentElement.scrollWidth")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": min(height, 12000), "deviceScaleFactor": 1,
        "mobile": width < 600})
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
    path.write_bytes(base64.b64decode(png))
    return scroll_width


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_report_in_headless_chromium(browser, built, tmp_path):
    from selenium.webdriver.common.by import By

    _, report, studies = built
    browser.get(report.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    for name, record in studies.items():
        section = browser.find_element(By.ID, section_id(record))
        assert section.find_element(By.TAG_NAME, "h2").text, name
    assert browser.find_element(By.ID, "provenance").find_elements(By.TAG_NAME, "table")
    assert not browser.find_elements(By.CSS_SELECTOR, "section:not([id])")

    # clicking a header sorts its rows (numbers numerically, the rows moving together)
    table_id = f"{section_id(studies['knowledge-0'])}-ranks"
    before = _column(browser, table_id, "leep")
    header = browser.find_element(By.CSS_SELECTOR, f'#{table_id} th[data-col="leep"]')
    header.click()
    after = _column(browser, table_id, "leep")
    assert sorted(after) == sorted(before)  # each row kept its source and value
    assert [v for _, v in after] == sorted((v for _, v in before), reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    assert [v for _, v in _column(browser, table_id, "leep")] == sorted(v for _, v in before)
    browser.find_element(By.CSS_SELECTOR, f'#{table_id} th[data-col="source"]').click()
    names = [s for s, _ in _column(browser, table_id, "leep")]
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]

    # 1280 px and 390 px: nothing wider than the screen (tables scroll in their wrappers)
    browser.refresh()  # the page as it opens, unsorted
    shots = {}
    for width in (1280, 390):
        shots[width] = tmp_path / f"report-{width}.png"
        assert _screenshot(browser, width, shots[width]) <= width
        assert shots[width].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("TRANSFERABILITY_SCREENSHOTS"):
        out = Path(os.environ["TRANSFERABILITY_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        for path in shots.values():
            shutil.copy(path, out / path.name)


# ---- the parts ---------------------------------------------------------------------------

def test_a_stand_alone_transfer_matrix_is_drawn_from_its_counts(tmp_path):
    """Hand-computed: both denominators, a zero one (n/a), a weak surrogate (⚠) and the
    white-box row of a surrogate that is not a victim."""
    tm = TransferMatrix(["a", "b"], ["a", "c"], 7, np.array([[6, 3], [2, 0]]),
                        np.array([[5, 4], [0, 0]]), np.array([[5, 2], [0, 0]]),
                        {"a": 5, "b": 3, "c": 6}, np.array([6, 1]), np.array([5, 1]),
                        attack="PGD(eps=0.3)")
    with ResultStore(tmp_path / "tm.sqlite") as store:
        record = store.put(Job("test_report_features", {"tm": 1}), tm.to_dict(),
                           started=0.0, finished=1.0)
        text = render_report(store)
    _check(text)
    sid = section_id(record)
    assert f'<section id="{sid}" class="study" data-type="TransferMatrix"><h2>Transfer matrix' \
        in text
    # a → c: 2 of the 4 both-correct samples fooled, 3 of all 7
    assert "a → c\nfooled / both correct: 2/4 (50.0%)\nfooled / all samples: 3/7 (42.9%)" \
        in text
    assert ">50%</text>" in text and ">2/4</text>" in text
    assert "b → a\nfooled / both correct: 0/0 (–)" in text and ">n/a</text>" in text
    # b fools itself on 1 of its 3 clean-correct samples: white-box 33% < 90%, flagged
    assert "Weak surrogates" in text and "b" in text.split("understate): ")[1][:3]
    rows = text.split(f'id="{sid}-matrix"')[1].split("</table>")[0]
    assert rows.count("<tr>") == 1 + 4 + 1  # header, the grid, b's white-box row
    assert "0/0 (n/a)" in rows and "1/3 (33.3%)" in rows and "1/7 (14.3%)" in rows
    assert "a 5/7 (71.4%), b 3/7 (42.9%), c 6/7 (85.7%)" in text


@dataclass(frozen=True)
class _Squares(Result):
    rows: list[dict]


def test_a_registered_section_gets_the_result_object_and_bad_data_falls_back(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setitem(sections._SECTIONS._items, "_Squares", sections.Section(
        _Squares, "Squares", lambda sid, r: f"<p>{type(r).__name__} {len(r.rows)} rows</p>"))
    with ResultStore(tmp_path / "s.sqlite") as store:
        good = _Squares([{"n": 2, "square": 4}]).to_dict()
        store.put(Job("test_report_features", {"s": 1}), good, started=0.0, finished=1.0)
        store.put(Job("test_report_features", {"s": 2}), {**good, "schema": 9},
                  started=0.0, finished=2.0)
        text = render_report(store)
    _check(text)
    assert text.count("<h2>Squares") == 2 and "<p>_Squares 1 rows</p>" in text
    assert "could not be drawn (ValueError: data: _Squares schema 9 is newer" in text


def test_the_page_names_no_study_and_no_result_type():
    source = Path(page.__file__).read_text()
    for study in list_studies():
        assert study.result.__name__ not in source and f'"{study.name}"' not in source
    assert "TransferMatrix" not in source
