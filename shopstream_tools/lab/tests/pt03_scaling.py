"""PT-03 Horizontal scaling: instances (and consumers) of every service at 1, 2, 4, 8 under the same
closed-loop mix; scaling efficiency, and two models fitted on the measured points (USL, service
demand) for what a machine with the cores for them would give."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, model, plotting, stats, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import INSTANCE, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, esc, fmt, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "3-scaling"
CHART_TITLE = "Instances vs throughput (PT-03)"


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    done = []
    weights = {**lab.read_weights(), **({"place_order": 1} if lab.order_service else {})}
    scaled = [s for s in testbed.services(lab.settings)]
    try:
        for n in p.pt03_instances:
            lab.check_stop()
            for service in scaled:  # instances and consumers together: a saga scales with its service
                testbed.scale(lab.settings, service, n)
                testbed.scale_consumers(lab.settings, service, n)
            drive = drivers.locust(
                lab, f"PT-03-n{n}", weights=weights, users=p.pt03_users,
                spawn_rate=max(p.pt03_users, 1), seconds=p.pt03_seconds, think_seconds=0.0,
            )  # fmt: skip
            record = measure(lab, "PT-03", f"instances={n}", {"instances": n, "consumers": n, "users": p.pt03_users, "scaled": scaled}, drive, p.pt03_seconds)
            drivers.attach_orders(lab, record)
            done.append(record)
    finally:
        for service in scaled:
            testbed.scale(lab.settings, service, 1)
            testbed.scale_consumers(lab.settings, service, 1)
    return done


def _service_cores(cores: Mapping[str, float]) -> float:
    return sum(v for k, v in cores.items() if INSTANCE.match(k))


def demand_tiers(cores: Mapping[str, float]) -> dict[str, float]:
    """CPU by tier for the demand model (the lab's own process and the machine total left out)."""
    tiers: dict[str, float] = {"service instances": _service_cores(cores)}
    for name, value in cores.items():
        if INSTANCE.match(name) or name in ("machine", "lab"):
            continue
        tier = {"gateway": "gateway", "postgres": "postgres", "kafka": "kafka", "loadgen": "load generator",
                "prometheus": "observability", "zipkin": "observability"}.get(name, "relays and consumers")  # fmt: skip
        tiers[tier] = tiers.get(tier, 0.0) + value
    return tiers


# On a larger machine: each instance has a core; the shared tiers keep the cores they could use
# here (2), the load generator runs elsewhere.
LARGER_MACHINE = {"gateway": 2.0, "postgres": 2.0, "kafka": 2.0, "relays and consumers": 2.0}


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    rows = [step_row(s, ceil, ["nginx-fixed"]) for s in steps]
    points = [(float(r["instances"]), float(r["ok_rate"] or 0)) for r in rows if r.get("ok_rate")]
    eff = dict(stats.scaling_efficiency(points))
    for r in rows:
        r["efficiency"] = eff.get(float(r["instances"]))
    out: dict[str, Any] = {"rows": rows, "ideal": stats.ideal_line(points)}
    if len(points) >= 2:
        usl = model.fit_usl(points)
        out["usl"] = {
            "lambda": usl.lam, "sigma": usl.sigma, "kappa": usl.kappa, "peak_n": usl.peak_n,
            "mape": usl.mape, "r_squared": usl.r_squared,
            "errors": [{"instances": n, "error": e} for (n, _), e in zip(usl.points, usl.errors(), strict=True)],
            "predict": {str(n): usl.predict(n) for n in (1, 2, 4, 8, 16)},
        }  # fmt: skip
    demand_steps = []
    for r, s in zip(rows, steps, strict=True):
        if not r.get("ok_rate"):
            continue
        cores = s.get("cpu_cores", {})
        tiers = demand_tiers(cores)
        # the machine's busy cores that none of the tiers used: other work on this shared machine
        other = max(0.0, cores.get("machine", 0.0) - sum(tiers.values()))
        demand_steps.append(model.DemandStep(int(r["instances"]), float(r["ok_rate"]), tiers, other))
    if demand_steps:
        dm = model.fit_demands(demand_steps, "service instances", machine_cores)
        out["demand"] = {
            "demands_ms": {k: v * 1000 for k, v in dm.demands.items()},
            "spread_ms": {k: (lo * 1000, hi * 1000) for k, (lo, hi) in dm.spread.items()},
            "here": [
                {"instances": n, "measured": x, "model": b, "error": e, "other_cores": st.other_cores}
                for (n, x, b, e), st in zip(dm.errors_here(), dm.steps, strict=True)
            ],
            "mape_here": dm.mape_here,
            "larger_machine": LARGER_MACHINE,
            "predict": [dm.predict_larger(n, LARGER_MACHINE) for n in (1, 2, 4, 8)],
        }
    return out



def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = plotting.rows_of(summary, "PT-03")
    entry = summary["tests"]["PT-03"]
    n = [r["instances"] for r in rows]
    x = [r["ok_rate"] or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(n, x, "o-", color="#2471a3", label="measured here (2 cores)", zorder=3)
    ideal = entry.get("ideal") or []
    if ideal:
        ax.plot([a for a, _ in ideal], [b for _, b in ideal], "--", color="grey", label="ideal (linear)")
    usl = entry.get("usl")
    if usl:
        grid = np.linspace(1, max(n), 50)
        lam, s, k = usl["lambda"], usl["sigma"], usl["kappa"]
        ax.plot(grid, lam * grid / (1 + s * (grid - 1) + k * grid * (grid - 1)), ":", color="#884ea0",
                label=f"USL fit here: sigma={s:.2f} kappa={k:.3f} (error {usl['mape']:.0%})")
    demand = entry.get("demand")
    if demand:
        pred = demand["predict"]
        ax.errorbar(
            [p["instances"] for p in pred], [p["throughput"] for p in pred],
            yerr=[[p["throughput"] - p["low"] for p in pred], [p["high"] - p["throughput"] for p in pred]],
            fmt="D", color="#28b463", capsize=4,
            label=f"demand model, a core per instance (error here {demand['mape_here']:.0%})",
        )  # fmt: skip
    ax.set_xlabel("instances of each service")
    ax.set_ylabel("successful requests/s")
    ax.set_xticks(sorted(set(n) | {1, 2, 4, 8}))
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(CHART_TITLE)
    return plotting.save(fig, path)



def reading(summary: Mapping[str, Any]) -> str | None:
    entry = summary.get("tests", {}).get("PT-03") or {}
    rows = [r for r in entry.get("rows") or [] if r.get("ok_rate")]
    if len(rows) < 2:
        return None
    best = max(rows, key=lambda r: r["ok_rate"])
    text = (f"On 2 cores {best['instances']} instance(s) serve the most, {best['ok_rate']:,.0f} req/s; "
            f"{rows[-1]['instances']} give {rows[-1]['ok_rate']:,.0f} (efficiency {rows[-1].get('efficiency') or 0:.2f})")  # fmt: skip
    predict = {p["instances"]: p for p in (entry.get("demand") or {}).get("predict") or []}
    if 8 in predict:
        text += f"; with a core each, 8 would give about {predict[8]['throughput']:,.0f} req/s, bound by {predict[8]['bottleneck']}"
    return text + "."


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [*COMMON, ("efficiency", "efficiency", ".2f"), ("x nginx-fixed", "x nginx", ".4f"), *LOADGEN, ("machine_cores", "machine cores", ".2f")])]
    return [*parts, model_block(entry), image(charts[CHART], shown)]


def model_block(entry: Mapping[str, Any]) -> str:
    out = [
        "<p class=note><b>This machine has 2 cores: it cannot show scaling past 2 instances.</b> "
        "Every instance, PostgreSQL, Kafka, the gateway and the load generator share them, so 4 and 8 "
        "instances here measure contention for the cores, not the design. What 4 and 8 would give on a "
        "machine with the cores for them is predicted below by a model fitted on the measured points, "
        "with its error.</p>"
    ]
    usl = entry.get("usl")
    if usl:
        out.append(
            f"<p><b>Universal Scalability Law</b> fitted here: lambda={fmt(usl['lambda'])} req/s, sigma={usl['sigma']:.3f} (contention), "
            f"kappa={usl['kappa']:.4f} (coherency); mean absolute error {usl['mape']:.1%}, R²={fmt(usl['r_squared'], '.3f')}. "
            "It describes this machine, whose shared resource is its 2 cores.</p>"
        )
    demand = entry.get("demand")
    if demand:
        d = [{"tier": k, "ms": v, "low": demand["spread_ms"][k][0], "high": demand["spread_ms"][k][1]} for k, v in demand["demands_ms"].items()]
        out.append("<p><b>Service demand</b> (CPU ms each request costs each tier, median over the steps, measured from /proc):</p>")
        out.append(table(d, [("tier", "tier", ""), ("ms", "CPU ms/request", ".3f"), ("low", "min", ".3f"), ("high", "max", ".3f")]))
        out.append(
            f"<p>On this machine the bound min(cores left by other work / total demand, instances / instance demand) misses the measured points by "
            f"{demand['mape_here']:.1%} on average:</p>"
        )
        out.append(table(demand["here"], [("instances", "instances", ",.0f"), ("measured", "measured/s", ",.0f"), ("model", "model/s", ",.0f"), ("error", "error", ".1%"), ("other_cores", "cores used by other work", ".2f")]))
        shared = ", ".join(f"{k} {v:g}" for k, v in demand["larger_machine"].items())
        out.append(f"<p>Prediction for a larger machine (a core per instance; shared tiers with cores: {esc(shared)}; the load generator elsewhere). The range comes from the demands' spread over the steps:</p>")
        out.append(table(demand["predict"], [("instances", "instances", ",.0f"), ("throughput", "predicted/s", ",.0f"), ("low", "low", ",.0f"), ("high", "high", ",.0f"), ("bottleneck", "bottleneck", "")]))
    return "\n".join(out)



MARKDOWN = [*COMMON[:6], ("efficiency", "efficiency", ".2f"), ("x nginx-fixed", "x nginx", ".4f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f"), ("machine_cores", "machine cores", ".2f")]
TEST = PerformanceTest("PT-03", "Horizontal scaling", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN)
