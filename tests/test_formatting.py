"""French number and date formatting."""

from __future__ import annotations

from datetime import date

import pytest

from webapp.formatting import date_fr
from webapp.formatting import nombre
from webapp.formatting import pourcent


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (12345, 0, "12\u202f345"),
        (1234.56, 1, "1\u202f234,6"),
        (0.5, 2, "0,50"),
        (-1500, 0, "-1\u202f500"),
        (None, 0, "–"),
        (float("nan"), 1, "–"),
    ],
)
def test_nombre(value, decimals, expected):
    assert nombre(value, decimals) == expected


def test_pourcent():
    assert pourcent(0.1234) == "12,3\u00a0%"
    assert pourcent(None) == "–"


def test_date_fr():
    assert date_fr(date(2026, 1, 1)) == "1er janvier 2026"
    assert date_fr("2026-10-31T00:00:00+00:00") == "31 octobre 2026"
    assert date_fr(None) == "–"
