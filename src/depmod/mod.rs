//! What `depmod` writes: the binary `modules.*.bin` indexes.

pub mod index;
