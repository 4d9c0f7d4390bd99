#!/usr/bin/env python3
"""Report generator for LoopKit's benchmark tournament (standard library only).

    python3 bench/report.py DIR [DIR2 ...]

Reads DIR/raw.jsonl (and DIR2/raw.jsonl, ...) as written by `loopbench`, writes DIR/summary.csv and
DIR/report.md, and prints the headline (per table the ranked entrants, compact) to stdout. Each directory is
one machine: its runs get their own section and tables, and runs from different machines are never mixed in
one table.

What it knows about the workloads comes from the raw.jsonl header, which loopbench writes from its workload
registry: the workloads in report order, each one's layout (ranked tables, or one table of C-level ops), its
parameter sets, entrants and plots, and the per-run fields with their column labels. When DIR/plots/ exists
(bench/plots.py draws it), report.md embeds every plot the header calls for after its workload's tables, and
a missing plot is an error.

Statistics (per group = machine x workload x params x entrant): median over runs (mean of the two middle
values for an even count), min, max, CV = sample stdev / mean x 100 (0 for one run or a zero mean). An
optional field's median is taken over the runs that carry it.

Number format, used in summary.csv, report.md and on stdout (bench/verify.py re-implements it):
  * a value is rounded to 3 significant digits, trailing zeros kept, never an exponent
    (41.23 -> "41.2", 0.5 -> "0.500", 9.996 -> "10.0", 0 -> "0"); if that rounding reaches 1000 or more
    the value is shown as an integer instead (999.6 -> "1000", 12345.6 -> "12346");
  * a ratio has 2 decimals and a trailing "×" ("1.23×");
  * rounding is half-to-even on the exact binary value; an absent value is "—" (empty in the CSV);
  * counts (runs, cores) are plain integers; ratios and verdict rules use unrounded medians.
"""

import csv
import io
import json
import math
import os
import sys
from decimal import Context, Decimal, ROUND_HALF_EVEN

DASH = "—"
FAMILIES = ("loopkit", "baseline", "peer")
CORE_KEYS = ("kind", "entrant", "family", "workload", "params", "run", "ns_per_op")
LAYOUTS = ("ranked", "ops")
RANKED_COLUMNS = ["Rank", "Entrant", "Family", "Median ns/op", "Min–max ns/op", "CV %", "Runs", "Modes",
                  "×best peer", "×Baseline"]
CORE_COLUMNS = ["Op", "Entrant", "Median ns/op", "Min–max ns/op", "CV %", "Runs", "Modes"]
MODE_GAP, MODE_MIN_RUNS = 1.5, 2
HEADER_FIELDS = (("Machine id", ("machine", "id")), ("CPU", ("machine", "cpu")),
                 ("Cores", ("machine", "cores")), ("Kernel", ("machine", "kernel")),
                 ("Hostname", ("machine", "hostname")), ("Toolchain", ("toolchain",)),
                 ("Commit", ("commit",)), ("Date", ("date",)), ("Command", ("command",)),
                 ("Suite", ("suite",)), ("Runs per group", ("runs",)),
                 ("Default configuration", ("default_entrant",)))
CAS_GROWTH, WAKE_FACTOR, BUDGET_TIME, BUDGET_P99 = 1.5, 10.0, 0.9, 1.0
INTRO = [
    "Every number in this report is generated from `raw.jsonl` by `bench/report.py` and checked against "
    "it by `bench/verify.py` (`make bench-verify`).",
    "A figure is the median over a group's runs (group = machine, workload, params, entrant), shown with "
    "its min–max spread and its CV (sample standard deviation / mean, in percent).",
    "Lower ns/op is better: tables are ranked by median ns/op, ties by entrant name. ×best peer = median / "
    "the lowest median among the peers (SwiftNIO, libuv, Dispatch) in that table; ×Baseline = median / "
    "Baseline's median.",
    "Numbers have three significant digits (integers from a thousand up), ratios two decimals; "
    "— marks a value that was not measured.",
    "Modes: a group whose sorted runs split, at their largest ratio between neighbours, into two parts of at "
    "least two runs each, the upper one and a half times the lower or more, is bimodal (the machine changed "
    "mode between runs); its Modes cell gives each part's median and run count (lower / upper), which the "
    "single median would average away. — means one mode.",
    "Each machine has its own section: runs from different machines are never mixed in one table.",
]


class RawError(Exception):
    """raw.jsonl could not be read or has malformed lines; the message lists every problem."""


def fmt_num(x):
    """Formats a value: 3 significant digits below 1000, an integer from 1000 up (see module doc)."""
    if x is None:
        return DASH
    if x == 0:
        return "0"
    ctx = Context(prec=100)
    exact = Decimal(x)
    exponent = exact.adjusted()
    rounded = exact.quantize(Decimal(1).scaleb(exponent - 2), rounding=ROUND_HALF_EVEN, context=ctx)
    if rounded.adjusted() > exponent:  # rounding carried into a new digit (9.996 -> 10.0)
        rounded = exact.quantize(Decimal(1).scaleb(exponent - 1), rounding=ROUND_HALF_EVEN, context=ctx)
    if abs(rounded) >= 1000:
        return format(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=ctx), "f")
    return format(rounded, "f")


def fmt_ratio(x):
    """Formats a ratio with 2 decimals and a trailing ×; None gives —."""
    if x is None:
        return DASH
    return format(Decimal(x).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), "f") + "×"


def ratio(numerator, denominator):
    """numerator / denominator, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def params_text(params, separator=" "):
    """Renders a params tuple as k=v pairs sorted by key (" " in headings, ";" in the CSV)."""
    return separator.join(f"{key}={value}" for key, value in params)


def params_sort_key(params):
    """Sorts params numerically where values are integers (producers=2 before producers=16)."""
    key = []
    for name, value in params:
        key.append((name, (0, int(value), "") if value.isdigit() else (1, 0, value)))
    return key


def field_order(headers):
    """The per-run field keys of the headers' `fields` lists, in order of first appearance."""
    order = []
    for header in headers:
        order += [f["key"] for f in header["fields"] if f["key"] not in order]
    return order


def field_sort_key(order):
    """A sort key: fields in `order` first, in that order, then any other field alphabetically."""
    return lambda field: (0, order.index(field), field) if field in order else (1, 0, field)


def is_number(value):
    """True for a finite JSON number (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_curve(value):
    """True for a curve field: a non-empty object of numbers keyed by numbers (e.g. percentiles_ns)."""
    def numeric(key):
        try:
            return math.isfinite(float(key))
        except ValueError:
            return False
    return isinstance(value, dict) and bool(value) and all(numeric(k) and is_number(v) for k, v in value.items())


def header_problems(obj):
    """What is wrong with a header line (empty list if it is well formed)."""
    machine = obj.get("machine") if isinstance(obj.get("machine"), dict) else {}
    if obj.get("kind") != "header" or not isinstance(machine.get("id"), str) \
            or not isinstance(machine.get("cores"), int) or not isinstance(obj.get("runs"), int):
        return ["first line must be a header with machine.id, machine.cores and runs"]
    fields, workloads = obj.get("fields"), obj.get("workloads")
    if not isinstance(fields, list) or not all(isinstance(f, dict) and isinstance(f.get("key"), str)
                                               and isinstance(f.get("label"), str) for f in fields):
        return ["the header's 'fields' must list {key, label} objects (loopbench's per-run fields)"]
    if not isinstance(workloads, list) or not workloads:
        return ["the header's 'workloads' must list the workloads measured (loopbench's registry)"]
    problems = []
    for w in workloads:
        name = w.get("name") if isinstance(w, dict) else None
        if not isinstance(name, str) or w.get("layout") not in LAYOUTS or not isinstance(w.get("latency"), bool) \
                or not isinstance(w.get("metric"), str) or not isinstance(w.get("params"), list) \
                or not all(isinstance(p, dict) for p in w["params"]) \
                or not (w.get("sweep") is None or isinstance(w["sweep"], dict) and isinstance(w["sweep"].get("param"), str)
                        and isinstance(w["sweep"].get("label"), str) and isinstance(w["sweep"].get("figures"), list)):
            problems.append(f"workload {name!r} in the header needs name, metric, layout ({'/'.join(LAYOUTS)}), "
                            "latency, params and sweep (null or {param, label, figures})")
    return problems


def check_run(obj):
    """Returns the problems with one run object (empty list if it is well formed)."""
    problems = []
    for key in ("entrant", "workload"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            problems.append(f"'{key}' must be a non-empty string")
    if obj.get("family") not in FAMILIES:
        problems.append(f"'family' must be one of {', '.join(FAMILIES)}")
    params = obj.get("params")
    if not isinstance(params, dict) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                               for v in params.values()):
        problems.append("'params' must be an object of strings")
    if not isinstance(obj.get("run"), int) or isinstance(obj.get("run"), bool) or obj.get("run") < 0:
        problems.append("'run' must be a non-negative integer")
    if not is_number(obj.get("ns_per_op")):
        problems.append("'ns_per_op' must be a finite number")
    for key, value in obj.items():
        if key not in CORE_KEYS and value is not None and not is_number(value) and not is_curve(value):
            problems.append(f"optional field '{key}' must be a number or an object of numbers keyed by numbers")
    return problems


def load_raw(directory):
    """Reads DIR/raw.jsonl; returns (header, runs). Raises RawError listing every malformed line."""
    path = os.path.join(directory, "raw.jsonl")
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except OSError as error:
        raise RawError(f"{path}: cannot read: {error}")
    header, runs, problems, seen = None, [], [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as error:
            problems.append(f"{path}:{number}: not JSON ({error})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path}:{number}: not a JSON object")
        elif header is None:
            found = header_problems(obj)
            problems.extend(f"{path}:{number}: {problem}" for problem in found)
            header = {} if found else obj
        elif obj.get("kind") != "run":
            problems.append(f"{path}:{number}: expected kind 'run', found {obj.get('kind')!r}")
        else:
            found = check_run(obj)
            declared = [w["name"] for w in header.get("workloads", [])]
            if not found and obj["workload"] not in declared:
                found = [f"workload {obj['workload']!r} is not among the header's workloads"]
            problems.extend(f"{path}:{number}: {problem}" for problem in found)
            if not found:
                params = tuple(sorted((k, str(v)) for k, v in obj["params"].items()))
                identity = (obj["workload"], params, obj["entrant"], obj["run"])
                if identity in seen:
                    problems.append(f"{path}:{number}: duplicate run {obj['run']} of this group")
                seen.add(identity)
                runs.append(dict(obj, params=params))
    if header is None:
        problems.append(f"{path}: empty (no header line)")
    if problems:
        raise RawError("\n".join(problems))
    return header, runs


def median(values):
    """Median of a non-empty list (mean of the two middle values for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def cv_percent(values):
    """Sample standard deviation / mean x 100; 0 for a single value or a zero mean."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    if mean == 0:
        return 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance) / mean * 100


def modes(values):
    """(lower, upper) run lists when the runs are bimodal (see INTRO), else None."""
    ordered = sorted(values)
    best, split = 0.0, None
    for k in range(MODE_MIN_RUNS, len(ordered) - MODE_MIN_RUNS + 1):
        if ordered[k - 1] > 0 and ordered[k] / ordered[k - 1] > best:
            best, split = ordered[k] / ordered[k - 1], k
    if split is None or best < MODE_GAP:
        return None
    return ordered[:split], ordered[split:]


def modes_text(found):
    """The Modes cell: 'low (n) / high (m)', or — for one mode."""
    if found is None:
        return DASH
    low, high = found
    return f"{fmt_num(median(low))} ({len(low)}) / {fmt_num(median(high))} ({len(high)})"


class Machine:
    """One directory's runs (one machine): its header and per-group statistics."""

    def __init__(self, directory, source, header, runs):
        self.directory, self.source, self.header = directory, source, header
        self.id = header["machine"]["id"]
        self.cores = header["machine"]["cores"]
        self.workloads = {w["name"]: w for w in header["workloads"]}
        self.labels = {f["key"]: f["label"] for f in header["fields"]}
        self.field_key = field_sort_key(field_order([header]))
        collected = {}
        for run in runs:
            key = (run["workload"], run["params"], run["entrant"])
            group = collected.setdefault(key, {"family": run["family"], "ns": [], "fields": {}})
            group["ns"].append(run["ns_per_op"])
            for field, value in run.items():
                if field not in CORE_KEYS and value is not None and not isinstance(value, dict):
                    group["fields"].setdefault(field, []).append(value)
        self.groups = {}
        for key, group in collected.items():
            self.groups[key] = {
                "workload": key[0], "params": key[1], "entrant": key[2], "family": group["family"],
                "runs": len(group["ns"]), "median": median(group["ns"]), "min": min(group["ns"]),
                "max": max(group["ns"]), "cv": cv_percent(group["ns"]),
                "fields": {f: median(v) for f, v in group["fields"].items()},
                "modes": modes(group["ns"]),
            }

    def value(self, workload, params, entrant, field):
        """Median of `field` (ns_per_op or an optional field) for one group, or None if absent."""
        group = self.groups.get((workload, params, entrant))
        if group is None:
            return None
        return group["median"] if field == "ns_per_op" else group["fields"].get(field)

    def tables(self):
        """(workload, params) pairs in the header's workload order, params sorted numerically; a workload of
        layout "ops" is one table (params None)."""
        pairs = []
        for name, info in self.workloads.items():
            params = self.params_of(name)
            if params and info["layout"] == "ops":
                pairs.append((name, None))
            else:
                pairs += [(name, p) for p in params]
        return pairs

    def table(self, workload, params):
        """(columns, rows) of one table: the ops table when params is None, else a ranked table."""
        return core_table(self, workload) if params is None else ranked_table(self, workload, params)

    def params_of(self, workload):
        """All params tuples of a workload, sorted numerically."""
        found = {g["params"] for g in self.groups.values() if g["workload"] == workload}
        return sorted(found, key=params_sort_key)


def table_heading(machine, workload, params):
    """The heading line of one table, naming its machine."""
    middle = f" {params_text(params)}" if params else ""
    return f"### {workload}{middle} — {machine.id}"


def ranked_table(machine, workload, params):
    """(columns, rows) of one ranked table: rows sorted by median ns/op, then entrant."""
    groups = sorted((g for g in machine.groups.values() if (g["workload"], g["params"]) == (workload, params)),
                    key=lambda g: (g["median"], g["entrant"]))
    fields = sorted({f for g in groups for f in g["fields"]}, key=machine.field_key)
    peers = [g["median"] for g in groups if g["family"] == "peer"]
    best_peer = min(peers) if peers else None
    baseline = next((g["median"] for g in groups if g["entrant"] == "Baseline"), None)
    rows = []
    for rank, g in enumerate(groups, start=1):
        row = [str(rank), g["entrant"], g["family"], fmt_num(g["median"]),
               f"{fmt_num(g['min'])}–{fmt_num(g['max'])}", fmt_num(g["cv"]), str(g["runs"]), modes_text(g["modes"]),
               fmt_ratio(ratio(g["median"], best_peer)), fmt_ratio(ratio(g["median"], baseline))]
        row += [fmt_num(g["fields"].get(f)) for f in fields]
        rows.append(row)
    return RANKED_COLUMNS + [machine.labels.get(f, f) for f in fields], rows


def core_table(machine, workload):
    """(columns, rows) of an ops table: one row per op (and entrant), sorted by op."""
    groups = sorted((g for g in machine.groups.values() if g["workload"] == workload),
                    key=lambda g: (params_text(g["params"]), g["entrant"]))
    rows = []
    for g in groups:
        op = dict(g["params"]).get("op", params_text(g["params"]))
        rows.append([op, g["entrant"], fmt_num(g["median"]), f"{fmt_num(g['min'])}–{fmt_num(g['max'])}",
                     fmt_num(g["cv"]), str(g["runs"]), modes_text(g["modes"])])
    return list(CORE_COLUMNS), rows


def source_of(workload, params, entrant, field):
    """The bracketed source text naming where a quoted median comes from."""
    middle = f" {params_text(params)}" if params else ""
    return f"{workload}{middle} · {entrant} · median {field}"


class Verdict:
    """Collects one hypothesis paragraph: its sentences and citations of medians and ratios."""

    def __init__(self, machine, title, rule):
        self.machine, self.title, self.rule, self.word, self.sentences = machine, title, rule, None, []

    def cite(self, workload, params, entrant, field):
        """'**value** [source]' for one median (the value must exist)."""
        value = self.machine.value(workload, params, entrant, field)
        return f"**{fmt_num(value)}** [{source_of(workload, params, entrant, field)}]"

    def cite_ratio(self, top, bottom):
        """'**r×** [source ÷ source]' for the ratio of two medians, each given as (w, params, e, field)."""
        value = ratio(self.machine.value(*top), self.machine.value(*bottom))
        return f"**{fmt_ratio(value)}** [{source_of(*top)} ÷ {source_of(*bottom)}]"

    def text(self):
        """The whole paragraph."""
        return " ".join([f"**{self.title}**", f"Verdict: **{self.word}**.", self.rule] + self.sentences)

    def settle(self, word, sentence):
        """Gives the verdict `word` for the reason `sentence` and returns the verdict: for the verdicts that
        end before the rule can be applied."""
        self.word = word
        self.sentences.append(sentence)
        return self


def not_run(workload, suite):
    """The sentence for a workload this run's suite left out, naming the `make` targets that run it."""
    return f"{workload} was not run in this suite; `make {suite}` or `make bench-full` measures it."


def both_ends(machine, workload, low, high, entrant, field):
    """True when the entrant has a positive median of `field` at both params `low` and `high`."""
    a, b = machine.value(workload, low, entrant, field), machine.value(workload, high, entrant, field)
    return a is not None and b is not None and a > 0 and b > 0


def pick_subject(machine, workload, low, high, field, preferred, prefix):
    """The preferred entrant if it has `field` at both ends, else the first LoopKit one with `prefix`."""
    if both_ends(machine, workload, low, high, preferred, field):
        return preferred
    names = sorted({g["entrant"] for g in machine.groups.values()
                    if g["workload"] == workload and g["family"] == "loopkit" and g["entrant"].startswith(prefix)})
    return next((n for n in names if both_ends(machine, workload, low, high, n, field)), None)


def by_int_param(machine, workload, name):
    """{int value of param `name`: first params tuple having it} for one workload."""
    found = {}
    for params in machine.params_of(workload):
        value = dict(params).get(name, "")
        if value.isdigit() and int(value) not in found:
            found[int(value)] = params
    return found


def verdict_cas(machine):
    """Hypothesis 1: submit cost (MultiProducer submit_ns_per_op) grows with the producer count."""
    v = Verdict(machine, "CAS contention — does submit cost grow with producers?",
                "Rule: supported if the median submit ns/op of a LoopKit per-producer, lock-free or chunked "
                "entrant grows by ≥ 1.50× from the smallest to the largest producer count.")
    counts = by_int_param(machine, "MultiProducer", "producers")
    if not counts:
        return v.settle("not measured", not_run("MultiProducer", "bench-quick"))
    if len(counts) < 2:
        return v.settle("inconclusive", "Only one producer count was measured.")
    low, high = counts[min(counts)], counts[max(counts)]
    field, grew = "submit_ns_per_op", []

    def growth(entrant):
        a, b = ("MultiProducer", low, entrant, field), ("MultiProducer", high, entrant, field)
        return f"{v.cite(*a)} → {v.cite(*b)}, growth {v.cite_ratio(b, a)}"

    for ingress in ("per-producer", "lock-free", "chunked"):
        subject = pick_subject(machine, "MultiProducer", low, high, field,
                               f"LoopKit {ingress}/epoll/spin", f"LoopKit {ingress}/")
        if subject is None:
            continue
        r = ratio(machine.value("MultiProducer", high, subject, field),
                  machine.value("MultiProducer", low, subject, field))
        grew.append(r >= CAS_GROWTH)
        verdict = "meets the rule" if r >= CAS_GROWTH else "below the rule"
        v.sentences.append(f"`{subject}`, smallest → largest producer count: {growth(subject)} ({verdict}).")
    others = sorted({(g["family"] != "baseline", g["entrant"]) for g in machine.groups.values()
                     if g["workload"] == "MultiProducer" and g["family"] in ("baseline", "peer")})
    compared = [f"`{name}` {growth(name)}" for _, name in others
                if both_ends(machine, "MultiProducer", low, high, name, field)]
    if compared:
        v.sentences.append("For comparison: " + "; ".join(compared) + ".")
    if not grew:
        v.word = "inconclusive"
        v.sentences.append("No LoopKit per-producer, lock-free or chunked entrant reports submit ns/op at both ends.")
    else:
        v.word = "supported" if any(grew) else "not supported"
    if max(counts) > machine.cores:
        v.sentences.append(f"The largest producer count exceeds this machine's **{machine.cores}** "
                           "[header · cores] cores: P > cores measures oversubscription, not contention.")
    return v


def park_spin_pair(machine, params):
    """(park, spin) LoopKit entrants of PingPongLatency with p50: lock-free/epoll preferred."""
    def has(name):
        return machine.value("PingPongLatency", params, name, "p50_ns") not in (None, 0)
    if has("LoopKit lock-free/epoll/park") and has("LoopKit lock-free/epoll/spin"):
        return "LoopKit lock-free/epoll/park", "LoopKit lock-free/epoll/spin"
    names = sorted({g["entrant"] for g in machine.groups.values()
                    if g["workload"] == "PingPongLatency" and g["family"] == "loopkit"})
    for name in names:
        if name.endswith("/park") and has(name) and has(name[:-5] + "/spin"):
            return name, name[:-5] + "/spin"
    return None


def verdict_wakeup(machine):
    """Hypothesis 2: a round trip to a sleeping (parked) loop is dominated by its wake syscall."""
    v = Verdict(machine, "Wakeup syscalls — is a round trip to a sleeping loop dominated by its wake syscall?",
                "Rule: supported if the round-trip p50 to a sleeping (parked) loop is ≥ 10× that to a running "
                "(spinning) one.")
    basis = None
    wake = {dict(p).get("loop"): p for p in reversed(machine.params_of("Wakeup"))}
    if "sleeping" in wake and "running" in wake:
        sleeping, running = wake["sleeping"], wake["running"]
        subject = pick_subject(machine, "Wakeup", sleeping, running, "p50_ns",
                               "LoopKit lock-free/epoll/spin", "LoopKit ")
        if subject:
            a, b = ("Wakeup", sleeping, subject, "p50_ns"), ("Wakeup", running, subject, "p50_ns")
            basis = ratio(machine.value(*a), machine.value(*b))
            sentence = (f"Wakeup, `{subject}`: round-trip p50 {v.cite(*a)} to a sleeping loop vs {v.cite(*b)} "
                        f"to a running one, ratio {v.cite_ratio(a, b)}")
            if all(machine.value("Wakeup", p, subject, "wake_syscalls_per_op") is not None
                   for p in (sleeping, running)):
                sentence += (f"; wake syscalls/op {v.cite('Wakeup', sleeping, subject, 'wake_syscalls_per_op')}"
                             f" vs {v.cite('Wakeup', running, subject, 'wake_syscalls_per_op')}")
            v.sentences.append(sentence + ".")
    if basis is None:
        v.sentences.append(not_run("Wakeup", "bench-micro"))
    for params in machine.params_of("PingPongLatency")[:1]:
        pair = park_spin_pair(machine, params)
        if pair is None:
            continue
        a, b = ("PingPongLatency", params, pair[0], "p50_ns"), ("PingPongLatency", params, pair[1], "p50_ns")
        sentence = (f"PingPongLatency, `{pair[0]}` vs `{pair[1]}`: p50 {v.cite(*a)} vs {v.cite(*b)}, "
                    f"ratio {v.cite_ratio(a, b)}")
        field = "wake_syscalls_per_op"
        if all(machine.value("PingPongLatency", params, e, field) is not None for e in pair):
            sentence += (f"; wake syscalls/op {v.cite('PingPongLatency', params, pair[0], field)} vs "
                         f"{v.cite('PingPongLatency', params, pair[1], field)}")
        v.sentences.append(sentence + ".")
        if basis is None:
            basis = ratio(machine.value(*a), machine.value(*b))
            v.sentences.append("The verdict rests on PingPongLatency (park vs spin).")
    if basis is None:
        v.word = "not measured"
    else:
        v.word = "supported" if basis >= WAKE_FACTOR else "not supported"
    return v


def verdict_batch(machine):
    """Hypothesis 3: a larger external batch budget buys throughput at the cost of probe latency."""
    v = Verdict(machine, "Batch budget — does a larger external batch budget buy throughput at the cost of "
                "probe latency?",
                "Rule: supported if ns/op at the largest budget is ≤ 0.90× that at the smallest (≥ 10% less "
                "time per task) while the probe p99 grows (> 1.00×).")
    budgets = by_int_param(machine, "BatchBudget", "budget")
    if not budgets:
        return v.settle("not measured", not_run("BatchBudget", "bench-micro"))
    low, high = budgets[min(budgets)], budgets[max(budgets)]
    subject = pick_subject(machine, "BatchBudget", low, high, "ns_per_op", "LoopKit per-producer/auto/spin", "LoopKit ")
    if len(budgets) < 2 or subject is None:
        return v.settle("inconclusive", "Fewer than two budgets were measured for one LoopKit entrant.")
    parts = []
    for budget in sorted(budgets):
        params = budgets[budget]
        part = f"ns/op {v.cite('BatchBudget', params, subject, 'ns_per_op')}"
        for field, label in (("p50_ns", "probe p50"), ("p99_ns", "probe p99")):
            if machine.value("BatchBudget", params, subject, field) is not None:
                part += f", {label} {v.cite('BatchBudget', params, subject, field)}"
        parts.append(part)
    v.sentences.append(f"`{subject}`, smallest budget first: " + "; ".join(parts) + ".")
    time_ratio = ratio(machine.value("BatchBudget", high, subject, "ns_per_op"),
                       machine.value("BatchBudget", low, subject, "ns_per_op"))
    v.sentences.append("Largest ÷ smallest budget: ns/op "
                       + v.cite_ratio(("BatchBudget", high, subject, "ns_per_op"),
                                      ("BatchBudget", low, subject, "ns_per_op")) + ".")
    if not both_ends(machine, "BatchBudget", low, high, subject, "p99_ns"):
        return v.settle("inconclusive", "The probe p99 is missing at one end.")
    p99_ratio = ratio(machine.value("BatchBudget", high, subject, "p99_ns"),
                      machine.value("BatchBudget", low, subject, "p99_ns"))
    v.sentences.append("Probe p99 " + v.cite_ratio(("BatchBudget", high, subject, "p99_ns"),
                                                   ("BatchBudget", low, subject, "p99_ns")) + ".")
    faster, slower_probe = time_ratio <= BUDGET_TIME, p99_ratio > BUDGET_P99
    v.word = "supported" if faster and slower_probe else "not supported"
    if not faster:
        v.sentences.append("Time per task fell by less than 10% (or rose).")
    if not slower_probe:
        v.sentences.append("The probe p99 did not grow.")
    return v


def config_columns(machine):
    """[(label, workload, params, field)] of the LoopKit configurations table: what this run measured."""
    columns = []
    for workload in ("PingPong", "Burst"):
        for params in machine.params_of(workload)[:1]:
            columns.append((f"{workload} ns/op", workload, params, "ns_per_op"))
    counts = by_int_param(machine, "MultiProducer", "producers")
    for count in sorted({min(counts), max(counts)}) if counts else []:
        columns.append((f"MultiProducer P={count} ns/op", "MultiProducer", counts[count], "ns_per_op"))
    for params in machine.params_of("PingPongLatency")[:1]:
        columns.append(("PingPongLatency p50 ns", "PingPongLatency", params, "p50_ns"))
    rates = by_int_param(machine, "Paced", "rate")
    for rate in sorted(rates):
        columns.append((f"Paced {rate}/s CPU ns/task", "Paced", rates[rate], "ns_per_op"))
        columns.append((f"Paced {rate}/s p50 ns", "Paced", rates[rate], "p50_ns"))
    return columns


def config_table(machine):
    """(columns, rows): every LoopKit configuration on the workloads that decide the defaults, by name."""
    columns = config_columns(machine)
    keys = {(w, p) for _, w, p, _ in columns}
    names = sorted({g["entrant"] for g in machine.groups.values()
                    if g["family"] == "loopkit" and (g["workload"], g["params"]) in keys})
    default = machine.header.get("default_entrant")
    rows = [[name, "yes" if name == default else "no"]
            + [fmt_num(machine.value(w, p, name, f)) for _, w, p, f in columns] for name in names]
    return ["Entrant", "Default"] + [c[0] for c in columns], rows


def core_median(machine, op):
    """Median ns/op of one CoreMicro op, or None."""
    return next((g["median"] for g in machine.groups.values()
                 if g["workload"] == "CoreMicro" and dict(g["params"]).get("op") == op), None)


def targets(machine):
    """[(target, measured, limit, met)] for what this run measured (see TARGETS_NOTE); ratios unrounded."""
    rows, default = [], machine.header.get("default_entrant")
    if not default:
        return rows

    def add(target, value, limit, met, as_ratio=True):
        if value is not None:
            rows.append([target, fmt_ratio(value) if as_ratio else fmt_num(value), limit, "yes" if met(value) else "no"])

    throughput = [(w, p, w) for w in ("PingPong", "Burst") for p in machine.params_of(w)[:1]]
    counts = by_int_param(machine, "MultiProducer", "producers")
    throughput += [("MultiProducer", counts[c], f"MultiProducer P={c}") for c in (1, 2, 10) if c in counts]
    for peer, limit in (("libuv", 0.80), ("SwiftNIO", 0.50)):
        for w, p, label in throughput:
            add(f"{label}: default ÷ {peer}", ratio(machine.value(w, p, default, "ns_per_op"),
                                                     machine.value(w, p, peer, "ns_per_op")),
                f"≤ {fmt_ratio(limit)}", lambda r, limit=limit: r <= limit)
    add("C-level hand-off: per-producer ingress ÷ floor", ratio(core_median(machine, "ingress_per_producer_handoff"),
                                                              core_median(machine, "floor_handoff")),
        "≤ 1.50×", lambda r: r <= 1.5)
    for p in machine.params_of("PingPongLatency")[:1]:
        add("PingPongLatency p50: default ÷ spinning round-trip floor (same threads, interleaved)",
            ratio(machine.value("PingPongLatency", p, default, "p50_ns"),
                  machine.value("PingPongLatency", p, default, "floor_p50_ns")),
            "≤ 2.00×", lambda r: r <= 2.0)
    for w, p, label in throughput[:1]:
        add(f"{label}: default's allocations per task", machine.value(w, p, default, "allocs_per_op"), "= 0",
            lambda a: a == 0, as_ratio=False)
    if default.startswith("LoopKit per-producer/"):
        lock_free = "LoopKit lock-free/" + default[len("LoopKit per-producer/"):]
        for w, p, label in throughput:
            limit = machine.value(w, p, lock_free, "wake_syscalls_per_op")
            if limit is not None:
                add(f"{label}: default's wake syscalls per task, ≤ {lock_free}'s",
                    machine.value(w, p, default, "wake_syscalls_per_op"), f"≤ {fmt_num(limit)}",
                    lambda a, limit=limit: a <= limit, as_ratio=False)
    park = default.rsplit("/", 1)[0] + "/park"
    rates = by_int_param(machine, "Paced", "rate")
    for rate in sorted(rates):
        p = rates[rate]
        add(f"Paced {rate}/s: default's CPU per task ÷ {park}'s", ratio(machine.value("Paced", p, default, "ns_per_op"),
                                                                      machine.value("Paced", p, park, "ns_per_op")),
            "≤ 1.20×", lambda r: r <= 1.2)
        add(f"Paced {rate}/s: default's p50 round trip ÷ libuv's", ratio(machine.value("Paced", p, default, "p50_ns"),
                                                                       machine.value("Paced", p, "libuv", "p50_ns")),
            "< 1.00×", lambda r: r < 1.0)
    modes = {dict(p).get("mode"): p for p in machine.params_of("ActorHop")}
    if "task-to-actor" in modes:
        p = modes["task-to-actor"]
        add("ActorHop task-to-actor: LoopKit ÷ SwiftNIO", ratio(machine.value("ActorHop", p, "LoopKit", "ns_per_op"),
                                                              machine.value("ActorHop", p, "SwiftNIO", "ns_per_op")),
            "≤ 0.50×", lambda r: r <= 0.5)
    if "actor-to-actor" in modes:
        p = modes["actor-to-actor"]
        add("ActorHop actor-to-actor: LoopKit ÷ default actor", ratio(machine.value("ActorHop", p, "LoopKit", "ns_per_op"),
                                                                     machine.value("ActorHop", p, "default actor", "ns_per_op")),
            "≤ 1.00×", lambda r: r <= 1.0)
        add("ActorHop actor-to-actor: LoopKit's wake syscalls per hop", machine.value("ActorHop", p, "LoopKit", "wake_syscalls_per_op"),
            "= 0", lambda a: a == 0, as_ratio=False)
    for mode, p in sorted(modes.items()):
        ours, nio = (machine.value("ActorHop", p, e, "allocs_per_op") for e in ("LoopKit", "SwiftNIO"))
        if ours is not None and nio is not None:
            # The runtime's own allocations (the caller's re-scheduling) are on both paths: only a whole
            # allocation per hop more than SwiftNIO's would be LoopKit's.
            add(f"ActorHop {mode}: LoopKit's allocations per hop minus SwiftNIO's", ours - nio, "< 0.50",
                lambda d: d < 0.5, as_ratio=False)
    echo = "LoopKit io_uring"
    for p in machine.params_of("EchoThroughput")[:1]:
        for peer, limit in (("SwiftNIO", 1.3), ("libuv", 1.0)):
            add(f"EchoThroughput: {echo} ÷ {peer}, messages/s",
                ratio(machine.value("EchoThroughput", p, echo, "messages_per_s"),
                      machine.value("EchoThroughput", p, peer, "messages_per_s")),
                f"≥ {fmt_ratio(limit)}", lambda r, limit=limit: r >= limit)
        for peer in ("SwiftNIO", "libuv"):
            add(f"EchoThroughput: {echo} ÷ {peer}, server CPU per message",
                ratio(machine.value("EchoThroughput", p, echo, "server_cpu_ns_per_op"),
                      machine.value("EchoThroughput", p, peer, "server_cpu_ns_per_op")),
                "≤ 1.00×", lambda r: r <= 1.0)
    for p in machine.params_of("EchoLatency")[:1]:
        add(f"EchoLatency p50: {echo} ÷ SwiftNIO", ratio(machine.value("EchoLatency", p, echo, "p50_ns"),
                                                        machine.value("EchoLatency", p, "SwiftNIO", "p50_ns")),
            "≤ 0.80×", lambda r: r <= 0.8)
    for p in machine.params_of("ConnectionChurn")[:1]:
        add(f"ConnectionChurn: {echo} ÷ SwiftNIO, connections/s",
            ratio(machine.value("ConnectionChurn", p, echo, "connections_per_s"),
                  machine.value("ConnectionChurn", p, "SwiftNIO", "connections_per_s")),
            "≥ 1.00×", lambda r: r >= 1.0)
    if machine.cores >= 16:
        for c in (8, 16, 32):
            if c in counts:
                add(f"MultiProducer P={c}: default ÷ Dispatch", ratio(machine.value("MultiProducer", counts[c], default, "ns_per_op"),
                                                                      machine.value("MultiProducer", counts[c], "Dispatch", "ns_per_op")),
                    "≤ 0.70×", lambda r: r <= 0.7)
        if 1 in counts and 16 in counts:
            add("Submit cost, default: P=16 ÷ P=1", ratio(machine.value("MultiProducer", counts[16], default, "submit_ns_per_op"),
                                                         machine.value("MultiProducer", counts[1], default, "submit_ns_per_op")),
                "≤ 1.50×", lambda r: r <= 1.5)
    return rows


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


def csv_text(machines):
    """summary.csv: one row per machine x workload x params x entrant, in report order, entrants by name."""
    order = field_sort_key(field_order([m.header for m in machines]))
    fields = sorted({f for m in machines for g in m.groups.values() for f in g["fields"]}, key=order)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["machine", "workload", "params", "entrant", "family", "runs", "median_ns_per_op",
                     "min_ns_per_op", "max_ns_per_op", "cv_percent", "modes"] + [f"median_{f}" for f in fields])
    for m in machines:
        for workload, params in m.tables():
            groups = [g for g in m.groups.values()
                      if g["workload"] == workload and (params is None or g["params"] == params)]
            for g in sorted(groups, key=lambda g: (params_sort_key(g["params"]), g["entrant"])):
                writer.writerow([m.id, g["workload"], params_text(g["params"], ";"), g["entrant"], g["family"],
                                 g["runs"], fmt_num(g["median"]), fmt_num(g["min"]), fmt_num(g["max"]),
                                 fmt_num(g["cv"]), "" if g["modes"] is None else modes_text(g["modes"])]
                                + [fmt_num(g["fields"][f]) if f in g["fields"] else "" for f in fields])
    return out.getvalue()


def cell(text):
    """A markdown table cell: pipes escaped, newlines flattened."""
    return str(text).replace("\n", " ").replace("|", "\\|")


def md_table(columns, rows):
    """Markdown table lines (numbers right-aligned from the ranked tables' Median column on)."""
    align = ["---:" if c in ("Rank", "Runs", "CV %") or "ns" in c or "/op" in c or c.startswith("×")
             or c == "probes" else "---" for c in columns]
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def header_value(header, path):
    """A header field by path (e.g. ('machine', 'cpu')), 'unknown' if absent."""
    value = header
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return "unknown" if value is None else str(value)


class Summary:
    """What report.md and the headline show of one machine, computed once so that the two cannot differ:
    its tables (workload, params, columns, rows), the configurations table, the targets and the verdicts."""

    def __init__(self, machine):
        self.tables = [(w, p) + machine.table(w, p) for w, p in machine.tables()]
        self.config = config_table(machine)
        self.targets = targets(machine)
        self.verdicts = [verdict_cas(machine), verdict_wakeup(machine), verdict_batch(machine)]


def planned_plots(index, machine):
    """[(workload, kind, alt text, path relative to the report)] of the plots the header calls for, in
    report order: every workload's runs; latency percentile curves for a latency workload; the figures
    against the swept parameter for a workload that sweeps one. Machine `index` (1-based) names the files."""
    plots = []
    for name, info in machine.workloads.items():
        stem = f"plots/M{index}-{name}"
        plots.append((name, "runs", f"{name}: every run of every entrant", f"{stem}-runs.png"))
        if info["latency"]:
            plots.append((name, "percentiles", f"{name}: latency percentiles, median over runs",
                          f"{stem}-percentiles.png"))
        if info["sweep"]:
            plots.append((name, "sweep", f"{name}: medians against {info['sweep']['label']}", f"{stem}-sweep.png"))
    return plots


def markdown(machines, summaries, with_plots):
    """The whole report.md text; with_plots embeds each workload's plots after its last table."""
    lines = ["# LoopKit benchmark tournament — report", ""] + INTRO + ["", "## Sources", ""]
    lines += md_table(["Machine", "Machine id", "raw.jsonl"],
                      [[f"M{i}", m.id, f"`{m.source}`"] for i, m in enumerate(machines, start=1)])
    for i, (m, summary) in enumerate(zip(machines, summaries), start=1):
        lines += ([] if lines[-1] == "" else [""]) + [f"## M{i} — {m.id}", ""]
        rows = [[label, header_value(m.header, path)] for label, path in HEADER_FIELDS]
        lines += md_table(["Field", "Value"], rows + [["Source", f"`{m.source}`"]])
        plots = planned_plots(i, m) if with_plots else []
        last = {workload: k for k, (workload, *_) in enumerate(summary.tables)}
        for k, (workload, params, columns, rows) in enumerate(summary.tables):
            lines += ["", table_heading(m, workload, params), ""] + md_table(columns, rows)
            if last[workload] == k:
                for _, _, alt, path in (p for p in plots if p[0] == workload):
                    lines += ["", f"![{alt}]({path})"]
        columns, rows = summary.config
        if rows and len(columns) > 2:
            lines += ["", f"### LoopKit configurations — {m.id}", ""] + md_table(columns, rows)
        if summary.targets:
            lines += ["", f"### Targets — {m.id}", "", TARGETS_NOTE, ""] + md_table(["Target", "Measured", "Limit", "Met"],
                                                                                    summary.targets)
        lines += ["", f"### Verdicts — {m.id}", ""]
        for verdict in summary.verdicts:
            lines += [verdict.text(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def plain_table(columns, rows):
    """Aligned plain-text table lines: text columns left-aligned, numeric ones right-aligned."""
    widths = [max(len(str(r[i])) for r in [columns] + rows) for i in range(len(columns))]
    left = {"Entrant", "Family", "Op", "Target", "Default", "Met"}
    def line(values):
        return "  ".join(str(v).ljust(w) if c in left else str(v).rjust(w)
                         for c, v, w in zip(columns, values, widths)).rstrip()
    return [line(columns)] + [line(r) for r in rows]


HEADLINE_KEEP_ALL = 8  # a ranked table this short is shown whole on screen


def headline_rows(machine, columns, rows):
    """The rows of one ranked table shown on screen: all of a short table; else the best LoopKit
    configuration, the default one, Baseline and the peers, in rank order. Returns (rows, left out)."""
    if len(rows) <= HEADLINE_KEEP_ALL:
        return rows, 0
    entrant, family = columns.index("Entrant"), columns.index("Family")
    best = next((r for r in rows if r[family] == "loopkit"), None)
    default = machine.header.get("default_entrant")
    kept = [r for r in rows if r is best or r[entrant] == default or r[family] != "loopkit"]
    return kept, len(rows) - len(kept)


def headline(machines, summaries, report_dir):
    """The on-screen summary (under 100 columns): per table the ranked entrants with median, min–max, CV and
    ×best peer, cell for cell as report.md shows them; then targets met, verdicts, and where the report is."""
    out = []
    for i, (m, summary) in enumerate(zip(machines, summaries), start=1):
        out += [f"== M{i} {m.id}: {m.cores} cores, {header_value(m.header, ('suite',))} suite, "
                f"{header_value(m.header, ('runs',))} runs per entrant ==",
                "Lower is better; * after the CV marks runs that split into two modes (see report.md)."]
        for workload, params, columns, rows in summary.tables:
            metric = m.workloads[workload]["metric"]
            out += ["", f"{workload}{' ' + params_text(params) if params else ''} ({metric})"]
            pick = ["Op", "Median ns/op", "Min–max ns/op", "CV %"] if params is None else \
                ["Rank", "Entrant", "Median ns/op", "Min–max ns/op", "CV %", "×best peer"]
            shown, left_out = (rows, 0) if params is None else headline_rows(m, columns, rows)
            modes = columns.index("Modes")
            cells = [[r[columns.index(c)] + ("*" if c == "CV %" and r[modes] != DASH else "") for c in pick]
                     for r in shown]
            names = {"Rank": "#", "Median ns/op": "median", "Min–max ns/op": "min–max", "CV %": "CV %"}
            out += ["  " + line for line in plain_table([names.get(c, c) for c in pick], cells)]
            if left_out:
                out.append(f"  … and {left_out} more LoopKit configurations in report.md")
        if summary.targets:
            met = sum(1 for row in summary.targets if row[-1] == "yes")
            out += ["", f"Targets met: {met} of {len(summary.targets)} (report.md, Targets)"]
        out += [""] + [f"Verdict, {v.title.split(' — ')[0]}: {v.word}" for v in summary.verdicts] + [""]
    out += [f"Full report: {os.path.join(report_dir, 'report.md')}",
            f"(every table and plot, the verdicts' reasons; one row per group: {os.path.join(report_dir, 'summary.csv')})"]
    return "\n".join(out)


def main(argv):
    """Entry point: report.py DIR [DIR2 ...]."""
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    directories = argv[1:]
    machines = []
    try:
        for directory in directories:
            header, runs = load_raw(directory)
            source = os.path.relpath(os.path.realpath(os.path.join(directory, "raw.jsonl")),
                                     os.path.realpath(directories[0])).replace(os.sep, "/")
            machines.append(Machine(directory, source, header, runs))
    except RawError as error:
        print(f"report.py: malformed input:\n{error}", file=sys.stderr)
        return 1
    ids = [m.id for m in machines]
    if len(set(ids)) != len(ids):
        print("report.py: two directories come from the same machine id; give each machine one directory",
              file=sys.stderr)
        return 1
    with_plots = os.path.isdir(os.path.join(directories[0], "plots"))
    if with_plots:
        missing = [path for i, m in enumerate(machines, start=1) for *_, path in planned_plots(i, m)
                   if not os.path.isfile(os.path.join(directories[0], path))]
        if missing:
            print(f"report.py: {directories[0]}/plots/ lacks {', '.join(missing)} (run bench/plots.py first)",
                  file=sys.stderr)
            return 1
    summaries = [Summary(m) for m in machines]
    with open(os.path.join(directories[0], "summary.csv"), "w", encoding="utf-8", newline="") as handle:
        handle.write(csv_text(machines))
    with open(os.path.join(directories[0], "report.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(machines, summaries, with_plots))
    print(headline(machines, summaries, directories[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
