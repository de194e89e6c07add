#!/usr/bin/env python3
"""Real-world docker-archives for `bench/run --real` (docker save v1.2 layout, as genimage.py).

    python3 bench/realimage.py real OUT.tar [--scale full|small]
    python3 bench/realimage.py empty OUT.tar [--files 1000000]

`real`: this machine's /usr and its Python runtime as layers.  At --scale full:

  1. /usr/lib
  2. /usr/share
  3. the rest of /usr (bin, sbin, include, libexec, local, ...) and the usr-merge symlinks
     /bin, /sbin, /lib, /lib64
  4. the Python runtime that runs this script: sys.base_prefix (e.g. a pyenv or /opt
     install) or, when that is inside /usr, its stdlib and site-packages directories again
  5. a small top layer that leaves waste for analyze and squash: the 3 largest files of
     layers 1-4 rewritten (same size, new content), every 997th regular file rewritten
     small, every 1499th deleted (.wh.), the biggest directory under layer 2's roots
     deleted (.wh.DIR), the biggest under layer 3's made opaque (.wh..wh..opq) with one
     new file, and a new usr/share/hoist-bench-release

--scale small takes a subset for quick checks: /usr/lib/python3*, /usr/share/doc,
/usr/libexec and the runtime's stdlib without site-packages (a few hundred MB).

`empty`: one layer of N empty files in node_modules-like nested directories, 30 files per
directory: app/node_modules/pkgNNNNN/node_modules/depNN/fileNN.js.

Layers keep the files' own metadata (mode, owner, mtime truncated to seconds, hard links
within a layer); entries are in a sorted walk order, so the same filesystem gives the same
bytes.  The archive is written in two passes: the first only hashes the layers (their
diff_ids name the archive's entries), the second writes them straight into the archive and
checks the hashes again (a file that changed in between fails the build).  No layer is
ever on disk outside the archive.
"""

import argparse
import glob
import io
import json
import os
import stat
import sys
import sysconfig
import tarfile
import time

sys.dont_write_bytecode = True  # keep bench/ clean (no __pycache__)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genimage  # noqa: E402
from genimage import MIB, MTIME, HashingWriter, shake_stream  # noqa: E402

GEN_VERSION = 1
BLOCK = tarfile.BLOCKSIZE
COPY_CHUNK = 4 * MIB
MERGED_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/libx32", "/lib32")  # usr-merge symlinks
FILES_PER_DIR = 30  # for the empty-files layer


class ChangedError(Exception):
    """The filesystem changed between the two passes of a build."""


# --------------------------------------------------------------------------------------
# Writing: layers through tarfile, the outer archive by hand (its layer entries are streamed)
# --------------------------------------------------------------------------------------

class NullSink:
    """Pass 1 writes here: only HashingWriter's digest and size are kept."""

    def write(self, b):
        return len(b)

    def flush(self):
        pass


class _Counter(list):
    """Stands in for TarFile.members, which keeps a copy of every TarInfo written (1M
    entries would be ~1 GB): counts them instead."""
    n = 0

    def append(self, _):
        self.n += 1


def write_layer(fill, f):
    """Run fill(TarFile) on a PAX-format layer tar written to f; returns (diff_id, size,
    entries)."""
    hw = HashingWriter(f)
    t = tarfile.open(fileobj=hw, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_CHUNK)
    t.members = _Counter()
    fill(t)
    t.close()
    return "sha256:" + hw.h.hexdigest(), hw.n, t.members.n


class ArchiveWriter:
    """The outer (ustar) tar, byte for byte what genimage writes with tarfile, except that a
    member's data can be streamed by a function.  Works on a pipe (no seeking)."""

    def __init__(self, f):
        self.f = f
        self.pos = 0

    def write(self, b):
        self.f.write(b)
        self.pos += len(b)
        return len(b)

    def flush(self):
        pass

    def _header(self, name, type_, mode, size):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = type_, mode, size, MTIME
        ti.uname = ti.gname = "root"
        self.write(ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size):
        if size % BLOCK:
            self.write(b"\0" * (BLOCK - size % BLOCK))

    def add_dir(self, name):
        self._header(name, tarfile.DIRTYPE, 0o755, 0)

    def add_bytes(self, name, data):
        self._header(name, tarfile.REGTYPE, 0o644, len(data))
        self.write(data)
        self._pad(len(data))

    def add_stream(self, name, size, produce):
        """produce(writer) must write exactly size bytes.  Returns the data's offset."""
        self._header(name, tarfile.REGTYPE, 0o644, size)
        start = self.pos
        produce(self)
        if self.pos - start != size:
            raise ChangedError("%s: wrote %d bytes, expected %d" % (name, self.pos - start, size))
        self._pad(size)
        return start

    def close(self):
        self.write(b"\0" * (2 * BLOCK))
        if self.pos % tarfile.RECORDSIZE:
            self.write(b"\0" * (tarfile.RECORDSIZE - self.pos % tarfile.RECORDSIZE))


def write_archive(f, layers, tag, labels):
    """Write a docker-save archive to f.  layers: list of (created_by, diff_id, size,
    produce) with produce(writer) writing the layer's bytes.  Returns the layers' data
    offsets in the archive."""
    entries, cfg_hex = genimage.save_layout([(cb, d) for cb, d, _, _ in layers], tag, labels)
    w = ArchiveWriter(f)
    offsets = [0] * len(layers)
    for name in sorted(entries):
        v = entries[name]
        if v is None:
            w.add_dir(name.rstrip("/"))
        elif isinstance(v, bytes):
            w.add_bytes(name, v)
        else:
            _, _, size, produce = layers[v]
            offsets[v] = w.add_stream(name, size, produce)
    w.close()
    return offsets, cfg_hex


def build(out, layer_fills, tag, labels, log):
    """Two-pass build of `out` from [(created_by, fill)].  Returns (layer info, cfg_hex)."""
    t0 = time.time()
    infos = []
    for n, (cb, fill) in enumerate(layer_fills):
        diff_id, size, count = write_layer(fill, NullSink())
        log("  layer %d/%d: %.0f MiB, %d entries (%s)" % (n + 1, len(layer_fills), size / MIB,
                                                        count, cb.split("#(nop) ")[-1][:70]))
        infos.append({"created_by": cb, "diff_id": diff_id, "bytes": size, "entries": count})

    def producer(fill, want):
        def produce(w):
            got = write_layer(fill, w)[0]
            if got != want:
                raise ChangedError("a layer's content changed during the build (%s != %s)" % (got, want))
        return produce

    layers = [(i["created_by"], i["diff_id"], i["bytes"], producer(fill, i["diff_id"]))
              for i, (_, fill) in zip(infos, layer_fills)]
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            offsets, cfg_hex = write_archive(f, layers, tag, labels)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for i, off in zip(infos, offsets):
        i["offset"] = off
    log("  written %s in %.0fs" % (out, time.time() - t0))
    return infos, cfg_hex


def write_base(archive, meta, f, tag, n_layers):
    """Stream to f an archive of the first n_layers layers of a cached `archive` (whose
    meta says where they are), tagged `tag`: the same image minus its top layer(s)."""
    def copier(off, size):
        def produce(w):
            with open(archive, "rb") as src:
                src.seek(off)
                left = size
                while left:
                    b = src.read(min(COPY_CHUNK, left))
                    if not b:
                        raise ChangedError("%s is shorter than its meta says" % archive)
                    w.write(b)
                    left -= len(b)
        return produce
    layers = [(i["created_by"], i["diff_id"], i["bytes"], copier(i["offset"], i["bytes"]))
              for i in meta["layers"][:n_layers]]
    write_archive(f, layers, tag, meta["labels"])


# --------------------------------------------------------------------------------------
# The real image: which directories, walked how
# --------------------------------------------------------------------------------------

def python_dirs():
    """The running Python's stdlib and site-packages directories (real paths)."""
    paths = sysconfig.get_paths()
    return (os.path.realpath(paths["stdlib"]),
            sorted({os.path.realpath(paths[k]) for k in ("purelib", "platlib")}))


def runtime_roots():
    """The Python runtime running this script: (roots, description).  Its whole prefix, or
    when that is inside /usr (a system Python, already in the /usr layers), its stdlib and
    site-packages once more."""
    base = os.path.realpath(sys.base_prefix)
    version = "python %d.%d" % sys.version_info[:2]
    if base == "/usr" or base.startswith("/usr/"):
        stdlib, site = python_dirs()
        roots = sorted({stdlib, *site} - {p for p in site if p.startswith(stdlib + "/")})
        return roots, version + " stdlib + site-packages"
    return [base], version + " runtime"


def layer_sources(scale):
    """[(created_by, roots, excluded paths)] for the real image's filesystem layers."""
    links = [p for p in MERGED_LINKS if os.path.islink(p)]
    rt_roots, rt_what = runtime_roots()
    if scale == "full":
        src = [("/usr/lib", ["/usr/lib"], []),
               ("/usr/share", ["/usr/share"], []),
               ("/usr (the rest)", ["/usr"] + links, ["/usr/lib", "/usr/share"]),
               (rt_what, rt_roots, [])]
    elif scale == "small":
        stdlib, site = python_dirs()
        src = [("/usr/lib/python3*", sorted(glob.glob("/usr/lib/python3*")), []),
               ("/usr/share/doc", ["/usr/share/doc"], []),
               ("/usr/libexec", ["/usr/libexec"] + links, []),
               ("python %d.%d stdlib" % sys.version_info[:2], [stdlib], site)]
    else:
        raise ValueError("unknown scale %r (full, small)" % scale)
    return [("/bin/sh -c #(nop) COPY %s" % what,
             [r for r in roots if os.path.lexists(r)], excl) for what, roots, excl in src]


def arcname(path):
    return path.lstrip("/")


def walk(roots, excluded):
    """Pre-order walk of roots (children sorted by name, not following symlinks, not
    crossing into other filesystems), with each root's parent directories first.
    Returns [(path, lstat)]; sockets are left out (a tar can't hold them)."""
    out, seen = [], set()
    excluded = set(excluded)
    for root in sorted(roots):
        parents = []
        p = os.path.dirname(root)
        while p != "/":
            parents.append(p)
            p = os.path.dirname(p)
        for p in reversed(parents):
            if p not in seen:
                seen.add(p)
                out.append((p, os.lstat(p)))
        dev = os.lstat(root).st_dev
        stack = [root]
        while stack:
            path = stack.pop()
            if path in seen or path in excluded:
                continue
            seen.add(path)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue
            out.append((path, st))
            if stat.S_ISDIR(st.st_mode) and st.st_dev == dev:
                try:
                    names = sorted(os.listdir(path), reverse=True)
                except PermissionError:
                    continue
                stack.extend(os.path.join(path, n) for n in names)
    return out


def add_path(t, path, mtime=None):
    """Add a filesystem path to layer t with its own metadata (mtime in whole seconds, or
    `mtime`); a second name of a file already in t becomes a hard link."""
    ti = t.gettarinfo(path, arcname(path))
    if ti is None:
        return
    ti.mtime = int(ti.mtime) if mtime is None else mtime
    if ti.isreg():
        with open(path, "rb") as f:
            t.addfile(ti, f)
    else:
        t.addfile(ti)


def tree_fill(entries):
    """A layer of walked filesystem entries."""
    def fill(t):
        for path, _ in entries:
            add_path(t, path)
    return fill


def biggest_child_dir(entries, roots):
    """The directory directly under one of roots with the most entries below it."""
    counts = {}
    for path, _ in entries:
        for r in roots:
            if path.startswith(r + "/"):
                child = r + "/" + path[len(r) + 1:].split("/", 1)[0]
                counts[child] = counts.get(child, 0) + 1
    dirs = [(n, d) for d, n in counts.items() if os.path.isdir(d) and not os.path.islink(d)]
    return max(dirs)[1] if dirs else None


def top_plan(walked, sources):
    """What the top layer changes, from the walks of the layers below: ({path: (kind, arg)},
    summary), kind one of rewrite-big (arg: the size), rewrite and new (arg: the content),
    whiteout, opaque.  Nothing is planned inside the deleted or the opaque directory."""
    deleted = biggest_child_dir(walked[1], sources[1][1]) if len(walked) > 1 else None
    opaque = biggest_child_dir(walked[2], sources[2][1]) if len(walked) > 2 else None
    gone = tuple(d + "/" for d in (deleted, opaque) if d)
    regs = [(p, st.st_size) for ents in walked for p, st in ents
            if stat.S_ISREG(st.st_mode) and not p.startswith(gone)]
    plan = {}
    for p, size in sorted(regs, key=lambda r: (-r[1], r[0]))[:3]:
        plan[p] = ("rewrite-big", size)
    for i, (p, _) in enumerate(regs):
        if p in plan:
            continue
        if i % 997 == 500:
            plan[p] = ("rewrite", b"hoist bench: patched %s\n" % os.fsencode(p))
        elif i % 1499 == 700:
            d, name = os.path.split(p)
            plan[os.path.join(d, ".wh." + name)] = ("whiteout", None)
    if deleted:
        d, name = os.path.split(deleted)
        plan[os.path.join(d, ".wh." + name)] = ("whiteout", None)
    if opaque:
        plan[opaque] = ("opaque", None)
        plan[opaque + "/.wh..wh..opq"] = ("whiteout", None)
        plan[opaque + "/hoist-bench-opaque.txt"] = ("new", b"this directory was replaced\n")
    plan["/usr/share/hoist-bench-release"] = ("new", b"hoist bench real image\n")
    return plan, {"deleted_dir": deleted, "opaque_dir": opaque,
                  "rewritten": sum(k.startswith("rewrite") for k, _ in plan.values()),
                  "whiteouts": sum(k == "whiteout" for k, _ in plan.values())}


def top_fill(plan):
    """The top layer from top_plan's plan."""
    def fill(t):
        done = set()

        def parents(path):
            p, todo = os.path.dirname(path), []
            while p != "/" and p not in done:
                todo.append(p)
                p = os.path.dirname(p)
            for p in reversed(todo):
                done.add(p)
                add_path(t, p, mtime=MTIME)  # an upper layer's dir entry: its own metadata
        # parents before children: sort by path components
        for path in sorted(plan, key=lambda p: p.split("/")):
            kind, arg = plan[path]
            parents(path)
            done.add(path)
            if kind == "opaque":
                add_path(t, path, mtime=MTIME)
                continue
            if kind == "rewrite-big":
                ti = t.gettarinfo(path, arcname(path))
                ti.type, ti.linkname, ti.size, ti.mtime = tarfile.REGTYPE, "", arg, MTIME
                t.addfile(ti, genimage.StreamReader(shake_stream(os.fsencode(path), arg)))
                continue
            if kind == "rewrite":
                ti = t.gettarinfo(path, arcname(path))
                ti.type, ti.linkname = tarfile.REGTYPE, ""
            else:  # whiteout, new
                ti = tarfile.TarInfo(arcname(path))
                ti.mode, ti.uname, ti.gname = 0o600 if kind == "whiteout" else 0o644, "root", "root"
            data = arg or b""
            ti.size, ti.mtime = len(data), MTIME
            t.addfile(ti, io.BytesIO(data))
    return fill


def generate_real(out, scale="full", tag="bench/real:latest", log=print):
    """Build the real image at `out`; returns its metadata (as cached in OUT.meta.json)."""
    sources = layer_sources(scale)
    sources = [s for s in sources if s[1]]  # a layer with nothing on this machine is dropped
    walked = [walk(roots, excl) for _, roots, excl in sources]
    plan, top = top_plan(walked, sources)
    fills = [(cb, tree_fill(ents)) for (cb, _, _), ents in zip(sources, walked)]
    fills.append(("/bin/sh -c patch, rm -rf %s, replace %s" % (top["deleted_dir"], top["opaque_dir"]),
                  top_fill(plan)))
    labels = {"org.hoist.bench.real-scale": scale}
    layers, cfg_hex = build(os.path.abspath(out), fills, tag, labels, log)
    return {"gen_version": GEN_VERSION, "kind": "real", "scale": scale, "tag": tag,
            "sources": [[cb, roots, excl] for cb, roots, excl in sources], "labels": labels,
            "archive_bytes": os.path.getsize(out), "image_id": "sha256:" + cfg_hex,
            "layers": layers, "entries": sum(i["entries"] for i in layers),
            "layer_bytes": sum(i["bytes"] for i in layers), "top": top}


# --------------------------------------------------------------------------------------
# The empty-files image
# --------------------------------------------------------------------------------------

def empty_fill(n):
    """A layer of n empty files, FILES_PER_DIR per directory."""
    def fill(t):
        def info(name, type_, mode):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.uname, ti.gname = type_, mode, MTIME, "root", "root"
            return ti
        t.addfile(info("app", tarfile.DIRTYPE, 0o755))
        t.addfile(info("app/node_modules", tarfile.DIRTYPE, 0o755))
        last_pkg = last_dir = -1
        for i in range(n):
            d = i // FILES_PER_DIR
            pkg = d // 10
            if pkg != last_pkg:
                last_pkg = pkg
                base = "app/node_modules/pkg%05d" % pkg
                t.addfile(info(base, tarfile.DIRTYPE, 0o755))
                t.addfile(info(base + "/node_modules", tarfile.DIRTYPE, 0o755))
            if d != last_dir:
                last_dir = d
                ddir = "%s/node_modules/dep%02d" % (base, d % 10)
                t.addfile(info(ddir, tarfile.DIRTYPE, 0o755))
            t.addfile(info("%s/file%02d.js" % (ddir, i % FILES_PER_DIR), tarfile.REGTYPE, 0o644))
    return fill


def generate_empty(out, n, tag="bench/empty:latest", log=print):
    """Build the n-empty-files image at `out`; returns its metadata."""
    labels = {"org.hoist.bench.empty-files": str(n)}
    layers, cfg_hex = build(os.path.abspath(out),
                            [("/bin/sh -c npm install  # %d empty files" % n, empty_fill(n))],
                            tag, labels, log)
    return {"gen_version": GEN_VERSION, "kind": "empty", "files": n, "tag": tag, "labels": labels,
            "archive_bytes": os.path.getsize(out), "image_id": "sha256:" + cfg_hex,
            "layers": layers, "entries": layers[0]["entries"], "layer_bytes": layers[0]["bytes"]}


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------

def _cached(out, want):
    try:
        with open(out + ".meta.json") as mf:
            meta = json.load(mf)
        if all(meta.get(k) == v for k, v in want.items()) and \
                os.path.getsize(out) == meta["archive_bytes"]:
            return meta
    except (OSError, ValueError, KeyError):
        pass
    return None


def _save_meta(out, meta):
    with open(out + ".meta.json", "w") as mf:
        json.dump(meta, mf, indent=1)
    return meta


def ensure_real(out, scale, tag, rebuild=False, log=print):
    """Metadata of the cached real archive at `out`, built if missing or made from other
    sources (the filesystem itself is not re-checked: rebuild=True does that)."""
    want = {"gen_version": GEN_VERSION, "kind": "real", "scale": scale, "tag": tag,
            "sources": [[cb, roots, excl] for cb, roots, excl in layer_sources(scale) if roots]}
    meta = None if rebuild else _cached(out, want)
    if meta:
        return meta
    log("building %s from this machine's files (scale %s) ..." % (out, scale))
    t0 = time.time()
    meta = generate_real(out, scale, tag, log)
    meta["build_secs"] = round(time.time() - t0)
    return _save_meta(out, meta)


def ensure_empty(out, n, tag, rebuild=False, log=print):
    want = {"gen_version": GEN_VERSION, "kind": "empty", "files": n, "tag": tag}
    meta = None if rebuild else _cached(out, want)
    if meta:
        return meta
    log("building %s (%d empty files) ..." % (out, n))
    t0 = time.time()
    meta = generate_empty(out, n, tag, log)
    meta["build_secs"] = round(time.time() - t0)
    return _save_meta(out, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["real", "empty"])
    ap.add_argument("out")
    ap.add_argument("--scale", default="full", choices=["full", "small"])
    ap.add_argument("--files", type=int, default=1000000)
    ap.add_argument("--tag")
    a = ap.parse_args()

    def log(*m):
        print(*m, file=sys.stderr, flush=True)
    if a.kind == "real":
        meta = generate_real(a.out, a.scale, a.tag or "bench/real:latest", log)
    else:
        meta = generate_empty(a.out, a.files, a.tag or "bench/empty:latest", log)
    json.dump(meta, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
