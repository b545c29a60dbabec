"""The tear sheet and the terminal summary read metrics.json's comparison contract (a hand-written
dict that follows it, and a real tiny run), render "n/a" for missing keys, and format units."""

from __future__ import annotations

import io
import logging
import re
from html import escape as html_escape

import pytest
from matplotlib.figure import Figure
from tqdm import tqdm

from kronos_quant.report import (
    FIGURES,
    ReportInputs,
    fmt,
    headline,
    leaderboard,
    render_summary,
    render_tearsheet,
    verdicts,
)
from kronos_quant.report.details import metric_groups
from kronos_quant.report.facts import backtest_period, run_facts
from kronos_quant.utils.progress import ProgressLogHandler
from kronos_quant.workflow import run_backtest
from tests.report_data import CONTRACT_CONFIG, CONTRACT_PROVENANCE, contract_metrics, tiny_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real tiny run (linear forecaster; no report files: the figures are drawn by the tests)."""
    return run_backtest(tiny_config(tmp_path_factory.mktemp("tiny"), figures=False), quiet=True, write=False)


def _cells(table, label):
    row = next(r for r in table.rows if r.label == label)
    return [c.text for c in row.cells], [c.gross for c in row.cells], [c.note for c in row.cells]


def test_units() -> None:
    assert [fmt.pct(0.253), fmt.pct(-0.0634), fmt.pct(None), fmt.pct(float("nan"))] == ["25.3%", "\u22126.3%", "n/a",
                                                                                        "n/a"]
    assert [fmt.bp(0.0566), fmt.bp(0.00052), fmt.ratio(1.4512), fmt.fixed(-0.0004), fmt.fixed(2)] == [
        "566 bp", "5.2 bp", "\u00d71.45", "0.00", "2.00"]
    assert [fmt.pvalue(0.0004), fmt.pvalue(0.0312), fmt.tstat(2.517), fmt.count(12345.0)] == [
        "p < 0.001", "p 0.031", "t 2.52", "12,345"]
    assert [fmt.number(v) for v in (0.0512345, float("nan"), None, 3, "x")] == ["0.05123", "n/a", "n/a", "3", "x"]


def test_headline_reads_the_contract() -> None:
    table = headline(contract_metrics())
    assert table.columns == ["kronos-demo expected return", "random walk", "momentum(20, skip 1)",
                             "equal-weight benchmark"]
    assert table.kinds == ["model", "baseline", "baseline", "benchmark"]
    text, gross, notes = _cells(table, "Rank IC (NW t)")
    assert text == ["0.052 (t 2.52)*", "n/a", "0.018 (t 0.85)", "n/a"]
    assert "4 lags" in notes[0] and "95% CI [0.011, 0.093]" in notes[0] and "EWC (9 df) p 0.018" in notes[0]
    assert _cells(table, "Return MSE vs no change")[0] == ["\u00d71.45", "\u00d71.00", "n/a", "n/a"]
    assert _cells(table, "CRPS (h-step return)")[0] == ["123 bp", "101 bp", "n/a", "n/a"]
    assert _cells(table, "90% coverage raw \u2192 recal.")[0] == ["70% (attainable 78%) \u2192 89%",
                                                               "80% (attainable 78%) \u2192 90%", "n/a", "n/a"]
    text, gross, _ = _cells(table, "Annual return")
    assert text == ["12.0%", "4.0%", "7.0%", "6.0%"] and gross == ["14.1%", "5.0%", "8.0%", None]
    text, gross, notes = _cells(table, "Sharpe")
    assert text == ["0.90", "0.30", "0.55", "0.40"] and "95% CI [\u22120.20, 1.90]" in notes[0]
    assert _cells(table, "Max drawdown")[0] == ["\u221215.0%", "\u221220.0%", "\u221218.0%", "\u221216.0%"]
    assert _cells(table, "Cost drag (annual)")[0] == ["210 bp", "100 bp", "120 bp", "n/a"]
    assert _cells(table, "Turnover / rebalance")[0][0] == "35%"
    assert _cells(table, "PSR / DSR")[0][0] == "93% / 64%"  # optional row: present because the contract has it


def test_verdict_tones_follow_the_tests() -> None:
    lines = verdicts(contract_metrics())
    assert [v.tone for v in lines] == ["worse", "inconclusive", "better"]  # DM p < 0.05 worse; CIs spanning 0; CI > 0
    assert lines[0].text.startswith("kronos-demo vs random walk")
    assert [v.text for v in lines] == contract_metrics()["verdicts"]


def test_missing_and_nan_keys_read_na_never_crash() -> None:
    metrics = {"leaderboard": [{"name": "m", "kind": "model", "rank_ic": {"mean": float("nan")}, "backtest": None},
                               {"kind": "benchmark"}]}
    table = headline(metrics)
    assert table.columns == ["m", "benchmark"]
    assert all(c.text == "n/a" for row in table.rows for c in row.cells)
    html = render_tearsheet(ReportInputs(metrics=metrics))
    assert ">nan<" not in html and "n/a" in html
    assert headline({}).columns == [] and verdicts({}) == []
    bare = render_tearsheet(ReportInputs(metrics={"sharpe": 1.2}))  # no leaderboard: what exists, no table
    assert "No comparisons in these metrics" in bare and "no headline table" in bare and 'id="details"' in bare


def test_tearsheet_html_from_the_contract() -> None:
    inputs = ReportInputs(metrics=contract_metrics(), config=CONTRACT_CONFIG, provenance=CONTRACT_PROVENANCE)
    html = render_tearsheet(inputs)
    assert html.index('id="verdict"') < html.index('id="headline"') < html.index('id="details"')
    assert "difference 95% CI [0.05, 1.1] &lt;&amp;&gt;" in html  # verdict text, escaped
    assert 'class="kq-tag worse">worse<' in html and 'class="kq-tag better">better<' in html
    for fact in ("next_open: open t+1 \u2192 open t+1+5", "fingerprint 0123456789ab", "kronos-demo @ 0a1b2c3d4e5f",
                 "25 instruments, 1 excluded by validation, 1 unscored", "fees 5.0 bp + slippage 5.0 bp per trade",
                 "3 configurations tried", "topk(k 5), max weight 25%, cash 2%"):
        assert html.count(fact) >= 1, fact
    for finding in ("too little history (40 bars &lt; lookback 128)", "QQQ", "3 jumps &gt; 40%", "BBB", "duplicates"):
        assert finding in html, finding
    assert "transforms:\n  - winsorize" in html  # the config as YAML
    assert "<h4>leaderboard[kronos-demo].backtest.net</h4>" in html
    assert re.search(r"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'", html)
    fragment = render_tearsheet(inputs, standalone=False)
    assert fragment.startswith('<div class="kq"><style>') and "<html" not in fragment


def test_metric_groups_keep_every_value() -> None:
    metrics = contract_metrics()
    groups = dict(metric_groups(metrics))
    assert groups["headline"][0] == ("ic", 0.061)
    assert ("sharpe_ratio", 0.9) in groups["leaderboard[kronos-demo].backtest.net"]
    assert ("p_value", 0.0004) in groups["comparisons[kronos-demo vs random_walk].dm_mse"]
    assert groups["comparisons[kronos-demo vs random_walk]"][0][0] == "model"
    assert groups["unscored"] == [("ZZZ", "reason too little history (40 bars < lookback 128)")]  # flat records
    assert groups["comparisons[kronos-demo vs random_walk].dm_mse_per_step"][0] == ("1", "statistic 3; p_value 0.01")


def test_the_costs_fact_shows_the_market_presets_trading_rules() -> None:
    """Header and terminal share one costs line: the preset's costs and, where active, its rules."""
    from kronos_quant.config import load_config

    def costs(*overrides: str) -> str:
        return dict(run_facts({}, load_config(None, overrides=list(overrides)).resolved(), {}))["Costs"]

    assert costs("market=us_equity") == "us_equity: fees 1.0 bp (min 1 per order) + slippage 5.0 bp per trade"
    assert costs("market=cn_a_share") == ("cn_a_share: fees 5.0 bp (min 5 per order) + slippage 5.0 bp per trade, "
                                          "stamp duty 5.0 bp on sells, lots of 100, T+1, A-share price limits by board")
    assert costs("market=custom", "trading.price_limit=0.1") == "fees 5.0 bp + slippage 5.0 bp per trade, price limit \u00b110%"
    text = render_summary(contract_metrics(), "a-share run", config=load_config(None, overrides=["market=cn_a_share"])
                          .resolved(), width=200)
    assert "stamp duty 5.0 bp on sells, lots of 100, T+1" in text


def test_terminal_summary_from_the_contract() -> None:
    text = render_summary(contract_metrics(), "momentum: kronos-demo", config=CONTRACT_CONFIG,
                          provenance=CONTRACT_PROVENANCE, width=160)
    for part in ("momentum: kronos-demo", "2015-09-01", "25 instruments", "fees 5.0 bp", "next_open",
                 "kronos-demo expected return", "momentum(20, skip 1)", "equal-weight benchmark", "(benchmark)",
                 "12.0% (14.1%)", "0.052 (t 2.52)*", "\u00d71.45", "[worse]", "[better]", "[not significant]",
                 "difference 95% CI [0.05, 1.1] <&>"):
        assert part in text, part
    assert "nan" not in text.lower().replace("n/a", "")


def test_a_real_run_renders_through_the_contract(tiny) -> None:
    """A real tiny run: the evaluation's leaderboard, comparisons and verdicts reach the table and text."""
    cfg, m = tiny.config.resolved(), tiny.metrics
    entries = leaderboard(m)
    assert [e["name"] for e in entries] == [r["name"] for r in m["leaderboard"]]
    assert [e["kind"] for e in entries] == ["model", "baseline", "baseline", "benchmark"]
    table = headline(m)
    text, gross, _ = _cells(table, "Sharpe")
    assert text == [fmt.fixed(r["backtest"]["net"]["sharpe_ratio"]) for r in m["leaderboard"]]
    assert gross[0] == fmt.fixed(m["leaderboard"][0]["backtest"]["gross"]["sharpe_ratio"])
    assert _cells(table, "Annual return")[0][0] == fmt.pct(m["annual_return"])
    assert _cells(table, "Rank IC (NW t)")[0][0].startswith(fmt.fixed(m["rank_ic"], 3))
    assert [v.text for v in verdicts(m)] == m["verdicts"]
    period = backtest_period(tiny.backtest)
    facts = dict(run_facts(m, cfg, tiny.provenance, period=period))
    assert facts["Period"].endswith(f"{period[2]} bars") and facts["Universe"] == "8 instruments"
    text = render_summary(m, "tiny", config=cfg, provenance=tiny.provenance, period=period, width=140)
    assert "momentum(20, skip 1)" in text and "Period" in text and "Costs" in text
    assert tiny.summary("tiny", width=140) == text  # what the CLI prints and notebooks show
    flat = " ".join(text.split())
    assert all(" ".join(line.split()) in flat for line in m["verdicts"])
    html = render_tearsheet(ReportInputs(metrics=m, config=cfg, provenance=tiny.provenance))
    assert html_escape(m["verdicts"][0]) in html


def test_run_figures_and_notebook_view(tiny) -> None:
    figures = tiny.figures()
    assert list(figures) == list(FIGURES) and all(isinstance(f, Figure) for f in figures.values())
    labels = [e["label"] for e in leaderboard(tiny.metrics)]
    equity = figures["equity"].axes[0].get_legend_handles_labels()[1]
    assert equity == [labels[0], f"{labels[0]} (gross)", *labels[1:-1], "equal-weight buy and hold"]
    assert labels[-1] == "equal-weight buy and hold"  # one name for the benchmark: table, verdicts, legends
    assert list(tiny.figures(["fan"])) == ["fan"]
    html = tiny._repr_html_()
    assert html.startswith('<div class="kq">') and html.count("data:image/png;base64,") == len(FIGURES)


def test_log_lines_land_above_an_active_progress_bar() -> None:
    def output(handler_type: type) -> str:
        stream = io.StringIO()
        log = logging.getLogger(f"kq-test-{handler_type.__name__}")
        log.propagate, log.handlers = False, [handler_type(stream)]
        with tqdm(total=10, file=stream, disable=False, leave=False, mininterval=0, ascii=True, desc="forecasts") as bar:
            bar.update(3)
            log.warning("a log line")
            return stream.getvalue()

    plain = output(logging.StreamHandler)
    assert "it/s]a log line" in plain  # what a plain handler does: the line glued to the bar
    safe = output(ProgressLogHandler)
    before, after = safe.split("a log line\n")
    assert before.endswith("\r") and "forecasts:  30%" in after  # bar cleared, line printed, bar redrawn below


def test_ic_figure_reads_the_per_date_ic_table() -> None:
    """The evaluation's ic.parquet (date, forecaster, ic, rank_ic, n) drives the IC figure, under display labels."""
    import pandas as pd

    from kronos_quant.report import make_figures

    dates = pd.bdate_range("2016-01-04", periods=30)
    ic = pd.concat([pd.DataFrame({"date": dates, "forecaster": name, "ic": 0.1, "rank_ic": value, "n": 20})
                    for name, value in (("momentum(20, skip 1)", -0.05), ("kronos-demo", 0.05))])
    figure = make_figures(ReportInputs(metrics=contract_metrics(), ic=ic), ["ic"])["ic"]
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["kronos-demo expected return, rolling mean (20)", "momentum(20, skip 1), rolling mean (20)",
                      "kronos-demo expected return (per date)"]  # the model first, whatever the table's order
    with pytest.raises(ValueError, match="needs signals"):
        make_figures(ReportInputs(metrics=contract_metrics()), ["ic"])


def test_stars_need_newey_west_and_ewc_to_agree() -> None:
    m = contract_metrics()
    m["leaderboard"][0]["rank_ic"]["p_value_ewc"] = 0.08  # Newey-West p 0.012 alone would earn a star
    assert _cells(headline(m), "Rank IC (NW t)")[0][0] == "0.052 (t 2.52)"
    m["leaderboard"][0]["rank_ic"]["p_value_ewc"] = 0.004
    assert _cells(headline(m), "Rank IC (NW t)")[0][0] == "0.052 (t 2.52)*"  # the larger p decides: 0.012

