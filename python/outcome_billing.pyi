"""Outcome-based contracts settled in exact decimal money.

Every amount, quantity and trace value is a ``decimal.Decimal`` built from
the exact text the Rust library computed, never a float; metric values given
as floats are refused. Every bad input raises ``OutcomeError``.
"""

import datetime
import os
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__: str

_Date = Union[str, datetime.date]
_Instant = Union[str, datetime.date, datetime.datetime]
_Path = Union[str, "os.PathLike[str]"]
_Cell = Union[str, int, Decimal, bool, datetime.date, datetime.datetime, None]
_Level = Union[str, int, Decimal]
_Rows = Union[Iterable[Mapping[str, _Cell]], Any]
"""Metric data with the metric CSV's columns: an iterable of row dicts, a
``pyarrow.Table`` or ``RecordBatch`` (or any object with
``__arrow_c_stream__``, read through pyarrow), or a ``pandas.DataFrame``.
Float values and float columns are refused; a missing value is an empty
cell."""

class OutcomeError(ValueError):
    """An invalid contract, malformed metric data or a failed settlement.

    ``str(e)`` is ``LOCATION: MESSAGE`` when there is a location.
    """

    kind: str
    """The kind of error: "invalid contract", "malformed data", "invalid argument", ..."""
    location: Optional[str]
    """The field path, ``FILE:LINE:COLUMN`` (``rows:LINE:COLUMN`` for rows), or None."""
    message: str
    """The text the command line prints after ``error: ``."""

class Period(TypedDict):
    start: datetime.date
    """The first date."""
    end: datetime.date
    """The date after the last (exclusive)."""

class Step(TypedDict):
    step: str
    """What was read or computed."""
    value: Decimal
    """Its value (text only if Python cannot read it as a Decimal)."""

class Group(TypedDict):
    group: str
    """The value of the dimension (``""`` for rows without one)."""
    quantity: Optional[Decimal]
    """The group's quantity for ``unit``, ``tiered`` and ``package``; None otherwise."""
    amount: Decimal
    """The group's amount, at the contract's places."""
    trace: List[Step]
    """Inputs and steps in the group."""

class Line(TypedDict):
    charge: str
    """The charge's id, or the limit's."""
    kind: str
    """The charge kind, or ``cap``, ``floor``, ``credit``."""
    quantity: Optional[Decimal]
    """The quantity for ``unit``, ``tiered`` and ``package``; None otherwise."""
    amount: Decimal
    """The amount, at the contract's places."""
    trace: List[Step]
    """Inputs and steps; empty when settled with ``trace=False``."""

class GroupedLine(Line):
    groups: List[Group]
    """A grouped charge's groups (a charge with ``group_by``), in byte order
    of their values; the line's amount and quantity are their sums. Only
    grouped lines have the key; ``[]`` when the period has no group."""

class Statement(TypedDict):
    period: Period
    lines: List[Union[Line, GroupedLine]]
    total: Decimal
    """The sum of the lines, at the contract's places."""

class Contract:
    """A contract, loaded, validated and compiled for settlement."""

    @staticmethod
    def from_path(path: _Path) -> "Contract":
        """Loads and validates a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file.

        Raises ``OutcomeError`` with the file and field path at fault.
        """
    @staticmethod
    def from_str(text: str, format: Literal["toml", "json", "yaml", "yml"] = "toml") -> "Contract":
        """Loads and validates a contract from its text.

        Raises ``OutcomeError`` with the field path at fault.
        """
    @property
    def id(self) -> str:
        """The contract's id."""
    @property
    def customer(self) -> str:
        """The customer it bills."""
    @property
    def currency(self) -> str:
        """The ISO 4217 code of its currency."""
    @property
    def version(self) -> str:
        """The fingerprint of its settlement rules (64 hex digits)."""
    @property
    def periods(self) -> List[Tuple[datetime.date, datetime.date]]:
        """The billing periods as ``(start, end)``, ``end`` exclusive."""
    def settle(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
        trace: bool = True,
    ) -> List[Statement]:
        """Settles the periods due, as ``outcome settle --format json`` does.

        Give the metric data as ``rows`` (row dicts, a pyarrow Table or a
        pandas DataFrame with the metric CSV's columns) or ``csv`` (a file's
        path). ``as_of`` reads only what was known then
        and settles the periods it ended (default: every row, periods ended
        by now); ``period`` settles only the period starting that day. The
        GIL is released while the library settles.

        Raises ``OutcomeError``: a malformed row at ``FILE:LINE:COLUMN``, a
        float value, a settlement that fails.
        """
    def settle_csv_text(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
    ) -> str:
        """``outcome settle --format csv`` byte for byte, header included."""
    def settle_table(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
    ) -> Any:
        """The lines of ``outcome settle --format csv`` as a ``pyarrow.Table``.

        Columns ``contract``, ``period_start``, ``period_end`` (``date32``),
        ``charge``, ``kind``, ``quantity``, ``amount`` (exact decimals at the
        column's largest scale; ``quantity`` null where the kind has none),
        ``group``. Needs pyarrow.
        """

class RunDocument(TypedDict, total=False):
    contract: str
    """The contract's id."""
    currency: str
    statements: List[Statement]
    total: Decimal
    error: str
    """Only for a contract that failed (then no currency, statements or total)."""

class BillingRun:
    """Many contracts settled on one read of the metric data, in parallel:
    what ``outcome settle DIR`` does."""

    def __init__(self, contracts: Sequence[Contract]) -> None:
        """A run of these contracts; two with one id raise ``OutcomeError``."""
    def __len__(self) -> int: ...
    @property
    def ids(self) -> List[str]:
        """The contracts' ids, in the byte order the run settles them."""
    def settle(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
        trace: bool = True,
    ) -> List[RunDocument]:
        """One document per contract in id order; a failed one is ``{"contract", "error"}``."""
    def settle_csv_text(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
        errors: Literal["raise", "skip"] = "raise",
    ) -> str:
        """``outcome settle DIR --format csv`` byte for byte.

        A contract that fails raises ``OutcomeError`` (``e.contract`` names
        it) under ``errors="raise"``, and has no rows under ``"skip"``.
        """
    def settle_table(
        self,
        rows: Optional[_Rows] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
        errors: Literal["raise", "skip"] = "raise",
    ) -> Any:
        """The lines of ``settle_csv_text`` as a ``pyarrow.Table``."""

class Scenario:
    """A scenario for ``simulate``, ``compare`` and ``sweep``: a model per series."""

    def __init__(self) -> None:
        """No series: the contract's whole term, no value but a sweep's."""
    @staticmethod
    def from_path(path: _Path) -> "Scenario":
        """Reads a scenario file (TOML); raises ``OutcomeError`` with the field at fault."""
    @staticmethod
    def from_str(text: str) -> "Scenario":
        """Reads a scenario from its TOML text."""
    @property
    def is_random(self) -> bool:
        """Whether a series is drawn at random."""

class Stats(TypedDict):
    mean: Decimal
    p5: Decimal
    p50: Decimal
    p95: Decimal

class Summary(TypedDict):
    charges: Dict[str, Stats]
    total: Stats
    limits: Dict[str, Decimal]
    """The share of runs in which each limit added a line (4 places)."""

class PeriodSummary(Summary):
    period: Period

class SimulationReport(TypedDict):
    contract: str
    currency: str
    runs: int
    seed: int
    periods: List[PeriodSummary]
    term: Summary

class Difference(TypedDict):
    contract: str
    mean: Decimal
    p5: Decimal
    p50: Decimal
    p95: Decimal
    larger: Decimal
    """The share of runs in which this contract costs more than the first."""

class Comparison(TypedDict):
    contracts: List[SimulationReport]
    difference: List[Difference]

class SweepLevel(TypedDict):
    level: Decimal
    totals: Dict[str, Decimal]

class BreakEven(TypedDict):
    contracts: List[str]
    level: Decimal

class SweepReport(TypedDict):
    series: str
    levels: List[SweepLevel]
    break_even: List[BreakEven]

def simulate(
    contract: Contract,
    scenario: Scenario,
    *,
    runs: int = 1000,
    seed: int = 0,
    threads: Optional[int] = None,
    plot: Optional[_Path] = None,
) -> SimulationReport:
    """``outcome simulate --format json`` as Python data; ``plot`` writes the SVG chart.

    The GIL is released while the runs settle.
    """

def compare(
    contracts: Sequence[Contract],
    scenario: Optional[Scenario] = None,
    *,
    rows: Optional[_Rows] = None,
    csv: Optional[_Path] = None,
    as_of: Optional[_Instant] = None,
    runs: int = 1000,
    seed: int = 0,
    threads: Optional[int] = None,
    plot: Optional[_Path] = None,
) -> Comparison:
    """``outcome compare --format json`` on a scenario, or on history (``rows`` or ``csv``)."""

def sweep(
    contracts: Sequence[Contract],
    metric: str,
    from_: _Level,
    to: _Level,
    *,
    steps: int = 10,
    scenario: Optional[Scenario] = None,
    rows: Optional[_Rows] = None,
    csv: Optional[_Path] = None,
    as_of: Optional[_Instant] = None,
    runs: int = 1000,
    seed: int = 0,
    threads: Optional[int] = None,
    plot: Optional[_Path] = None,
) -> SweepReport:
    """``outcome sweep --format json``: each contract at ``steps + 1`` levels of ``metric``."""
