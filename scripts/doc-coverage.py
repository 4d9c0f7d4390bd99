#!/usr/bin/env python3
"""doc-coverage.py TARGET... — list the public symbols of each target that have no doc comment.

Reads the symbol graphs `make docs` extracted (.build/<triple>/extracted-symbols/<package>/<TARGET>/, the
newest when there are several). A symbol counts as documented when it has a `///` comment of its own or
inherits one (a protocol requirement's); compiler-synthesized members and extension blocks are skipped. Prints one line per
undocumented symbol, FILE:LINE, its path and kind, and exits 1 when there is any; 2 when a target's symbol
graphs are missing (run `make docs` first).
"""
import glob
import json
import os
import sys


def newest_graph_dir(target):
    dirs = glob.glob(os.path.join(".build", "*", "extracted-symbols", "*", target))
    return max(dirs, key=os.path.getmtime) if dirs else None


def undocumented(directory):
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "*.symbols.json"))):
        with open(path) as f:
            graph = json.load(f)
        for symbol in graph["symbols"]:
            if symbol.get("accessLevel") not in ("public", "open"):
                continue
            if "::SYNTHESIZED::" in symbol["identifier"]["precise"] or symbol.get("docComment"):
                continue
            if symbol["kind"]["identifier"] == "swift.extension":  # a container, documented by its members
                continue
            location = symbol.get("location", {})
            file = location.get("uri", "?").rsplit("/", 1)[-1]
            line = location.get("position", {}).get("line", -1) + 1
            found.append(f"{file}:{line}\t{'.'.join(symbol['pathComponents'])}\t{symbol['kind']['displayName']}")
    return found


def main(targets):
    status = 0
    for target in targets:
        directory = newest_graph_dir(target)
        if directory is None:
            print(f"doc-coverage: no symbol graphs for {target}; run `make docs` first", file=sys.stderr)
            return 2
        missing = undocumented(directory)
        for line in missing:
            print(f"{target}: {line}")
        if missing:
            status = 1
    if status == 0:
        print(f"doc-coverage: every public symbol of {', '.join(targets)} is documented")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
