#!/usr/bin/env python3
"""Plots of the tournament (matplotlib, from PyPI; `make` installs it into bench/.venv).

    bench/.venv/bin/python bench/plots.py DIR [DIR2 ...]

Reads DIR/raw.jsonl (and DIR2/raw.jsonl, ...) as report.py does and writes the PNG files that report.md
embeds, DIR/plots/M<machine>-<workload>-<kind>.png; `report.planned_plots` says which a header calls for:

  runs         every workload: each run of each entrant as a dot (ranked by median, the median as a bar),
               one panel per parameter set, so a machine that switched mode shows as two clusters;
  percentiles  latency workloads: per entrant the median over runs of each recorded percentile
               (percentiles_ns, from the runs' HdrHistograms), tail to the right;
  sweep        workloads that sweep a parameter (MultiProducer's producers, Paced's arrival rate, the batch
               budget): per entrant the median of each figure against the parameter, min–max shaded.

Before drawing, every workload and parameter set that the header plans must have runs, and every latency
workload its percentile curves: otherwise it exits 1 naming each gap and draws nothing (a plot is never
left out silently). Checking needs only the standard library; drawing imports matplotlib.
"""

import math
import os
import sys

import report

PERCENTILE_TICKS = ("50", "90", "99", "99.9", "99.99", "99.999")


class PlotError(Exception):
    """The data cannot give the plots the header calls for; the message names every gap."""


def tail(percentile):
    """The percentile axis: -log10(1 - p/100), so 90, 99, 99.9 … are evenly spaced."""
    return -math.log10(1 - float(percentile) / 100)


def param_key(params):
    """A header params object as report.py keys groups: sorted (name, text) pairs."""
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def data_gaps(machine, runs):
    """Every planned workload or parameter set with no runs, and latency workloads without curves."""
    gaps = []
    for name, info in machine.workloads.items():
        have = set(machine.params_of(name))
        if not have:
            gaps.append(f"{machine.id}: workload {name} is in the header but has no runs")
            continue
        for params in info["params"]:
            if param_key(params) not in have:
                gaps.append(f"{machine.id}: {name} {report.params_text(param_key(params))} has no runs")
        if info["latency"] and not any(r["workload"] == name and "percentiles_ns" in r for r in runs):
            gaps.append(f"{machine.id}: latency workload {name} has no percentiles_ns in its runs")
        sweep = info["sweep"]
        if sweep and not all(dict(p).get(sweep["param"], "").isdigit() for p in have):
            gaps.append(f"{machine.id}: {name} sweeps {sweep['param']}, which is not a number in every run")
    return gaps


class Figures:
    """Draws one machine's plots. `runs` are its raw run lines (params as report.py keys them)."""

    def __init__(self, machine, runs, plt):
        self.machine, self.runs, self.plt = machine, runs, plt
        entrants = []
        for info in machine.workloads.values():
            entrants += [e for e in info.get("entrants", []) if e not in entrants]
        entrants += sorted({r["entrant"] for r in runs} - set(entrants))
        palette = plt.get_cmap("tab20").colors
        self.color = {e: palette[i % len(palette)] for i, e in enumerate(entrants)}

    def values(self, workload, params, entrant, field="ns_per_op"):
        """The runs' values of one figure for one group, in run order."""
        return [r[field] for r in sorted(self.runs, key=lambda r: r["run"])
                if (r["workload"], r["params"], r["entrant"]) == (workload, params, entrant) and field in r]

    def panels(self, count, width=6.4, height=3.4):
        """A figure with `count` panels, two per row."""
        columns = 1 if count == 1 else 2
        rows = (count + columns - 1) // columns
        figure, axes = self.plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                                         layout="constrained")
        for extra in axes.flat[count:]:
            extra.set_visible(False)
        return figure, list(axes.flat[:count])

    def label(self, workload, field):
        """An axis label for ns_per_op (the workload's metric) or a per-run field (its header label)."""
        return self.machine.workloads[workload]["metric"] if field == "ns_per_op" else self.machine.labels.get(field, field)

    @staticmethod
    def legend(figure, axes):
        """One legend for the figure, below the panels, naming each entrant once."""
        handles, labels = {}, []
        for axis in axes:
            for handle, label in zip(*axis.get_legend_handles_labels()):
                if label not in handles:
                    handles[label] = handle
                    labels.append(label)
        figure.legend([handles[l] for l in labels], labels, loc="outside lower center", ncol=3, fontsize=7,
                      frameon=False)

    @staticmethod
    def scale(axis, values, which="y"):
        """Logarithmic when the values span more than 30×."""
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 30:
            (axis.set_yscale if which == "y" else axis.set_xscale)("log")

    def runs_plot(self, workload):
        """One panel per parameter set: each entrant's runs as dots, ranked by median."""
        info = self.machine.workloads[workload]
        params_list = self.machine.params_of(workload)
        if info["layout"] == "ops":
            groups = sorted((g for g in self.machine.groups.values() if g["workload"] == workload),
                            key=lambda g: report.params_text(g["params"]))
            panels = [("", [(report.params_text(g["params"]).split("=", 1)[-1], g) for g in groups])]
        else:
            panels = []
            for params in params_list:
                groups = sorted((g for g in self.machine.groups.values()
                                 if (g["workload"], g["params"]) == (workload, params)),
                                key=lambda g: (g["median"], g["entrant"]))
                panels.append((report.params_text(params), [(g["entrant"], g) for g in groups]))
        width = max(6.4, 0.42 * max(len(p[1]) for p in panels))
        figure, axes = self.panels(len(panels), width=width, height=4.2)
        for axis, (title, items) in zip(axes, panels):
            every = []
            for x, (name, g) in enumerate(items):
                values = self.values(workload, g["params"], g["entrant"])
                every += values
                spread = [x + (i - (len(values) - 1) / 2) * 0.08 for i in range(len(values))]
                axis.scatter(spread, values, s=16, color=self.color.get(g["entrant"], "black"), zorder=3)
                axis.hlines(g["median"], x - 0.3, x + 0.3, color="black", linewidth=1, zorder=2)
            axis.set_xticks(range(len(items)))
            axis.set_xticklabels([name for name, _ in items], rotation=60, ha="right", fontsize=7)
            axis.set_ylabel(info["metric"])
            axis.set_title(title, fontsize=9)
            axis.grid(axis="y", alpha=0.3)
            self.scale(axis, every)
        figure.suptitle(f"{workload}: every run (dots) and the median (bar), lower is better", fontsize=10)
        return figure

    def percentiles_plot(self, workload):
        """One panel per parameter set: per entrant the median over runs of each percentile."""
        params_list = self.machine.params_of(workload)
        figure, axes = self.panels(len(params_list), height=4.4)
        for axis, params in zip(axes, params_list):
            entrants = sorted({g["entrant"] for g in self.machine.groups.values()
                               if (g["workload"], g["params"]) == (workload, params)},
                              key=lambda e: self.machine.value(workload, params, e, "ns_per_op"))
            for entrant in entrants:
                curves = self.values(workload, params, entrant, "percentiles_ns")
                if not curves:
                    continue
                points = sorted({p for c in curves for p in c}, key=float)
                ys = [report.median([c[p] for c in curves if p in c]) for p in points]
                axis.plot([tail(p) for p in points], ys, marker=".", linewidth=1,
                          color=self.color.get(entrant, "black"), label=entrant)
            axis.set_xticks([tail(p) for p in PERCENTILE_TICKS])
            axis.set_xticklabels([f"{p}%" for p in PERCENTILE_TICKS], fontsize=8)
            axis.set_xlabel("percentile")
            axis.set_ylabel("latency ns")
            axis.set_yscale("log")
            axis.set_title(report.params_text(params), fontsize=9)
            axis.grid(alpha=0.3)
        self.legend(figure, axes)
        figure.suptitle(f"{workload}: latency percentiles, median over runs", fontsize=10)
        return figure

    def sweep_plot(self, workload):
        """One panel per figure: per entrant the median (line) and min–max (band) against the parameter."""
        sweep = self.machine.workloads[workload]["sweep"]
        by_value = {int(dict(p)[sweep["param"]]): p for p in self.machine.params_of(workload)}
        xs = sorted(by_value)
        entrants = sorted({g["entrant"] for g in self.machine.groups.values() if g["workload"] == workload},
                          key=lambda e: list(self.color).index(e) if e in self.color else len(self.color))
        figure, axes = self.panels(len(sweep["figures"]))
        for axis, field in zip(axes, sweep["figures"]):
            drawn = []
            for entrant in entrants:
                points = [(x, self.values(workload, by_value[x], entrant, field)) for x in xs]
                points = [(x, v) for x, v in points if v]
                if not points:
                    continue
                color = self.color.get(entrant, "black")
                axis.plot([x for x, _ in points], [report.median(v) for _, v in points], marker="o", markersize=3,
                          linewidth=1, color=color, label=entrant)
                axis.fill_between([x for x, _ in points], [min(v) for _, v in points], [max(v) for _, v in points],
                                  color=color, alpha=0.12, linewidth=0)
                drawn += [y for _, v in points for y in v]
            if not drawn:
                raise PlotError(f"{self.machine.id}: {workload} has no {field} to plot against {sweep['param']}")
            self.scale(axis, xs, which="x")
            axis.minorticks_off()
            axis.set_xticks(xs, [str(x) for x in xs], fontsize=8)
            axis.set_xlabel(sweep["label"])
            axis.set_ylabel(self.label(workload, field))
            axis.grid(alpha=0.3)
            self.scale(axis, drawn)
        self.legend(figure, axes)
        figure.suptitle(f"{workload}: medians against {sweep['label']} (band: min–max over runs)", fontsize=10)
        return figure


def draw(directory, machines_and_runs):
    """Checks the data of every machine, then writes every planned plot under directory/plots/."""
    gaps = [gap for machine, runs in machines_and_runs for gap in data_gaps(machine, runs)]
    if gaps:
        raise PlotError("\n".join(gaps))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(os.path.join(directory, "plots"), exist_ok=True)
    written = []
    for index, (machine, runs) in enumerate(machines_and_runs, start=1):
        figures = Figures(machine, runs, plt)
        for workload, kind, _, path in report.planned_plots(index, machine):
            figure = getattr(figures, f"{kind}_plot")(workload)
            figure.savefig(os.path.join(directory, path), dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
    return written


def main(argv):
    """Entry point: plots.py DIR [DIR2 ...]."""
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        loaded = []
        for directory in argv[1:]:
            header, runs = report.load_raw(directory)
            loaded.append((report.Machine(directory, "", header, runs), runs))
        written = draw(argv[1], loaded)
    except (report.RawError, PlotError) as error:
        print(f"plots.py: cannot draw the report's plots:\n{error}", file=sys.stderr)
        return 1
    print(f"plots.py: wrote {len(written)} plots to {os.path.join(argv[1], 'plots')}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
