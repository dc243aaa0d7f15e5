#!/usr/bin/env python3
"""Checks Prometheus text exposition (a ceso.prom file or a node_exporter
scrape) for what promtool does not check and node_exporter silently repairs:

- every histogram series has buckets in increasing `le` ending with +Inf,
  cumulative counts, `_sum`, and `_count` equal to the +Inf bucket;
- every family has one TYPE line, before its samples, and its samples are
  together (a family split across files comes out split);
- no sample carries a timestamp;
- counters end in _total and are not negative;
- --family NAME (repeatable): the family must be present, with --type;
- --no-label NAME (repeatable): no ceso_ sample has that label;
- --only-prefix P: only families with prefix P are checked (a scrape holds
  node_exporter's own families too).

Prints each problem and exits 1 when there is any, else exits 0.
Usage: check_prom.py [--family NAME[:TYPE]]... [--no-label L]... [--only-prefix P] [FILE]
"""
import math
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+(\S+))?\s*$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(text, problems, lineno):
    labels = []
    pos = 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            problems.append(f"line {lineno}: bad labels {text!r}")
            return labels
        labels.append((m.group(1), m.group(2)))
        pos = m.end()
    return labels


def number(text):
    if text == "+Inf":
        return math.inf
    if text == "-Inf":
        return -math.inf
    return float(text)


def check(text, families, no_labels, prefix):
    problems = []
    types = {}  # family -> type
    type_line = {}
    samples = []  # (lineno, name, labels, value)
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4:
                problems.append(f"line {lineno}: bad TYPE line")
                continue
            if parts[2] in types:
                problems.append(f"line {lineno}: second TYPE line for {parts[2]}")
            types[parts[2]] = parts[3]
            type_line[parts[2]] = lineno
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"line {lineno}: not a sample: {line!r}")
            continue
        name, labels, value, ts = m.group(1), m.group(3) or "", m.group(4), m.group(6)
        if ts is not None:
            problems.append(f"line {lineno}: {name} has a timestamp")
        try:
            v = number(value)
        except ValueError:
            problems.append(f"line {lineno}: bad value {value!r}")
            continue
        samples.append((lineno, name, parse_labels(labels, problems, lineno), v))

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                return base
        return name

    # Samples of one family together, after its TYPE line.
    seen_order = []
    for lineno, name, labels, v in samples:
        fam = family_of(name)
        if prefix and not fam.startswith(prefix):
            continue
        if fam not in types:
            problems.append(f"line {lineno}: {name} has no TYPE line")
        elif type_line[fam] > lineno:
            problems.append(f"line {lineno}: {name} before its TYPE line")
        if seen_order and seen_order[-1] != fam and fam in seen_order:
            problems.append(f"line {lineno}: family {fam} is split")
        if not seen_order or seen_order[-1] != fam:
            seen_order.append(fam)
        t = types.get(fam)
        if t == "counter":
            if not fam.endswith("_total"):
                problems.append(f"{fam}: a counter whose name does not end in _total")
            if v < 0 or math.isnan(v):
                problems.append(f"line {lineno}: counter {name} is {v}")
        for label, _ in labels:
            if label in no_labels and fam.startswith("ceso_"):
                problems.append(f"line {lineno}: {name} has label {label}")

    for fam, t in types.items():
        if t != "histogram" or (prefix and not fam.startswith(prefix)):
            continue
        buckets, sums, counts = {}, {}, {}
        for lineno, name, labels, v in samples:
            rest = tuple(sorted((k, x) for k, x in labels if k != "le"))
            if name == fam + "_bucket":
                le = [x for k, x in labels if k == "le"]
                if len(le) != 1:
                    problems.append(f"line {lineno}: {name} without one le label")
                    continue
                buckets.setdefault(rest, []).append((number(le[0]), v, lineno))
            elif name == fam + "_sum":
                sums[rest] = v
            elif name == fam + "_count":
                counts[rest] = v
        if not buckets:
            problems.append(f"{fam}: a histogram without buckets")
        for series in set(buckets) | set(sums) | set(counts):
            desc = fam + "{" + ",".join(f'{k}="{x}"' for k, x in series) + "}"
            blist = buckets.get(series, [])
            if not blist:
                problems.append(f"{desc}: no buckets")
                continue
            for (le0, c0, _), (le1, c1, ln) in zip(blist, blist[1:]):
                if not le1 > le0:
                    problems.append(f"line {ln}: {desc}: le {le1} after {le0}")
                if c1 < c0:
                    problems.append(f"line {ln}: {desc}: not cumulative ({c1} < {c0})")
            if not math.isinf(blist[-1][0]):
                problems.append(f"{desc}: no +Inf bucket last")
            if series not in sums:
                problems.append(f"{desc}: no _sum")
            if series not in counts:
                problems.append(f"{desc}: no _count")
            elif counts[series] != blist[-1][1]:
                problems.append(f"{desc}: _count {counts[series]} != +Inf bucket {blist[-1][1]}")

    for want in families:
        name, _, t = want.partition(":")
        if name not in types:
            problems.append(f"{name}: family missing")
        elif t and types[name] != t:
            problems.append(f"{name}: type {types[name]}, expected {t}")
        elif not any(family_of(s[1]) == name for s in samples):
            problems.append(f"{name}: no samples")
    return problems


def main(argv):
    families, no_labels, prefix, path = [], set(), "", None
    args = iter(argv)
    for a in args:
        if a == "--family":
            families.append(next(args))
        elif a == "--no-label":
            no_labels.add(next(args))
        elif a == "--only-prefix":
            prefix = next(args)
        elif a.startswith("-") and a != "-":
            print(__doc__, file=sys.stderr)
            return 2
        else:
            path = a
    text = sys.stdin.read() if path in (None, "-") else open(path).read()
    problems = check(text, families, no_labels, prefix)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
