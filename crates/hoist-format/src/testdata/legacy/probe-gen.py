import hashlib, io, json, tarfile, sys
def vid(s): return hashlib.sha256(s.encode()).hexdigest()
cases = {}
# A: non-fallback; raw bytes kept (only compacted + html-escaped)
A = vid("A")
cases["a"] = [(A, b'{ "id" : "%s",\n  "docker_version": "1.9.0", "author": "Me <me@x.org> & co",  "comment": "line\xe2\x80\xa8sep \\u00e9 \\u003c", "created": "2015-01-01T10:00:00.500+01:00", "container_config": {"Cmd": "echo hi", "Memory": 0, "PortSpecs": null}, "Size": 12, "throwaway": true, "parent_id": "x", "layer_id": "y", "zeta": [1, 2.50, {"b": 1, "a": 2}], "Zeta": 1, "zeta": [1, 2.50, {"b": 1, "a": 2}]}' % A.encode())]
# B: fallback with every container.Config field and Go quirks
B = vid("B")
cases["b"] = [(B, json.dumps({"id": B, "docker_version": "1.8.2", "AUTHOR": "Upper <case>", "created": "2016-02-03T4:05:06,1234567891+00:00",
  "Container_Config": {"cmd": "/bin/sh -c true", "Env": ["A=1", None], "labels": {"z": "1", "a": "<b>", "n": None}},
  "config": {"Hostname": "h", "User": "u", "ExposedPorts": {"80/tcp": {}, "443/tcp": {"x": 1}}, "Tty": True, "Cmd": ["a", "b"],
     "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 3}, "ArgsEscaped": True, "Image": "img",
     "Volumes": {"/data": {}}, "WorkingDir": "/w", "Entrypoint": [], "NetworkDisabled": True, "MacAddress": "02:42:ac:11:00:02",
     "OnBuild": [], "Labels": {}, "StopSignal": "SIGTERM", "StopTimeout": 5, "Shell": ["/bin/bash", "-c"], "Memory": 5, "ſize": 1},
  "os": "linux", "architecture": "amd64", "variant": "v8", "container": "c1", "\u212aey": 1, "Size": 99}).encode())]
# C: two layers: root non-fallback without created; top no docker_version, config null
C0, C1 = vid("C0"), vid("C1")
cases["c"] = [(C0, b'{"id":"%s","docker_version":"1.10.0","config":null,"container_config":{"Cmd":["/bin/sh","-c","#(nop) ADD x"]},"os":"linux","extra":{"k":"<v>"}}' % C0.encode()),
              (C1, b'{"id":"%s","parent":"%s","created":"2000-01-01T00:00:00-00:00","comment":"top","author":"a\\u2028b"}' % (C1.encode(), C0.encode()))]
for name, layers in cases.items():
    buf = open(f"{name}.tar", "wb")
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        def add(path, data):
            ti = tarfile.TarInfo(path); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        for i, (lid, js) in enumerate(layers):
            add(f"{lid}/VERSION", b"1.0"); add(f"{lid}/json", js); add(f"{lid}/layer.tar", b"")
            open(f"{name}-{i}.json", "wb").write(js)
        add("repositories", json.dumps({f"hoist-legacy-probe/{name}": {"t": layers[-1][0]}}).encode())
    buf.close()
