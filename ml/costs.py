"""Annual energy cost estimate from predicted primary energy, per heating carrier.

The estimate converts the predicted primary energy of the 5 uses into final energy
with the primary-energy factor of the main heating carrier (electricity 1.9 since
1 January 2026, every other carrier 1), then prices the whole final energy at that
carrier's price per kWh. It ignores subscriptions and the electricity used by the
other uses of a non-electric home, so it is an order of magnitude, not a bill; the
training report measures it against the DPE's own `cout_total_5_usages`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from webapp import rules


@dataclass(frozen=True)
class Price:
    """A consumption price in € per kWh of final energy (taxes included)."""

    eur_per_kwh: float
    date: str
    source: str


#: Prices per ADEME heating-energy label. Consumption part only, no subscription.
PRICES: dict[str, Price] = {
    "Électricité": Price(
        0.2016,
        "2025-02-01",
        "tarif réglementé (tarif Bleu) option base au 1er février 2025",
    ),
    "Gaz naturel": Price(
        0.1033,
        "2025-10-01",
        "prix repère de vente du gaz de la CRE, usage chauffage, octobre 2025",
    ),
    "Fioul domestique": Price(
        0.1154,
        "2025-06-30",
        "indice des prix des énergies Propellet, 2e trimestre 2025",
    ),
    "GPL": Price(
        0.1765,
        "2025-06-30",
        "indice des prix des énergies Propellet, 2e trimestre 2025 (propane)",
    ),
    "Bois – Granulés (pellets) ou briquettes": Price(
        0.075,
        "2025-06-30",
        "indice des prix des énergies Propellet, 2e trimestre 2025 (vrac)",
    ),
    # No dated price of logs was at hand: the pellet price stands in for it, which
    # overstates the cost of log heating rather than understating it.
    "Bois – Bûches": Price(
        0.075,
        "2025-06-30",
        "prix des granulés (Propellet, 2e trimestre 2025) faute de prix daté des "
        "bûches",
    ),
    "Réseau de Chauffage urbain": Price(
        0.0825,
        "2014-12-31",
        "prix moyen de vente de la chaleur des réseaux en 2014, TTC (SDES) : "
        "ancien, à actualiser",
    ),
}

#: Carrier whose primary-energy factor differs from 1.
ELECTRICITY = "Électricité"


def final_energy(ep_kwh: float, energie: str | None) -> float:
    """Return final energy (kWh) from primary energy with the carrier's factor."""
    factor = rules.ELEC_FACTOR_2026 if energie == ELECTRICITY else 1.0
    return ep_kwh / factor


def annual_cost(ep_kwh: float, energie: str | None) -> float | None:
    """Return the estimated annual cost in € of a dwelling's 5 uses, or None."""
    price = PRICES.get(energie or "")
    if price is None:
        return None
    return final_energy(ep_kwh, energie) * price.eur_per_kwh


def price_table() -> dict[str, dict]:
    """Return the price constants as a JSON-ready table (for the model card)."""
    return {
        name: {"eur_per_kwh": p.eur_per_kwh, "date": p.date, "source": p.source}
        for name, p in PRICES.items()
    }


def compare_with_dpe(
    conso_ep_m2: Iterable[float],
    surface: Iterable[float],
    energies: Iterable[str | None],
    actual: np.ndarray,
) -> dict:
    """Compare the cost estimates of predicted EP/m² with the DPE's own costs."""
    estimate = np.array(
        [
            np.nan if cost is None else cost
            for cost in (
                annual_cost(ep * s, e)
                for ep, s, e in zip(conso_ep_m2, surface, energies, strict=True)
            )
        ]
    )
    keep = np.isfinite(estimate) & np.isfinite(actual) & (actual > 0)
    if not keep.any():
        return {"n": 0, "mae_eur": None, "median_ratio_estimate_to_dpe": None}
    return {
        "n": int(keep.sum()),
        "mae_eur": round(float(np.mean(np.abs(estimate[keep] - actual[keep]))), 1),
        "median_ratio_estimate_to_dpe": round(
            float(np.median(estimate[keep] / actual[keep])), 3
        ),
    }
