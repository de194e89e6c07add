//! Image archives: reading (`load`) and writing (`save`).

mod collect;
pub mod delta;
mod images;
pub mod load;
pub mod parts;
pub mod save;
pub mod transport;
pub mod verify;

pub use images::{HeldImage, held_images};
pub use load::{LoadOptions, LoadReport, LoadedImage, load, load_dir, load_file, load_parts};
pub use save::{SaveFormat, SaveOptions, save};
