//! The one Dockerfile parser: `check` lints with it, the build context resolves base images with
//! it, and provenance records the base images it finds. [`parse`] turns text into logical
//! instructions (continuations, the escape directive, heredocs, flags, exec and shell form) and
//! lists what the builder would reject; [`base_images`] resolves `FROM` lines into the one
//! [`BaseImage`] type; [`LineIndex`] (from [`crate::lines`]) is the one offset-to-line lookup; [`read`] is the one place a
//! Dockerfile is read from disk.

mod image;
mod parse;
mod read;
pub mod shell;

pub use crate::lines::LineIndex;
pub use image::{BaseImage, base_images, global_args, pinned_digest, stage_names, substitute};
pub use parse::{Dockerfile, Flag, Heredoc, Instruction, KEYWORDS, SyntaxError, parse};
pub use read::{DOCKERFILE_CAP, MAX_DOCKERFILE_BYTES, ReadError, read};
