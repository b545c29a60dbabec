"""The headline a run's reader sees first: one column per forecaster and the benchmark, and the verdicts.

``headline(metrics)`` lays out the table shared by the HTML tear sheet and the terminal
summary: rows (Rank IC with its Newey-West t, ICIR, MSE vs the random walk, CRPS, 90% coverage
raw and recalibrated, annual return, volatility, Sharpe, Sortino, max drawdown, Calmar,
turnover, cost drag), each cell formatted with its unit; portfolio rows carry the net value and
the gross one. ``verdicts(metrics)`` gives the evaluation's verdict line per baseline and one for
the benchmark, each toned by its tests. Both read the leaderboard and comparisons of metrics.json
(``report.leaderboard``); metrics without them give an empty table and no verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kronos_quant.metrics import NO_SIGNAL
from kronos_quant.report import fmt
from kronos_quant.report.leaderboard import comparisons, dig, leaderboard

__all__ = ["Cell", "Row", "Headline", "Verdict", "headline", "verdicts", "caveats", "TAGS"]


@dataclass(frozen=True)
class Cell:
    """One table cell: the net (or only) value, the gross value of portfolio rows, a hover note."""

    text: str
    gross: str | None = None
    note: str = ""

    def plain(self) -> str:
        """The cell on one line: '25.3% (gross 31.0%)' -> '25.3% (31.0%)'."""
        return self.text if self.gross is None else f"{self.text} ({self.gross})"


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]
    help: str = ""
    section: str = "signal"  # signal | forecast | portfolio


@dataclass
class Headline:
    columns: list[str]  # distinct labels, model first, then baselines, then the benchmark
    kinds: list[str]  # model | baseline | benchmark, per column
    rows: list[Row] = field(default_factory=list)


def _stars(*ps: Any) -> str:
    """Significance stars from the largest of the given p-values present (the tests must agree)."""
    xs = [x for x in (fmt.as_float(p) for p in ps) if x is not None]
    if not xs:
        return ""
    x = max(xs)
    return "**" if x < 0.01 else "*" if x < 0.05 else ""


def _rank_ic(e: Mapping[str, Any]) -> Cell:
    ic = e.get("rank_ic") or {}
    mean, t = fmt.as_float(ic.get("mean")), fmt.as_float(ic.get("t_stat"))
    if ic.get("reason") == NO_SIGNAL:  # a constant score (the random walk's expected return): no IC, no stars
        return Cell(f"{fmt.NA}: {NO_SIGNAL}", note="the score is the same for every instrument on every date")
    if mean is None:
        return Cell(fmt.NA)
    stars = _stars(ic.get("p_value"), ic.get("p_value_ewc"))
    text = fmt.fixed(mean, 3) + ("" if t is None else f" ({fmt.tstat(t)}){stars}")
    note = (f"Newey-West t with {ic.get('nw_lags')} lags, {fmt.pvalue(ic.get('p_value'))}; "
            f"EWC ({ic.get('ewc_dof')} df) {fmt.pvalue(ic.get('p_value_ewc'))}; "
            f"i.i.d. t {fmt.fixed(ic.get('t_stat_iid'))}; {ic.get('n')} dates")
    ci = e.get("rank_ic_ci") or {}
    if fmt.as_float(ci.get("low")) is not None:
        note += f"; {fmt.pct(ci.get('confidence'), 0)} CI [{fmt.fixed(ci['low'], 3)}, {fmt.fixed(ci.get('high'), 3)}]"
    return Cell(text, note=note)


def _coverage(e: Mapping[str, Any]) -> Cell:
    """'57% (attainable 78%) → 89%': the share inside the S-sample band, what S samples can attain
    when calibrated (the number to compare it with), and after walk-forward recalibration."""
    pooled, last = e.get("coverage_90_all_steps") or {}, e.get("coverage_90_last_step") or {}
    block, where = (pooled, "all horizon steps pooled") if fmt.as_float(pooled.get("coverage")) is not None \
        else (last, "last horizon step")
    raw, recal = fmt.as_float(block.get("coverage")), fmt.as_float(block.get("recalibrated"))
    if raw is None:
        return Cell(fmt.NA)
    attainable = fmt.as_float(block.get("attainable"))
    text = fmt.pct(raw, 0) + (f" (attainable {fmt.pct(attainable, 0)})" if attainable is not None else "")
    note = where + "; order-statistic band of the sample paths" + (
        f"; nominal 90% band of the quantile columns {fmt.pct(block['quantile_coverage'], 0)}"
        if fmt.as_float(block.get("quantile_coverage")) is not None else "")
    return Cell(text + (f" \u2192 {fmt.pct(recal, 0)}" if recal is not None else ""), note=note)


def _perf(key: str, formatter: Callable[[Any], str]) -> Callable[[Mapping[str, Any]], Cell]:
    def cell(e: Mapping[str, Any]) -> Cell:
        net, gross = dig(e, "backtest", "net", key), dig(e, "backtest", "gross", key)
        return Cell(formatter(net), None if fmt.as_float(gross) is None else formatter(gross))
    return cell


def _sharpe(e: Mapping[str, Any]) -> Cell:
    base = _perf("sharpe_ratio", fmt.fixed)(e)
    ci = e.get("sharpe_ci") or {}
    if fmt.as_float(ci.get("low")) is None:
        return base
    return Cell(base.text, base.gross, note=f"{fmt.pct(ci.get('confidence'), 0)} CI [{fmt.fixed(ci['low'])}, "
                                           f"{fmt.fixed(ci.get('high'))}] (stationary block bootstrap)")


def _turnover(e: Mapping[str, Any]) -> Cell:
    mean, annual = dig(e, "backtest", "net", "mean_turnover"), dig(e, "backtest", "net", "annual_turnover")
    note = "" if fmt.as_float(annual) is None else f"{fmt.fixed(annual, 1)}\u00d7 a year"
    return Cell(fmt.pct(mean, 0), note=note)


def _psr(e: Mapping[str, Any]) -> Cell:
    psr, dsr = fmt.as_float(e.get("psr")), fmt.as_float(e.get("dsr"))
    if psr is None and dsr is None:
        return Cell(fmt.NA)
    return Cell(f"{fmt.pct(psr, 0)} / {fmt.pct(dsr, 0)}",
                note=f"PSR vs benchmark {fmt.pct(e.get('psr_vs_benchmark'), 0)}")


_ROWS: tuple[tuple[str, str, str, Callable[[Mapping[str, Any]], Cell]], ...] = (
    ("Rank IC (NW t)", "signal", "mean cross-sectional Spearman IC of the score with the forward return; "
     "Newey-West t; * p < 0.05, ** p < 0.01 under both Newey-West and EWC", _rank_ic),
    ("Rank ICIR", "signal", "mean / std of the per-date Rank IC", lambda e: Cell(fmt.fixed(dig(e, "rank_ic", "icir")))),
    ("Return MSE vs no change", "forecast", "h-step return MSE / that of the no-change forecast (the exact "
     "random-walk point forecast; below 1 beats it)",
     lambda e: Cell(fmt.ratio(e.get("mse_ratio_rw")))),
    ("CRPS (h-step return)", "forecast", "continuous ranked probability score of the sample paths, in return units",
     lambda e: Cell(fmt.bp(e.get("crps")))),
    ("90% coverage raw \u2192 recal.", "forecast", "share of outcomes inside the sample paths' order-statistic "
     "90% band (beside the coverage S calibrated paths attain) and inside the walk-forward recalibrated 90% "
     "interval", _coverage),
    ("Annual return", "portfolio", "", _perf("annual_return", fmt.pct)),
    ("Volatility", "portfolio", "annualised", _perf("annual_volatility", fmt.pct)),
    ("Sharpe", "portfolio", "annualised, risk-free 0", _sharpe),
    ("Sortino", "portfolio", "", _perf("sortino_ratio", fmt.fixed)),
    ("Max drawdown", "portfolio", "", _perf("max_drawdown", fmt.pct)),
    ("Calmar", "portfolio", "annual return / |max drawdown|", _perf("calmar_ratio", fmt.fixed)),
    ("Turnover / rebalance", "portfolio", "mean one-way turnover of the bars that traded", _turnover),
    ("Cost drag (annual)", "portfolio", "gross minus net annual return", lambda e: Cell(fmt.bp(e.get("cost_drag")))),
)
_OPTIONAL_ROWS = (("PSR / DSR", "portfolio", "probabilistic Sharpe ratio (vs 0) / deflated Sharpe ratio "
                   "given the number of trials", _psr, ("psr", "dsr")),)


def headline(metrics: Mapping[str, Any]) -> Headline:
    """The headline table of a run (see the module docstring); rows of cells formatted with their units."""
    entries = leaderboard(metrics)
    table = Headline(columns=[e["label"] for e in entries], kinds=[str(e.get("kind", "")) for e in entries])
    for label, section, help_text, make in _ROWS:
        table.rows.append(Row(label, tuple(make(e) for e in entries), help_text, section))
    for label, section, help_text, make, keys in _OPTIONAL_ROWS:
        if any(fmt.as_float(e.get(k)) is not None for e in entries for k in keys):
            table.rows.append(Row(label, tuple(make(e) for e in entries), help_text, section))
    return table


TAGS = {"better": "better", "worse": "worse", "mixed": "mixed",
        "inconclusive": "not significant"}  # tone -> the tag shown before a verdict line


@dataclass(frozen=True)
class Verdict:
    """One verdict line; ``tone``: better | worse | mixed | inconclusive (a key of ``TAGS``)."""

    text: str
    tone: str


def _tone(c: Mapping[str, Any]) -> str:
    """Better/worse where a test says so (Rank IC difference p < 0.05 under Newey-West and EWC, Sharpe difference CI
    excluding 0, DM p < 0.05 on MSE), mixed when they disagree, else inconclusive."""
    votes: list[int] = []
    diff, p = fmt.as_float(c.get("rank_ic_diff")), fmt.as_float(c.get("rank_ic_diff_p"))
    p_ewc = fmt.as_float(c.get("rank_ic_diff_p_ewc"))
    p = None if p is None else max(p, p_ewc) if p_ewc is not None else p  # both tests must agree
    if diff is not None and p is not None and p < 0.05:
        votes.append(1 if diff > 0 else -1)
    low, high = fmt.as_float(dig(c, "sharpe_diff_ci", "low")), fmt.as_float(dig(c, "sharpe_diff_ci", "high"))
    if low is not None and high is not None and (low > 0 or high < 0):
        votes.append(1 if low > 0 else -1)
    dm = "dm_mse_last_step" if c.get("dm_mse_last_step") else "dm_mse"  # the test the verdict line quotes
    stat, p_dm = fmt.as_float(dig(c, dm, "statistic")), fmt.as_float(dig(c, dm, "p_value"))
    if stat is not None and p_dm is not None and p_dm < 0.05:
        votes.append(-1 if stat > 0 else 1)  # DM statistic > 0: the model's loss is larger
    if not votes:
        return "inconclusive"
    return "better" if min(votes) > 0 else "worse" if max(votes) < 0 else "mixed"


def caveats(metrics: Mapping[str, Any]) -> list[str]:
    """The evaluation's warnings that qualify the verdicts (e.g. too few dates for the t-tests); [] without."""
    items = metrics.get("warnings")
    return [str(w) for w in items if w] if isinstance(items, list) else []


def verdicts(metrics: Mapping[str, Any]) -> list[Verdict]:
    """One line per comparison of the metrics (its ``verdict`` text, toned by its tests); [] without."""
    return [Verdict(str(c.get("verdict") or f"{c.get('model')} vs {c.get('against')}"), _tone(c))
            for c in comparisons(metrics)]
