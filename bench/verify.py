#!/usr/bin/env python3
"""Independent checker for the tournament report (standard library only; does not import report.py).

    python3 bench/verify.py DIR          (make bench-verify)

Re-derives every number in DIR/summary.csv and DIR/report.md from DIR/raw.jsonl (and from the other
raw.jsonl files listed in report.md's Sources table) and exits 1 listing each mismatch as
`file: location: expected ..., found ...`. Malformed raw.jsonl lines, missing or extra rows, tables or
citations, a wrong verdict, and a number in running text that is not followed by a checkable
[source] all count as mismatches. The workloads, their order and layout, and the per-run fields with their
labels come from the raw.jsonl header (loopbench's registry). When DIR/plots/ exists, every plot the header
calls for must be embedded after its workload's last table and exist, and no other image may appear.

Formatting rules (the documented ones, re-implemented here): 3 significant digits with trailing zeros,
no exponent; an integer once the rounded value reaches 1000; ratios with 2 decimals and "×"; rounding
half-to-even on the exact binary value; "—" (empty in the CSV) for an absent value. Statistics are
computed with the `statistics` module, so a found string is accepted when it equals the formatting of
the expected value or of that value moved by one part in a billion (floating-point summation order).
"""

import csv
import json
import math
import os
import re
import statistics
import sys

DASH = "—"
BASE_KEYS = {"kind", "entrant", "family", "workload", "params", "run", "ns_per_op"}
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
TITLE = "# LoopKit benchmark tournament — report"
HEADER_ROWS = [("Machine id", "machine.id"), ("CPU", "machine.cpu"), ("Cores", "machine.cores"),
               ("Kernel", "machine.kernel"), ("Hostname", "machine.hostname"), ("Toolchain", "toolchain"),
               ("Commit", "commit"), ("Date", "date"), ("Command", "command"), ("Suite", "suite"),
               ("Runs per group", "runs"), ("Default configuration", "default_entrant")]
VERDICT_TITLES = ["CAS contention", "Wakeup syscalls", "Batch budget"]
RULES = [  # the stated rules, which the expected verdicts below apply to unrounded medians
    "Rule: supported if the median submit ns/op of a LoopKit per-producer, lock-free or chunked entrant grows "
    "by ≥ 1.50× from the smallest to the largest producer count.",
    "Rule: supported if the round-trip p50 to a sleeping (parked) loop is ≥ 10× that to a running (spinning) one.",
    "Rule: supported if ns/op at the largest budget is ≤ 0.90× that at the smallest (≥ 10% less time per task) "
    "while the probe p99 grows (> 1.00×).",
]
ALLOWED_BARE = {"1.50×", "10×", "0.90×", "1.00×", "10%"}  # the verdict rules' own constants
TARGETS_NOTE = ("The throughput and idle-CPU targets, computed from this run's medians for the default "
                "configuration (the header's Default configuration). Throughput: ns/op against libuv and "
                "SwiftNIO; C level: the per-producer ingress's hand-off against the bare ring floor (CoreMicro); "
                "latency: PingPongLatency p50 against the spinning round-trip floor between the same two threads "
                "(its floor p50 column, measured interleaved with it); Paced: CPU per "
                "task against the same configuration with `.park`, and the p50 round trip against libuv's; ActorHop: "
                "a round trip to an actor pinned to a LoopKit loop against one pinned to SwiftNIO's loop, a hop "
                "between two actors on one loop against two default actors, allocations and eventfd writes per hop; "
                "echo over loopback: LoopKit on io_uring against SwiftNIO's ServerBootstrap handler and libuv "
                "(messages/s and server CPU per message, p50 round trip, connections/s). "
                "The scaling rows appear only on machines with 16 cores or more.")
BARE_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[×%]?")
CITATION = re.compile(r"\*\*([^*]+)\*\* \[([^\]]+)\]")


class Mismatches:
    """Collects mismatches as (file, location, expected, found)."""

    def __init__(self):
        self.items = []

    def add(self, file, location, expected, found):
        self.items.append((file, location, expected, found))


def number_text(x):
    """The documented number format, written independently of report.py."""
    if x is None:
        return DASH
    if x == 0:
        return "0"
    exponent = int("{:.2e}".format(x).split("e")[1])  # decimal exponent after rounding to 3 digits
    if exponent >= 3:
        return "{:.0f}".format(x)
    return "{:.{}f}".format(x, 2 - exponent)


def ratio_text(x):
    """The documented ratio format: 2 decimals and ×."""
    return DASH if x is None else "{:.2f}×".format(x)


def spellings(kind, value):
    """Acceptable renderings of an expected value (formatting of value and value ± 1e-9 relative)."""
    if value is None or kind == "text":
        return {DASH if value is None else str(value)}
    render = number_text if kind == "num" else ratio_text
    return {render(value), render(value * (1 + 1e-9)), render(value * (1 - 1e-9))}


def matches(expected, found):
    """expected is ('text', s), ('num', x), ('ratio', x), ('range', lo, hi), ('csv', x), ('modes', lo, n,
    hi, m) or ('csvmodes', spec)."""
    kind = expected[0]
    if kind == "csvmodes":
        return found == "" if expected[1][0] == "text" else matches(expected[1], found)
    if kind == "modes":
        return any(found == f"{a} ({expected[2]}) / {b} ({expected[4]})"
                   for a in spellings("num", expected[1]) for b in spellings("num", expected[3]))
    if kind == "range":
        return any(found == f"{a}–{b}" for a in spellings("num", expected[1]) for b in spellings("num", expected[2]))
    if kind == "csv":
        return found == "" if expected[1] is None else found in spellings("num", expected[1])
    return found in spellings(kind, expected[1])


def shown(expected):
    """The canonical rendering of an expected value, for messages."""
    if expected[0] == "csvmodes":
        return "" if expected[1][0] == "text" else shown(expected[1])
    if expected[0] == "modes":
        return f"{number_text(expected[1])} ({expected[2]}) / {number_text(expected[3])} ({expected[4]})"
    if expected[0] == "range":
        return f"{number_text(expected[1])}–{number_text(expected[2])}"
    if expected[0] == "csv":
        return "" if expected[1] is None else number_text(expected[1])
    return sorted(spellings(expected[0], expected[1]))[0] if expected[1] is not None else DASH


def good_number(v):
    """A finite JSON number that is not a bool."""
    return type(v) in (int, float) and math.isfinite(v)


def read_raw(path, out):
    """Parses raw.jsonl into (header, groups); each malformed line is a mismatch. None if unreadable."""
    if not os.path.isfile(path):
        out.add(path, "file", "raw.jsonl present", "missing")
        return None
    header, groups, runs_seen = None, {}, set()
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip() == "":
            continue
        where = f"line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            out.add(path, where, "a JSON object", "malformed line")
            continue
        if header is None:
            machine = item.get("machine") if isinstance(item, dict) else None
            if not (isinstance(machine, dict) and item.get("kind") == "header" and type(machine.get("id")) is str
                    and type(machine.get("cores")) is int and type(item.get("runs")) is int):
                out.add(path, where, "header line with machine.id, machine.cores, runs", "malformed header")
                header = {}
            elif registry_problem(item):
                out.add(path, where, "the header's fields and workloads (loopbench's registry)", registry_problem(item))
                header = {}
            else:
                header = item
            continue
        problem = run_problem(item)
        if not problem and item["workload"] not in [w["name"] for w in header.get("workloads", [])]:
            problem = f"workload {item['workload']} not declared in the header"
        if problem:
            out.add(path, where, "a well-formed run line", problem)
            continue
        params = tuple(sorted((k, str(v)) for k, v in item["params"].items()))
        key = (item["workload"], params, item["entrant"])
        if key + (item["run"],) in runs_seen:
            out.add(path, where, "one line per run index", f"duplicate run {item['run']}")
        runs_seen.add(key + (item["run"],))
        group = groups.setdefault(key, {"family": item["family"], "ns": [], "fields": {}})
        group["ns"].append(item["ns_per_op"])
        for name, value in item.items():
            if name not in BASE_KEYS and value is not None and type(value) is not dict:
                group["fields"].setdefault(name, []).append(value)
    if header is None:
        out.add(path, "line 1", "a header line", "empty file")
    return header, groups


def run_problem(item):
    """Why a run line is malformed, or None."""
    if not isinstance(item, dict) or item.get("kind") != "run":
        return "not a run object"
    if type(item.get("entrant")) is not str or type(item.get("workload")) is not str \
            or not item["entrant"] or not item["workload"]:
        return "entrant/workload must be non-empty strings"
    if item.get("family") not in ("loopkit", "baseline", "peer"):
        return f"bad family {item.get('family')!r}"
    if not isinstance(item.get("params"), dict) or any(type(v) not in (str, int) for v in item["params"].values()):
        return "params must be an object of strings"
    if type(item.get("run")) is not int or item["run"] < 0:
        return "run must be a non-negative integer"
    if not good_number(item.get("ns_per_op")):
        return "ns_per_op must be a finite number"
    for name, value in item.items():
        if name not in BASE_KEYS and value is not None and not good_number(value) and not curve(value):
            return f"{name} must be a number (or a curve: an object of numbers keyed by numbers)"
    return None


def curve(value):
    """An object of finite numbers keyed by numeric strings, e.g. percentiles_ns."""
    if type(value) is not dict or not value:
        return False
    for key, number in value.items():
        if not re.fullmatch(r"\d+(\.\d+)?", key) or not good_number(number):
            return False
    return True


def registry_problem(header):
    """What is missing from the header's registry part ('' if nothing)."""
    fields, workloads = header.get("fields"), header.get("workloads")
    if type(fields) is not list or any(type(f) is not dict or type(f.get("key")) is not str
                                       or type(f.get("label")) is not str for f in fields):
        return "no fields list of {key, label}"
    if type(workloads) is not list or not workloads:
        return "no workloads list"
    for w in workloads:
        if type(w) is not dict or type(w.get("name")) is not str or w.get("layout") not in ("ranked", "ops") \
                or type(w.get("latency")) is not bool or type(w.get("metric")) is not str \
                or type(w.get("params")) is not list or not (w.get("sweep") is None or type(w["sweep"]) is dict):
            return f"workload {w.get('name') if type(w) is dict else w!r} lacks name/metric/layout/latency/params/sweep"
    return ""


class Box:
    """One machine's raw data, with medians computed on demand by `statistics`."""

    def __init__(self, header, groups, source):
        self.header, self.groups, self.source = header, groups, source
        self.id = header["machine"]["id"]
        self.cores = header["machine"]["cores"]
        self.workloads = header["workloads"]
        self.order = [f["key"] for f in header["fields"]]
        self.labels = {f["key"]: f["label"] for f in header["fields"]}

    def get(self, workload, params, entrant, field):
        """Median of a field for a group, or None."""
        group = self.groups.get((workload, params, entrant))
        if group is None:
            return None
        values = group["ns"] if field == "ns_per_op" else group["fields"].get(field)
        return statistics.median(values) if values else None

    def family(self, key):
        return self.groups[key]["family"]

    def cv(self, key):
        values = self.groups[key]["ns"]
        if len(values) == 1 or statistics.mean(values) == 0:
            return 0.0
        return statistics.stdev(values) / statistics.mean(values) * 100

    def fields(self, keys):
        """Optional fields present in any of the given groups, in documented order."""
        found = {f for k in keys for f in self.groups[k]["fields"]}
        return sorted(found, key=lambda f: (self.order.index(f) if f in self.order else len(self.order), f))

    def param_sets(self, workload):
        """Distinct params of a workload, integers compared as numbers."""
        found = {k[1] for k in self.groups if k[0] == workload}
        return sorted(found, key=lambda p: [(n, (0, int(v), "") if v.isdigit() else (1, 0, v)) for n, v in p])

    def tables(self):
        """(workload, params) in the header's workload order; (workload, None) for an "ops" layout."""
        pairs = []
        for w in self.workloads:
            found = self.param_sets(w["name"])
            if found and w["layout"] == "ops":
                pairs.append((w["name"], None))
            else:
                pairs += [(w["name"], p) for p in found]
        return pairs

    def plots(self, index):
        """{workload: [(alt, path)]}: the images the header calls for (written from the stated rule: runs
        always, percentiles when latency, medians against the swept parameter when it sweeps one)."""
        found = {}
        for w in self.workloads:
            name, stem = w["name"], f"plots/M{index}-{w['name']}"
            found[name] = [(f"{name}: every run of every entrant", f"{stem}-runs.png")]
            if w["latency"]:
                found[name].append((f"{name}: latency percentiles, median over runs", f"{stem}-percentiles.png"))
            if w["sweep"]:
                found[name].append((f"{name}: medians against {w['sweep']['label']}", f"{stem}-sweep.png"))
        return found


def bimodal(values):
    """(lower, upper) when the sorted runs split at their largest neighbour ratio (first on ties) into two
    parts of >= 2 runs that are >= 1.5x apart; else None. Written from the report's stated rule."""
    v = sorted(values)
    candidates = [(v[k] / v[k - 1], -k) for k in range(2, len(v) - 1) if v[k - 1] > 0]
    if not candidates:
        return None
    gap, negative_k = max(candidates)
    return (v[:-negative_k], v[-negative_k:]) if gap >= 1.5 else None


def modes_spec(values):
    """A 'text' spec for the Modes cell (accepting the ±1e-9 spellings of each median)."""
    split = bimodal(values)
    if split is None:
        return ("text", DASH)
    return ("modes", statistics.median(split[0]), len(split[0]), statistics.median(split[1]), len(split[1]))


def kv(params, sep=" "):
    return sep.join(f"{k}={v}" for k, v in params)


def heading_for(box, workload, params):
    return f"### {workload}{' ' + kv(params) if params else ''} — {box.id}"


def spread_cells(box, key):
    """[median, min–max, CV, runs] specs of one group, shared by both table kinds."""
    values = box.groups[key]["ns"]
    return [("num", statistics.median(values)), ("range", min(values), max(values)),
            ("num", box.cv(key)), ("text", str(len(values))), modes_spec(values)]


def expected_tables(box):
    """{heading: (columns, [(row key, [cell specs])])} for every table of one machine."""
    tables = {}
    for workload, params in box.tables():
        if params is None:  # an "ops" layout: one row per op, sorted by op
            keys = sorted((k for k in box.groups if k[0] == workload), key=lambda k: (kv(k[1]), k[2]))
            columns = ["Op", "Entrant", "Median ns/op", "Min–max ns/op", "CV %", "Runs", "Modes"]
            rows = []
            for k in keys:
                op = dict(k[1]).get("op", kv(k[1]))
                rows.append(((op, k[2]), [("text", op), ("text", k[2])] + spread_cells(box, k)))
            tables[heading_for(box, workload, params)] = (columns, rows)
            continue
        keys = [k for k in box.groups if k[0] == workload and k[1] == params]
        keys.sort(key=lambda k: (statistics.median(box.groups[k]["ns"]), k[2]))
        peer_medians = [box.get(*k, "ns_per_op") for k in keys if box.family(k) == "peer"]
        best = min(peer_medians) if peer_medians else None
        base = box.get(workload, params, "Baseline", "ns_per_op")
        extra = box.fields(keys)
        columns = ["Rank", "Entrant", "Family", "Median ns/op", "Min–max ns/op", "CV %", "Runs", "Modes",
                   "×best peer", "×Baseline"] + [box.labels.get(f, f) for f in extra]
        rows = []
        for rank, k in enumerate(keys, start=1):
            m = box.get(*k, "ns_per_op")
            cells = [("text", str(rank)), ("text", k[2]), ("text", box.family(k))] + spread_cells(box, k)
            cells += [("ratio", m / best if best else None), ("ratio", m / base if base else None)]
            cells += [("num", box.get(*k, f)) for f in extra]
            rows.append(((k[2],), cells))
        tables[heading_for(box, workload, params)] = (columns, rows)
    return tables


def config_table(box):
    """(columns, rows) of the LoopKit configurations table, or None when it has no measured column."""
    cols = []
    for w in ("PingPong", "Burst"):
        for p in box.param_sets(w)[:1]:
            cols.append((f"{w} ns/op", w, p, "ns_per_op"))
    counts = first_by_int(box, "MultiProducer", "producers")
    for c in sorted({min(counts), max(counts)}) if counts else []:
        cols.append((f"MultiProducer P={c} ns/op", "MultiProducer", counts[c], "ns_per_op"))
    for p in box.param_sets("PingPongLatency")[:1]:
        cols.append(("PingPongLatency p50 ns", "PingPongLatency", p, "p50_ns"))
    rates = first_by_int(box, "Paced", "rate")
    for r in sorted(rates):
        cols += [(f"Paced {r}/s CPU ns/task", "Paced", rates[r], "ns_per_op"), (f"Paced {r}/s p50 ns", "Paced", rates[r], "p50_ns")]
    pairs = {(w, p) for _, w, p, _ in cols}
    names = sorted({k[2] for k in box.groups if box.family(k) == "loopkit" and (k[0], k[1]) in pairs})
    if not cols or not names:
        return None
    default = box.header.get("default_entrant")
    rows = [((n,), [("text", n), ("text", "yes" if n == default else "no")] + [("num", box.get(w, p, n, f)) for _, w, p, f in cols])
            for n in names]
    return ["Entrant", "Default"] + [c[0] for c in cols], rows


def core_op(box, op):
    """Median of one CoreMicro op, or None."""
    for k in box.groups:
        if k[0] == "CoreMicro" and dict(k[1]).get("op") == op:
            return box.get(*k, "ns_per_op")
    return None


def expected_targets(box):
    """[(row key, [cell specs])] of the targets table (the rules as the report states them)."""
    rows, d = [], box.header.get("default_entrant")
    if not d:
        return rows

    def over(a, b):
        return None if a is None or b is None or b <= 0 else a / b

    def row(target, value, limit, ok, kind="ratio"):
        if value is not None:
            rows.append(((target,), [("text", target), (kind, value), ("text", limit), ("text", "yes" if ok(value) else "no")]))

    sets = [(w, p, w) for w in ("PingPong", "Burst") for p in box.param_sets(w)[:1]]
    counts = first_by_int(box, "MultiProducer", "producers")
    sets += [("MultiProducer", counts[c], f"MultiProducer P={c}") for c in (1, 2, 10) if c in counts]
    for peer, limit, text in (("libuv", 0.8, "≤ 0.80×"), ("SwiftNIO", 0.5, "≤ 0.50×")):
        for w, p, label in sets:
            row(f"{label}: default ÷ {peer}", over(box.get(w, p, d, "ns_per_op"), box.get(w, p, peer, "ns_per_op")),
                text, lambda r, limit=limit: r <= limit)
    row("C-level hand-off: per-producer ingress ÷ floor", over(core_op(box, "ingress_per_producer_handoff"),
                                                            core_op(box, "floor_handoff")), "≤ 1.50×", lambda r: r <= 1.5)
    for p in box.param_sets("PingPongLatency")[:1]:
        row("PingPongLatency p50: default ÷ spinning round-trip floor (same threads, interleaved)",
            over(box.get("PingPongLatency", p, d, "p50_ns"), box.get("PingPongLatency", p, d, "floor_p50_ns")),
            "≤ 2.00×", lambda r: r <= 2)
    for w, p, label in sets[:1]:
        row(f"{label}: default's allocations per task", box.get(w, p, d, "allocs_per_op"), "= 0", lambda a: a == 0, "num")
    if d.startswith("LoopKit per-producer/"):
        lf = "LoopKit lock-free/" + d[len("LoopKit per-producer/"):]
        for w, p, label in sets:
            limit = box.get(w, p, lf, "wake_syscalls_per_op")
            if limit is not None:
                row(f"{label}: default's wake syscalls per task, ≤ {lf}'s", box.get(w, p, d, "wake_syscalls_per_op"),
                    f"≤ {number_text(limit)}", lambda a, limit=limit: a <= limit, "num")
    park = d.rsplit("/", 1)[0] + "/park"
    rates = first_by_int(box, "Paced", "rate")
    for r in sorted(rates):
        p = rates[r]
        row(f"Paced {r}/s: default's CPU per task ÷ {park}'s", over(box.get("Paced", p, d, "ns_per_op"),
                                                                  box.get("Paced", p, park, "ns_per_op")), "≤ 1.20×", lambda x: x <= 1.2)
        row(f"Paced {r}/s: default's p50 round trip ÷ libuv's", over(box.get("Paced", p, d, "p50_ns"),
                                                                   box.get("Paced", p, "libuv", "p50_ns")), "< 1.00×", lambda x: x < 1)
    hops = {dict(p).get("mode"): p for p in box.param_sets("ActorHop")}
    if "task-to-actor" in hops:
        p = hops["task-to-actor"]
        row("ActorHop task-to-actor: LoopKit ÷ SwiftNIO", over(box.get("ActorHop", p, "LoopKit", "ns_per_op"),
                                                             box.get("ActorHop", p, "SwiftNIO", "ns_per_op")),
            "≤ 0.50×", lambda x: x <= 0.5)
    if "actor-to-actor" in hops:
        p = hops["actor-to-actor"]
        row("ActorHop actor-to-actor: LoopKit ÷ default actor", over(box.get("ActorHop", p, "LoopKit", "ns_per_op"),
                                                                    box.get("ActorHop", p, "default actor", "ns_per_op")),
            "≤ 1.00×", lambda x: x <= 1)
        row("ActorHop actor-to-actor: LoopKit's wake syscalls per hop", box.get("ActorHop", p, "LoopKit", "wake_syscalls_per_op"),
            "= 0", lambda a: a == 0, "num")
    for mode in sorted(hops):
        p = hops[mode]
        ours, nio = box.get("ActorHop", p, "LoopKit", "allocs_per_op"), box.get("ActorHop", p, "SwiftNIO", "allocs_per_op")
        if ours is not None and nio is not None:
            row(f"ActorHop {mode}: LoopKit's allocations per hop minus SwiftNIO's", ours - nio, "< 0.50", lambda x: x < 0.5, "num")
    echo = "LoopKit io_uring"
    for p in box.param_sets("EchoThroughput")[:1]:
        for peer, limit, text in (("SwiftNIO", 1.3, "≥ 1.30×"), ("libuv", 1.0, "≥ 1.00×")):
            row(f"EchoThroughput: {echo} ÷ {peer}, messages/s", over(box.get("EchoThroughput", p, echo, "messages_per_s"),
                                                                   box.get("EchoThroughput", p, peer, "messages_per_s")),
                text, lambda x, limit=limit: x >= limit)
        for peer in ("SwiftNIO", "libuv"):
            row(f"EchoThroughput: {echo} ÷ {peer}, server CPU per message",
                over(box.get("EchoThroughput", p, echo, "server_cpu_ns_per_op"),
                     box.get("EchoThroughput", p, peer, "server_cpu_ns_per_op")), "≤ 1.00×", lambda x: x <= 1)
    for p in box.param_sets("EchoLatency")[:1]:
        row(f"EchoLatency p50: {echo} ÷ SwiftNIO", over(box.get("EchoLatency", p, echo, "p50_ns"),
                                                       box.get("EchoLatency", p, "SwiftNIO", "p50_ns")), "≤ 0.80×", lambda x: x <= 0.8)
    for p in box.param_sets("ConnectionChurn")[:1]:
        row(f"ConnectionChurn: {echo} ÷ SwiftNIO, connections/s",
            over(box.get("ConnectionChurn", p, echo, "connections_per_s"),
                 box.get("ConnectionChurn", p, "SwiftNIO", "connections_per_s")), "≥ 1.00×", lambda x: x >= 1)
    if box.cores >= 16:
        for c in (8, 16, 32):
            if c in counts:
                row(f"MultiProducer P={c}: default ÷ Dispatch", over(box.get("MultiProducer", counts[c], d, "ns_per_op"),
                                                                     box.get("MultiProducer", counts[c], "Dispatch", "ns_per_op")),
                    "≤ 0.70×", lambda x: x <= 0.7)
        if 1 in counts and 16 in counts:
            row("Submit cost, default: P=16 ÷ P=1", over(box.get("MultiProducer", counts[16], d, "submit_ns_per_op"),
                                                        box.get("MultiProducer", counts[1], d, "submit_ns_per_op")),
                "≤ 1.50×", lambda x: x <= 1.5)
    return rows


def cite(workload, params, entrant, field):
    return f"{workload}{' ' + kv(params) if params else ''} · {entrant} · median {field}"


def first_by_int(box, workload, name):
    """{int param value: first params having it}."""
    found = {}
    for p in box.param_sets(workload):
        v = dict(p).get(name, "")
        if v.isdigit():
            found.setdefault(int(v), p)
    return found


def both(box, workload, a, b, entrant, field, positive=True):
    x, y = box.get(workload, a, entrant, field), box.get(workload, b, entrant, field)
    return x is not None and y is not None and (not positive or (x > 0 and y > 0))


def subject(box, workload, a, b, field, preferred, prefix):
    if both(box, workload, a, b, preferred, field):
        return preferred
    names = sorted({k[2] for k in box.groups if k[0] == workload and box.family(k) == "loopkit"
                    and k[2].startswith(prefix)})
    return next((n for n in names if both(box, workload, a, b, n, field)), None)


def growth_sources(workload, low, high, entrant, field):
    a, b = cite(workload, low, entrant, field), cite(workload, high, entrant, field)
    return [a, b, f"{b} ÷ {a}"]


def expect_cas(box):
    """(verdict word, expected citation sources) for the CAS contention hypothesis."""
    counts = first_by_int(box, "MultiProducer", "producers")
    if len(counts) < 2:
        return ("not measured" if not counts else "inconclusive"), []
    low, high, f, sources, hits = counts[min(counts)], counts[max(counts)], "submit_ns_per_op", [], []
    for ingress in ("per-producer", "lock-free", "chunked"):
        who = subject(box, "MultiProducer", low, high, f, f"LoopKit {ingress}/epoll/spin", f"LoopKit {ingress}/")
        if who:
            sources += growth_sources("MultiProducer", low, high, who, f)
            hits.append(box.get("MultiProducer", high, who, f) / box.get("MultiProducer", low, who, f) >= 1.5)
    for k in sorted({k[2] for k in box.groups if k[0] == "MultiProducer" and box.family(k) != "loopkit"}):
        if both(box, "MultiProducer", low, high, k, f):
            sources += growth_sources("MultiProducer", low, high, k, f)
    if max(counts) > box.cores:
        sources.append("header · cores")
    word = "inconclusive" if not hits else ("supported" if any(hits) else "not supported")
    return word, sources


def expect_wakeup(box):
    """(verdict word, expected citation sources) for the wakeup-syscall hypothesis."""
    basis, sources = None, []
    loops = {}
    for p in box.param_sets("Wakeup"):
        loops.setdefault(dict(p).get("loop"), p)
    if "sleeping" in loops and "running" in loops:
        s, r = loops["sleeping"], loops["running"]
        who = subject(box, "Wakeup", s, r, "p50_ns", "LoopKit lock-free/epoll/spin", "LoopKit ")
        if who:
            basis = box.get("Wakeup", s, who, "p50_ns") / box.get("Wakeup", r, who, "p50_ns")
            a, b = cite("Wakeup", s, who, "p50_ns"), cite("Wakeup", r, who, "p50_ns")
            sources += [a, b, f"{a} ÷ {b}"]
            if both(box, "Wakeup", s, r, who, "wake_syscalls_per_op", positive=False):
                sources += [cite("Wakeup", p, who, "wake_syscalls_per_op") for p in (s, r)]
    latency = box.param_sets("PingPongLatency")
    if latency:
        p = latency[0]
        ok = lambda e: box.get("PingPongLatency", p, e, "p50_ns") not in (None, 0)
        pair = None
        if ok("LoopKit lock-free/epoll/park") and ok("LoopKit lock-free/epoll/spin"):
            pair = ("LoopKit lock-free/epoll/park", "LoopKit lock-free/epoll/spin")
        else:
            for e in sorted({k[2] for k in box.groups if k[0] == "PingPongLatency" and box.family(k) == "loopkit"}):
                if e.endswith("/park") and ok(e) and ok(e[:-len("park")] + "spin"):
                    pair = (e, e[:-len("park")] + "spin")
                    break
        if pair:
            a, b = cite("PingPongLatency", p, pair[0], "p50_ns"), cite("PingPongLatency", p, pair[1], "p50_ns")
            sources += [a, b, f"{a} ÷ {b}"]
            if all(box.get("PingPongLatency", p, e, "wake_syscalls_per_op") is not None for e in pair):
                sources += [cite("PingPongLatency", p, e, "wake_syscalls_per_op") for e in pair]
            if basis is None:
                basis = box.get("PingPongLatency", p, pair[0], "p50_ns") / box.get("PingPongLatency", p, pair[1], "p50_ns")
    if basis is None:
        return "not measured", sources
    return ("supported" if basis >= 10 else "not supported"), sources


def expect_batch(box):
    """(verdict word, expected citation sources) for the batch-budget hypothesis."""
    budgets = first_by_int(box, "BatchBudget", "budget")
    if not budgets:
        return "not measured", []
    low, high = budgets[min(budgets)], budgets[max(budgets)]
    who = subject(box, "BatchBudget", low, high, "ns_per_op", "LoopKit per-producer/auto/spin", "LoopKit ")
    if len(budgets) < 2 or who is None:
        return "inconclusive", []
    sources = []
    for b in sorted(budgets):
        for f in ("ns_per_op", "p50_ns", "p99_ns"):
            if box.get("BatchBudget", budgets[b], who, f) is not None:
                sources.append(cite("BatchBudget", budgets[b], who, f))
    sources.append(f"{cite('BatchBudget', high, who, 'ns_per_op')} ÷ {cite('BatchBudget', low, who, 'ns_per_op')}")
    if not both(box, "BatchBudget", low, high, who, "p99_ns"):
        return "inconclusive", sources
    sources.append(f"{cite('BatchBudget', high, who, 'p99_ns')} ÷ {cite('BatchBudget', low, who, 'p99_ns')}")
    faster = box.get("BatchBudget", high, who, "ns_per_op") / box.get("BatchBudget", low, who, "ns_per_op") <= 0.9
    grows = box.get("BatchBudget", high, who, "p99_ns") / box.get("BatchBudget", low, who, "p99_ns") > 1.0
    return ("supported" if faster and grows else "not supported"), sources


def evaluate(box, source):
    """The expected value spec of a citation source, or None if the source names nothing measured."""
    if source == "header · cores":
        return ("text", str(box.cores))
    if " ÷ " in source:
        top, bottom = (evaluate(box, s) for s in source.split(" ÷ ", 1))
        if not top or not bottom or top[0] != "num" or not bottom[1]:
            return None
        return ("ratio", top[1] / bottom[1])
    parts = source.split(" · ")
    if len(parts) != 3 or not parts[2].startswith("median "):
        return None
    words = parts[0].split(" ")
    if not all("=" in w for w in words[1:]):
        return None
    params = tuple(sorted(tuple(w.split("=", 1)) for w in words[1:]))
    value = box.get(words[0], params, parts[1], parts[2][len("median "):])
    return None if value is None else ("num", value)


def check_verdicts(box, paragraphs, out, where):
    """Checks the three verdict paragraphs: words, every citation, no uncited numbers."""
    expectations = [expect_cas(box), expect_wakeup(box), expect_batch(box)]
    for title, rule, (word, sources) in zip(VERDICT_TITLES, RULES, expectations):
        found = [p for p in paragraphs if p.startswith(f"**{title}")]
        if len(found) != 1:
            out.add("report.md", f"{where}: {title}", "one paragraph", f"{len(found)} paragraphs")
            continue
        text = found[0]
        if rule not in text:
            out.add("report.md", f"{where}: {title}: rule", rule, "changed or missing")
        said = re.search(r"Verdict: \*\*([^*]+)\*\*", text)
        if not said or said.group(1) != word:
            out.add("report.md", f"{where}: {title}: verdict", word, said.group(1) if said else "none")
        cited = CITATION.findall(text)
        for value, source in cited:
            spec = evaluate(box, source)
            if spec is None:
                out.add("report.md", f"{where}: {title}: [{source}]", "a measured source", "no such median")
            elif not matches(spec, value):
                out.add("report.md", f"{where}: {title}: [{source}]", shown(spec), value)
        names = [s for _, s in cited]
        for source in sources:
            if source not in names:
                out.add("report.md", f"{where}: {title}", f"citation [{source}]", "missing")
        for source in names:
            if source not in sources:
                out.add("report.md", f"{where}: {title}", "no such citation", f"[{source}]")
        check_bare(CITATION.sub("", text), out, f"{where}: {title}")
    for p in paragraphs:
        if not any(p.startswith(f"**{t}") for t in VERDICT_TITLES):
            out.add("report.md", where, "only the three verdict paragraphs", p[:60])


def check_bare(text, out, where):
    """Flags numbers in running text that carry no [source] (code spans and rule constants excepted)."""
    for token in BARE_NUMBER.findall(re.sub(r"`[^`]*`", "", text)):
        if token not in ALLOWED_BARE:
            out.add("report.md", where, "every number cited with a [source]", f"uncited number {token}")


def split_row(line):
    """Cells of a markdown table row (escaped pipes kept as text)."""
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.strip().replace("\\|", "|") for c in cells]


def parse_markdown(text):
    """[(heading, [table rows], [paragraph lines])] in order; text before the first ## is the intro."""
    blocks = [("(intro)", [], [])]
    for line in text.split("\n"):
        if line.startswith("#"):
            blocks.append((line, [], []))
        elif line.startswith("|"):
            blocks[-1][1].append(split_row(line))
        elif line.strip():
            blocks[-1][2].append(line)
    return blocks


def compare_table(name, columns, expected_rows, rows, out):
    """Compares one parsed table (header row, separator, rows) with the expected one, row by row."""
    if not rows or rows[0] != columns:
        out.add("report.md", f"{name}: columns", " | ".join(columns), " | ".join(rows[0]) if rows else "no table")
        return
    # Ranked rows are keyed by Entrant (after Rank); the others by their leading cells (CoreMicro: Op,
    # Entrant; configurations: Entrant; targets: Target), as many as the expected keys have.
    offset = 1 if columns[0] == "Rank" else 0
    width = len(expected_rows[0][0]) if expected_rows else 1
    found = {}
    order = []
    for row in rows[2:]:
        key = tuple(row[offset:offset + width])
        found.setdefault(key, []).append(row)
        order.append(key)
    wanted = [key for key, _ in expected_rows]
    for key in order:
        if key not in wanted:
            out.add("report.md", f"{name}: row {' / '.join(key)}", "absent", "extra row")
    for key, cells in expected_rows:
        where = f"{name}: row {' / '.join(key)}"
        if key not in found:
            out.add("report.md", where, "present", "missing row")
            continue
        if len(found[key]) > 1:
            out.add("report.md", where, "once", f"{len(found[key])} times")
        row = found[key][0]
        if len(row) != len(cells):
            out.add("report.md", where, f"{len(cells)} cells", f"{len(row)} cells")
            continue
        for column, spec, value in zip(columns, cells, row):
            if not matches(spec, value):
                out.add("report.md", f"{where}: {column}", shown(spec), value)
    present = [key for key in order if key in wanted]
    if present != [key for key in wanted if key in found]:
        out.add("report.md", f"{name}: row order", " > ".join("/".join(k) for k in wanted),
                " > ".join("/".join(k) for k in present))


def check_csv(path, boxes, out):
    """Re-derives every row and number of summary.csv."""
    if not os.path.isfile(path):
        out.add("summary.csv", "file", "present", "missing")
        return
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    all_fields = set()
    for box in boxes:
        all_fields |= set(box.fields(list(box.groups)))
    order = []
    for box in boxes:
        order += [f for f in box.order if f not in order]
    fields = sorted(all_fields, key=lambda f: (order.index(f) if f in order else len(order), f))
    columns = ["machine", "workload", "params", "entrant", "family", "runs", "median_ns_per_op", "min_ns_per_op",
               "max_ns_per_op", "cv_percent", "modes"] + [f"median_{f}" for f in fields]
    if not rows or rows[0] != columns:
        out.add("summary.csv", "header", ",".join(columns), ",".join(rows[0]) if rows else "empty")
        return
    expected = {}
    for box in boxes:
        for key, group in box.groups.items():
            ns = group["ns"]
            expected[(box.id, key[0], kv(key[1], ";"), key[2])] = (
                [("text", group["family"]), ("text", str(len(ns))), ("csv", statistics.median(ns)),
                 ("csv", min(ns)), ("csv", max(ns)), ("csv", box.cv(key)), ("csvmodes", modes_spec(ns))]
                + [("csv", box.get(*key, f)) for f in fields])
    seen = set()
    for number, row in enumerate(rows[1:], start=2):
        key = tuple(row[:4])
        where = f"line {number} ({' / '.join(key)})"
        if key not in expected:
            out.add("summary.csv", where, "no such group", "extra row")
        elif key in seen:
            out.add("summary.csv", where, "one row per group", "duplicate row")
        elif len(row) != len(columns):
            out.add("summary.csv", where, f"{len(columns)} cells", f"{len(row)} cells")
        else:
            for column, spec, value in zip(columns[4:], expected[key], row[4:]):
                if not matches(spec, value):
                    out.add("summary.csv", f"{where}: {column}", shown(spec), value)
        seen.add(key)
    for key in expected:
        if key not in seen:
            out.add("summary.csv", " / ".join(key), "a row", "missing")


def check_report(directory, out):
    """Checks report.md and summary.csv in DIR; returns nothing, records mismatches."""
    path = os.path.join(directory, "report.md")
    if not os.path.isfile(path):
        out.add("report.md", "file", "present", "missing")
        return
    with open(path, encoding="utf-8") as handle:
        blocks = parse_markdown(handle.read())
    sources = next((b[1][2:] for b in blocks if b[0] == "## Sources"), None)
    if not sources:
        out.add("report.md", "## Sources", "a table of raw.jsonl sources", "missing")
        sources = [["M1", "?", "`raw.jsonl`"]]
    if sources[0][2:] != ["`raw.jsonl`"]:
        out.add("report.md", "## Sources: M1", "`raw.jsonl`", " | ".join(sources[0][2:]))
    boxes = []
    for index, row in enumerate(sources, start=1):
        relative = row[2].strip("`") if len(row) > 2 else "?"
        loaded = read_raw(os.path.join(os.path.realpath(directory), relative), out)  # as report.py: real paths
        if loaded is None or not loaded[0]:
            return
        box = Box(loaded[0], loaded[1], relative)
        if row[:2] != [f"M{index}", box.id]:
            out.add("report.md", f"## Sources: row {index}", f"M{index} | {box.id}", " | ".join(row[:2]))
        boxes.append(box)
    if len(boxes) > len({b.id for b in boxes}):
        out.add("report.md", "## Sources", "one directory per machine", "a machine id twice")
    if out.items:  # malformed raw data: the derived files cannot be checked meaningfully
        return
    check_csv(os.path.join(directory, "summary.csv"), boxes, out)
    expected = {"(intro)": None, TITLE: None, "## Sources": None}
    images = {}  # heading -> [(alt, path)] expected there
    with_plots = os.path.isdir(os.path.join(directory, "plots"))
    for index, box in enumerate(boxes, start=1):
        if with_plots:
            plots = box.plots(index)
            tables = box.tables()
            for k, (workload, params) in enumerate(tables):  # a workload's plots follow its last table
                last = k + 1 == len(tables) or tables[k + 1][0] != workload
                images[heading_for(box, workload, params)] = plots[workload] if last else []
        header_rows = [[label, str(lookup(box.header, path)).replace("\n", " ")] for label, path in HEADER_ROWS]
        expected[f"## M{index} — {box.id}"] = ("header", header_rows + [["Source", f"`{box.source}`"]])
        for heading, table in expected_tables(box).items():
            expected[heading] = ("table", table)
        configurations = config_table(box)
        if configurations:
            expected[f"### LoopKit configurations — {box.id}"] = ("table", configurations)
        goals = expected_targets(box)
        if goals:
            expected[f"### Targets — {box.id}"] = ("targets", (["Target", "Measured", "Limit", "Met"], goals))
        expected[f"### Verdicts — {box.id}"] = ("verdicts", box)
    found = [b[0] for b in blocks]
    for heading in expected:
        if heading not in found:
            out.add("report.md", heading, "present", "missing section")
    for heading, rows, paragraphs in blocks:
        check_images(directory, heading, [l for l in paragraphs if IMAGE.fullmatch(l.strip())],
                     images.get(heading, []), out)
        paragraphs = [l for l in paragraphs if not IMAGE.fullmatch(l.strip())]
        if heading not in expected:
            out.add("report.md", heading, "no such section", "extra section")
        elif found.count(heading) > 1:
            out.add("report.md", heading, "once", f"{found.count(heading)} times")
        kind = expected.get(heading)
        if kind and kind[0] == "header":
            check_header(heading, kind[1], rows[2:], out)
        elif kind and kind[0] in ("table", "targets"):
            compare_table(heading, kind[1][0], kind[1][1], rows, out)
        if rows and (kind is None or kind[0] == "verdicts") and heading != "## Sources":
            out.add("report.md", heading, "no table here", f"a table of {len(rows)} lines")
        if kind and kind[0] == "verdicts":
            check_verdicts(kind[1], paragraphs, out, heading)
        elif kind and kind[0] == "targets":
            if paragraphs != [TARGETS_NOTE]:
                out.add("report.md", heading, "the targets note, unchanged", " / ".join(paragraphs)[:80])
        else:
            for line in paragraphs:
                check_bare(line, out, heading)
    in_order = [h for h in found if h in expected]
    if in_order != [h for h in expected if h in found]:
        out.add("report.md", "section order", " > ".join(h for h in expected if h in found), " > ".join(in_order))
    if found[1:2] != [TITLE]:
        out.add("report.md", "line 1", TITLE, found[1] if len(found) > 1 else "nothing")


def check_images(directory, heading, lines, wanted, out):
    """The image lines of one section against the plots expected there; each must exist beside report.md."""
    found = [IMAGE.fullmatch(l.strip()).groups() for l in lines]
    if found != wanted:
        out.add("report.md", f"{heading}: plots", ", ".join(p for _, p in wanted) or "no image",
                ", ".join(f"![{a}]({p})" for a, p in found) or "none")
    for _, path in found:
        if not os.path.isfile(os.path.join(directory, path)):
            out.add("report.md", f"{heading}: {path}", "the plot file", "missing")


def check_header(heading, expected_rows, rows, out):
    """Compares a machine's header block (Field | Value rows) with the raw header."""
    for index in range(max(len(expected_rows), len(rows))):
        want = expected_rows[index] if index < len(expected_rows) else None
        got = rows[index] if index < len(rows) else None
        if want != got:
            where = f"{heading}: header row {want[0] if want else index + 1}"
            out.add("report.md", where, " | ".join(want) if want else "no row", " | ".join(got) if got else "missing")


def lookup(header, dotted):
    """A header value by dotted path; 'unknown' if absent."""
    value = header
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "unknown" if value is None else value


def main(argv):
    """Entry point: verify.py DIR. Exit 0 when everything matches, 1 otherwise."""
    if len(argv) != 2:
        print("usage: python3 bench/verify.py DIR", file=sys.stderr)
        return 2
    out = Mismatches()
    check_report(argv[1], out)
    for file, location, expected, found in out.items:
        print(f"{file}: {location}: expected {expected!s}, found {found!s}")
    if out.items:
        print(f"verify.py: {len(out.items)} mismatch(es) in {argv[1]}", file=sys.stderr)
        return 1
    print(f"verify.py: {argv[1]}: summary.csv and report.md match raw.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
