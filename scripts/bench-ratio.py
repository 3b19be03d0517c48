#!/usr/bin/env python3
"""Summarise the session benchmark (core/benches/session.rs) against bare snow.

Usage: python3 scripts/bench-ratio.py [CRITERION_DIR]   (default: target/criterion)

Reads CRITERION_DIR/<group>/<bench>/new/estimates.json as criterion lays them out:

    handshake/full, handshake/raw_snow
    encrypt/<size>, encrypt/raw_snow/<size>      (same for decrypt)

and prints each median, then for every size `ours / raw` as throughput, i.e.
raw_time / our_time (1.0 = the session layer costs nothing; 0.85 = 15 % less
throughput than bare snow).
The last line is one JSON object with the ratios, medians and handshakes per second.
"""

import json
import os
import sys

GOAL = 0.85


def median_ns(root, *parts):
    """Median point estimate (nanoseconds) of one benchmark, or None if it has not run."""
    path = os.path.join(root, *parts, "new", "estimates.json")
    try:
        with open(path, encoding="utf-8") as f:
            return float(json.load(f)["median"]["point_estimate"])
    except (OSError, KeyError, ValueError):
        return None


def sizes(root, group):
    """Payload sizes benchmarked in `group`: its numeric sub-directories."""
    try:
        names = os.listdir(os.path.join(root, group))
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def fmt_time(ns):
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3f} {unit}"
    return f"{ns:.1f} ns"


def mib_per_s(size, ns):
    return size / (ns / 1e9) / (1 << 20)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "criterion")
    if not os.path.isdir(root):
        sys.exit(f"no criterion directory at {root}: run the bench first")
    summary = {}

    full = median_ns(root, "handshake", "full")
    raw = median_ns(root, "handshake", "raw_snow")
    print("handshake            ours (full)      raw snow     ours/raw")
    if full is not None and raw is not None:
        ratio = raw / full
        print(
            f"  median          {fmt_time(full):>12}  {fmt_time(raw):>12}      {ratio:.3f}\n"
            f"  handshakes/s    {1e9 / full:>12.0f}  {1e9 / raw:>12.0f}"
        )
        summary.update(
            handshake_ratio=round(ratio, 4),
            handshakes_per_sec=round(1e9 / full, 1),
            raw_handshakes_per_sec=round(1e9 / raw, 1),
            handshake_ns=round(full, 1),
            raw_handshake_ns=round(raw, 1),
        )
    else:
        print("  (not run)")

    for group in ("encrypt", "decrypt"):
        found = sizes(root, group)
        if not found:
            continue
        print(f"\n{group:<10} size       ours median     raw median   ours MiB/s    raw MiB/s  ours/raw")
        ratios = []
        for size in found:
            ours = median_ns(root, group, str(size))
            raw = median_ns(root, group, "raw_snow", str(size))
            if ours is None or raw is None:
                print(f"{'':<10} {size:>5}  (incomplete)")
                continue
            ratio = raw / ours
            ratios.append(ratio)
            flag = "" if ratio >= GOAL else f"  < {GOAL}"
            print(
                f"{'':<10} {size:>5}  {fmt_time(ours):>13}  {fmt_time(raw):>13}"
                f"  {mib_per_s(size, ours):>11.1f}  {mib_per_s(size, raw):>11.1f}"
                f"     {ratio:.3f}{flag}"
            )
            summary[f"{group}_{size}_ratio"] = round(ratio, 4)
            summary[f"{group}_{size}_ns"] = round(ours, 1)
            summary[f"{group}_{size}_raw_ns"] = round(raw, 1)
        if ratios:
            summary[f"{group}_min_ratio"] = round(min(ratios), 4)
            summary[f"{group}_goal_met"] = min(ratios) >= GOAL

    print()
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
