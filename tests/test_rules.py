"""Tests for the DPE label rules in webapp.rules."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from webapp import rules

CURRENT = date(2025, 3, 1)
BEFORE_SMALL = date(2024, 6, 30)
HIGH = {"zone_climatique": "H1c", "classe_altitude": "supérieur à 800m"}

BASE_EP_CASES = [
    (69.9, "A"),
    (70, "B"),
    (109.9, "B"),
    (110, "C"),
    (179.9, "C"),
    (180, "D"),
    (249.9, "D"),
    (250, "E"),
    (329.9, "E"),
    (330, "F"),
    (419.9, "F"),
    (420, "G"),
    (0, "A"),
    (999, "G"),
]
BASE_GES_CASES = [
    (5.9, "A"),
    (6, "B"),
    (10.9, "B"),
    (11, "C"),
    (29.9, "C"),
    (30, "D"),
    (49.9, "D"),
    (50, "E"),
    (69.9, "E"),
    (70, "F"),
    (99.9, "F"),
    (100, "G"),
]


@pytest.mark.parametrize(
    ("ep", "expected"), BASE_EP_CASES, ids=[f"ep{v}" for v, _ in BASE_EP_CASES]
)
def test_base_energy_bounds(ep, expected):
    assert rules.classe_energie(ep, surface=80, date_dpe=CURRENT) == expected
    assert rules.classe_energie(ep) == expected


@pytest.mark.parametrize(
    ("ges", "expected"), BASE_GES_CASES, ids=[f"ges{v}" for v, _ in BASE_GES_CASES]
)
def test_base_ges_bounds(ges, expected):
    assert rules.classe_ges(ges, surface=80, date_dpe=CURRENT) == expected


HIGH_EP_CASES = [
    (249.9, "D"),
    (250, "E"),
    (389.9, "E"),
    (390, "F"),
    (499.9, "F"),
    (500, "G"),
]
HIGH_GES_CASES = [
    (49.9, "D"),
    (50, "E"),
    (79.9, "E"),
    (80, "F"),
    (109.9, "F"),
    (110, "G"),
]


@pytest.mark.parametrize(
    ("ep", "expected"), HIGH_EP_CASES, ids=[f"ep{v}" for v, _ in HIGH_EP_CASES]
)
@pytest.mark.parametrize("zone", ["H1b", "H1c", "H2d"])
def test_high_altitude_energy_bounds(ep, expected, zone):
    ctx = {"zone_climatique": zone, "classe_altitude": "supérieur à 800m"}
    assert rules.classe_energie(ep, surface=80, **ctx) == expected


@pytest.mark.parametrize(
    ("ges", "expected"), HIGH_GES_CASES, ids=[f"ges{v}" for v, _ in HIGH_GES_CASES]
)
def test_high_altitude_ges_bounds(ges, expected):
    assert rules.classe_ges(ges, surface=80, **HIGH) == expected


@pytest.mark.parametrize(
    ("zone", "classe"),
    [
        ("H2a", "supérieur à 800m"),
        ("H1c", "400-800m"),
        ("H1c", "inférieur à 400m"),
        ("H1c", None),
        (None, "supérieur à 800m"),
        ("H3", "supérieur à 800m"),
    ],
    ids=["H2a-high", "H1c-mid", "H1c-low", "H1c-unknown", "no-zone", "H3-high"],
)
def test_altitude_adjustment_needs_zone_and_class(zone, classe):
    bounds = rules.thresholds(80, zone, classe, CURRENT)
    assert bounds == rules.Thresholds(ep=rules.BASE_EP, ges=rules.BASE_GES)
    assert (
        rules.classe_energie(
            390, surface=80, zone_climatique=zone, classe_altitude=classe
        )
        == "F"
    )


@pytest.mark.parametrize(
    "spelling",
    ["supérieur à 800m", "superieur a 800m", "SUPERIEUR A 800M", "Supérieur à 800 m"],
)
@pytest.mark.parametrize("zone", ["H1c", "h1c", "H1C", " H1c "])
def test_enums_compare_accent_and_case_insensitively(spelling, zone):
    assert rules.normalise_classe_altitude(spelling) == "supérieur à 800m"
    assert rules.normalise_zone(zone) == "H1c"
    assert rules.thresholds(80, zone, spelling).ep[4:] == (390, 500)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inferieur a 400m", "inférieur à 400m"),
        ("Inférieur à 400m", "inférieur à 400m"),
        ("400-800m", "400-800m"),
        ("400 - 800 m", "400-800m"),
        ("Non affecté", None),
        (None, None),
        (float("nan"), None),
    ],
    ids=["ascii-low", "capital-low", "mid", "mid-spaces", "unassigned", "none", "nan"],
)
def test_normalise_classe_altitude(value, expected):
    assert rules.normalise_classe_altitude(value) == expected


@pytest.mark.parametrize(
    ("metres", "expected"),
    [
        (0, "inférieur à 400m"),
        (399.9, "inférieur à 400m"),
        (400, "400-800m"),
        (800, "400-800m"),
        (800.1, "supérieur à 800m"),
        (2445, "supérieur à 800m"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_classe_altitude_from_altitude(metres, expected):
    assert rules.classe_altitude_from_altitude(metres) == expected


@pytest.mark.parametrize(
    ("function", "value"),
    [
        (rules.normalise_zone, "H4"),
        (rules.normalise_classe_altitude, "au-dessus de 900m"),
        (rules.normalise_label, "H"),
        (rules.is_passoire, "AA"),
    ],
    ids=["zone", "altitude", "label", "passoire"],
)
def test_unknown_enum_raises_with_allowed_values(function, value):
    with pytest.raises(ValueError) as excinfo:
        function(value)
    message = str(excinfo.value)
    assert repr(value) in message
    assert "allowed" in message


def test_unknown_zone_in_label_call_raises():
    with pytest.raises(ValueError, match="H1c"):
        rules.etiquette_dpe(100, 5, zone_climatique="Z9")


def test_nan_value_raises():
    with pytest.raises(ValueError, match="ep"):
        rules.classe_energie(float("nan"))


# Tabulated small-dwelling rows: Sref -> (EP A..F, GHG A..F, high EP E/F, GHG E/F).
SMALL_ROWS = [
    (
        8,
        (146, 186, 386, 505, 622, 739),
        (11, 16, 44, 68, 90, 122),
        (682, 819),
        (100, 132),
    ),
    (
        10,
        (124, 164, 329, 428, 533, 640),
        (10, 15, 40, 62, 84, 115),
        (593, 720),
        (94, 125),
    ),
    (
        15,
        (100, 140, 263, 333, 421, 514),
        (8, 13, 36, 56, 76, 107),
        (481, 594),
        (86, 117),
    ),
    (
        20,
        (88, 128, 230, 300, 385, 476),
        (8, 13, 34, 54, 74, 104),
        (445, 556),
        (84, 114),
    ),
    (
        25,
        (81, 121, 210, 280, 363, 454),
        (7, 12, 32, 52, 73, 103),
        (423, 534),
        (83, 113),
    ),
    (
        30,
        (76, 116, 197, 267, 349, 439),
        (7, 12, 32, 52, 72, 102),
        (409, 519),
        (82, 112),
    ),
    (
        35,
        (73, 113, 188, 258, 338, 428),
        (7, 12, 31, 51, 71, 101),
        (398, 508),
        (81, 111),
    ),
    (
        39,
        (71, 111, 182, 252, 332, 422),
        (7, 12, 31, 51, 71, 101),
        (392, 502),
        (81, 111),
    ),
    (
        40,
        (70, 110, 180, 250, 330, 420),
        (6, 11, 30, 50, 70, 100),
        (390, 500),
        (80, 110),
    ),
]


@pytest.mark.parametrize(
    ("sref", "ep", "ges", "ep_high", "ges_high"),
    SMALL_ROWS,
    ids=[f"{row[0]}m2" for row in SMALL_ROWS],
)
def test_small_surface_rows(sref, ep, ges, ep_high, ges_high):
    assert rules.thresholds(sref, date_dpe=CURRENT) == rules.Thresholds(ep, ges)
    high = rules.thresholds(sref, date_dpe=CURRENT, **HIGH)
    assert high.ep == (*ep[:4], *ep_high)
    assert high.ges == (*ges[:4], *ges_high)


@pytest.mark.parametrize(
    ("sref", "ep", "ges", "_ep_high", "_ges_high"),
    SMALL_ROWS,
    ids=[f"{row[0]}m2" for row in SMALL_ROWS],
)
def test_small_surface_label_boundaries(sref, ep, ges, _ep_high, _ges_high):
    for index, bound in enumerate(ep):
        below = rules.classe_energie(bound - 0.1, surface=sref, date_dpe=CURRENT)
        at = rules.classe_energie(bound, surface=sref, date_dpe=CURRENT)
        assert (below, at) == (rules.LABELS[index], rules.LABELS[index + 1])
    for index, bound in enumerate(ges):
        below = rules.classe_ges(bound - 0.1, surface=sref, date_dpe=CURRENT)
        at = rules.classe_ges(bound, surface=sref, date_dpe=CURRENT)
        assert (below, at) == (rules.LABELS[index], rules.LABELS[index + 1])


def test_small_surface_interpolates_between_rows():
    bounds = rules.thresholds(12, date_dpe=CURRENT)
    # 12 m² sits 2/5 of the way from the 10 m² row to the 15 m² row.
    assert bounds.ep == pytest.approx((114.4, 154.4, 302.6, 390.0, 488.2, 589.6))
    assert bounds.ges == pytest.approx((9.2, 14.2, 38.4, 59.6, 80.8, 111.8))
    high = rules.thresholds(12, date_dpe=CURRENT, **HIGH)
    assert high.ep[4:] == pytest.approx((548.2, 669.6))
    assert high.ges[4:] == pytest.approx((90.8, 121.8))


@pytest.mark.parametrize(
    ("surface", "expected_sref"),
    [
        (1, 8),
        (5.5, 8),
        (7.4, 8),
        (8.4, 8),
        (9.6, 10),
        (39.4, 39),
        (39.5, 40),
        (120, 40),
    ],
)
def test_small_surface_rounding_and_floor(surface, expected_sref):
    expected = rules.thresholds(expected_sref, date_dpe=CURRENT)
    assert rules.thresholds(surface, date_dpe=CURRENT) == expected


@pytest.mark.parametrize(
    "date_dpe",
    [BEFORE_SMALL, "2024-06-30", date(2021, 7, 1)],
    ids=["date", "iso", "2021"],
)
def test_small_surface_before_july_2024_keeps_base(date_dpe):
    assert rules.thresholds(15, date_dpe=date_dpe).ep == rules.BASE_EP
    assert rules.etiquette_dpe(110, 12, surface=15, date_dpe=date_dpe) == "C"


def test_small_surface_from_july_2024_and_unknown_date():
    assert rules.etiquette_dpe(110, 12, surface=15, date_dpe="2024-07-01") == "B"
    # An unknown date is read as a current DPE.
    assert rules.etiquette_dpe(110, 12, surface=15) == "B"


@pytest.mark.parametrize("surface", [None, float("nan"), 0, -3])
def test_unusable_surface_uses_base(surface):
    assert rules.thresholds(surface, date_dpe=CURRENT).ep == rules.BASE_EP


@pytest.mark.parametrize(
    ("ep", "ges", "expected"),
    [
        (60, 5, "A"),
        (60, 45, "D"),
        (300, 5, "E"),
        (300, 75, "F"),
        (150, 120, "G"),
        (500, 2, "G"),
        (109.9, 10.9, "B"),
        (110, 10.9, "C"),
        (109.9, 11, "C"),
    ],
    ids=[
        "both-A",
        "ges-worse",
        "ep-worse",
        "mixed",
        "ges-G",
        "ep-G",
        "B-B",
        "C-B",
        "B-C",
    ],
)
def test_double_threshold_takes_worse(ep, ges, expected):
    assert rules.etiquette_dpe(ep, ges, surface=70, date_dpe=CURRENT) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [("A", False), ("D", False), ("E", False), ("F", True), ("G", True), ("g", True)],
)
def test_is_passoire(label, expected):
    assert rules.is_passoire(label) is expected


def test_label_colours_cover_every_label():
    assert tuple(rules.LABEL_COLORS) == rules.LABELS
    assert all(c.startswith("#") and len(c) == 7 for c in rules.LABEL_COLORS.values())


@pytest.mark.parametrize(
    ("ep", "ef", "expected"),
    [
        (230, 100, 190),  # all-electric: 2.3 x 100 becomes 1.9 x 100
        (150, 150, 150),  # no electricity: unchanged
        (300, 200, 200 + 100 * 0.9 / 1.3),
    ],
    ids=["electric", "gas", "mixed"],
)
def test_project_ep_2026(ep, ef, expected):
    assert rules.project_ep_2026(ep, ef) == pytest.approx(expected)


def test_project_ep_2026_on_arrays():
    result = rules.project_ep_2026(np.array([230.0, 150.0]), np.array([100.0, 150.0]))
    np.testing.assert_allclose(result, [190.0, 150.0])


@pytest.mark.parametrize(
    ("date_dpe", "expected"),
    [(date(2025, 12, 31), 2.3), (date(2026, 1, 1), 1.9), (None, 1.9)],
)
def test_electricity_factor(date_dpe, expected):
    assert rules.electricity_factor(date_dpe) == expected


@pytest.mark.parametrize(
    ("ep", "ges", "ctx", "expected"),
    [
        (60, 5, {}, rules.NextClassGap("A", None, 0.0, 0.0)),
        (260.3, 12, {}, rules.NextClassGap("E", "D", 10.4, 0.0)),
        (250, 50, {}, rules.NextClassGap("E", "D", 0.1, 0.1)),
        (100, 40, {}, rules.NextClassGap("D", "C", 0.0, 10.1)),
        (450, 120, {}, rules.NextClassGap("G", "F", 30.1, 20.1)),
        (450, 20, HIGH, rules.NextClassGap("F", "E", 60.1, 0.0)),
        (
            130,
            10,
            {"surface": 15, "date_dpe": CURRENT},
            rules.NextClassGap("B", "A", 30.1, 2.1),
        ),
    ],
    ids=["A", "ep-only", "both-at-bound", "ges-only", "G", "high-altitude", "small"],
)
def test_distance_to_next_class(ep, ges, ctx, expected):
    gap = rules.distance_to_next_class(ep, ges, **ctx)
    assert gap == expected
    if gap.target is not None:
        improved = rules.etiquette_dpe(
            ep - gap.ep_reduction, ges - gap.ges_reduction, **ctx
        )
        assert improved == gap.target


@pytest.mark.parametrize(
    ("label", "on", "expected"),
    [
        (
            "G",
            date(2024, 12, 31),
            (
                False,
                date(2025, 1, 1),
                "Interdit à la location à partir du 1er janvier 2025",
            ),
        ),
        (
            "G",
            date(2025, 1, 1),
            (
                True,
                date(2025, 1, 1),
                "Interdit à la location depuis le 1er janvier 2025",
            ),
        ),
        (
            "F",
            date(2027, 12, 31),
            (
                False,
                date(2028, 1, 1),
                "Interdit à la location à partir du 1er janvier 2028",
            ),
        ),
        (
            "F",
            date(2028, 1, 1),
            (
                True,
                date(2028, 1, 1),
                "Interdit à la location depuis le 1er janvier 2028",
            ),
        ),
        (
            "E",
            date(2033, 12, 31),
            (
                False,
                date(2034, 1, 1),
                "Interdit à la location à partir du 1er janvier 2034",
            ),
        ),
        (
            "E",
            date(2034, 1, 1),
            (
                True,
                date(2034, 1, 1),
                "Interdit à la location depuis le 1er janvier 2034",
            ),
        ),
        (
            "D",
            date(2040, 1, 1),
            (False, None, "Aucune interdiction de location prévue"),
        ),
    ],
    ids=["G-eve", "G-day", "F-eve", "F-day", "E-eve", "E-day", "D"],
)
def test_rental_status(label, on, expected):
    assert tuple(rules.rental_status(label, on)) == expected


@pytest.mark.parametrize(
    ("ef", "on", "banned"),
    [
        (450, date(2024, 1, 1), False),
        (450.1, date(2024, 1, 1), True),
        (500, date(2022, 12, 31), False),
        (None, date(2024, 1, 1), False),
    ],
    ids=["at-limit", "above", "before-2023", "unknown"],
)
def test_indecency_rule(ef, on, banned):
    status = rules.rental_status("E", on, ef_par_m2=ef)
    assert status.banned is banned
    if banned:
        assert status.since_or_from == rules.INDECENCY_DATE
        assert "450" in status.message_fr


def _random_grid(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ep": rng.uniform(0, 900, n).round(1),
            "ges": rng.uniform(0, 160, n).round(1),
            "surface": rng.uniform(3, 80, n).round(1),
            "zone": rng.choice(["H1c", "H2a", "h1b", "H2D", "H3"], n),
            "classe": rng.choice(
                [
                    "supérieur à 800m",
                    "superieur a 800m",
                    "400-800m",
                    "inférieur à 400m",
                    None,
                ],
                n,
            ),
            "date": rng.choice(
                [
                    date(2022, 5, 3),
                    date(2024, 6, 30),
                    date(2024, 7, 1),
                    date(2026, 2, 1),
                    None,
                ],
                n,
            ),
        }
    )


def test_vectorised_matches_scalar_on_random_grid():
    grid = _random_grid(3000, seed=20240701)
    # Put some values exactly on bounds, where off-by-one errors show.
    grid.loc[:99, "ep"] = np.resize(rules.BASE_EP + rules.HIGH_ALTITUDE_EP_EF, 100)
    grid.loc[:99, "ges"] = np.resize(rules.BASE_GES + rules.HIGH_ALTITUDE_GES_EF, 100)
    vector = rules.etiquette_dpe_array(
        grid.ep, grid.ges, grid.surface, grid.zone, grid.classe, grid.date
    )
    ges_vector = rules.classe_ges_array(
        grid.ges, grid.surface, grid.zone, grid.classe, grid.date
    )
    scalar = [
        rules.etiquette_dpe(
            r.ep,
            r.ges,
            surface=r.surface,
            zone_climatique=r.zone,
            classe_altitude=r.classe,
            date_dpe=r.date,
        )
        for r in grid.itertuples()
    ]
    ges_scalar = [
        rules.classe_ges(
            r.ges,
            surface=r.surface,
            zone_climatique=r.zone,
            classe_altitude=r.classe,
            date_dpe=r.date,
        )
        for r in grid.itertuples()
    ]
    assert list(vector) == scalar
    assert list(ges_vector) == ges_scalar
    assert len(set(scalar)) == len(rules.LABELS)


def test_vectorised_accepts_scalar_context_and_missing_values():
    labels = rules.etiquette_dpe_array(
        [100, np.nan, 400],
        [5, 5, np.nan],
        surface=None,
        zone="H1c",
        classe_altitude="400-800m",
        date=None,
    )
    assert list(labels) == ["B", None, None]


def test_vectorised_rejects_unknown_zone():
    with pytest.raises(ValueError, match="Z9"):
        rules.etiquette_dpe_array([100], [5], zone=["Z9"])


def test_vectorised_accepts_iso_strings_and_datetimes():
    dates = pd.Series(["2024-06-30", "2024-07-01"])
    labels = rules.etiquette_dpe_array(
        [110, 110], [12, 12], [15, 15], "H1c", "400-800m", dates
    )
    assert list(labels) == ["C", "B"]
    labels = rules.etiquette_dpe_array(
        [110, 110], [12, 12], [15, 15], "H1c", "400-800m", pd.to_datetime(dates)
    )
    assert list(labels) == ["C", "B"]


def test_passoire_share():
    assert rules.passoire_share(["A", "F", "G", None, "C"]) == 0.5
    assert np.isnan(rules.passoire_share([]))


def test_format_date_fr():
    assert rules.format_date_fr(date(2028, 1, 1)) == "1er janvier 2028"
    assert rules.format_date_fr(date(2022, 8, 24)) == "24 août 2022"


@pytest.mark.parametrize("bad", ["01/07/2024", "2024-13-01", "juillet 2024"])
def test_non_iso_date_strings_raise(bad):
    with pytest.raises(ValueError, match="ISO"):
        rules.thresholds(15, date_dpe=bad)
    with pytest.raises(ValueError, match="ISO"):
        rules.etiquette_dpe_array([110], [12], [15], "H1c", "400-800m", [bad])


def test_vectorised_dates_of_every_kind():
    dates = [
        "2024-06-30",
        date(2024, 7, 1),
        pd.Timestamp("2024-06-30"),
        np.datetime64("2024-07-01"),
        None,
        "",
    ]
    labels = rules.etiquette_dpe_array(
        [110] * 6, [12] * 6, [15] * 6, "H1c", "400-800m", dates
    )
    assert list(labels) == ["C", "B", "C", "B", "B", "B"]
    scalar = [rules.etiquette_dpe(110, 12, surface=15, date_dpe=d) for d in dates]
    assert scalar == list(labels)
