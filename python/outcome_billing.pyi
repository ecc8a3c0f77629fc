"""Outcome-based contracts settled in exact decimal money.

Every amount, quantity and trace value is a ``decimal.Decimal`` built from
the exact text the Rust library computed, never a float; metric values given
as floats are refused. Every bad input raises ``OutcomeError``.
"""

import datetime
import os
from decimal import Decimal
from typing import Iterable, List, Literal, Mapping, Optional, Tuple, TypedDict, Union

__version__: str

_Date = Union[str, datetime.date]
_Instant = Union[str, datetime.date, datetime.datetime]
_Path = Union[str, "os.PathLike[str]"]
_Cell = Union[str, int, Decimal, bool, datetime.date, datetime.datetime, None]

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

class Statement(TypedDict):
    period: Period
    lines: List[Line]
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
        rows: Optional[Iterable[Mapping[str, _Cell]]] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
        trace: bool = True,
    ) -> List[Statement]:
        """Settles the periods due, as ``outcome settle --format json`` does.

        Give the metric data as ``rows`` (dicts with the metric CSV's columns)
        or ``csv`` (a file's path). ``as_of`` reads only what was known then
        and settles the periods it ended (default: every row, periods ended
        by now); ``period`` settles only the period starting that day. The
        GIL is released while the library settles.

        Raises ``OutcomeError``: a malformed row at ``FILE:LINE:COLUMN``, a
        float value, a settlement that fails.
        """
    def settle_csv_text(
        self,
        rows: Optional[Iterable[Mapping[str, _Cell]]] = None,
        csv: Optional[_Path] = None,
        as_of: Optional[_Instant] = None,
        period: Optional[_Date] = None,
    ) -> str:
        """``outcome settle --format csv`` byte for byte, header included."""
