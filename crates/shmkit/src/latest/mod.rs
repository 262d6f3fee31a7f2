//! Latest values ("blackboards"): one writer publishes a value, any number
//! of readers read the newest one.

#[allow(unsafe_code)] // the buffers' memory
mod area;
#[cfg(not(loom))]
#[allow(unsafe_code)] // the header's place in the mapping
pub(crate) mod layout;
mod seqlock;
