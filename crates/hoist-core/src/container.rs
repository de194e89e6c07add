//! Containers: working copies of images, unpacked under `hoist/containers/<id>/`.
//!
//! ```text
//! hoist/containers/<id>/
//!   state.json    id, name, image ID, manifest digest, command, created, status, exit code
//!   config.json   OCI runtime bundle config (runc/crun run -b <dir>)
//!   rootfs/       the image's layers applied (safely: nothing lands outside it)
//! ```
//! A container is created in `hoist/containers/.new-<id>` and renamed into place when
//! complete, so a crash never leaves half a container visible. Its creator holds an `flock` on
//! that directory until it is done (the kernel drops it when the process dies), so a
//! `.new-<id>` nobody holds is the leftover of a killed `create`: the next `create` and `gc`
//! remove those, and never one that is being made (`remove_stale_partials`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hoist_format::config::History;
use hoist_format::oci::Descriptor;
use hoist_format::reference::Reference;
use hoist_format::{Digest, media_type};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::flatten::{FlattenOptions, final_tree};
use crate::ops::export::StoreLayers;
use crate::rootfs::{self, Change, PackOptions, UnpackOptions};
use crate::store::{Image, Store};

/// Docker's default capability set for containers.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The PATH docker gives a container whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories the OCI runtime creates in the rootfs to mount on.
const RUNTIME_MOUNT_POINTS: [&str; 3] = ["/dev", "/proc", "/sys"];

/// What hoist records about a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The image ID.
    pub image: Digest,
    /// The manifest it was created from.
    pub manifest: Digest,
    /// How the user named the image.
    pub image_name: String,
    /// The command (entrypoint + cmd, or the one given).
    pub args: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// `created`, `running` or `exited`.
    pub status: String,
    /// Exit code of the last run.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// When the last run ended, RFC 3339.
    #[serde(default)]
    pub finished: Option<String>,
}

/// A container of the store.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its directory (the OCI bundle).
    pub dir: PathBuf,
    /// Its recorded state.
    pub state: State,
}

/// Options of [`create`].
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// Name; default `hoist_<first 12 hex of the id>`.
    pub name: Option<String>,
    /// Command to run instead of the image's CMD (ENTRYPOINT is kept, as docker does).
    pub cmd: Vec<String>,
    /// How the user named the image (shown by `ps`).
    pub image_name: String,
    /// Creation time, RFC 3339.
    pub created: String,
}

/// Options of [`Container::commit`].
#[derive(Debug, Default)]
pub struct CommitOptions {
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// History comment.
    pub message: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Name of the new image.
    pub name: Option<Reference>,
    /// Creation time, RFC 3339.
    pub created: String,
}

fn containers_dir(store: &Store) -> PathBuf {
    store.root().join("hoist/containers")
}

/// Name prefix of a container directory being made (`.new-<id>`); the dot hides it from
/// [`list`].
const PARTIAL_PREFIX: &str = ".new-";

/// Locks `hoist/containers` itself (an `flock` on the directory, so no lock file is added to
/// the store) around making and locking a `.new-<id>` directory, and around looking for stale
/// ones: a cleaner never sees a new directory before its creator holds its lock.
fn lock_containers_dir(base: &Path) -> Result<fs::File> {
    let dir = fs::File::open(base).at(base)?;
    dir.lock().at(base)?;
    Ok(dir)
}

/// Removes the `.new-<id>` directories of creates that died midway, returning how many.
/// A directory whose `flock` another process holds is being made now and is left alone.
pub(crate) fn remove_stale_partials(store: &Store) -> Result<usize> {
    let base = containers_dir(store);
    let _containers = match lock_containers_dir(&base) {
        Ok(lock) => lock,
        // No container was ever made.
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    remove_stale_partials_locked(&base)
}

/// [`remove_stale_partials`] for a caller that holds the lock of `base`.
fn remove_stale_partials_locked(base: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(base).at(base)? {
        let entry = entry.at(base)?;
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
            || !entry.file_type().at(&path)?.is_dir()
        {
            continue;
        }
        let dir = fs::File::open(&path).at(&path)?;
        match dir.try_lock() {
            Ok(()) => {}
            // Its creator is alive and still at work.
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::Io { path, source: e });
            }
        }
        fs::remove_dir_all(&path).at(&path)?;
        removed += 1;
    }
    Ok(removed)
}

/// Makes the `.new-<id>` directory of a container being created and locks it, after removing
/// the leftovers of creates that were killed. The lock is held until the returned file drops.
fn make_partial(base: &Path, tmp: &Path) -> Result<fs::File> {
    let _containers = lock_containers_dir(base)?;
    remove_stale_partials_locked(base)?;
    fs::create_dir(tmp).at(tmp)?;
    let dir = fs::File::open(tmp).at(tmp)?;
    // Nobody else can hold it: it did not exist a moment ago, and cleaners wait for the lock
    // of `base`.
    dir.lock().at(tmp)?;
    Ok(dir)
}

fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    let p = Path::new("/dev/urandom");
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .at(p)?;
    Ok(hex::encode(b))
}

/// Every container, sorted by creation time (newest first).
pub fn list(store: &Store) -> Result<Vec<Container>> {
    let dir = containers_dir(store);
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in rd {
        let e = e.at(&dir)?;
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let sp = e.path().join("state.json");
        let bytes = fs::read(&sp).at(&sp)?;
        let state: State = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: sp.display().to_string(),
            source,
        })?;
        out.push(Container {
            dir: e.path(),
            state,
        });
    }
    out.sort_by(|a, b| {
        b.state
            .created
            .cmp(&a.state.created)
            .then(a.state.name.cmp(&b.state.name))
    });
    Ok(out)
}

/// The container with this name, ID, or unique ID prefix.
pub fn find(store: &Store, spec: &str) -> Result<Option<Container>> {
    let all = list(store)?;
    if let Some(c) = all
        .iter()
        .find(|c| c.state.name == spec || c.state.id == spec)
    {
        return Ok(Some(c.clone()));
    }
    if spec.len() >= 3 && spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<&Container> = all
            .iter()
            .filter(|c| c.state.id.starts_with(spec))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Ok(Some(hits[0].clone())),
            _ => {
                return Err(Error::AmbiguousId {
                    prefix: spec.into(),
                    candidates: hits.iter().map(|c| c.state.id.clone()).collect(),
                });
            }
        }
    }
    Ok(None)
}

/// Manifests of images that containers were created from (kept by `gc`).
pub(crate) fn manifests_in_use(store: &Store) -> Result<Vec<Digest>> {
    Ok(list(store)?.into_iter().map(|c| c.state.manifest).collect())
}

/// Creates a container from an image: unpacks its layers and writes the runtime bundle.
pub fn create(store: &Store, image: &Image, opts: &CreateOptions) -> Result<Container> {
    let _ingest = store.ingest_lock()?;
    let id = new_id()?;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("hoist_{}", &id[..12]));
    if !valid_name(&name) {
        return Err(Error::Conflict(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if list(store)?.iter().any(|c| c.state.name == name) {
        return Err(Error::Conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use"
        )));
    }
    let base = containers_dir(store);
    fs::create_dir_all(&base).at(&base)?;
    let tmp = base.join(format!("{PARTIAL_PREFIX}{id}"));
    let _creating = make_partial(&base, &tmp)?;
    let result = (|| {
        let rootfs = tmp.join("rootfs");
        for (i, l) in image.manifest.layers.iter().enumerate() {
            let r = store.open_layer(l)?;
            rootfs::unpack_layer(
                &rootfs,
                r,
                &UnpackOptions {
                    layer: i,
                    ..Default::default()
                },
            )
            .map_err(|e| {
                Error::InvalidArchive(format!(
                    "unpacking layer {i} ({}) of image {}: {e}",
                    l.digest,
                    image.id()
                ))
            })?;
        }
        fs::create_dir_all(&rootfs).at(&rootfs)?;
        let args = command(image, &opts.cmd);
        if args.is_empty() {
            return Err(Error::Conflict(
                "no command specified: the image has no CMD or ENTRYPOINT; give one".into(),
            ));
        }
        let spec = runtime_spec(image, &args, &rootfs, &id)?;
        let cp = tmp.join("config.json");
        fs::write(
            &cp,
            serde_json::to_vec_pretty(&spec).expect("a spec serializes"),
        )
        .at(&cp)?;
        let state = State {
            id: id.clone(),
            name: name.clone(),
            image: image.id().clone(),
            manifest: image.manifest_digest.clone(),
            image_name: opts.image_name.clone(),
            args,
            created: opts.created.clone(),
            status: "created".into(),
            exit_code: None,
            finished: None,
        };
        write_state(&tmp, &state)?;
        Ok(state)
    })();
    match result {
        Ok(state) => {
            let dir = base.join(&id);
            fs::rename(&tmp, &dir).at(&dir)?;
            Ok(Container { dir, state })
        }
        Err(e) => {
            // Remove the half-made container; an error here is secondary to the first one.
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn write_state(dir: &Path, state: &State) -> Result<()> {
    let tmp = dir.join(".state.json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(state).expect("state serializes"),
    )
    .at(&tmp)?;
    let dest = dir.join("state.json");
    fs::rename(&tmp, &dest).at(dest)
}

/// ENTRYPOINT + CMD, or ENTRYPOINT + the given command, as docker combines them.
fn command(image: &Image, cmd: &[String]) -> Vec<String> {
    let cfg = image.config.config.clone().unwrap_or_default();
    let list = |k: &str| -> Vec<String> {
        cfg.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args = list("Entrypoint");
    if cmd.is_empty() {
        args.extend(list("Cmd"));
    } else {
        args.extend(cmd.iter().cloned());
    }
    args
}

/// The OCI runtime config for a container of `image`, modelled on `runc spec` with docker's
/// capabilities: pid, ipc, uts, mount and network namespaces (loopback only).
fn runtime_spec(
    image: &Image,
    args: &[String],
    rootfs: &Path,
    id: &str,
) -> Result<serde_json::Value> {
    let cfg = image.config.config.clone().unwrap_or_default();
    let s = |k: &str| {
        cfg.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut env: Vec<String> = cfg
        .get("Env")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    env.push(format!("HOSTNAME={}", &id[..12]));
    let cwd = match s("WorkingDir") {
        w if w.is_empty() => "/".to_string(),
        w => w,
    };
    let (uid, gid) = resolve_user(rootfs, &s("User"))?;
    Ok(serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS},
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": &id[..12],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    }))
}

/// `USER` as uid/gid: numbers, or names looked up in the container's /etc/passwd and /etc/group
/// (read only when they are regular files: a symlink could point out of the root).
fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let read = |name: &str| -> String {
        let p = rootfs.join("etc").join(name);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => fs::read_to_string(&p).unwrap_or_default(),
            _ => String::new(),
        }
    };
    let passwd = read("passwd");
    let lookup = |db: &str, key: &str, field: usize| -> Option<u32> {
        db.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&key))
            .and_then(|f| f.get(field)?.parse().ok())
    };
    let (uid, default_gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.get(2) == Some(&u))
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(0),
        ),
        Err(_) => {
            let uid = lookup(&passwd, u, 2).ok_or_else(|| {
                Error::Conflict(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
            (uid, lookup(&passwd, u, 3).unwrap_or(0))
        }
    };
    let gid = match g {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&read("group"), g, 2).ok_or_else(|| {
                Error::Conflict(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

impl Container {
    /// Its root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Writes the root filesystem as it is now as one flat tar.
    pub fn export(&self, out: impl Write) -> Result<()> {
        rootfs::pack_dir(&self.rootfs(), out, &PackOptions::default())
            .map_err(|e| Error::InvalidArchive(format!("container {}: {e}", self.state.name)))?;
        Ok(())
    }

    /// Records a new status.
    pub fn set_status(
        &mut self,
        status: &str,
        exit_code: Option<i32>,
        finished: Option<String>,
    ) -> Result<()> {
        self.state.status = status.into();
        self.state.exit_code = exit_code;
        self.state.finished = finished;
        write_state(&self.dir, &self.state)
    }

    /// Removes the container.
    pub fn remove(self) -> Result<()> {
        let gone = self.dir.with_file_name(format!(".rm-{}", self.state.id));
        fs::rename(&self.dir, &gone).at(&self.dir)?;
        fs::remove_dir_all(&gone).at(&gone)
    }

    /// What changed against the image, as `docker diff`.
    pub fn changes(&self, store: &Store) -> Result<Vec<Change>> {
        let image = self.image(store)?;
        let tree = final_tree(&StoreLayers::new(store, &image), &FlattenOptions::default())?;
        let all = rootfs::changes(&self.rootfs(), &tree)
            .map_err(|e| Error::InvalidArchive(format!("container {}: {e}", self.state.name)))?;
        // The runtime creates these mount points when the image lacks them; like docker's init
        // layer, they are not changes of the container.
        Ok(all
            .into_iter()
            .filter(|c| {
                !(c.kind == rootfs::ChangeKind::Added
                    && RUNTIME_MOUNT_POINTS.contains(&c.path.as_str()))
            })
            .collect())
    }

    /// The image the container was created from.
    pub fn image(&self, store: &Store) -> Result<Image> {
        let d = Descriptor::new(media_type::OCI_MANIFEST, self.state.manifest.clone(), 0);
        store.image(&d)
    }

    /// Turns the changes into a new layer on top of the image: a new image.
    pub fn commit(&self, store: &Store, opts: &CommitOptions) -> Result<(Digest, Option<Digest>)> {
        let image = self.image(store)?;
        let changes = self.changes(store)?;
        let _ingest = store.ingest_lock()?;
        let mut staging = store.staging()?;
        let (r, w) = io::pipe().map_err(|source| Error::Io {
            path: "pipe".into(),
            source,
        })?;
        let root = self.rootfs();
        let layer = std::thread::scope(|s| -> Result<_> {
            let writer = s.spawn(move || rootfs::diff_layer(&root, &changes, w));
            let staged = staging.stage(r, "the committed layer");
            let written = writer.join().expect("the diff thread does not panic");
            written.map_err(|e| {
                Error::InvalidArchive(format!("container {}: {e}", self.state.name))
            })?;
            staged
        })?;
        let diff_id = layer.digest.clone();

        // The new config: the image's, with --change applied, the layer and a history entry added.
        let mut cfg = crate::ops::ConfigEdit::parse(
            &image.config_bytes,
            format!("config of {}", image.id()),
        )?;
        let old_run: serde_json::Value = cfg.get("config")?.unwrap_or(serde_json::Value::Null);
        let new_run = hoist_format::change::commit_config(
            &old_run,
            &opts.changes,
            hoist_format::change::Compat::default(),
        )
        .map_err(|e| Error::Conflict(e.to_string()))?;
        cfg.set_raw("config", new_run);
        cfg.set("created", &opts.created);
        cfg.set("container", &self.state.id);
        if let Some(a) = &opts.author {
            cfg.set("author", a);
        }
        match &opts.message {
            Some(m) => cfg.set("comment", m),
            None => cfg.remove("comment"),
        }
        let mut rootfs: serde_json::Value = cfg
            .get("rootfs")?
            .unwrap_or_else(|| serde_json::json!({"type": "layers", "diff_ids": []}));
        match rootfs.get_mut("diff_ids").and_then(|d| d.as_array_mut()) {
            Some(ids) => ids.push(diff_id.to_string().into()),
            None => rootfs["diff_ids"] = serde_json::json!([diff_id.to_string()]),
        }
        cfg.set("rootfs", &rootfs);
        let entry = History {
            created: Some(opts.created.clone()),
            created_by: Some(self.state.args.join(" ")),
            author: opts.author.clone(),
            comment: opts.message.clone(),
            empty_layer: false,
        };
        let mut hist: Vec<serde_json::Value> = cfg.get("history")?.unwrap_or_default();
        hist.push(serde_json::to_value(entry).expect("history serializes"));
        cfg.set("history", &hist);
        let config_bytes = cfg.finish()?;

        let layer_desc = Descriptor::new(media_type::OCI_LAYER, diff_id, layer.size);
        let manifest_bytes = crate::ops::derived_manifest(
            &image.manifest,
            image.manifest.layers.len(),
            layer_desc,
            &config_bytes,
        );
        let new = staging.commit_image(
            &[&layer],
            &manifest_bytes,
            &config_bytes,
            opts.name.as_ref(),
        )?;
        Ok((new.id, new.moved_from))
    }
}
