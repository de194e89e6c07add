//! Naming operations: `tag`, `rmi`, and image sizes.

use hoist_format::Digest;
use hoist_format::media_type::Compression;
use hoist_format::reference::Reference;

use super::{Image, Store};
use crate::error::{Error, Result};

/// What `rmi` did, in order, as docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A name was removed.
    Untagged(Reference),
    /// The image has no name left and is gone from the store (its blobs go at `gc`).
    Deleted(Digest),
}

impl Store {
    /// Names the image `src` (a name or ID) also `dst`, moving `dst` from any other image.
    pub fn tag(&self, src: &str, dst: &Reference) -> Result<()> {
        let (img, _) = self.resolve(src)?;
        // A multi-platform image keeps all its platforms under the new name too.
        let desc = img.entry_descriptor();
        let dst = dst.clone().with_default_tag();
        self.update_index(|entries| {
            let ids = self.ids_of(entries)?;
            Store::tag_entries(entries, &dst, &desc, &ids);
            Ok(())
        })
    }

    /// Removes a name, or a whole image by ID. An image with several names can be removed by ID
    /// only with `force`, as in docker.
    pub fn remove(&self, spec: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        let (img, names) = self.resolve(spec)?;
        let by_name = Reference::parse_normalized(spec)
            .ok()
            .map(|r| r.with_default_tag().to_string())
            .filter(|k| names.iter().any(|n| &n.to_string() == k));
        let id = img.id().clone();
        let in_use = crate::containers_using(self, &id)?;
        self.update_index(|entries| {
            let ids = self.ids_of(entries)?;
            let mut events = Vec::new();
            let same_image = |d: &Digest| ids.get(d) == Some(&id);
            match &by_name {
                Some(key) => {
                    entries.retain(|e| {
                        let hit = e.name.as_ref().is_some_and(|n| &n.to_string() == key);
                        if hit {
                            events.push(RemoveEvent::Untagged(e.name.clone().expect("hit has a name")));
                        }
                        !hit
                    });
                }
                None => {
                    let named: Vec<&Reference> = entries.iter().filter(|e| same_image(&e.descriptor.digest)).filter_map(|e| e.name.as_ref()).collect();
                    if named.len() > 1 && !force {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            id.short()
                        )));
                    }
                    entries.retain(|e| {
                        let hit = same_image(&e.descriptor.digest);
                        if let Some(n) = e.name.as_ref().filter(|_| hit) {
                            events.push(RemoveEvent::Untagged(n.clone()));
                        }
                        !hit
                    });
                }
            }
            // The image is deleted when nothing names it any more (docker keeps it while a
            // container uses it).
            let still_named = entries.iter().any(|e| same_image(&e.descriptor.digest) && e.name.is_some());
            if !still_named {
                if in_use.is_empty() {
                    entries.retain(|e| !same_image(&e.descriptor.digest));
                    events.push(RemoveEvent::Deleted(id.clone()));
                } else if !force {
                    return Err(Error::Conflict(match &by_name {
                        Some(_) => format!(
                            "conflict: unable to remove repository reference \"{spec}\" (must force) - container {} is using its referenced image {}",
                            in_use[0],
                            id.short()
                        ),
                        None => format!(
                            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                            id.short(),
                            in_use[0]
                        ),
                    }));
                } else if !entries.iter().any(|e| same_image(&e.descriptor.digest)) {
                    Store::keep_untagged(entries, &img.entry_descriptor());
                }
            }
            Ok(events)
        })
    }

    /// The image's size as docker reports it: the sum of the uncompressed layer sizes.
    pub fn image_size(&self, img: &Image) -> Result<u64> {
        let mut total = 0;
        for l in &img.manifest.layers {
            total += match Compression::of_layer_media_type(&l.media_type) {
                Some(Compression::None) => l.size,
                _ => self.layer_uncompressed(l)?.1,
            };
        }
        Ok(total)
    }
}
