#!/usr/bin/env python3
"""Self-test of bench/report.py, bench/verify.py and bench/plots.py: `python3 bench/test_report.py` (no pytest
needed).

Builds reports from bench/fixtures/ in a temporary directory, checks that verify.py accepts them, then
hand-edits numbers, rows, citations and raw lines and checks that verify.py rejects each edit. The plot checks
run without matplotlib (plots.py checks its data before it imports it); drawing is tested where matplotlib
is installed (bench/.venv after any `make bench-*`).
"""

import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BENCH = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(BENCH, "fixtures")
sys.path.insert(0, BENCH)

import report  # noqa: E402  (the test may use both; verify.py itself never imports report.py)
import verify  # noqa: E402

FIELDS = [{"key": k, "label": v} for k, v in (
    ("p50_ns", "p50 ns"), ("p99_ns", "p99 ns"), ("p999_ns", "p99.9 ns"), ("floor_p50_ns", "floor p50 ns"),
    ("submit_ns_per_op", "submit ns/op"), ("allocs_per_op", "allocs/op"),
    ("wake_syscalls_per_op", "wake syscalls/op"), ("probes", "probes"))]


def registry(header, lines, latency=(), sweeps=None, ops=()):
    """Adds the header's registry part (fields, workloads) for the workloads the run lines use, in order of
    first use: `latency` names latency workloads, `sweeps` maps a workload to its swept parameter, `ops`
    names workloads with the ops layout."""
    workloads = {}
    for line in lines:
        w = workloads.setdefault(line["workload"], {"params": [], "entrants": []})
        if line["params"] not in w["params"]:
            w["params"].append(line["params"])
        if line["entrant"] not in w["entrants"]:
            w["entrants"].append(line["entrant"])
    sweeps = sweeps or {}
    header["fields"] = FIELDS
    header["workloads"] = [
        {"name": name, "about": f"{name}.", "metric": "ns per task", "layout": "ops" if name in ops else "ranked",
         "latency": name in latency, "fields": [], "params": w["params"], "entrants": w["entrants"],
         "sweep": {"param": sweeps[name], "label": sweeps[name], "figures": ["ns_per_op"]} if name in sweeps else None}
        for name, w in workloads.items()]
    return header


def write_raw(directory, header, lines):
    os.makedirs(directory, exist_ok=True)
    write(os.path.join(directory, "raw.jsonl"), "".join(json.dumps(l) + "\n" for l in [header] + lines))


def run(script, *args):
    """Runs bench/<script> with args; returns (exit code, stdout + stderr)."""
    done = subprocess.run([sys.executable, os.path.join(BENCH, script)] + list(args),
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


class Base(unittest.TestCase):
    """Copies the fixtures into a fresh temporary directory for each test."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loopkit-report-test-")
        for name in os.listdir(FIXTURES):
            shutil.copytree(os.path.join(FIXTURES, name), os.path.join(self.tmp, name))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def dir(self, name):
        return os.path.join(self.tmp, name)

    def build(self, *names):
        """Runs report.py on the named fixture directories and asserts verify.py passes."""
        code, output = run("report.py", *[self.dir(n) for n in names])
        self.assertEqual(code, 0, output)
        code, checked = run("verify.py", self.dir(names[0]))
        self.assertEqual(code, 0, checked)
        return output

    def assert_rejected(self, name, *needles):
        """verify.py must fail on DIR and mention every needle."""
        code, output = run("verify.py", self.dir(name))
        self.assertEqual(code, 1, output)
        for needle in needles:
            self.assertIn(needle, output)
        return output

    def edit(self, name, file, old, new):
        """Replaces the first occurrence of old (which must exist) in DIR/file."""
        path = os.path.join(self.dir(name), file)
        text = read(path)
        self.assertIn(old, text)
        write(path, text.replace(old, new, 1))


class Formatting(unittest.TestCase):
    """Both independent implementations of the documented number format agree on fixed and random cases."""

    CASES = [(0, "0"), (41.23, "41.2"), (0.5, "0.500"), (9.996, "10.0"), (0.09996, "0.100"), (999.4, "999"),
             (999.6, "1000"), (12345.5, "12346"), (1234.5, "1234"), (0.000123, "0.000123"), (41.25, "41.2"),
             (100, "100"), (1, "1.00"), (3.335, "3.33")]

    def test_fixed_numbers(self):
        for value, text in self.CASES:
            self.assertEqual(report.fmt_num(value), text, value)
            self.assertEqual(verify.number_text(value), text, value)

    def test_ratios(self):
        for value, text in [(2.5, "2.50×"), (0.125, "0.12×"), (1.005, "1.00×"), (16.4, "16.40×")]:
            self.assertEqual(report.fmt_ratio(value), text)
            self.assertEqual(verify.ratio_text(value), text)

    def test_random_numbers_agree(self):
        generator = random.Random(7)
        for _ in range(20000):
            value = generator.uniform(0.5, 10) * 10 ** generator.randint(-6, 7)
            self.assertEqual(report.fmt_num(value), verify.number_text(value), repr(value))
            self.assertEqual(report.fmt_ratio(value), verify.ratio_text(value), repr(value))


class QuickSuite(Base):
    """One machine, quick suite: report, verify, then each kind of hand edit is caught."""

    def setUp(self):
        super().setUp()
        self.stdout = self.build("quick")

    def test_outputs_and_verdicts(self):
        md = read(os.path.join(self.dir("quick"), "report.md"))
        self.assertIn("#  Entrant", self.stdout)
        self.assertIn(f"Full report: {os.path.join(self.dir('quick'), 'report.md')}", self.stdout)
        self.assertTrue(all(len(line) <= 100 for line in self.stdout.splitlines() if self.tmp not in line))
        self.assertIn("generated from `raw.jsonl` by `bench/report.py`", md)
        self.assertIn("**CAS contention — does submit cost grow with producers?** Verdict: **not supported**", md)
        self.assertIn("P > cores measures oversubscription", md)
        self.assertIn("Wakeup was not run in this suite; `make bench-micro` or `make bench-full`", md)
        self.assertIn("Verdict: **not measured**. Rule: supported if ns/op at the largest budget", md)
        csv_lines = read(os.path.join(self.dir("quick"), "summary.csv")).splitlines()
        self.assertEqual(len(csv_lines), 1 + 6 * 7)
        self.assertTrue(csv_lines[0].startswith("machine,workload,params,entrant,family,runs,median_ns_per_op"))

    def test_corrupt_report_number(self):
        self.edit("quick", "report.md", "| 1 | LoopKit lock-free/epoll/spin | loopkit | 41.2 |",
                  "| 1 | LoopKit lock-free/epoll/spin | loopkit | 41.3 |")
        self.assert_rejected("quick", "report.md", "Median ns/op", "expected 41.2, found 41.3")

    def test_corrupt_csv_number(self):
        self.edit("quick", "summary.csv", "Baseline,baseline,3,82.5,", "Baseline,baseline,3,82.6,")
        self.assert_rejected("quick", "summary.csv", "median_ns_per_op", "found 82.6")

    def test_deleted_table_row(self):
        self.edit("quick", "report.md", "| 7 | Dispatch | peer | 128 | 124–133 | 3.50 | 3 | — | 1.72× | 1.55× | 1.00 | — |\n", "")
        self.assert_rejected("quick", "report.md", "row Dispatch", "missing row")

    def test_duplicated_table_row(self):
        row = "| 7 | Dispatch | peer | 128 | 124–133 | 3.50 | 3 | — | 1.72× | 1.55× | 1.00 | — |\n"
        self.edit("quick", "report.md", row, row + row)
        self.assert_rejected("quick", "2 times")

    def test_deleted_and_extra_csv_rows(self):
        path = os.path.join(self.dir("quick"), "summary.csv")
        lines = read(path).splitlines(keepends=True)
        write(path, "".join(lines[:3] + lines[4:]))
        self.assert_rejected("quick", "summary.csv", "missing")
        write(path, "".join(lines + [lines[-1].replace(",libuv,", ",Ghost,")]))
        self.assert_rejected("quick", "summary.csv", "extra row")

    def test_corrupt_verdict_citation_and_word(self):
        self.edit("quick", "report.md", "**20.4** [MultiProducer producers=1", "**20.9** [MultiProducer producers=1")
        self.assert_rejected("quick", "CAS contention", "expected 20.4, found 20.9")
        self.edit("quick", "report.md", "**20.9** [MultiProducer producers=1", "**20.4** [MultiProducer producers=1")
        self.edit("quick", "report.md", "Verdict: **not supported**", "Verdict: **supported**")
        self.assert_rejected("quick", "verdict: expected not supported, found supported")

    def test_uncited_and_dropped_numbers(self):
        self.edit("quick", "report.md", "(below the rule)", "(below the rule, about 42 ns)")
        self.assert_rejected("quick", "uncited number 42")
        self.edit("quick", "report.md", " The largest producer count exceeds this machine's **2** [header · cores] cores:",
                  " Oversubscribed:")
        self.assert_rejected("quick", "citation [header · cores]", "missing")

    def test_header_block(self):
        self.edit("quick", "report.md", "| Cores | 2 |", "| Cores | 4 |")
        self.assert_rejected("quick", "header row Cores")

    def test_malformed_raw(self):
        path = os.path.join(self.dir("quick"), "raw.jsonl")
        good = read(path)
        for bad in ['{"kind":"run",', '{"kind":"run","entrant":"X","family":"other","workload":"PingPong",'
                    '"params":{},"run":0,"ns_per_op":1}', '{"kind":"run","entrant":"X","family":"peer",'
                    '"workload":"PingPong","params":{},"run":0,"ns_per_op":"fast"}']:
            write(path, good + bad + "\n")
            self.assert_rejected("quick", "raw.jsonl", "line 128")
            code, output = run("report.py", self.dir("quick"))
            self.assertEqual(code, 1, output)
            self.assertIn("raw.jsonl:128", output)


class TwoMachines(Base):
    """Local quick run plus a 16-core scaling run: separate sections and tables, never mixed."""

    def test_separate_tables(self):
        self.build("quick", "scaling16")
        md = read(os.path.join(self.dir("quick"), "report.md"))
        self.assertIn("| M2 | big-box/16x AMD EPYC 9654 | `../scaling16/raw.jsonl` |", md)
        self.assertIn("## M1 — ci-box/2x Intel(R) Xeon(R) Processor", md)
        self.assertIn("## M2 — big-box/16x AMD EPYC 9654", md)
        for block in md.split("\n### ")[1:]:
            heading, body = block.split("\n", 1)
            body = body.split("\n## ")[0]
            machine = heading.split(" — ", 1)[1]
            other = "big-box" if machine.startswith("ci-box") else "ci-box"
            self.assertNotIn(other, body, heading)
            rows = [line for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()]
            if heading.startswith("MultiProducer"):
                self.assertEqual(len(rows), 7 if machine.startswith("ci-box") else 4, heading)
        csv_text = read(os.path.join(self.dir("quick"), "summary.csv"))
        self.assertEqual(csv_text.count("\nbig-box/16x AMD EPYC 9654,"), 6 * 4)
        self.assertIn("exceeds this machine's **16** [header · cores]", md)
        self.edit("scaling16", "raw.jsonl", '"ns_per_op":21.', '"ns_per_op":29.')
        self.assert_rejected("quick", "big-box/16x AMD EPYC 9654")

    def test_same_machine_twice_is_refused(self):
        code, output = run("report.py", self.dir("quick"), self.dir("quick"))
        self.assertEqual(code, 1, output)
        self.assertIn("same machine id", output)


class MicroSuite(Base):
    """Wakeup, BatchBudget and CoreMicro (with 4-run and 1-run groups)."""

    def test_micro(self):
        self.build("micro")
        md = read(os.path.join(self.dir("micro"), "report.md"))
        self.assertIn("### CoreMicro — bench-box/8x AMD EPYC 7B13", md)
        self.assertIn("| ring_push_pop | CLoopCore | 3.33 | 3.25–3.48 |", md)
        self.assertIn("| wake_syscall_epoll | CLoopCore | 1197 | 1197–1197 | 0 | 1 |", md)
        self.assertIn("**Wakeup syscalls — is a round trip to a sleeping loop dominated by its wake syscall?** "
                      "Verdict: **supported**", md)
        self.assertIn("**Batch budget — does a larger external batch budget buy throughput at the cost of probe "
                      "latency?** Verdict: **supported**", md)
        self.assertIn("MultiProducer was not run in this suite", md)
        self.edit("micro", "report.md", "| wake_syscall_epoll | CLoopCore | 1197 |", "| wake_syscall_epoll | CLoopCore | 1198 |")
        self.assert_rejected("micro", "CoreMicro", "expected 1197, found 1198")


class TargetsAndModes(Base):
    """A synthetic run with a default configuration: the targets table and the Modes cells, each checked."""

    DEFAULT = "LoopKit per-producer/epoll/spin"

    def write_run(self):
        header = {"kind": "header", "machine": {"id": "t-box/2x Test CPU", "cpu": "Test CPU", "cores": 2,
                                                 "kernel": "6.18", "hostname": "t-box"},
                  "toolchain": "Swift 6.3.1", "commit": "abc", "date": "2026-12-03T00:00:00Z",
                  "command": "loopbench", "suite": "full", "runs": 5, "default_entrant": self.DEFAULT}
        lines = []

        def runs(workload, params, entrant, family, values, **fields):
            for i, v in enumerate(values):
                line = {"kind": "run", "entrant": entrant, "family": family, "workload": workload,
                        "params": params, "run": i, "ns_per_op": v}
                line.update({k: f[i] if isinstance(f, list) else f for k, f in fields.items()})
                lines.append(line)

        pp = {"tasks": "500000"}
        runs("PingPong", pp, self.DEFAULT, "loopkit", [30, 31, 32, 33, 34], allocs_per_op=0, wake_syscalls_per_op=0)
        runs("PingPong", pp, "LoopKit lock-free/epoll/spin", "loopkit", [50, 51, 52, 53, 54], allocs_per_op=0,
             wake_syscalls_per_op=0)
        runs("PingPong", pp, "libuv", "peer", [40, 41, 120, 125, 130])   # bimodal: 40.5 (2) / 125 (3)
        runs("PingPong", pp, "SwiftNIO", "peer", [100, 101, 102, 103, 104])
        for op, values in (("floor_handoff", [20, 20, 21, 21, 22]), ("ingress_per_producer_handoff", [25, 26, 27, 28, 29]),
                           ("floor_round_trip", [100, 101, 102, 103, 104])):
            runs("CoreMicro", {"op": op}, "CLoopCore", "loopkit", values)
        write_raw(self.dir("targets"), registry(header, lines, ops=("CoreMicro",)), lines)

    def test_targets_and_modes(self):
        self.write_run()
        self.build("targets")
        md = read(os.path.join(self.dir("targets"), "report.md"))
        self.assertIn("| Default configuration | LoopKit per-producer/epoll/spin |", md)
        self.assertIn("| 4 | libuv | peer | 120 | 40.0–130 | 50.9 | 5 | 40.5 (2) / 125 (3) |", md)
        self.assertIn("| PingPong: default ÷ libuv | 0.27× | ≤ 0.80× | yes |", md)
        self.assertIn("| PingPong: default ÷ SwiftNIO | 0.31× | ≤ 0.50× | yes |", md)
        self.assertIn("| C-level hand-off: per-producer ingress ÷ floor | 1.29× | ≤ 1.50× | yes |", md)
        self.assertIn("| PingPong: default's allocations per task | 0 | = 0 | yes |", md)
        self.assertIn("| LoopKit per-producer/epoll/spin | yes | 32.0 |", md)
        self.edit("targets", "report.md", "| PingPong: default ÷ libuv | 0.27× | ≤ 0.80× | yes |",
                  "| PingPong: default ÷ libuv | 0.27× | ≤ 0.80× | no |")
        self.assert_rejected("targets", "Targets", "expected yes, found no")

    def test_a_tampered_mode_is_caught(self):
        self.write_run()
        self.build("targets")
        self.edit("targets", "report.md", "40.5 (2) / 125 (3)", "40.5 (2) / 126 (3)")
        self.assert_rejected("targets", "Modes")
        self.edit("targets", "report.md", "40.5 (2) / 126 (3)", "—")
        self.assert_rejected("targets", "Modes")


class Headline(Base):
    """The on-screen summary shows report.md's own cells, compactly."""

    def test_rows_match_the_report(self):
        stdout = self.build("quick")
        md = read(os.path.join(self.dir("quick"), "report.md"))
        row = re.search(r"^\s+(\d+)\s+(LoopKit lock-free/epoll/spin)\s+(\S+)\s+(\S+)\s+(\S+?)\*?\s+(\S+)$",
                        stdout.split("PingPong tasks=200000")[1], re.M)
        self.assertIsNotNone(row, stdout)
        rank, entrant, median, spread, cv, best = row.groups()
        self.assertIn(f"| {rank} | {entrant} | loopkit | {median} | {spread} | {cv} |", md)
        self.assertIn(best, md.split("### PingPong tasks=200000")[1].split("###")[0])
        self.assertIn("Verdict, CAS contention: not supported", stdout)


class Registry(Base):
    """The workload list, its order, layouts and field labels come from the raw.jsonl header."""

    def header_and_lines(self):
        """The quick fixture's header and run lines, after a good report of it (verify.py reads report.md)."""
        self.build("quick")
        lines = [json.loads(l) for l in read(os.path.join(self.dir("quick"), "raw.jsonl")).splitlines() if l]
        return lines[0], lines[1:]

    def test_order_follows_the_header(self):
        header, lines = self.header_and_lines()
        header["workloads"] = header["workloads"][::-1]
        write_raw(self.dir("quick"), header, lines)
        self.build("quick")
        md = read(os.path.join(self.dir("quick"), "report.md"))
        self.assertLess(md.index("### MultiProducer"), md.index("### PingPong tasks"))

    def test_undeclared_workload_is_rejected(self):
        header, lines = self.header_and_lines()
        header["workloads"] = [w for w in header["workloads"] if w["name"] != "Burst"]
        write_raw(self.dir("quick"), header, lines)
        code, output = run("report.py", self.dir("quick"))
        self.assertEqual(code, 1, output)
        self.assertIn("workload 'Burst' is not among the header's workloads", output)
        self.assert_rejected("quick", "workload Burst not declared in the header")

    def test_header_without_registry_is_rejected(self):
        header, lines = self.header_and_lines()
        del header["workloads"]
        write_raw(self.dir("quick"), header, lines)
        code, output = run("report.py", self.dir("quick"))
        self.assertEqual(code, 1, output)
        self.assertIn("'workloads' must list the workloads measured", output)
        self.assert_rejected("quick", "no workloads list")


class Plots(Base):
    """plots.py refuses data that lacks a planned workload; report.md embeds every plot and verify.py checks it."""

    def synthetic(self, name, drop=None):
        """A run with PingPong (one bimodal entrant), a latency workload and a sweep; `drop` leaves out the
        runs of one workload (or of one 'workload producers=N' case)."""
        header = {"kind": "header", "machine": {"id": "p-box/2x Test CPU", "cpu": "Test CPU", "cores": 2,
                                                 "kernel": "6.18", "hostname": "p-box"},
                  "suite": "quick", "runs": 4, "default_entrant": "LoopKit a"}
        lines, generator = [], random.Random(3)
        entrants = [("LoopKit a", "loopkit"), ("Baseline", "baseline"), ("libuv", "peer")]

        def add(workload, params, base, **extra):
            for entrant, family in entrants:
                for i in range(4):
                    value = base * (1 + entrants.index((entrant, family))) * (2 if entrant == "libuv" and i % 2 else 1)
                    line = {"kind": "run", "entrant": entrant, "family": family, "workload": workload,
                            "params": params, "run": i, "ns_per_op": value * generator.uniform(0.95, 1.05)}
                    for key, make in extra.items():
                        line[key] = make(value)
                    lines.append(line)

        add("PingPong", {"tasks": "1000"}, 30)
        curve = lambda v: {p: v * (1 + k) for k, p in enumerate(("50", "90", "99", "99.9", "99.99"))}
        add("PingPongLatency", {"rounds": "100"}, 500, p50_ns=lambda v: v, percentiles_ns=curve)
        for producers in (1, 2, 4):
            add("MultiProducer", {"producers": str(producers), "tasks_per_producer": "100"}, 40 + producers,
                submit_ns_per_op=lambda v: v / 2)
        registry(header, lines, latency=("PingPongLatency",), sweeps={"MultiProducer": "producers"})
        lines = [l for l in lines if drop not in (l["workload"], f"{l['workload']} producers={l['params'].get('producers')}")]
        write_raw(self.dir(name), header, lines)

    def test_a_planned_workload_without_data_fails_loudly(self):
        self.synthetic("gap", drop="PingPongLatency")
        code, output = run("plots.py", self.dir("gap"))
        self.assertEqual(code, 1, output)
        self.assertIn("workload PingPongLatency is in the header but has no runs", output)
        self.assertFalse(os.path.exists(os.path.join(self.dir("gap"), "plots")))

    def test_a_planned_case_without_data_fails_loudly(self):
        self.synthetic("gap", drop="MultiProducer producers=2")
        code, output = run("plots.py", self.dir("gap"))
        self.assertEqual(code, 1, output)
        self.assertIn("MultiProducer producers=2 tasks_per_producer=100 has no runs", output)

    def test_latency_workload_without_curves_fails_loudly(self):
        self.synthetic("gap")
        path = os.path.join(self.dir("gap"), "raw.jsonl")
        lines = [{k: v for k, v in json.loads(l).items() if k != "percentiles_ns"} for l in read(path).splitlines()]
        write(path, "".join(json.dumps(l) + "\n" for l in lines))
        code, output = run("plots.py", self.dir("gap"))
        self.assertEqual(code, 1, output)
        self.assertIn("latency workload PingPongLatency has no percentiles_ns", output)

    def test_embedded_plots_are_checked(self):
        self.synthetic("p")
        os.makedirs(os.path.join(self.dir("p"), "plots"))
        machine = report.Machine(self.dir("p"), "", *report.load_raw(self.dir("p")))
        planned = [path for *_, path in report.planned_plots(1, machine)]
        self.assertEqual(len(planned), 5)  # runs x3, PingPongLatency percentiles, MultiProducer sweep
        for path in planned[1:]:
            write(os.path.join(self.dir("p"), path), "")
        code, output = run("report.py", self.dir("p"))
        self.assertEqual(code, 1, output)
        self.assertIn(planned[0], output)
        write(os.path.join(self.dir("p"), planned[0]), "")
        self.build("p")
        md = read(os.path.join(self.dir("p"), "report.md"))
        self.assertIn("![MultiProducer: medians against producers](plots/M1-MultiProducer-sweep.png)", md)
        self.edit("p", "report.md", "![MultiProducer: medians against producers](plots/M1-MultiProducer-sweep.png)", "")
        self.assert_rejected("p", "plots", "M1-MultiProducer-sweep.png")
        self.build("p")
        os.remove(os.path.join(self.dir("p"), planned[1]))
        self.assert_rejected("p", planned[1], "missing")

    @unittest.skipUnless(importlib.util.find_spec("matplotlib"), "matplotlib not installed (make bench-quick installs it)")
    def test_draws_every_planned_plot(self):
        self.synthetic("p")
        code, output = run("plots.py", self.dir("p"))
        self.assertEqual(code, 0, output)
        machine = report.Machine(self.dir("p"), "", *report.load_raw(self.dir("p")))
        for *_, path in report.planned_plots(1, machine):
            with open(os.path.join(self.dir("p"), path), "rb") as handle:
                self.assertEqual(handle.read(8), b"\x89PNG\r\n\x1a\n", path)
        self.build("p")


if __name__ == "__main__":
    unittest.main(verbosity=2)
