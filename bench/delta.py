#!/usr/bin/env python3
"""The delta rows of the hoist benchmark (`bench/run --delta`): what `save --base` and
`save --base --delta` cost and save against a full `save`, in bytes and seconds, and what
`load` of a delta costs against `load` of the full archive on a store that has the base.

Two cases, each a v1 and a v2 image built as docker-save archives (realimage.build):

  one-file   v1 = one layer of SIZE MiB (files of 256 KiB of incompressible bytes);
             v2 = the same layer with one 1 MiB file changed (a new diff_id: --base alone
             leaves nothing out; --delta writes a zstd patch against v1's layer)
  app        v1 = an OS layer (SIZE/2 MiB) + an app layer (SIZE/5 MiB, text-like files);
             v2 = the same OS layer + the app layer rebuilt: every 10th file changed and
             every mtime new (--base leaves the OS layer out; --delta patches the app layer)

Goal (issue 10): for one-file, the --delta archive is <= 1% of the full save, and loading it
takes <= 2x loading the full archive.
"""

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import realimage

MIB = 1 << 20
FILE = 256 << 10
MTIME_V1 = 1704067200
MTIME_V2 = MTIME_V1 + 86400
GOAL_SIZE = 0.01  # --delta archive / full save (one-file case)
GOAL_LOAD = 2.0   # load of the --delta archive / load of the full archive (one-file case)


def shake(label, n):
    return hashlib.shake_256(label.encode()).digest(n)


def text(label, n):
    words = [hashlib.sha256(("%s/%d" % (label, i)).encode()).hexdigest()[:8] for i in range(64)]
    line = (" ".join(words) + "\n").encode()
    return (line * (n // len(line) + 1))[:n]


def add(t, name, data, mtime):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
    import io
    t.addfile(ti, io.BytesIO(data))


def big_layer(size_mib, changed):
    """size_mib of 256 KiB files; with `changed`, file 100 is replaced by 1 MiB of new bytes."""
    def fill(t):
        for i in range(size_mib * MIB // FILE):
            if changed and i == 100:
                add(t, "data/f%05d.bin" % i, shake("changed", MIB), MTIME_V1)
            else:
                add(t, "data/f%05d.bin" % i, shake("f%d" % i, FILE), MTIME_V1)
    return fill


def os_layer(size_mib):
    def fill(t):
        for i in range(size_mib * MIB // FILE):
            add(t, "usr/lib/l%05d.so" % i, shake("os%d" % i, FILE), MTIME_V1)
    return fill


def app_layer(size_mib, rebuilt):
    n = size_mib * MIB // (64 << 10)

    def fill(t):
        for i in range(n):
            label = "app%d" % i + ("-v2" if rebuilt and i % 10 == 0 else "")
            add(t, "app/m%05d.py" % i, text(label, 64 << 10), MTIME_V2 if rebuilt else MTIME_V1)
    return fill


def cases(size_mib):
    return {
        "one-file": (
            [("COPY data /data", big_layer(size_mib, False))],
            [("COPY data /data", big_layer(size_mib, True))],
        ),
        "app": (
            [("ADD os.tar /", os_layer(size_mib // 2)), ("COPY app /app", app_layer(size_mib // 5, False))],
            [("ADD os.tar /", os_layer(size_mib // 2)), ("COPY app /app", app_layer(size_mib // 5, True))],
        ),
    }


def ensure(path, layers, tag, log):
    if path.exists():
        return
    log("building %s" % path.name)
    realimage.build(str(path), layers, tag, {}, log)


def run(args, hoist_bin, measure, log, work):
    """Returns the table's lines. `measure(cmd)` -> (Run|None, stdout, stderr)."""
    work = Path(work) / "delta"
    work.mkdir(parents=True, exist_ok=True)
    size = args.size_mib
    lines = ["delta rows (%d MiB images, %d runs per row, median)" % (size, args.runs),
             "%-9s %-22s %12s %8s %9s %9s" % ("case", "row", "bytes", "÷ full", "seconds", "RSS MiB")]
    goals = []
    for name, (l1, l2) in cases(size).items():
        v1, v2 = work / ("%s-%d-v1.tar" % (name, size)), work / ("%s-%d-v2.tar" % (name, size))
        t1, t2 = "bench/%s:v1" % name, "bench/%s:v2" % name
        ensure(v1, l1, t1, log)
        ensure(v2, l2, t2, log)
        sender = work / ("store-%s" % name)
        shutil.rmtree(sender, ignore_errors=True)
        for a in (v1, v2):
            subprocess.run([hoist_bin, "--root", sender, "-q", "load", "-i", a], check=True,
                           stdout=subprocess.DEVNULL)
        outs = {}
        results = {}
        for row, extra in (("save", []), ("save --base", ["--base", t1]),
                           ("save --base --delta", ["--base", t1, "--delta"])):
            out = work / ("%s-%s.tar" % (name, row.replace(" ", "").replace("-", "_")))
            runs = []
            for _ in range(args.runs):
                if out.exists():
                    out.unlink()
                subprocess.run(["sync"])
                r, _, err = measure([hoist_bin, "--root", sender, "-q", "save", *extra, "-o", out, t2])
                if r is None:
                    raise SystemExit("%s %s failed: %s" % (name, row, err))
                runs.append(r)
            outs[row] = out
            results[row] = runs
        full = outs["save"].stat().st_size
        for row, runs in results.items():
            b = outs[row].stat().st_size
            secs = sorted(r.secs for r in runs)[len(runs) // 2]
            rss = max(r.rss_kib for r in runs) / 1024
            lines.append("%-9s %-22s %12d %8.4f %9.2f %9.0f" % (name, row, b, b / full, secs, rss))
        # load on a store that has v1: the full archive vs the delta
        base_store = work / ("target-%s-base" % name)
        shutil.rmtree(base_store, ignore_errors=True)
        subprocess.run([hoist_bin, "--root", base_store, "-q", "load", "-i", v1], check=True,
                       stdout=subprocess.DEVNULL)
        loads = {}
        for row in ("save", "save --base --delta"):
            runs = []
            for _ in range(args.runs):
                target = work / ("target-%s" % name)
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(base_store, target, symlinks=True)
                subprocess.run(["sync"])
                r, _, err = measure([hoist_bin, "--root", target, "-q", "load", "-i", outs[row]])
                if r is None:
                    raise SystemExit("%s load of %s failed: %s" % (name, row, err))
                runs.append(r)
            secs = sorted(r.secs for r in runs)[len(runs) // 2]
            loads[row] = secs
            rss = max(r.rss_kib for r in runs) / 1024
            label = "load (full)" if row == "save" else "load (--delta)"
            lines.append("%-9s %-22s %12s %8s %9.2f %9.0f" % (name, label, "", "", secs, rss))
        if name == "one-file":
            ratio = outs["save --base --delta"].stat().st_size / full
            lratio = loads["save --base --delta"] / loads["save"]
            goals.append("goal: --delta archive <= %.0f%% of the full save: %.3f%% (%s)"
                         % (GOAL_SIZE * 100, ratio * 100, "met" if ratio <= GOAL_SIZE else "MISSED"))
            goals.append("goal: load of the --delta archive <= %.1fx the full load: %.2fx (%s)"
                         % (GOAL_LOAD, lratio, "met" if lratio <= GOAL_LOAD else "MISSED"))
    return lines + goals
