#!/usr/bin/env python3
"""Deterministic synthetic docker-archive (docker save v1.2 layout) for the hoist benchmark.

    python3 bench/genimage.py OUT.tar [--size-mib 700] [--tag bench/big:latest]

The archive looks like what `docker save` (20.10) writes: `<config-hex>.json`,
`<v1-id>/{VERSION,json,layer.tar}` per layer, `manifest.json`, `repositories`,
entries in lexical order, uncompressed layers.  Layers (sizes for --size-mib 700;
everything scales linearly with the size):

  1. ~20,000 small text-ish files (0-64 KiB, avg ~8 KiB) in nested dirs
     srv/data/gNN/sNN/fNNNNN.dat, plus ~500 symlinks, ~400 hardlinks, a few
     ownerships other than root, long (PAX) names, a non-ASCII name, opt/app tree
  2. 4 incompressible files big/blob{0..3}.bin of 128 MiB (SHAKE-256 stream)
  3. rewrites every 10th small file, whiteouts big/blob1.bin and one small file,
     makes opt/app opaque (opt/app/.wh..wh..opq) with new content
  4. a tiny etc/bench-release

Everything (content, mtimes, ids) is a pure function of --size-mib and the tag,
so two runs produce byte-identical archives.
"""

import argparse
import hashlib
import io
import json
import os
import random
import sys
import tarfile

GEN_VERSION = 1
MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
MIB = 1 << 20
CHUNK = MIB
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def shake_stream(label: bytes, size: int):
    """Incompressible deterministic bytes, CHUNK at a time."""
    i = 0
    while size > 0:
        n = min(CHUNK, size)
        yield hashlib.shake_256(label + b"/%d" % i).digest(n)
        size -= n
        i += 1


class StreamReader(io.RawIOBase):
    """read()-able view of a generator of byte chunks (for TarFile.addfile)."""

    def __init__(self, chunks):
        self._it = iter(chunks)
        self._buf = b""

    def readable(self):
        return True

    def read(self, n=-1):
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


class HashingWriter:
    """File-like that writes through to `f` and tracks sha256 + size."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def tell(self):
        return self.n

    def flush(self):
        self.f.flush()


def make_text_buffer(size: int) -> bytes:
    """Compressible-ish text: pseudo-random letters, spaces and newlines."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz      eeeeaaoo\n"
    table = bytes(alphabet[i % len(alphabet)] for i in range(256))
    raw = b"".join(shake_stream(b"hoist-bench/text", size))
    return raw.translate(table)


class Layer:
    """Writes one layer tar (PAX format), remembering which dirs it already has."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "wb")
        self.hw = HashingWriter(self.f)
        self.tar = tarfile.open(fileobj=self.hw, mode="w", format=tarfile.PAX_FORMAT,
                                copybufsize=4 * MIB)
        self.dirs = set()

    def _info(self, name, type_, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.mode = mode
        ti.mtime = MTIME
        ti.uid, ti.gid = uid, gid
        ti.uname, ti.gname = ("root", "root") if uid == 0 else ("", "")
        return ti

    def dir(self, name, mode=0o755):
        name = name.rstrip("/")
        if name in self.dirs:
            return
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        self.dirs.add(name)
        self.tar.addfile(self._info(name + "/", tarfile.DIRTYPE, mode))

    def _parents(self, name):
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0):
        self._parents(name)
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def stream_file(self, name, size, chunks, mode=0o644):
        self._parents(name)
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = size
        self.tar.addfile(ti, StreamReader(chunks))

    def symlink(self, name, target):
        self._parents(name)
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target, mode=0o644):
        self._parents(name)
        ti = self._info(name, tarfile.LNKTYPE, mode)
        ti.linkname = target
        self.tar.addfile(ti)

    def close(self):
        self.tar.close()
        self.f.close()
        return "sha256:" + self.hw.h.hexdigest(), self.hw.n


def small_path(i):
    leaf = i // 100
    return "srv/data/g%02d/s%02d/f%05d.dat" % (leaf // 10, leaf % 10, i)


def build_layers(tmpdir, size_mib):
    f = size_mib / 700.0
    n_small = max(100, round(20000 * f))
    big_bytes = max(1, round(128 * f)) * MIB
    text = make_text_buffer(4 * MIB)
    rnd = random.Random(0x401575)

    def small_content(i, rev):
        # 70% 0-4 KiB, 25% 4-32 KiB, 5% 32-64 KiB  => avg ~8.3 KiB
        p = rnd.random()
        if p < 0.70:
            size = rnd.randrange(0, 4096)
        elif p < 0.95:
            size = rnd.randrange(4096, 32768)
        else:
            size = rnd.randrange(32768, 65536)
        head = b"%s rev %d\n" % (small_path(i).encode(), rev)
        off = rnd.randrange(0, len(text) - size)
        return (head + text[off:off + size])[:max(size, len(head))]

    layers = []
    stats = {"small_files": n_small, "big_file_bytes": big_bytes}

    # ---- layer 1: many small files, links, odd names, opt/app -------------
    L = Layer(os.path.join(tmpdir, "layer1.tar"))
    for d, m in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
                 ("var/log", 0o755), ("srv/data", 0o755)):
        L.dir(d, m)
    L.file("etc/hostname", b"bench\n")
    L.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nbench:x:1000:1000::/home/bench:/bin/sh\n")
    L.file("etc/group", b"root:x:0:\nbench:x:1000:\n")
    L.dir("home/bench", 0o750)
    n_sym = n_hard = 0
    for i in range(n_small):
        p = small_path(i)
        uid = 1000 if i % 13 == 5 else 0
        L.file(p, small_content(i, 1), mode=0o755 if i % 7 == 0 else 0o644, uid=uid, gid=uid)
        if i % 40 == 0:
            L.symlink(p[:-4] + ".lnk", os.path.basename(p))
            n_sym += 1
        if i % 50 == 0:
            L.hardlink(p[:-4] + ".hl", p, mode=0o755 if i % 7 == 0 else 0o644)
            n_hard += 1
    L.symlink("srv/current", "data/g00")
    L.symlink("srv/abs", "/srv/data")
    L.symlink("srv/dangling", "/nonexistent/target")
    L.hardlink("srv/hardlink-to-first", small_path(0), mode=0o755)
    longdir = "srv/long/" + "d" * 60 + "/" + "e" * 60
    longname = longdir + "/file-with-a-rather-long-name-" + "x" * 60 + ".txt"
    L.file(longname, b"long name\n")
    L.symlink("srv/long/link-with-long-target", "/" + longname)
    L.file("srv/unicode/na\u00efve-\u0444\u0430\u0439\u043b-\u540d\u524d.txt", "unicode name\n".encode())
    L.file("opt/app/bin/app", text[:65536], mode=0o755)
    for k in range(50):
        L.file("opt/app/lib/lib%02d.so" % k, text[k * 8192:k * 8192 + 4096 + k * 200])
    L.file("opt/app/etc/app.conf", b"mode = old\n")
    L.symlink("opt/app/current", "bin/app")
    layers.append(("/bin/sh -c #(nop) ADD dir:small-files in /", L.close()))
    stats["symlinks"] = n_sym + 4
    stats["hardlinks"] = n_hard + 1

    # ---- layer 2: 4 big incompressible files ------------------------------
    L = Layer(os.path.join(tmpdir, "layer2.tar"))
    for b in range(4):
        L.stream_file("big/blob%d.bin" % b, big_bytes, shake_stream(b"hoist-bench/blob%d" % b, big_bytes))
    layers.append(("/bin/sh -c #(nop) ADD dir:big-blobs in /big", L.close()))

    # ---- layer 3: rewrites, whiteouts, opaque dir -------------------------
    L = Layer(os.path.join(tmpdir, "layer3.tar"))
    L.dir("big")
    L.file("big/.wh.blob1.bin", b"", mode=0o600)
    n_rw = 0
    for i in range(n_small):
        if i % 10 == 3:
            L.file(small_path(i), small_content(i, 2), mode=0o644)
            n_rw += 1
    L.file(os.path.dirname(small_path(1)) + "/.wh." + os.path.basename(small_path(1)), b"", mode=0o600)
    L.dir("opt/app")
    L.file("opt/app/.wh..wh..opq", b"", mode=0o600)
    L.file("opt/app/bin/app", text[65536:65536 + 32768], mode=0o755)
    L.file("opt/app/VERSION", b"2\n")
    L.file("opt/app/etc/app.conf", b"mode = new\n")
    layers.append(("/bin/sh -c rewrite && rm /big/blob1.bin && replace /opt/app", L.close()))
    stats["rewritten"] = n_rw

    # ---- layer 4: tiny ----------------------------------------------------
    L = Layer(os.path.join(tmpdir, "layer4.tar"))
    L.file("etc/bench-release", b"hoist bench image, size-mib=%d, gen=%d\n" % (size_mib, GEN_VERSION))
    layers.append(("/bin/sh -c echo release > /etc/bench-release", L.close()))
    return layers, stats


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def container_config(cmd):
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": [PATH_ENV], "Cmd": cmd, "Image": "", "Volumes": None,
            "WorkingDir": "/", "Entrypoint": None, "OnBuild": None, "Labels": None}


def save_layout(layers, tag, labels):
    """The metadata entries of a `docker save` (20.10) archive for `layers`, a list of
    (created_by, diff_id): a dict name -> bytes (a file), None (a directory) or N (the N-th
    layer's tar goes there, 0-based), plus the config's hex digest.  The config has one
    history entry per layer and an empty CMD one; v1 ids are derived from chain ids as
    docker does."""
    diff_ids = [d for _, d in layers]
    cfg_obj = {
        "architecture": "amd64",
        "config": dict(container_config(["/bin/sh"]), Labels=labels),
        "container_config": container_config(["/bin/sh", "-c", "#(nop) ", 'CMD ["/bin/sh"]']),
        "created": CREATED,
        "docker_version": "20.10.24",
        "history": [{"created": CREATED, "created_by": cb} for cb, _ in layers]
                   + [{"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
                       "empty_layer": True}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg = dumps(cfg_obj)
    cfg_hex = hashlib.sha256(cfg).hexdigest()

    # chain ids and docker-save-style v1 ids
    chain, parent, ids, entries = None, "", [], {}
    for n, (created_by, diff_id) in enumerate(layers):
        chain = diff_id if chain is None else \
            "sha256:" + hashlib.sha256((chain + " " + diff_id).encode()).hexdigest()
        v1id = hashlib.sha256(dumps({"layer_id": chain, "parent": parent})).hexdigest()
        v1 = {"id": v1id}
        if parent:
            v1["parent"] = parent
        v1["created"] = CREATED
        if n == len(layers) - 1:
            v1.update({"architecture": "amd64", "config": cfg_obj["config"]})
        v1["container_config"] = container_config(["/bin/sh", "-c", created_by])
        v1["os"] = "linux"
        entries[v1id + "/"] = None
        entries[v1id + "/VERSION"] = b"1.0"
        entries[v1id + "/json"] = dumps(v1)
        entries[v1id + "/layer.tar"] = n
        ids.append(v1id)
        parent = v1id
    repo, _, tagname = tag.rpartition(":")
    entries[cfg_hex + ".json"] = cfg
    entries["manifest.json"] = dumps([{"Config": cfg_hex + ".json", "RepoTags": [tag],
                                       "Layers": [i + "/layer.tar" for i in ids]}]) + b"\n"
    entries["repositories"] = dumps({repo: {tagname: ids[-1]}}) + b"\n"
    return entries, cfg_hex


def generate(out, size_mib=700, tag="bench/big:latest", log=print):
    out = os.path.abspath(out)
    tmpdir = out + ".parts"
    os.makedirs(tmpdir, exist_ok=True)
    try:
        layers, stats = build_layers(tmpdir, size_mib)
        diff_ids = [d for _, (d, _) in layers]
        entries, cfg_hex = save_layout([(cb, d) for cb, (d, _) in layers], tag,
                                       {"org.hoist.bench.size-mib": str(size_mib)})

        tmp_out = out + ".tmp"
        with tarfile.open(tmp_out, "w", format=tarfile.USTAR_FORMAT, copybufsize=4 * MIB) as t:
            for name in sorted(entries):
                v = entries[name]
                ti = tarfile.TarInfo(name.rstrip("/"))
                ti.mtime = MTIME
                ti.uname = ti.gname = "root"
                if v is None:
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    t.addfile(ti)
                elif isinstance(v, bytes):
                    ti.mode, ti.size = 0o644, len(v)
                    t.addfile(ti, io.BytesIO(v))
                else:
                    v = os.path.join(tmpdir, "layer%d.tar" % (v + 1))
                    ti.mode, ti.size = 0o644, os.path.getsize(v)
                    with open(v, "rb") as lf:
                        t.addfile(ti, lf)
        os.replace(tmp_out, out)
    finally:
        for n in range(1, 5):
            p = os.path.join(tmpdir, "layer%d.tar" % n)
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(tmpdir)
    meta = {"gen_version": GEN_VERSION, "size_mib": size_mib, "tag": tag,
            "archive_bytes": os.path.getsize(out), "image_id": "sha256:" + cfg_hex,
            "diff_ids": diff_ids, "layer_bytes": [s for _, (_, s) in layers], "stats": stats}
    return meta


def ensure(out, size_mib, tag="bench/big:latest", log=print):
    """Return metadata for a cached archive at `out`, generating it if needed."""
    meta_path = out + ".meta.json"
    try:
        with open(meta_path) as mf:
            meta = json.load(mf)
        if (meta.get("gen_version") == GEN_VERSION and meta.get("size_mib") == size_mib
                and meta.get("tag") == tag and os.path.getsize(out) == meta["archive_bytes"]):
            return meta
    except (OSError, ValueError, KeyError):
        pass
    log("generating %s (%d MiB, deterministic) ..." % (out, size_mib))
    meta = generate(out, size_mib, tag, log)
    with open(meta_path, "w") as mf:
        json.dump(meta, mf, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size-mib", type=int, default=700)
    ap.add_argument("--tag", default="bench/big:latest")
    a = ap.parse_args()
    meta = generate(a.out, a.size_mib, a.tag)
    json.dump(meta, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
