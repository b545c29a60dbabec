"""Market data: loading, validation, calendars and synthetic markets -> one standard panel.

The panel is a polars DataFrame with exactly ``schema.PANEL_COLUMNS`` (instrument, timestamp,
open, high, low, close, volume, amount), sorted by (instrument, timestamp) (``contract.py``).
The data layer knows nothing about models, forecasts or backtests.

Modules: ``contract`` (schema, check) <- ``report`` (ValidationReport) <- ``validate`` (checks,
policies, exclusions) <- ``panel`` (loading; uses ``_files``, ``_columns``, ``_identifier``,
``_timestamps``, ``adjust``); ``builtin`` (datasets bundled in the package); ``calendar`` (bar
calendars) <- ``exchange`` (exchange holidays and sessions, market checks); ``inspect``,
``synthetic``, ``timefeatures``.
"""

from kronos_quant.data._hints import hint_zone
from kronos_quant.data._timestamps import to_time_zone
from kronos_quant.data.adjust import ADJUST_MODES
from kronos_quant.data.builtin import (
    BUILTIN_DATASETS,
    builtin_card,
    builtin_file,
    load_builtin,
    load_builtin_with_report,
)
from kronos_quant.data.calendar import (
    BarCalendar,
    future_timestamps,
    infer_frequency,
    infer_panel_calendar,
    periods_per_year,
)
from kronos_quant.data.contract import PANEL_SCHEMA, check_panel, empty_panel
from kronos_quant.data.exchange import next_sessions, trading_calendar
from kronos_quant.data.inspect import PanelSummary, inspect_panel
from kronos_quant.data.panel import (
    LoadOptions,
    ReadOptions,
    data_fingerprint,
    load_panel,
    load_panel_with_report,
    panel_to_wide,
    read_panel,
)
from kronos_quant.data.report import Exclusion, SegmentBreak
from kronos_quant.data.synthetic import PLANTED_WEIGHTS, planted_signal, synthetic_market
from kronos_quant.data.timefeatures import TIME_FEATURE_NAMES, time_features
from kronos_quant.data.validate import (
    DEFAULT_MAX_GAP_BARS,
    EXCLUDABLE,
    PanelValidationError,
    ValidationIssue,
    ValidationReport,
    validate_panel,
)

__all__ = [
    "ADJUST_MODES",
    "BUILTIN_DATASETS",
    "DEFAULT_MAX_GAP_BARS",
    "EXCLUDABLE",
    "Exclusion",
    "LoadOptions",
    "ReadOptions",
    "SegmentBreak",
    "PANEL_SCHEMA",
    "PLANTED_WEIGHTS",
    "PanelSummary",
    "TIME_FEATURE_NAMES",
    "BarCalendar",
    "PanelValidationError",
    "ValidationIssue",
    "ValidationReport",
    "builtin_card",
    "builtin_file",
    "check_panel",
    "data_fingerprint",
    "empty_panel",
    "future_timestamps",
    "hint_zone",
    "infer_frequency",
    "infer_panel_calendar",
    "inspect_panel",
    "next_sessions",
    "trading_calendar",
    "load_builtin",
    "load_builtin_with_report",
    "load_panel",
    "load_panel_with_report",
    "panel_to_wide",
    "periods_per_year",
    "planted_signal",
    "read_panel",
    "synthetic_market",
    "time_features",
    "to_time_zone",
    "validate_panel",
]
