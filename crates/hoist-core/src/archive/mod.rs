//! Image archives: reading (`load`) and writing (`save`).

mod collect;
pub mod delta;
mod images;
pub mod load;
pub mod save;
pub mod transport;

pub use load::{LoadOptions, LoadReport, LoadedImage, load, load_dir, load_file};
pub use save::{SaveFormat, SaveOptions, save};
