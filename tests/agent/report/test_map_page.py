"""The report page of a campaign over samples: a small real map campaign (the shipped MgO–ZnO–CuO
campaign, 3 samples × 1 window, phase_map deciding the third recipe from the first two samples'
map; the third synthesis fails — seeded) then its report — the answer first, the phase map image,
every sample in order, every made sample's own measurements embedded."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.config import parse_campaign
from agent.report import write_report
from agent.report.map_figures import ternary_grid, ternary_layout
from agent.sample_campaign import run_sample_campaign
from agent.store import Store
from policies.protocol import SampleOutcome

SHIPPED = Path(__file__).resolve().parents[3] / "experiments" / "sdl_oxide_map.yaml"


def _img(html: str, alt: str) -> bytes:
    match = re.search(rf'<img alt="{re.escape(alt)}" src="data:image/png;base64,([^"]+)"', html)
    assert match, f"no image {alt!r}"
    return base64.b64decode(match.group(1))


@pytest.mark.timeout(180)
def test_the_map_report_shows_the_answer_the_map_every_sample_and_its_measurements(tmp_path: Path) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["data_dir"] = str(tmp_path / "data")
    data["budgets"] = {"max_samples": 3}
    data["sample_step"]["budgets"] = {"max_measurements": 1}
    data["policy"]["options"] = {"n_initial": 2, "n_candidates": 64, "n_grid": 64}
    for target in data["targets"]:
        target |= {"min_samples": 2, "grid_points": 256}
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_sample_campaign(parse_campaign(data), store, campaign_id="map-rep", in_process=True)
        html = write_report(store, "map-rep", tmp_path / "map.html").read_text()
        samples = store.samples("map-rep")
        attempts = store.attempts("map-rep")
        latest = store.target_evaluations("map-rep")[-1]

    # The answer first: the map's status and the campaign-level targets as the store last evaluated them.
    assert html.index('id="answer"') < html.index('id="map"') < html.index('id="samples"')
    answer = html[html.index('id="answer"'):html.index("</section>")]
    assert "Answer: map not known yet" in answer  # 3 samples cannot make 90 % of the map confident
    for name, result in latest.results.items():
        assert re.search(rf"<td>{name}</td><td>[a-z_]+</td><td class=\"num\">{result['value']:.4g}</td>", answer)

    # The phase map with its uncertainty: one PNG (3 temperature slices × label and probability rows).
    png = _img(html, "phase map and its probability per slice")
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    assert "phase_map policy&#x27;s map model" in html

    # Every recipe in order, with its synthesis state and the sample's answer with its probability.
    assert [a.state for a in attempts] == ["analysed", "analysed", "failed"]  # seed 1: the third pellet cracks
    table = html[html.index('id="samples"'):]
    rows = re.findall(r"<tr(?: class=\"\w+\")?><td class=\"num\">(\d+)</td>(.*?)</tr>", table.split("</table>")[0])
    assert [int(n) for n, _ in rows] == [1, 2, 3]
    for (_, row), s in zip(rows, samples):
        assert s.sample_id in row
        outcome = SampleOutcome.model_validate(s.outcome)
        if outcome.label_probabilities:
            best = max(outcome.label_probabilities, key=outcome.label_probabilities.__getitem__)
            assert best.replace("+", " + ") in row and "(p " in row
        else:
            assert "synthesis failed" in row and "no label (nothing made)" in row
    assert "space-filling design" in rows[0][1] and "entropy per second" in rows[2][1]

    # Each made sample's own measurements: its step's planner decisions and XRD data with the fit.
    made = [s for s in samples if s.step_campaign_id is not None]
    assert len(made) == 2 and all(f'id="sample-{s.sample_id}"' not in html for s in samples if s not in made)
    starts = [html.index(f'<section id="sample-{s.sample_id}">') for s in made] + [len(html)]
    for s, start, end in zip(made, starts, starts[1:]):
        part = html[start:end]
        assert f'id="sample-{s.sample_id}-planner"' in part and f'id="sample-{s.sample_id}-data"' in part
        assert "XRD windows with the most probable phase set" in part and s.step_campaign_id in part


def test_the_ternary_grid_covers_the_simplex_and_slices_partition_the_process_range() -> None:
    space = parse_campaign(yaml.safe_load(SHIPPED.read_text())).design_space
    layout = ternary_layout(space)
    assert layout is not None and layout.components == ("MgO", "ZnO", "CuO") and layout.slice_name == "anneal_temperature_k"
    assert layout.slice_edges[0] == 773.0 and layout.slice_edges[-1] == 1373.0 and len(layout.slice_values) == 3
    tri, fractions = ternary_grid(10)
    assert len(fractions) == 100 and np.allclose(fractions.sum(axis=1), 1.0) and (fractions > 0).all()
    # Centroids are distinct (every triangle its own colour) and the triangles tile the simplex (area √3/4).
    assert len({tuple(np.round(f, 9)) for f in fractions}) == 100
    x, y = tri.x[tri.triangles], tri.y[tri.triangles]
    area = 0.5 * np.abs((x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0]))
    assert area.sum() == pytest.approx(np.sqrt(3) / 4)
