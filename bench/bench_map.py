"""Benchmark of the map page: server time and size of the map and table fragments.

Three datasets: the shipped demo data (Haute-Savoie), a 10x larger generated
demo dataset, and a generated national dataset of about 35,000 communes (the
communes table and the per-commune Enedis aggregates, written to a temporary
volume in the store's column names). The floor of each map is Plotly itself:
building and serialising a plain figure of the same points (coordinates, names,
colour, size) with `to_html`, measured in the same run. `encoding_study` then
re-encodes the national and 10x commune fragments in the alternatives the map
code decided against (points by code, typed arrays, other gzip levels) and
reports their sizes, so those choices rest on figures of the same run.

Run alone with ``python -m bench.bench_map`` (prints JSON), or with the others
through ``python -m bench``.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

logger = logging.getLogger("bench.map")

#: Goals of issue 8: p50 at most 3x the Plotly floor, at most 2x growth on 10x data.
FLOOR_FACTOR_GOAL = 3.0
GROWTH_GOAL = 2.0
#: Size goals: Haute-Savoie view (raw) and France view (gzip, as transferred).
HAUTE_SAVOIE_MAX_BYTES = 80 * 1024
FRANCE_MAX_GZIP_BYTES = 600 * 1024

#: Number of communes of the generated national dataset.
NATIONAL_COMMUNES = 35_000
YEARS = tuple(range(2018, 2025))

_SYLLABLES = (
    "ba bel bon bour ca cha champ che cour de fon font gar gny la lan le lin lon "
    "ma mar mont mou na neu pa pier pon ré ri roc sa saint sau ser ta ter tour val "
    "ven vil ville vy"
).split()


# --------------------------------------------------------------------------- data


def national_frames(
    n: int = NATIONAL_COMMUNES, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a synthetic national communes table and Enedis per-commune frame."""
    rng = np.random.default_rng(seed)
    departements = [f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"]
    centres = {
        d: (rng.uniform(43.0, 50.5), rng.uniform(-3.8, 7.5)) for d in departements
    }
    dep = np.array(departements)[rng.integers(0, len(departements), n)]
    dep = np.sort(dep)
    numbers = pd.Series(dep).groupby(dep).cumcount().to_numpy() + 1
    codes = [f"{d}{k:03d}" for d, k in zip(dep, numbers, strict=True)]
    names = [
        "-".join(
            "".join(rng.choice(_SYLLABLES, rng.integers(2, 4))).capitalize()
            for _ in range(rng.integers(1, 3))
        )
        for _ in range(n)
    ]
    lat = np.array([centres[d][0] for d in dep]) + rng.normal(0, 0.25, n)
    lon = np.array([centres[d][1] for d in dep]) + rng.normal(0, 0.35, n)
    altitude = np.round(rng.gamma(2.0, 180.0, n))
    communes = pd.DataFrame(
        {
            "code_insee": codes,
            "nom_standard": names,
            "dep_code": dep,
            "dep_nom": [f"Département {d}" for d in dep],
            "reg_code": "00",
            "code_postal": [
                f"{d.replace('A', '0').replace('B', '0')}{k:03d}"
                for d, k in zip(dep, numbers, strict=True)
            ],
            "population": np.round(rng.lognormal(6.5, 1.4, n)),
            "codes_postaux": None,
            "densite": np.round(rng.lognormal(3.8, 1.5, n), 1),
            "altitude_moyenne": altitude,
            "altitude_minimale": altitude - 50,
            "altitude_maximale": altitude + 150,
            "latitude_centre": lat.round(5),
            "longitude_centre": lon.round(5),
        }
    )
    communes["codes_postaux"] = communes["code_postal"]
    rows = []
    dwellings = np.round(rng.lognormal(4.0, 1.3, n)) + 10
    per_site = rng.uniform(2.0, 8.0, n)
    for year in YEARS:
        drift = rng.lognormal(0, 0.03, n)
        rows.append(
            pd.DataFrame(
                {
                    "code_commune": codes,
                    "annee": year,
                    "nombre_de_logements": dwellings,
                    "conso_total_mwh": (dwellings * per_site * drift).round(3),
                }
            )
        )
    return communes, pd.concat(rows, ignore_index=True)


def _national_volume(folder: Path) -> Path:
    """Write the national frames where the store reads refreshed data."""
    from webapp.store import write_frame_csv

    communes, enedis_communes = national_frames()
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_frame_csv(data / "communes.csv", communes)
    write_frame_csv(data / "enedis_communes.csv", enedis_communes)
    return folder


def _scaled_initial(folder: Path, scale: float) -> Path:
    """Write a demo dataset `scale` times larger, with the initial file names."""
    from webapp import demo
    from webapp.store import INITIAL_DIR

    communes = demo.load_communes()
    dpe = demo.generate_dpe(communes, n=demo.N_DPE, seed=demo.SEED, scale=scale)
    enedis = demo.generate_enedis(communes, dpe, seed=demo.SEED)
    folder.mkdir(parents=True, exist_ok=True)
    demo.write_csv_gz(dpe, folder / "dpe-74.csv.gz")
    demo.write_csv_gz(enedis, folder / "enedis-74.csv.gz")
    for name in ("communes-74.csv", "properties.json"):
        shutil.copy(INITIAL_DIR / name, folder / name)
    return folder


# --------------------------------------------------------------------------- timing


def _interleaved(functions: dict[str, object], repeat: int) -> dict[str, list[float]]:
    """Time several callables in turns, so that they share the machine's load.

    The machine runs other work; timing A then B would compare two moments.
    """
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "runs": len(ordered),
    }


def _floor_builder(app, query: dict):
    """Return a function building and serialising the plain figure of the points."""
    from webapp import maps
    from webapp.store import get_store

    with app.test_request_context():
        data = get_store().aggregates["map"]
        filters = maps.parse_filters(query, data)
        frame = maps.map_frame(data, filters)

    def build():
        fig = go.Figure(
            go.Scattermap(
                lat=frame["latitude"].to_numpy(),
                lon=frame["longitude"].to_numpy(),
                text=frame["nom_commune"].astype(str).tolist(),
                marker={
                    "color": frame["conso_total_mwh"].to_numpy(),
                    "size": frame["nombre_de_logements"].to_numpy(),
                },
            )
        )
        fig.update_layout(map_style="open-street-map")
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id="floor")

    return build, int(len(frame))


def _requester(client, url: str):
    headers = {"HX-Request": "true", "Accept-Encoding": "gzip"}

    def get():
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return get


def _sizes(response) -> dict:
    body = response.get_data()
    raw = gzip.decompress(body) if response.content_encoding == "gzip" else body
    return {"bytes": len(raw), "gzip_bytes": len(body)}


def _scenario(
    apps: dict[str, object], views: dict[str, tuple[str, dict]], repeat: int
) -> dict:
    """Measure each view on every app, interleaved with its Plotly floor."""
    results: dict = {name: {} for name in apps}
    clients = {name: app.test_client() for name, app in apps.items()}
    for view, (url, floor_query) in views.items():
        functions = {}
        for name, client in clients.items():
            functions[(name, "fragment")] = _requester(client, url)
            if floor_query is not None:
                build, points = _floor_builder(apps[name], floor_query)
                functions[(name, "floor")] = build
                results[name].setdefault(view, {})["points"] = points
        times = _interleaved(functions, repeat)
        for name in apps:
            entry = results[name].setdefault(view, {})
            entry.update(url=url, **_summary(times[(name, "fragment")]))
            entry.update(_sizes(functions[(name, "fragment")]()))
            if (name, "floor") in times:
                floor_html = functions[(name, "floor")]().encode()
                entry["floor"] = {
                    **_summary(times[(name, "floor")]),
                    "bytes": len(floor_html),
                    "gzip_bytes": len(gzip.compress(floor_html, 5)),
                }
                entry["x_floor"] = round(entry["p50_ms"] / entry["floor"]["p50_ms"], 2)
            logger.info("%s %s: %s", name, view, json.dumps(entry))
    return results


# --------------------------------------------------------------------------- encodings


def _figure_parts(html: str) -> tuple[str, list, str]:
    """Split a map fragment around the JSON list of its traces."""
    start = html.index("[", html.index("Plotly.newPlot("))
    traces, end = json.JSONDecoder().raw_decode(html, start)
    return html[:start], traces, html[end:]


def _typed(values: list, dtype: str) -> dict:
    """Plotly's base64 typed-array spec of plain values (None as NaN)."""
    array = np.array([np.nan if v is None else v for v in values], dtype="float64")
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    spec = {"dtype": dtype, "bdata": base64.b64encode(data.tobytes()).decode()}
    if array.ndim == 2:
        spec["shape"] = f"{array.shape[0]},{array.shape[1]}"
    return spec


def _reorder(trace: dict, order: list[int]) -> None:
    for key in ("lat", "lon", "text", "customdata", "hovertext"):
        if isinstance(trace.get(key), list):
            trace[key] = [trace[key][i] for i in order]
    for key in ("size", "color"):
        if isinstance(trace["marker"].get(key), list):
            trace["marker"][key] = [trace["marker"][key][i] for i in order]


def _by_code(trace: dict) -> None:
    """Points listed by INSEE code (the order of the data) instead of position."""
    codes = [text.rsplit("(", 1)[-1] for text in trace["text"]]
    _reorder(trace, sorted(range(len(codes)), key=codes.__getitem__))


def _hovertext_in_customdata(trace: dict) -> None:
    """The hovertext numbers back as the last customdata column."""
    if trace.get("hovertext") and not isinstance(trace["hovertext"][0], str):
        trace["customdata"] = [
            [*row, value]
            for row, value in zip(
                trace["customdata"], trace.pop("hovertext"), strict=True
            )
        ]


def _variant_sizes(html: str, variants: dict, trace_index: int) -> dict:
    """Raw and gzip (level 5, as web.py) sizes of the fragment per variant."""
    from plotly.io.json import to_json_plotly

    from webapp.maps import _unescape_letters

    head, traces, tail = _figure_parts(html)
    sizes = {}
    for name, change in variants.items():
        changed = json.loads(json.dumps(traces))
        if change is not None:
            change(changed[trace_index])
        # Written as figure_html writes it (plotly's escapes, then UTF-8 letters).
        body = (head + _unescape_letters(to_json_plotly(changed)) + tail).encode()
        sizes[name] = {"bytes": len(body), "gzip_bytes": len(gzip.compress(body, 5))}
    return sizes


def _gzip_levels(body: bytes, levels=(5, 6, 9), repeat: int = 3) -> dict:
    """Size and time of gzip at a few levels on one response body."""
    result = {}
    for level in levels:
        started = time.perf_counter()
        for _ in range(repeat):
            size = len(gzip.compress(body, level))
        elapsed = (time.perf_counter() - started) / repeat * 1000
        result[f"level_{level}"] = {"gzip_bytes": size, "ms": round(elapsed, 1)}
    return result


def encoding_study(national_app, big_app) -> dict:
    """Measure the encoding choices of the map fragments against alternatives.

    National view (gzip matters): the points' order, density in hovertext, and
    Plotly's base64 typed arrays per column; the gzip level. 10x commune view
    (raw size matters): address positions as float32 typed arrays or decimals.
    """
    headers = {"HX-Request": "true"}
    url = NATIONAL_VIEWS["map_france_year"][0]
    html = national_app.test_client().get(url, headers=headers).get_data(True)
    _, traces, _ = _figure_parts(html)
    index = max(range(len(traces)), key=lambda i: len(traces[i]["lat"]))

    def typed(key: str, dtype: str):
        def change(trace: dict) -> None:
            owner = trace["marker"] if key in ("size", "color") else trace
            owner[key] = _typed(owner[key], dtype)

        return change

    national = _variant_sizes(
        html,
        {
            "as_sent": None,
            "points_by_code": _by_code,
            "density_in_customdata": _hovertext_in_customdata,
            "lat_f4": typed("lat", "f4"),
            "lon_f4": typed("lon", "f4"),
            "size_u2": typed("size", "u2"),
            "color_f4": typed("color", "f4"),
            "customdata_f4": typed("customdata", "f4"),
        },
        index,
    )
    national["gzip_levels"] = _gzip_levels(html.encode())

    url = HAUTE_SAVOIE_VIEWS["map_74_commune"][0]
    html = big_app.test_client().get(url, headers=headers).get_data(True)
    _, traces, _ = _figure_parts(html)
    first = next(i for i, t in enumerate(traces) if t["name"].startswith("Adresses"))

    def decimals(trace: dict) -> None:
        for key in ("lat", "lon"):
            raw = base64.b64decode(trace[key]["bdata"])
            values = np.frombuffer(raw, dtype="<f4").astype("float64")
            trace[key] = [round(float(v), 4) for v in values]

    commune = _variant_sizes(
        html, {"as_sent": None, "address_positions_decimal": decimals}, first
    )
    return {"national_map_france_year": national, "demo_10x_map_74_commune": commune}


HAUTE_SAVOIE_VIEWS = {
    "map_74_year": ("/ajax/map?annee=2023", {"annee": "2023"}),
    "map_74_all_years": ("/ajax/map", {}),
    "map_74_commune": ("/ajax/map?annee=2023&commune=74010", None),
    "table_74": ("/ajax/communes/table?annee=2023&tri=nom_commune&ordre=asc", None),
}
NATIONAL_VIEWS = {
    "map_france_year": (
        "/ajax/map?departement=tous&annee=2023",
        {"departement": "tous", "annee": "2023"},
    ),
    "map_france_heat": ("/ajax/map?departement=tous&annee=2023&mode=chaleur", None),
    "table_france": ("/ajax/communes/table?departement=tous&annee=2023", None),
}


#: App settings of the benchmark: no per-request log line, warnings only.
QUIET = {"REQUEST_LOG": False, "LOG_LEVEL": "WARNING"}


def run(repeat: int = 15) -> dict:
    """Measure the three datasets and compare with the goals."""
    from tests.conftest import make_app

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-map-") as tmp:
        root = Path(tmp)
        timings: dict = {}

        started = time.perf_counter()
        demo_app = make_app(root / "demo-volume", **QUIET)
        timings["demo_load_s"] = round(time.perf_counter() - started, 2)

        started = time.perf_counter()
        initial = _scaled_initial(root / "initial-10x", scale=10)
        timings["demo_10x_generate_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        big_app = make_app(root / "big-volume", INITIAL_DATA_PATH=str(initial), **QUIET)
        timings["demo_10x_load_s"] = round(time.perf_counter() - started, 2)

        volume = _national_volume(root / "national-volume")
        started = time.perf_counter()
        national_app = make_app(volume, **QUIET)
        timings["national_load_s"] = round(time.perf_counter() - started, 2)
        # The apps' logging set-up disables the loggers that existed before it.
        logger.disabled = False

        local = _scenario(
            {"demo": demo_app, "demo_10x": big_app}, HAUTE_SAVOIE_VIEWS, repeat
        )
        national = _scenario(
            {"national": national_app}, NATIONAL_VIEWS, max(5, repeat // 2)
        )
        encodings = encoding_study(national_app, big_app)
        results = {**local, **national, "encodings": encodings, "setup": timings}

    results["goals"] = _goals(results)
    return results


def _goals(results: dict) -> dict:
    """Compare the measures with the goals of the issue (True when met)."""
    checks = {}
    for dataset in ("demo", "demo_10x"):
        views = results[dataset]
        for name in ("map_74_year", "map_74_all_years"):
            factor = views[name]["x_floor"]
            checks[f"{dataset} {name} x_floor {factor} <= {FLOOR_FACTOR_GOAL}"] = (
                factor <= FLOOR_FACTOR_GOAL
            )
        for name in ("map_74_year", "map_74_all_years", "map_74_commune"):
            size = views[name]["bytes"]
            checks[f"{dataset} {name} bytes {size} <= {HAUTE_SAVOIE_MAX_BYTES}"] = (
                size <= HAUTE_SAVOIE_MAX_BYTES
            )
    france = results["national"]["map_france_year"]
    checks[f"national x_floor {france['x_floor']} <= {FLOOR_FACTOR_GOAL}"] = (
        france["x_floor"] <= FLOOR_FACTOR_GOAL
    )
    size = france["gzip_bytes"]
    checks[f"national gzip_bytes {size} <= {FRANCE_MAX_GZIP_BYTES}"] = (
        size <= FRANCE_MAX_GZIP_BYTES
    )
    for name in HAUTE_SAVOIE_VIEWS:
        growth = results["demo_10x"][name]["p50_ms"] / results["demo"][name]["p50_ms"]
        checks[f"{name} growth on 10x {growth:.2f} <= {GROWTH_GOAL}"] = (
            growth <= GROWTH_GOAL
        )
    return checks


def main() -> int:
    """Run the benchmark and print its JSON on stdout (logs go to stderr)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    stdout = sys.stdout
    # The apps log to the stdout of the moment they are created: keep it clean.
    sys.stdout = sys.stderr
    try:
        results = run()
    finally:
        sys.stdout = stdout
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
